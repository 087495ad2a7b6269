// Gossip (SWIM + Lifeguard) settings and the signed health plane. The gossip module owns this file.
// Timing keys left unset take the chosen profile's value (memberlist's LAN or WAN defaults).
import { durationMs, hostPortSchema } from './common.js';

const optionalMs = (min: number, max: number) => ({ type: 'integer', minimum: min, maximum: max }) as const;

export const gossipSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    enabled: { type: 'boolean', default: false },
    listen: { ...hostPortSchema, default: '127.0.0.1:17946' },
    advertise: { type: 'string', maxLength: 300, default: '', description: 'HOST:PORT peers use to reach us; empty = the bound listen address' },
    join: { type: 'array', items: hostPortSchema, default: [], maxItems: 64 },
    joinRetryMs: durationMs(2000, 100, 600_000),
    profile: { enum: ['lan', 'wan'], default: 'lan', description: 'memberlist LAN or WAN timing defaults' },
    probeIntervalMs: optionalMs(10, 600_000),
    probeTimeoutMs: optionalMs(5, 600_000),
    gossipIntervalMs: optionalMs(5, 60_000),
    pushPullIntervalMs: optionalMs(0, 3_600_000),
    gossipToTheDeadMs: optionalMs(100, 3_600_000),
    indirectChecks: { type: 'integer', minimum: 0, maximum: 16 },
    gossipNodes: { type: 'integer', minimum: 1, maximum: 16 },
    suspicionMult: { type: 'integer', minimum: 1, maximum: 100 },
    suspicionMaxTimeoutMult: { type: 'integer', minimum: 1, maximum: 100 },
    retransmitMult: { type: 'integer', minimum: 1, maximum: 100 },
    awarenessMaxMultiplier: { type: 'integer', minimum: 1, maximum: 64 },
    maxPacketBytes: { type: 'integer', minimum: 512, maximum: 1200, default: 1200, description: 'largest UDP payload sent, encryption included' },
    observationShare: { type: 'number', minimum: 0.05, maximum: 0.9, default: 0.35, description: 'share of every gossip packet reserved for observations' },
    keys: {
      type: 'array',
      items: { type: 'string', minLength: 44, maxLength: 44, pattern: '^[A-Za-z0-9+/]{43}=$' },
      default: [],
      maxItems: 16,
      description: 'AES-256 keys, base64 (32 bytes); the first encrypts, all decrypt; empty = no encryption',
    },
    identityKeyFile: { type: 'string', maxLength: 4096, default: '', description: 'PEM file holding this node\'s Ed25519 key (created if missing); empty = a new key each start' },
    loopDelayThresholdMs: durationMs(200, 0, 60_000),
    health: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        enabled: { type: 'boolean', default: true },
        intervalMs: durationMs(500, 50, 60_000),
        windows: { type: 'integer', minimum: 1, maximum: 120, default: 3, description: 'stats windows summarised per observation' },
        minRequests: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 5 },
        errorRateThreshold: { type: 'number', minimum: 0.01, maximum: 1, default: 0.5 },
        p99ThresholdMs: { type: 'number', minimum: 0, maximum: 600_000, default: 0, description: '0 = latency is not a criterion' },
        freshnessMs: durationMs(10_000, 100, 600_000),
        maxSkewMs: durationMs(5_000, 0, 600_000),
        quorum: { type: 'integer', minimum: 0, maximum: 1000, default: 0, description: '0 = min(3, ceil(M/2)), at least minQuorum' },
        minQuorum: { type: 'integer', minimum: 1, maximum: 1000, default: 2 },
        maxQuorum: { type: 'integer', minimum: 1, maximum: 1000, default: 3 },
        holdDownMs: durationMs(5_000, 0, 3_600_000),
        ratePerSecond: { type: 'number', minimum: 0.1, maximum: 100_000, default: 100, description: 'per-observer sustained rate accepted' },
        burst: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 1000 },
        refreshMs: { type: 'integer', minimum: 50, maximum: 600_000, description: 'unchanged views are re-published this often; default freshnessMs / 4' },
        redundancy: { type: 'integer', minimum: 1, maximum: 1000, default: 5, description: 'stay quiet while our side leads by this many observers' },
        probe: { type: 'boolean', default: true, description: 'without own traffic, corroborate a peer report with TCP connection probes' },
        probeEveryMs: durationMs(2000, 100, 600_000),
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
  readonly identityKeyFile?: string;
  readonly loopDelayThresholdMs?: number;
  readonly health?: Partial<GossipHealthConfig>;
}
