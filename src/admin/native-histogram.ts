// Prometheus native (sparse, exponential) histogram buckets derived from the HDR stats windows at scrape
// time: the schema is chosen so that a native bucket is never finer than an HDR bin (no invented precision).
import type { Histogram } from '../stats/window.js';

/** A native histogram's buckets as the protobuf exposition carries them (counts as deltas, in spans). */
export interface NativeBuckets {
  readonly schema: number;
  /** Breadth of the zero bucket, in the histogram's unit. */
  readonly zeroThreshold: number;
  readonly zeroCount: number;
  /** [offset, length] pairs: the first offset is the first bucket's index, later ones the gap before the span. */
  readonly spans: readonly (readonly [number, number])[];
  /** Each bucket's count minus the previous bucket's (the first: minus 0). */
  readonly deltas: readonly number[];
}

/** Native histogram schemas Prometheus accepts. */
const MIN_SCHEMA = -4;
const MAX_SCHEMA = 8;

/**
 * The finest schema whose buckets (each boundary 2^(2^-schema) times the previous one) are at least as
 * wide as the widest HDR bin relative to its value (1 / subBucketHalfCount): with 2 significant digits
 * HDR bins are at most 1/128 ≈ 0.78 % wide, so schema 6 (≈ 1.09 % buckets).
 */
export function schemaForHdr(subBucketHalfCount: number): number {
  const s = Math.floor(-Math.log2(Math.log2(1 + 1 / subBucketHalfCount)));
  return Math.max(MIN_SCHEMA, Math.min(MAX_SCHEMA, s));
}

/** The index of the native bucket holding `v` (> 0): bucket i is (base^(i-1), base^i], base = 2^(2^-schema). */
export function nativeIndex(v: number, schema: number): number {
  const i = Math.ceil(Math.log2(v) * 2 ** schema);
  // Guard the floating-point edge: v must lie in (base^(i-1), base^i].
  const upper = (k: number) => 2 ** (k / 2 ** schema);
  if (v > upper(i)) return i + 1;
  if (v <= upper(i - 1)) return i - 1;
  return i;
}

/**
 * How the bins of one HDR configuration map to native buckets, computed once per configuration: the
 * native index of each bin (or ZERO for the bins at or below the zero threshold).
 */
export interface NativeLayout {
  readonly schema: number;
  /** In the HDR unit (µs): values at or below it are counted in the zero bucket. */
  readonly zeroThresholdUnits: number;
  readonly indexOfBin: Int32Array;
}
export const ZERO = -0x7fffffff;

const layouts = new Map<string, NativeLayout>();

/**
 * The layout for the histograms of a stats table, for values expressed in `unitScale` histogram units
 * per exported unit (1e6 for seconds from µs). The zero bucket holds what the windows cannot tell from
 * zero: values at or below the lowest discernible value (latencies are clamped up to it when recorded).
 */
export function nativeLayout(h: Histogram, unitScale: number): NativeLayout {
  const key = `${h.lowestDiscernibleValue}/${h.highestTrackableValue}/${h.numberOfSignificantValueDigits}/${unitScale}`;
  let layout = layouts.get(key);
  if (layout !== undefined) return layout;
  const schema = schemaForHdr(h.subBucketHalfCount);
  const zeroThresholdUnits = h.lowestDiscernibleValue;
  const indexOfBin = new Int32Array(h.countsArrayLength);
  for (let i = 0; i < indexOfBin.length; i++) {
    // A bin's values all count in the bucket of its lowest value, as for the classic buckets.
    const v = h.valueFromIndex(i);
    indexOfBin[i] = v <= zeroThresholdUnits ? ZERO : nativeIndex(v / unitScale, schema);
  }
  layout = { schema, zeroThresholdUnits, indexOfBin };
  layouts.set(key, layout);
  return layout;
}

/** Add an HDR histogram's counts into native bucket counts (index → count; ZERO for the zero bucket). */
export function addNative(h: Histogram, layout: NativeLayout, into: Map<number, number>): void {
  const last = Math.min(h.countsArrayIndex(h.maxValue), layout.indexOfBin.length - 1);
  for (let i = 0; i <= last; i++) {
    const c = h.getCountAtIndex(i);
    if (c === 0) continue;
    const k = layout.indexOfBin[i]!;
    into.set(k, (into.get(k) ?? 0) + c);
  }
}

/** Spans and deltas of sparse bucket counts (empty buckets inside a span are allowed, gaps of up to 2 are bridged). */
export function toNativeBuckets(counts: ReadonlyMap<number, number>, layout: NativeLayout, unitScale: number): NativeBuckets {
  const keys = [...counts.keys()].filter((k) => k !== ZERO && counts.get(k)! > 0).sort((a, b) => a - b);
  const spans: [number, number][] = [];
  const deltas: number[] = [];
  let prevIndex = 0;
  let prevCount = 0;
  for (const k of keys) {
    const span = spans[spans.length - 1];
    const gap = span === undefined ? 0 : k - prevIndex - 1;
    if (span !== undefined && gap <= 2) {
      // Bridging a short gap with empty buckets is smaller on the wire than a new span.
      for (let g = 0; g < gap; g++) {
        deltas.push(-prevCount);
        prevCount = 0;
      }
      span[1] += gap + 1;
    } else {
      spans.push([span === undefined ? k : gap, 1]);
    }
    const c = counts.get(k)!;
    deltas.push(c - prevCount);
    prevCount = c;
    prevIndex = k;
  }
  // A native histogram with no bucket yet still needs a (no-op) span to be told from a classic one.
  if (spans.length === 0) spans.push([0, 0]);
  return { schema: layout.schema, zeroThreshold: layout.zeroThresholdUnits / unitScale, zeroCount: counts.get(ZERO) ?? 0, spans, deltas };
}
