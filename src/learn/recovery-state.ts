// What the learned recovery policy sees and is paid: each completed window, a small discretised state per
// endpoint in rotation (peer-relative error z, latency ratio, trend, share of the service out, recent
// change, current weight) and the window's reward. Pure: figures come from the engine's feature rings.
import type { EndpointHealth } from '../core/types.js';
import { usualRatio } from '../detect/peer.js';
import { medianInPlace } from '../detect/robust.js';
import type { EndpointSignals } from '../detect/types.js';

/** The actions, in the order of the Q table's columns. Failover is not one: it follows health per priority. */
export const ACTIONS = ['none', 'deweight', 'drain', 'eject', 'restore'] as const;
export type LearnedAction = (typeof ACTIONS)[number];
export const ACTION_COUNT = ACTIONS.length;

/** The state's features and how many bins each has (the policy file's `features` must match exactly). */
export const FEATURES = [
  { name: 'errorZ', bins: 3, edges: [2, 4], doc: 'binomial z of the newest 3 windows\' failures against the peers\' rate' },
  { name: 'latencyRatio', bins: 4, edges: [1.3, 2, 3], doc: 'p50 / peers\' median p50, discounted by the usual ratio' },
  { name: 'trend', bins: 3, edges: [-1, 1], doc: 'falling / flat / rising: newest 3 windows against the 3 before (latency ×1.15 or errors +2 points)' },
  { name: 'outShare', bins: 3, edges: [0, 0.25], doc: 'share of the service out of rotation: none / up to 25 % / more' },
  { name: 'recentChange', bins: 2, edges: [5000], doc: 'the endpoint\'s health changed within the last 5 s' },
  { name: 'degraded', bins: 2, edges: [], doc: 'the endpoint is de-weighted now' },
] as const;

export const STATE_COUNT = FEATURES.reduce((n, f) => n * f.bins, 1);

/** Reward weights: −(failed requests + λ·excess latency + μ·capacity removed), per endpoint per window. */
export interface RewardWeights {
  /**
   * Per request-equivalent of latency beyond the tolerance (a request at 2.3× the peers' median costs λ).
   * Below 1.3× the peers there is no cost: ordinary spread, which moving traffic would not improve.
   */
  readonly lambda: number;
  /** Per window of one endpoint's whole capacity out of rotation (a weight factor of 0.5 costs μ/2). */
  readonly mu: number;
}

export const DEFAULT_REWARD: RewardWeights = Object.freeze({ lambda: 0.1, mu: 1 });

/** Latency up to this ratio to the peers is ordinary spread: no excess. */
export const LATENCY_TOLERANCE = 1.3;

const RECENT_MS = 5000;
const POOL = 3;
const MIN_REQUESTS = 5;
const TREND_LATENCY = Math.log(1.15);
const TREND_ERRORS = 0.02;

/** One window's figures of one endpoint, peer-relative (reused per evaluation). */
export interface EndpointWindowFigures {
  failures: number;
  requests: number;
  /** p50 / peers' median p50 / usual ratio (1 when not measurable). */
  latencyRatio: number;
  /** 1 − weight factor (1: out of rotation). */
  removed: number;
}

/** Peers' median p50 (µs) of one window over the members with enough requests; NaN if fewer than 2. */
function peerP50(members: readonly EndpointSignals[], epoch: number, xs: Float64Array): number {
  let n = 0;
  for (const s of members) {
    const i = indexOfEpoch(s, epoch);
    if (i >= 0 && s.features.total[i]! >= MIN_REQUESTS && s.features.p50[i]! > 0) xs[n++] = s.features.p50[i]!;
  }
  return n >= 2 ? medianInPlace(xs, n) : NaN;
}

function indexOfEpoch(s: EndpointSignals, epoch: number): number {
  const f = s.features;
  for (let age = 0; age < f.size; age++) {
    const i = f.index(age);
    if (f.epoch[i]! === epoch) return i;
    if (f.epoch[i]! < epoch) return -1;
  }
  return -1;
}

export function removedShare(h: EndpointHealth): number {
  return h.state === 'ejected' || h.state === 'draining' ? 1 : Math.max(0, 1 - h.weightFactor);
}

/**
 * Per-service feature extraction for one completed window. `members` are the endpoints in rotation
 * (healthy or de-weighted), `all` every endpoint of the service.
 */
export class RecoveryFeatures {
  private xs = new Float64Array(16);
  /** Peers' median p50 for the newest 2×POOL windows (index 0: the completed window). */
  private readonly peerMedians = new Float64Array(2 * POOL);
  /** Requests and failures of all members over the newest POOL windows. */
  private poolRequests = 0;
  private poolFailures = 0;
  private outShareBin = 0;

  /** Prepare the window's peer figures. Call once per completed window before `stateOf` / `figuresOf`. */
  prepare(members: readonly EndpointSignals[], all: readonly EndpointSignals[], epoch: number): void {
    let out = 0;
    for (const e of all) if (e.health.state === 'ejected' || e.health.state === 'draining') out++;
    const share = all.length > 0 ? out / all.length : 0;
    this.outShareBin = share === 0 ? 0 : share <= 0.25 ? 1 : 2;
    if (this.xs.length < members.length) this.xs = new Float64Array(members.length * 2);
    for (let k = 0; k < this.peerMedians.length; k++) this.peerMedians[k] = peerP50(members, epoch - k, this.xs);
    this.poolRequests = this.poolFailures = 0;
    for (const m of members) {
      for (let k = 0; k < POOL; k++) {
        const i = indexOfEpoch(m, epoch - k);
        if (i < 0) continue;
        this.poolRequests += m.features.total[i]!;
        this.poolFailures += m.features.failures[i]!;
      }
    }
  }

  /** The window's figures of one endpoint (for the reward). */
  figuresOf(s: EndpointSignals, epoch: number, cap: number, out: EndpointWindowFigures): EndpointWindowFigures {
    const i = indexOfEpoch(s, epoch);
    out.failures = i >= 0 ? s.features.failures[i]! : 0;
    out.requests = i >= 0 ? s.features.total[i]! : 0;
    out.latencyRatio = this.ratioAt(s, epoch, 0, cap);
    out.removed = removedShare(s.health);
    return out;
  }

  /** The discretised state index of one endpoint in rotation. */
  stateOf(s: EndpointSignals, epoch: number, now: number, cap: number): number {
    // Errors: pooled over the newest windows, against the other members' rate in the same windows.
    let f = 0, n = 0, fOld = 0, nOld = 0;
    for (let k = 0; k < 2 * POOL; k++) {
      const i = indexOfEpoch(s, epoch - k);
      if (i < 0) continue;
      if (k < POOL) { f += s.features.failures[i]!; n += s.features.total[i]!; } else { fOld += s.features.failures[i]!; nOld += s.features.total[i]!; }
    }
    const pn = this.poolRequests - n;
    const pf = this.poolFailures - f;
    const p = Math.max(0.002, pn > 0 ? pf / pn : 0);
    const z = n > 0 ? (f - n * p) / Math.sqrt(n * p * (1 - p)) : 0;
    const errorZ = z >= 4 ? 2 : z >= 2 ? 1 : 0;
    const ratio = this.ratioAt(s, epoch, 0, cap);
    const latencyRatio = ratio >= 3 ? 3 : ratio >= 2 ? 2 : ratio >= 1.3 ? 1 : 0;
    // Trend: mean log ratio (and failure fraction) of the newest windows against the ones before.
    let newer = 0, nNew = 0, older = 0, nPrev = 0;
    for (let k = 0; k < 2 * POOL; k++) {
      const r = this.ratioAt(s, epoch - k, k, cap);
      if (r !== r) continue;
      if (k < POOL) { newer += Math.log(r); nNew++; } else { older += Math.log(r); nPrev++; }
    }
    const dLat = nNew > 0 && nPrev > 0 ? newer / nNew - older / nPrev : 0;
    const dErr = n >= 10 && nOld >= 10 ? f / n - fOld / nOld : 0;
    const trend = dLat >= TREND_LATENCY || dErr >= TREND_ERRORS ? 2 : dLat <= -TREND_LATENCY || dErr <= -TREND_ERRORS ? 0 : 1;
    const outShare = this.outShareBin;
    const recent = s.health.source !== 'init' && now - s.health.since < RECENT_MS ? 1 : 0;
    const degraded = s.health.state === 'degraded' ? 1 : 0;
    return encodeState([errorZ, latencyRatio, trend, outShare, recent, degraded]);
  }

  /** p50 / peers' median / usual ratio of window `epoch` (k windows back); NaN when not measurable (1 for age 0). */
  private ratioAt(s: EndpointSignals, epoch: number, k: number, cap: number): number {
    const i = indexOfEpoch(s, epoch);
    const med = this.peerMedians[k]!;
    if (i < 0 || s.features.total[i]! < MIN_REQUESTS || !(s.features.p50[i]! > 0) || !(med > 0)) return k === 0 ? 1 : NaN;
    return s.features.p50[i]! / med / usualRatio(s, cap);
  }
}

/** Mixed-radix encoding of the feature bins (the order of FEATURES). */
export function encodeState(bins: readonly number[]): number {
  let x = 0;
  for (let j = 0; j < FEATURES.length; j++) x = x * FEATURES[j]!.bins + Math.min(FEATURES[j]!.bins - 1, Math.max(0, bins[j]! | 0));
  return x;
}

export function decodeState(x: number): number[] {
  const out = new Array<number>(FEATURES.length);
  for (let j = FEATURES.length - 1; j >= 0; j--) {
    out[j] = x % FEATURES[j]!.bins;
    x = Math.floor(x / FEATURES[j]!.bins);
  }
  return out;
}

/** The window's reward of one endpoint: −(failed requests + λ·excess latency + μ·capacity removed). */
export function rewardOf(w: EndpointWindowFigures, weights: RewardWeights): number {
  const excess = w.requests * Math.max(0, w.latencyRatio - LATENCY_TOLERANCE);
  return -(w.failures + weights.lambda * excess + weights.mu * w.removed);
}

/** Which actions make sense for an endpoint in rotation: restore only undoes the learned policy's own de-weight. */
export function actionMask(health: EndpointHealth): number {
  const all = (1 << ACTION_COUNT) - 1;
  return health.state === 'degraded' && health.source === 'learned' ? all : all & ~(1 << ACTIONS.indexOf('restore'));
}
