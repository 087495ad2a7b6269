// Detector inputs and outputs. A detector is a pure function of endpoint signals (windows, per-window
// figures, the detector's own per-endpoint state) and settings; it returns verdicts with evidence and
// never throws on odd data (empty windows, NaN quantiles, zero traffic).
import type { EndpointHealth, EndpointSpec } from '../core/types.js';
import type { ResolvedPolicySettings } from '../config/sections/healing.js';
import type { EndpointWindows } from '../stats/window.js';
import type { FeatureRing } from './features.js';

/** State a sequential test keeps per endpoint and channel (CUSUM or EWMA), owned by the engine. */
export interface BaselineState {
  /** Windows learned so far. */
  n: number;
  /** Baseline mean (log µs for latency, fraction for errors). */
  mean: number;
  /** Baseline variance (latency only). */
  variance: number;
  /** CUSUM sum or EWMA statistic. */
  stat: number;
  /** Whether the chart is out of control after the last window. */
  alarm: boolean;
  /** The last sample's standardized value or fraction (evidence). */
  last: number;
  /** First window not yet consumed by a sample (pooled samples never overlap: they stay independent). */
  from: number;
  /** Window of the last sample. */
  lastEpoch: number;
  /**
   * −1: mean and variance are this endpoint's own. ≥ 0: they were seeded from the mesh's federated
   * baseline (src/learn/federated.ts), and this many in-control local samples have been learned on the
   * side (localMean, localVariance); at warmupWindows the local estimate replaces the seed.
   */
  seedN: number;
  localMean: number;
  localVariance: number;
  /** CUSUM head start given with a seed and not yet withdrawn (src/learn/federated.ts); 0: none. */
  headstart: number;
}

export function newBaseline(): BaselineState {
  return { n: 0, mean: 0, variance: 0, stat: 0, alarm: false, last: 0, from: -1, lastEpoch: -1, seedN: -1, localMean: 0, localVariance: 0, headstart: 0 };
}

/** State of peer_error_cusum per endpoint: the CUSUM and what it has consumed of the lifetime counters. */
export interface ErrorRunState {
  /** Log-likelihood ratio sum (CUSUM, ≥ 0). */
  llr: number;
  /** Lifetime requests and failures already consumed. */
  requests: number;
  failures: number;
  /** The other endpoints' failure rate and how many had traffic, from the last completed windows. */
  peerRate: number;
  peerHosts: number;
  /** When it was last judged (a gap means it was out of rotation: the test starts afresh). */
  at: number;
  /** Requests and failures since the sum last left zero (the CUSUM's estimate of the change point). */
  segRequests: number;
  segFailures: number;
}

export function newErrorRun(): ErrorRunState {
  return { llr: 0, requests: -1, failures: 0, peerRate: NaN, peerHosts: 0, at: -Infinity, segRequests: 0, segFailures: 0 };
}

/** Everything known about one endpoint, kept across ticks by the engine (one object per endpoint). */
export interface EndpointSignals {
  readonly id: string;
  spec: EndpointSpec;
  health: EndpointHealth;
  slot: number;
  /** Rolling windows of the proxy (undefined until the endpoint sees its first request). */
  windows: EndpointWindows | undefined;
  /** Figures of completed windows. */
  readonly features: FeatureRing;
  /** Peer-latency strikes: consecutive windows the endpoint was a latency outlier. */
  latencyStrikes: number;
  /** Strikes at the eject level only: ejection needs confirmWindows windows at ≥ ejectRatio. */
  latencyEjectStrikes: number;
  /**
   * The endpoint's usual log(p50 / peers' median p50), learned from windows where it was not an outlier
   * (heterogeneous endpoints: a naturally 1.3× slower one is judged on changes from its usual 1.3×).
   */
  usualLogRatio: number;
  usualN: number;
  readonly latencyP50: BaselineState;
  readonly latencyP90: BaselineState;
  readonly errors: BaselineState;
  /** The sequential test of its failures against the peers' rate (peer_error_cusum). */
  readonly errorRun: ErrorRunState;
  /** Scope key for guards: `priority` or `priority|region|zone`. */
  scope: string;
}

export type VerdictSeverity = 'eject' | 'degrade' | 'drain';
export type VerdictKind = 'failure' | 'latency' | 'predicted' | 'learned';

export interface Verdict {
  readonly target: string;
  /** Registered detector name, or the external source's name. */
  readonly detector: string;
  readonly kind: VerdictKind;
  readonly severity: VerdictSeverity;
  /** For degrade verdicts: suggested weight factor. */
  readonly weight?: number;
  readonly evidence: Readonly<Record<string, number | string | boolean>>;
}

export interface DetectionInput {
  readonly now: number;
  /** The window just completed (the newest entry of every feature ring), or -1 between windows. */
  readonly completedEpoch: number;
  /** Endpoints to judge (those taking traffic: healthy, degraded, probation). */
  readonly endpoints: readonly EndpointSignals[];
  readonly settings: ResolvedPolicySettings;
  /** Windows an interval-based detector (Envoy's success rate, failure %) aggregates. */
  readonly intervalWindows?: number;
}

export interface Detector {
  readonly name: string;
  /** `request`: cheap, may run right after a failure; `window`: runs once per completed window. */
  readonly cadence: 'request' | 'window';
  detect(input: DetectionInput, out: Verdict[]): void;
}
