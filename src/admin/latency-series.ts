// Latency histogram series that sum several endpoints (per service by default): the cumulative buckets,
// count and sum of every endpoint with the same labels, kept monotonic when an endpoint leaves the series.
import type { EndpointWindows } from '../stats/window.js';
import { LATENCY_BUCKETS_S, US_PER_S, type CumulativeLatency } from './latency-buckets.js';
import { toNativeBuckets, type NativeBuckets, type NativeLayout } from './native-histogram.js';

/** One exported histogram series at scrape time. */
export interface LatencySample {
  readonly labels: Record<string, string>;
  /** Cumulative counts per LATENCY_BUCKETS_S bound (the +Inf bucket is `count`). */
  readonly cumulative: Float64Array;
  readonly count: number;
  readonly sumSeconds: number;
  /** Native buckets in seconds, computed only when asked (the protobuf exposition). */
  readonly native: () => NativeBuckets | undefined;
}

/** A series' members and what the members that left it had counted when they left. */
interface Series {
  readonly labels: Record<string, string>;
  readonly members: Map<EndpointWindows, CumulativeLatency>;
  readonly retired: Float64Array;
  retiredCount: number;
  retiredSumSeconds: number;
  retiredNative: Map<number, number> | undefined;
  retiredLayout: NativeLayout | undefined;
}

/**
 * The series of one histogram family. Endpoints with equal labels share a series. When an endpoint
 * leaves (removed by discovery, or relabelled) while others stay, its last counts are kept in the
 * series, so a rollout does not make the sum go backwards (which Prometheus would read as a counter
 * reset); a series whose members all left disappears.
 */
export class LatencySeriesFamily {
  private readonly series = new Map<string, Series>();
  private readonly scratch = new Float64Array(LATENCY_BUCKETS_S.length + 1);
  private readonly one = new Float64Array(LATENCY_BUCKETS_S.length);

  /** The series for `targets` (endpoint windows with their tracker and labels) at `nowMs`. */
  collect(targets: Iterable<{ windows: EndpointWindows; tracker: CumulativeLatency; labels: Record<string, string> }>, nowMs: number): LatencySample[] {
    const present = new Map<Series, Set<EndpointWindows>>();
    for (const t of targets) {
      const key = JSON.stringify(t.labels);
      let s = this.series.get(key);
      if (s === undefined) {
        s = { labels: t.labels, members: new Map(), retired: new Float64Array(LATENCY_BUCKETS_S.length), retiredCount: 0, retiredSumSeconds: 0, retiredNative: undefined, retiredLayout: undefined };
        this.series.set(key, s);
      }
      s.members.set(t.windows, t.tracker);
      let seen = present.get(s);
      if (seen === undefined) present.set(s, (seen = new Set()));
      seen.add(t.windows);
    }
    const out: LatencySample[] = [];
    for (const [key, s] of this.series) {
      const seen = present.get(s);
      if (seen === undefined) {
        this.series.delete(key);
        continue;
      }
      for (const [w, tracker] of s.members) if (!seen.has(w)) this.retire(s, w, tracker, nowMs);
      out.push(this.sample(s, nowMs));
    }
    return out;
  }

  private retire(s: Series, w: EndpointWindows, tracker: CumulativeLatency, nowMs: number): void {
    this.add(w, tracker, nowMs, s.retired);
    s.retiredCount += w.latencyCount;
    s.retiredSumSeconds += w.latencySumUs / US_PER_S;
    const counts = (s.retiredNative ??= new Map());
    s.retiredLayout = tracker.addNativeCounts(nowMs, counts) ?? s.retiredLayout;
    s.members.delete(w);
  }

  /** Add one endpoint's cumulative counts into `into` (each bound capped at its lifetime count). */
  private add(w: EndpointWindows, tracker: CumulativeLatency, nowMs: number, into: Float64Array): void {
    tracker.cumulative(nowMs, this.one, this.scratch);
    for (let i = 0; i < into.length; i++) into[i]! += Math.min(this.one[i]!, w.latencyCount);
  }

  private sample(s: Series, nowMs: number): LatencySample {
    const cumulative = Float64Array.from(s.retired);
    let count = s.retiredCount;
    let sumSeconds = s.retiredSumSeconds;
    for (const [w, tracker] of s.members) {
      this.add(w, tracker, nowMs, cumulative);
      count += w.latencyCount;
      sumSeconds += w.latencySumUs / US_PER_S;
    }
    const members = [...s.members.values()];
    const native = (): NativeBuckets | undefined => {
      const counts = new Map(s.retiredNative);
      let layout = s.retiredLayout;
      for (const tracker of members) layout = tracker.addNativeCounts(nowMs, counts) ?? layout;
      return layout === undefined ? undefined : toNativeBuckets(counts, layout, US_PER_S);
    };
    return { labels: s.labels, cumulative, count, sumSeconds, native };
  }
}
