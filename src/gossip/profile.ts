// SWIM + Lifeguard timing profiles: memberlist's LAN and WAN defaults, plus switches that turn
// Lifeguard's parts off (for the benchmark's with/without comparison).

export interface GossipProfile {
  /** Time between failure-detection probes (SWIM protocol period). */
  readonly probeIntervalMs: number;
  /** How long to wait for a direct ack before asking others to probe. */
  readonly probeTimeoutMs: number;
  /** Members asked to probe indirectly (ping-req) when the direct probe fails. */
  readonly indirectChecks: number;
  /** Suspicion timeout minimum = suspicionMult · max(1, log10 N) · probeInterval. */
  readonly suspicionMult: number;
  /** Suspicion timeout maximum = suspicionMaxTimeoutMult · minimum (Lifeguard). */
  readonly suspicionMaxTimeoutMult: number;
  /** Broadcasts are sent retransmitMult · ⌈log10(N + 1)⌉ times. */
  readonly retransmitMult: number;
  readonly gossipIntervalMs: number;
  readonly gossipNodes: number;
  /** Keep gossiping to dead members this long (so they can refute), then reap them. */
  readonly gossipToTheDeadMs: number;
  /** TCP push-pull anti-entropy period (scaled up above 32 members); 0 disables it. */
  readonly pushPullIntervalMs: number;
  readonly streamTimeoutMs: number;
  /** Local health awareness: probe timeouts and intervals scale up to this factor. */
  readonly awarenessMaxMultiplier: number;
  /** Lifeguard parts, each switchable. */
  readonly lifeguard: {
    /** Local health awareness (LHA-probe): slow down when our own probes fail or we must refute. */
    readonly awareness: boolean;
    /** LHA-suspicion: start at the maximum timeout and shrink it with independent confirmations. */
    readonly dynamicSuspicion: boolean;
    /** Nacks from indirect probers (feed awareness: missing nacks mean we are the problem). */
    readonly nack: boolean;
    /** Buddy system: ping a suspect with the suspicion so that it refutes at once. */
    readonly buddy: boolean;
  };
  /** Try a TCP ping alongside the indirect probes (memberlist's fallback for UDP-blocked paths). */
  readonly tcpFallbackProbe: boolean;
}

const LIFEGUARD_ON = Object.freeze({ awareness: true, dynamicSuspicion: true, nack: true, buddy: true });
export const LIFEGUARD_OFF = Object.freeze({ awareness: false, dynamicSuspicion: false, nack: false, buddy: false });

/** memberlist DefaultLANConfig. */
export const LAN_PROFILE: GossipProfile = Object.freeze({
  probeIntervalMs: 1000,
  probeTimeoutMs: 500,
  indirectChecks: 3,
  suspicionMult: 4,
  suspicionMaxTimeoutMult: 6,
  retransmitMult: 4,
  gossipIntervalMs: 200,
  gossipNodes: 3,
  gossipToTheDeadMs: 30_000,
  pushPullIntervalMs: 30_000,
  streamTimeoutMs: 10_000,
  awarenessMaxMultiplier: 8,
  lifeguard: LIFEGUARD_ON,
  tcpFallbackProbe: true,
});

/** memberlist DefaultWANConfig: members across regions, with long and lossy paths. */
export const WAN_PROFILE: GossipProfile = Object.freeze({
  ...LAN_PROFILE,
  probeIntervalMs: 5000,
  probeTimeoutMs: 3000,
  suspicionMult: 6,
  gossipIntervalMs: 500,
  gossipNodes: 4,
  gossipToTheDeadMs: 60_000,
  pushPullIntervalMs: 60_000,
  streamTimeoutMs: 30_000,
});

export const PROFILES: Readonly<Record<'lan' | 'wan', GossipProfile>> = Object.freeze({ lan: LAN_PROFILE, wan: WAN_PROFILE });

/** memberlist's retransmit limit: mult · ⌈log10(n + 1)⌉. */
export function retransmitLimit(mult: number, n: number): number {
  return mult * Math.ceil(Math.log10(n + 1));
}

/** memberlist's suspicion timeout minimum: mult · max(1, log10 n) · interval. */
export function suspicionTimeoutMs(mult: number, n: number, intervalMs: number): number {
  const nodeScale = Math.max(1, Math.log10(Math.max(1, n)));
  return Math.round(mult * nodeScale * intervalMs);
}

/** memberlist's push-pull scaling: the period grows with log2(n) above 32 members. */
export function pushPullScaleMs(intervalMs: number, n: number): number {
  const threshold = 32;
  if (n <= threshold) return intervalMs;
  const mult = Math.ceil(Math.log2(n) - Math.log2(threshold)) + 1;
  return intervalMs * mult;
}
