// Classic Prometheus histogram buckets (and native ones, for the protobuf exposition) derived from the HDR
// stats windows, so that latency aggregates across sidecars while nothing is observed per request.
import type { EndpointWindows, Histogram } from '../stats/window.js';
import { addNative, nativeLayout, toNativeBuckets, type NativeBuckets, type NativeLayout } from './native-histogram.js';

/**
 * Upper bounds in seconds, chosen for service-to-service latencies: fine steps from 0.5 ms to 100 ms
 * where most calls land, then coarser ones up to the 60 s clamp of the windows.
 */
export const LATENCY_BUCKETS_S: readonly number[] = Object.freeze([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]);
const BOUNDS_US = LATENCY_BUCKETS_S.map((s) => Math.round(s * 1e6));
export const US_PER_S = 1e6;

/**
 * Cumulative bucket counts of one endpoint. Each window is folded in exactly once, after it is complete
 * (fold() runs on a timer as well as at scrape time, so no window rotates out of the ring unseen), and
 * the window still being filled is added on top at scrape time. Both parts only grow, so the exported
 * counts never go backwards: what a scrape saw of the current window is a part of what is folded later.
 */
export class CumulativeLatency {
  /** Non-cumulative counts per bucket (index BOUNDS length = above the last bound). */
  private readonly folded = new Float64Array(BOUNDS_US.length + 1);
  private foldedThrough = -1;
  /** Windows that rotated away before they could be folded (only if fold() did not run for a whole ring). */
  missedWindows = 0;
  /** Native histogram counts in seconds (native bucket index → count), folded like the classic ones. */
  private readonly foldedNative = new Map<number, number>();
  private layout: NativeLayout | undefined;

  constructor(private readonly windows: EndpointWindows) {}

  /** Fold every complete window not folded yet. */
  fold(nowMs: number): void {
    const w = this.windows;
    const current = w.epochOf(nowMs);
    const oldest = current - w.opts.windows + 1;
    let e = this.foldedThrough + 1;
    if (this.foldedThrough >= 0 && e < oldest) this.missedWindows += oldest - e;
    if (e < oldest) e = oldest;
    for (; e < current; e++) {
      const h = w.windowHistogram(e);
      if (h !== undefined && h.totalCount > 0) {
        addBuckets(h, this.folded);
        addNative(h, (this.layout ??= nativeLayout(h, US_PER_S)), this.foldedNative);
      }
    }
    if (current - 1 > this.foldedThrough) this.foldedThrough = current - 1;
  }

  /**
   * Cumulative counts per bound (`le`), into `out` (length LATENCY_BUCKETS_S.length): folded windows
   * plus the current one. The +Inf bucket is the window's lifetime count (`latencyCount`).
   */
  cumulative(nowMs: number, out: Float64Array, scratch: Float64Array): Float64Array {
    this.fold(nowMs);
    scratch.set(this.folded);
    const h = this.current(nowMs);
    if (h !== undefined && h.totalCount > 0) addBuckets(h, scratch);
    let sum = 0;
    for (let i = 0; i < out.length; i++) out[i] = sum += scratch[i]!;
    return out;
  }

  /**
   * Native histogram buckets in seconds: folded windows plus the current one, like `cumulative`.
   * Computed only when a scraper asks for them (the protobuf exposition).
   */
  native(nowMs: number): NativeBuckets | undefined {
    const counts = new Map<number, number>();
    const layout = this.addNativeCounts(nowMs, counts);
    return layout === undefined ? undefined : toNativeBuckets(counts, layout, US_PER_S);
  }

  /**
   * Add the native bucket counts (folded windows plus the current one) into `into`, so that several
   * endpoints' counts can be summed into one series. Returns their layout (undefined: no latency yet).
   */
  addNativeCounts(nowMs: number, into: Map<number, number>): NativeLayout | undefined {
    this.fold(nowMs);
    const h = this.current(nowMs);
    if (h !== undefined && h.totalCount > 0) this.layout ??= nativeLayout(h, US_PER_S);
    if (this.layout === undefined) return undefined;
    for (const [k, c] of this.foldedNative) into.set(k, (into.get(k) ?? 0) + c);
    if (h !== undefined && h.totalCount > 0) addNative(h, this.layout, into);
    return this.layout;
  }

  /**
   * The window still being filled at `nowMs`, unless it is folded already: a scrape's time may be older than
   * the fold timer's last run (the protobuf exposition computes native buckets after the samples, and the
   * timer can fire in between at a window boundary), and that window would then count twice.
   */
  private current(nowMs: number): Histogram | undefined {
    const e = this.windows.epochOf(nowMs);
    return e > this.foldedThrough ? this.windows.windowHistogram(e) : undefined;
  }
}

/** Add the counts of an HDR histogram into per-bucket (non-cumulative) counts. */
function addBuckets(h: Histogram, into: Float64Array): void {
  const last = h.countsArrayIndex(h.maxValue);
  let b = 0;
  for (let i = 0; i <= last; i++) {
    const c = h.getCountAtIndex(i);
    if (c === 0) continue;
    // A bin's values all count against the bucket of its lowest value (HDR bins are ~1 % wide here),
    // so a latency exactly on a bound lands in that bound's bucket, as `le` says.
    const v = h.valueFromIndex(i);
    while (b < BOUNDS_US.length && v > BOUNDS_US[b]!) b++;
    into[b]! += c;
  }
}

/** Format a bucket bound the way Prometheus clients do (`0.005`, `1`, `+Inf`). */
export function leLabel(i: number, scale = 1): string {
  return i < LATENCY_BUCKETS_S.length ? String(Math.round(LATENCY_BUCKETS_S[i]! * scale * 1e6) / 1e6) : '+Inf';
}
