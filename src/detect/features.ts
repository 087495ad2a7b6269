// Per-endpoint figures of each completed window (counts and latency quantiles), kept in a small ring.
// Quantiles are read once per window from that window's own HDR histogram — no histogram merging on
// the tick — and every detector that looks at several windows combines these figures.
import { Outcome, OUTCOME_COUNT } from '../core/types.js';
import type { EndpointWindows, Histogram } from '../stats/window.js';
import type { EndpointSignals } from './types.js';

export interface Quantiles {
  p10: number;
  p50: number;
  p90: number;
  p99: number;
}

/**
 * p50, p90 and p99 (µs) of the union of `n` histograms of the same geometry, in one pass over their
 * counts and without merging them (merging walks every recorded value). Same definition as HDR's
 * getValueAtPercentile: the highest value equivalent to the bucket where the cumulative count reaches
 * ⌈q × total⌉. NaN when they hold nothing.
 */
export function quantilesOf(hists: readonly Histogram[], n: number, out: Quantiles): Quantiles {
  let total = 0;
  for (let j = 0; j < n; j++) total += hists[j]!.totalCount;
  out.p10 = out.p50 = out.p90 = out.p99 = NaN;
  if (total <= 0) return out;
  const c10 = Math.max(1, Math.ceil(0.1 * total - 1e-9));
  const c50 = Math.max(1, Math.ceil(0.5 * total - 1e-9));
  const c90 = Math.max(1, Math.ceil(0.9 * total - 1e-9));
  const c99 = Math.max(1, Math.ceil(0.99 * total - 1e-9));
  const len = hists[0]!.countsArrayLength;
  let cum = 0;
  for (let i = 0; i < len; i++) {
    let c = 0;
    for (let j = 0; j < n; j++) c += hists[j]!.getCountAtIndex(i);
    if (c === 0) continue;
    cum += c;
    if (cum >= c10 && out.p10 !== out.p10) out.p10 = hists[0]!.highestEquivalentValue(hists[0]!.valueFromIndex(i));
    if (cum >= c50 && out.p50 !== out.p50) out.p50 = hists[0]!.highestEquivalentValue(hists[0]!.valueFromIndex(i));
    if (cum >= c90 && out.p90 !== out.p90) out.p90 = hists[0]!.highestEquivalentValue(hists[0]!.valueFromIndex(i));
    if (cum >= c99) {
      out.p99 = hists[0]!.highestEquivalentValue(hists[0]!.valueFromIndex(i));
      break;
    }
  }
  return out;
}

const one: Histogram[] = [];
const q: Quantiles = { p10: NaN, p50: NaN, p90: NaN, p99: NaN };

export class FeatureRing {
  readonly capacity: number;
  /** Window number of each entry (-1 = empty). */
  readonly epoch: Float64Array;
  readonly total: Float64Array;
  readonly failures: Float64Array;
  readonly gateway: Float64Array;
  readonly localOrigin: Float64Array;
  /** Latency quantiles in µs (NaN when the window had no latency sample). */
  readonly p10: Float64Array;
  readonly p50: Float64Array;
  readonly p90: Float64Array;
  readonly p99: Float64Array;
  private head = -1; // index of the newest entry
  private filled = 0;

  constructor(capacity = 16) {
    this.capacity = capacity;
    // One buffer for all nine columns: every endpoint has a ring, and each separate ArrayBuffer costs
    // ~250 bytes of object and backing-store bookkeeping on top of its data.
    const buffer = new ArrayBuffer(9 * capacity * Float64Array.BYTES_PER_ELEMENT);
    let column = 0;
    const next = () => new Float64Array(buffer, column++ * capacity * Float64Array.BYTES_PER_ELEMENT, capacity);
    this.epoch = next().fill(-1);
    this.total = next();
    this.failures = next();
    this.gateway = next();
    this.localOrigin = next();
    this.p10 = next().fill(NaN);
    this.p50 = next().fill(NaN);
    this.p90 = next().fill(NaN);
    this.p99 = next().fill(NaN);
  }

  get size(): number {
    return this.filled;
  }

  /** Array index of the entry `age` windows back (0 = newest), or -1. */
  index(age: number): number {
    if (age < 0 || age >= this.filled) return -1;
    return (this.head - age + this.capacity) % this.capacity;
  }

  /** Epoch of the newest entry, or -1. */
  newestEpoch(): number {
    return this.head < 0 ? -1 : this.epoch[this.head]!;
  }

  /** Append the figures of window `epoch` of `w` (an empty window when `w` is undefined or has none). */
  push(epoch: number, w: EndpointWindows | undefined, scratchCounts: number[]): number {
    this.head = (this.head + 1) % this.capacity;
    if (this.filled < this.capacity) this.filled++;
    const i = this.head;
    this.epoch[i] = epoch;
    if (w === undefined || !w.windowCounts(epoch, scratchCounts)) {
      this.total[i] = this.failures[i] = this.gateway[i] = this.localOrigin[i] = 0;
      this.p10[i] = this.p50[i] = this.p90[i] = this.p99[i] = NaN;
      return i;
    }
    const e5 = scratchCounts[Outcome.Error5xx]!;
    const gw = scratchCounts[Outcome.Gateway]!;
    const lo = scratchCounts[Outcome.LocalOrigin]!;
    this.failures[i] = e5 + gw + lo;
    this.total[i] = scratchCounts[Outcome.Success]! + this.failures[i]!;
    this.gateway[i] = gw;
    this.localOrigin[i] = lo;
    const h = w.windowHistogram(epoch);
    if (h !== undefined && h.totalCount > 0) {
      one[0] = h;
      quantilesOf(one, 1, q);
      this.p10[i] = q.p10;
      this.p50[i] = q.p50;
      this.p90[i] = q.p90;
      this.p99[i] = q.p99;
    } else {
      this.p10[i] = this.p50[i] = this.p90[i] = this.p99[i] = NaN;
    }
    return i;
  }

  /** Sum total and failures over the newest `n` entries whose epoch is ≥ `sinceEpoch`. */
  sum(n: number, out: { total: number; failures: number }, sinceEpoch = -Infinity): { total: number; failures: number } {
    out.total = 0;
    out.failures = 0;
    for (let a = 0; a < n; a++) {
      const i = this.index(a);
      if (i < 0 || this.epoch[i]! < sinceEpoch) break;
      out.total += this.total[i]!;
      out.failures += this.failures[i]!;
    }
    return out;
  }

  clear(): void {
    this.head = -1;
    this.filled = 0;
    this.epoch.fill(-1);
  }
}

export const OUTCOME_SCRATCH = (): number[] => new Array<number>(OUTCOME_COUNT).fill(0);

const poolHists: Histogram[] = [];

const pooled: Quantiles = { p10: NaN, p50: NaN, p90: NaN, p99: NaN };

/**
 * Quantile `key` of an endpoint judged on its newest window, or — when that window has fewer than
 * `minReq` requests — on up to `poolWindows` recent windows merged (the balancer starves slow endpoints,
 * so a gray endpoint often has little traffic). NaN when even the pool is too small.
 */
/** Whether the last pooledQuantile() answer came from pooled windows (a starved endpoint). */
export let lastQuantilePooled = false;
/** How many windows (newest first) the last pooledQuantile() answer came from: 1 unless pooled. */
export let lastQuantileWindows = 1;

export function pooledQuantile(s: EndpointSignals, epoch: number, key: 'p10' | 'p50' | 'p90' | 'p99', minReq: number, poolWindows: number): number {
  const f = s.features;
  const i = f.index(0);
  lastQuantilePooled = false;
  lastQuantileWindows = 1;
  if (i < 0 || f.epoch[i] !== epoch) return NaN;
  if (f.total[i]! >= minReq) return f[key][i]!;
  lastQuantilePooled = true;
  // Pooled windows must hold 1.5 × the minimum: a starved endpoint's few requests are a noisy sample
  // (more would reach back past the start of a fault and dilute it).
  const w = s.windows;
  if (!w || poolWindows <= 1) return NaN;
  // The pool must also reach back to an anchor: a window that had the minimum on its own. Windows hold
  // requests by completion time, so after a burst sent while the balancer briefly favoured a starved
  // endpoint, the next windows hold only the burst's slow tail; pooled with the burst's own window, the
  // sample is whole again. (A gray failure's first window after the fault is such an anchor.)
  const anchorMin = minReq;
  minReq = Math.ceil(minReq * 1.5);
  let total = 0;
  let anchored = false;
  let k = 0;
  for (; k < Math.min(poolWindows, f.size, w.opts.windows - 1); k++) {
    const j = f.index(k);
    if (f.epoch[j]! !== epoch - k) break;
    total += f.total[j]!;
    if (f.total[j]! >= anchorMin) anchored = true;
    if (total >= minReq && anchored) break;
  }
  if (total < minReq || !anchored) return NaN;
  let n = 0;
  for (let a = 0; a <= k; a++) {
    const h = w.windowHistogram(epoch - a);
    if (h !== undefined && h.totalCount > 0) poolHists[n++] = h;
  }
  if (n === 0) return NaN;
  lastQuantileWindows = k + 1;
  return quantilesOf(poolHists, n, pooled)[key];
}

/**
 * p50 (µs) of the windows from `fromEpoch` (at most `maxPool` back) to `epoch`, once they hold
 * `minReq` requests; NaN until then. Used for non-overlapping samples: the caller moves `fromEpoch`
 * past `epoch` after each sample.
 */
export function pooledP50Since(s: EndpointSignals, epoch: number, fromEpoch: number, minReq: number, maxPool: number): number {
  const f = s.features;
  const w = s.windows;
  if (!w) return NaN;
  let total = 0;
  let n = 0;
  for (let a = 0; a < Math.min(maxPool, f.size, w.opts.windows - 1); a++) {
    const j = f.index(a);
    const e = f.epoch[j]!;
    if (e !== epoch - a || e < fromEpoch) break;
    total += f.total[j]!;
    if (f.total[j]! > 0) {
      const h = w.windowHistogram(e);
      if (h !== undefined && h.totalCount > 0) poolHists[n++] = h;
    }
  }
  if (total < minReq || n === 0) return NaN;
  return quantilesOf(poolHists, n, pooled).p50;
}
