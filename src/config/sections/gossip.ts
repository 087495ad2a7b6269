// Gossip (SWIM + Lifeguard) settings and the signed health plane. The gossip module owns this file.
// Timing keys left unset take the chosen profile's value (memberlist's LAN or WAN defaults).
import { durationMs, hostPortSchema } from './common.js';

const optionalMs = (min: number, max: number) => ({ type: 'integer', minimum: min, maximum: max }) as const;

export const gossipSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    enabled: { type: 'boolean', default: false, description: 'gossip with peer sidecars (membership and the signed health plane)' },
    listen: { ...hostPortSchema, default: '127.0.0.1:17946' },
    advertise: { type: 'string', maxLength: 300, default: '', description: 'HOST:PORT peers use to reach us; empty = the bound listen address' },
    join: { type: 'array', items: { type: 'string', minLength: 3, maxLength: 300 }, default: [], maxItems: 64, description: 'seed members: HOST:PORT (IP literal), dns://name:port (A/AAAA) or dns+srv://_service._proto.name; one answering is enough' },
    dnsRefreshMs: { ...durationMs(30_000, 1000, 3_600_000), description: 'DNS seeds are resolved again this often (and before every join attempt)' },
    joinRetryMs: { ...durationMs(2000, 100, 600_000), description: 'first retry delay while no seed answers (doubles up to 30 s)' },
    profile: { enum: ['lan', 'wan'], default: 'lan', description: 'memberlist LAN or WAN timing defaults' },
    probeIntervalMs: { ...optionalMs(10, 600_000), description: 'failure-detector probe period; unset = the profile\'s' },
    probeTimeoutMs: { ...optionalMs(5, 600_000), description: 'wait for a direct ack before indirect probes; unset = the profile\'s' },
    gossipIntervalMs: { ...optionalMs(5, 60_000), description: 'gossip period; unset = the profile\'s' },
    pushPullIntervalMs: { ...optionalMs(0, 3_600_000), description: 'TCP anti-entropy period (0 = off); unset = the profile\'s' },
    gossipToTheDeadMs: { ...optionalMs(100, 3_600_000), description: 'keep gossiping to dead members this long, then reap them' },
    indirectChecks: { type: 'integer', minimum: 0, maximum: 16, description: 'members asked to probe indirectly' },
    gossipNodes: { type: 'integer', minimum: 1, maximum: 16, description: 'members gossiped to per gossip period' },
    suspicionMult: { type: 'integer', minimum: 1, maximum: 100, description: 'minimum suspicion timeout = mult × max(1, log10 N) × probe interval' },
    suspicionMaxTimeoutMult: { type: 'integer', minimum: 1, maximum: 100, description: 'Lifeguard: maximum suspicion timeout = mult × minimum' },
    retransmitMult: { type: 'integer', minimum: 1, maximum: 100, description: 'each update is sent mult × ceil(log10(N + 1)) times' },
    awarenessMaxMultiplier: { type: 'integer', minimum: 1, maximum: 64, description: 'Lifeguard: timeouts scale up to this factor when local health is poor' },
    maxPacketBytes: { type: 'integer', minimum: 512, maximum: 1200, default: 1200, description: 'largest UDP payload sent, encryption included' },
    observationShare: { type: 'number', minimum: 0.05, maximum: 0.9, default: 0.35, description: 'share of every gossip packet reserved for observations' },
    keys: {
      type: 'array',
      items: { type: 'string', minLength: 44, maxLength: 44, pattern: '^[A-Za-z0-9+/]{43}=$' },
      default: [],
      maxItems: 16,
      description: 'AES-256 keys, base64 (32 bytes); the first encrypts, all decrypt; empty = no encryption',
    },
    keysFile: { type: 'string', maxLength: 4096, default: '', description: 'file (one base64 key per line) or directory (a mounted Secret: every file, in name order) holding the keys; first encrypts; re-read while running (rotation without restart); excludes keys' },
    keysReloadMs: { ...durationMs(5000, 100, 3_600_000), description: 'how often keysFile is checked for changes' },
    identityKeyFile: { type: 'string', maxLength: 4096, default: '', description: 'PEM file holding this node\'s Ed25519 key (created if missing); empty = a new key each start' },
    loopDelayThresholdMs: { ...durationMs(200, 0, 60_000), description: 'event-loop lag above this counts against local health (0 = off)' },
    limits: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'bounds on what unauthenticated gossip traffic can cost, applied before decryption and decoding',
      properties: {
        maxStreamBytes: { type: 'integer', minimum: 65_536, maximum: 64 * 1024 * 1024, default: 4 * 1024 * 1024, description: 'largest TCP frame accepted; a larger length prefix closes the connection before anything is buffered' },
        maxBufferedBytes: { type: 'integer', minimum: 65_536, maximum: 1024 * 1024 * 1024, default: 16 * 1024 * 1024, description: 'bytes all unfinished inbound TCP frames may hold together; a chunk beyond it closes its connection' },
        packetsPerSecond: { type: 'number', minimum: 1, maximum: 1_000_000, default: 1000, description: 'UDP datagrams accepted per second from one source address' },
        packetBurst: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 2000, description: 'UDP datagrams accepted in a burst from one source address' },
        streamsPerSecond: { type: 'number', minimum: 0.1, maximum: 100_000, default: 10, description: 'TCP connections accepted per second from one source address' },
        streamBurst: { type: 'integer', minimum: 1, maximum: 100_000, default: 40, description: 'TCP connections accepted in a burst from one source address' },
        maxStreamsPerPeer: { type: 'integer', minimum: 1, maximum: 10_000, default: 8, description: 'TCP connections open at once from one source address' },
        pushPullMaxMembers: { type: 'integer', minimum: 16, maximum: 1_000_000, default: 10_000, description: 'most members one push-pull may list (larger ones are refused whole; ours are cut to it)' },
        pushPullMaxNewMembers: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 256, description: 'most unknown members an unsolicited push-pull may add (answers to our own requests are not limited)' },
        incarnationWindow: { type: 'integer', minimum: 0, maximum: 1_073_741_824, description: 'incarnations further ahead than this of what we hold are refused as forged; unset = 65,536 without keys, off with keys' },
      },
    },
    health: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        enabled: { type: 'boolean', default: true, description: 'publish signed observations and act on mesh-wide verdicts' },
        intervalMs: { ...durationMs(500, 50, 60_000), description: 'health-plane tick' },
        windows: { type: 'integer', minimum: 1, maximum: 120, default: 3, description: 'stats windows summarised per observation' },
        minRequests: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 5, description: 'requests an observer needs in its span to count' },
        errorRateThreshold: { type: 'number', minimum: 0.01, maximum: 1, default: 0.5, description: 'an observation is bad at or above this error rate' },
        p99ThresholdMs: { type: 'number', minimum: 0, maximum: 600_000, default: 0, description: '0 = latency is not a criterion' },
        freshnessMs: { ...durationMs(10_000, 100, 600_000), description: 'observations older than this no longer count' },
        maxSkewMs: { ...durationMs(5_000, 0, 600_000), description: 'observations further in the future than this are refused' },
        quorum: { type: 'integer', minimum: 0, maximum: 1000, default: 0, description: '0 = min(3, ceil(M/2)), at least minQuorum' },
        minQuorum: { type: 'integer', minimum: 1, maximum: 1000, default: 2, description: 'never fewer distinct bad observers than this' },
        maxQuorum: { type: 'integer', minimum: 1, maximum: 1000, default: 3, description: 'the automatic quorum never asks for more than this' },
        holdDownMs: { ...durationMs(5_000, 0, 3_600_000), description: 'without a healing engine: quorum lost this long before a peer ejection is lifted' },
        ratePerSecond: { type: 'number', minimum: 0.1, maximum: 100_000, default: 100, description: 'per-observer sustained rate accepted' },
        burst: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 1000, description: 'per-observer burst accepted' },
        refreshMs: { type: 'integer', minimum: 50, maximum: 600_000, description: 'unchanged views are re-published this often; default freshnessMs / 4' },
        redundancy: { type: 'integer', minimum: 1, maximum: 1000, default: 5, description: 'stay quiet while our side leads by this many observers' },
        probe: { type: 'boolean', default: true, description: 'without own traffic, corroborate a peer report with TCP connection probes' },
        probeEveryMs: { ...durationMs(2000, 100, 600_000), description: 'at most one probe run per endpoint this often' },
      },
    },
  },
} as const;

export interface GossipHealthConfig {
  readonly enabled: boolean;
  readonly intervalMs: number;
  readonly windows: number;
  readonly minRequests: number;
  readonly errorRateThreshold: number;
  readonly p99ThresholdMs: number;
  readonly freshnessMs: number;
  readonly maxSkewMs: number;
  readonly quorum: number;
  readonly minQuorum: number;
  readonly maxQuorum: number;
  readonly holdDownMs: number;
  readonly ratePerSecond: number;
  readonly burst: number;
  readonly refreshMs?: number;
  readonly redundancy: number;
  readonly probe?: boolean;
  readonly probeEveryMs?: number;
}

export interface GossipLimitsConfig {
  readonly maxStreamBytes: number;
  readonly maxBufferedBytes: number;
  readonly packetsPerSecond: number;
  readonly packetBurst: number;
  readonly streamsPerSecond: number;
  readonly streamBurst: number;
  readonly maxStreamsPerPeer: number;
  readonly pushPullMaxMembers: number;
  readonly pushPullMaxNewMembers: number;
  readonly incarnationWindow?: number;
}

export interface GossipConfig {
  readonly enabled: boolean;
  readonly listen: string;
  readonly advertise?: string;
  readonly join: readonly string[];
  readonly joinRetryMs?: number;
  readonly profile?: 'lan' | 'wan';
  readonly probeIntervalMs?: number;
  readonly probeTimeoutMs?: number;
  readonly gossipIntervalMs?: number;
  readonly pushPullIntervalMs?: number;
  readonly gossipToTheDeadMs?: number;
  readonly indirectChecks?: number;
  readonly gossipNodes?: number;
  readonly suspicionMult?: number;
  readonly suspicionMaxTimeoutMult?: number;
  readonly retransmitMult?: number;
  readonly awarenessMaxMultiplier?: number;
  readonly maxPacketBytes?: number;
  readonly observationShare?: number;
  readonly keys?: readonly string[];
  readonly keysFile?: string;
  readonly keysReloadMs?: number;
  readonly dnsRefreshMs?: number;
  readonly identityKeyFile?: string;
  readonly loopDelayThresholdMs?: number;
  readonly health?: Partial<GossipHealthConfig>;
  readonly limits?: Partial<GossipLimitsConfig>;
}
