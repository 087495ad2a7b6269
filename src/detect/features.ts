// Per-endpoint figures of each completed window (counts and latency quantiles), kept in a small ring.
// Quantiles are read once per window from that window's own HDR histogram — no histogram merging on
// the tick — and every detector that looks at several windows combines these figures.
import { Outcome, OUTCOME_COUNT } from '../core/types.js';
import type { EndpointWindows } from '../stats/window.js';

export class FeatureRing {
  readonly capacity: number;
  /** Window number of each entry (-1 = empty). */
  readonly epoch: Float64Array;
  readonly total: Float64Array;
  readonly failures: Float64Array;
  readonly gateway: Float64Array;
  readonly localOrigin: Float64Array;
  /** Latency quantiles in µs (NaN when the window had no latency sample). */
  readonly p50: Float64Array;
  readonly p90: Float64Array;
  readonly p99: Float64Array;
  private head = -1; // index of the newest entry
  private filled = 0;

  constructor(capacity = 16) {
    this.capacity = capacity;
    this.epoch = new Float64Array(capacity).fill(-1);
    this.total = new Float64Array(capacity);
    this.failures = new Float64Array(capacity);
    this.gateway = new Float64Array(capacity);
    this.localOrigin = new Float64Array(capacity);
    this.p50 = new Float64Array(capacity).fill(NaN);
    this.p90 = new Float64Array(capacity).fill(NaN);
    this.p99 = new Float64Array(capacity).fill(NaN);
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
      this.p50[i] = this.p90[i] = this.p99[i] = NaN;
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
      this.p50[i] = h.getValueAtPercentile(50);
      this.p90[i] = h.getValueAtPercentile(90);
      this.p99[i] = h.getValueAtPercentile(99);
    } else {
      this.p50[i] = this.p90[i] = this.p99[i] = NaN;
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
