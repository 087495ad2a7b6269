// The Prometheus protobuf exposition (io.prometheus.client.MetricFamily, length-delimited), served when a
// scraper asks for it: the only format that carries native histograms. Field numbers are those of
// client_model's metrics.proto; the encoder is a few lines of varints, so no code generation is needed.
import type { NativeBuckets } from './native-histogram.js';

export const PROTOBUF_CONTENT_TYPE = 'application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited';

/** A metric family as the registry's `getMetricsAsJSON` gives it (src/admin/metrics-registry.ts). */
export interface FamilyJson {
  readonly name: string;
  readonly help: string;
  readonly type: string;
  readonly values: readonly ValueJson[];
}
export interface ValueJson {
  readonly labels?: Readonly<Record<string, string | number>>;
  readonly value: number;
  readonly metricName?: string;
  /** On a histogram's `_count` value: its native buckets, computed only when this format is served. */
  readonly native?: () => NativeBuckets | undefined;
}

/**
 * Whether an Accept header prefers the protobuf exposition: it names it (proto=io.prometheus.client.
 * MetricFamily, encoding=delimited) with a quality at least as high as any other type it accepts.
 */
export function prefersProtobuf(accept: string | undefined): boolean {
  if (!accept) return false;
  let proto = -1;
  let other = -1;
  for (const range of accept.split(',')) {
    const [type, ...params] = range.split(';').map((p) => p.trim());
    let q = 1;
    const p: Record<string, string> = {};
    for (const kv of params) {
      const eq = kv.indexOf('=');
      if (eq < 0) continue;
      const k = kv.slice(0, eq).trim().toLowerCase();
      const v = kv.slice(eq + 1).trim().replace(/^"|"$/g, '');
      if (k === 'q') q = Number(v);
      else p[k] = v;
    }
    if (!(q >= 0)) q = 0;
    if (type?.toLowerCase() === 'application/vnd.google.protobuf' && p.proto === 'io.prometheus.client.MetricFamily' && p.encoding === 'delimited') proto = Math.max(proto, q);
    else other = Math.max(other, q);
  }
  return proto > 0 && proto >= other;
}

const TYPE_CODE: Record<string, number> = { counter: 0, gauge: 1, summary: 2, untyped: 3, histogram: 4 };

/** Encode metric families, each as a varint length followed by the MetricFamily message. */
export function encodeFamilies(families: readonly FamilyJson[]): Uint8Array {
  const out = new Writer();
  for (const f of families) {
    const msg = encodeFamily(f);
    out.varint(msg.length);
    out.bytes(msg);
  }
  return out.finish();
}

function encodeFamily(f: FamilyJson): Uint8Array {
  const w = new Writer();
  const type = TYPE_CODE[f.type] ?? TYPE_CODE.untyped!;
  w.string(1, f.name);
  w.string(2, f.help);
  w.tag(3, 0).varint(type);
  if (type === TYPE_CODE.histogram || type === TYPE_CODE.summary) {
    for (const s of groupSeries(f)) w.message(4, encodeDistribution(s, type === TYPE_CODE.histogram));
  } else {
    for (const v of f.values) {
      const m = new Writer();
      labelPairs(m, v.labels);
      // Metric: gauge = 2, counter = 3, untyped = 5; each a message whose value is field 1 (double).
      m.message(type === TYPE_CODE.counter ? 3 : type === TYPE_CODE.gauge ? 2 : 5, new Writer().double(1, v.value).finish());
      w.message(4, m.finish());
    }
  }
  return w.finish();
}

interface Series {
  labels: Readonly<Record<string, string | number>>;
  count: number;
  sum: number;
  /** [upper bound or quantile, cumulative count or value] */
  points: [number, number][];
  native: NativeBuckets | undefined;
}

/** The `_bucket`/`_sum`/`_count` (or quantile) values of a histogram or summary, one entry per label set. */
function groupSeries(f: FamilyJson): Series[] {
  const byKey = new Map<string, Series>();
  for (const v of f.values) {
    const labels: Record<string, string | number> = { ...v.labels };
    const point = labels.le ?? labels.quantile;
    delete labels.le;
    delete labels.quantile;
    const key = JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)));
    let s = byKey.get(key);
    if (s === undefined) byKey.set(key, (s = { labels, count: 0, sum: 0, points: [], native: undefined }));
    const name = v.metricName ?? f.name;
    if (name.endsWith('_sum')) s.sum = v.value;
    else if (name.endsWith('_count')) {
      s.count = v.value;
      s.native = v.native?.();
    } else if (point !== undefined && point !== '+Inf') s.points.push([Number(point), v.value]);
  }
  return [...byKey.values()];
}

function encodeDistribution(s: Series, histogram: boolean): Uint8Array {
  const m = new Writer();
  labelPairs(m, s.labels);
  const d = new Writer();
  d.tag(1, 0).varint(s.count);
  d.double(2, s.sum);
  for (const [p, v] of s.points) {
    // Histogram.bucket (3): cumulative_count = 1, upper_bound = 2; Summary.quantile (3): quantile = 1, value = 2.
    d.message(3, histogram ? new Writer().tag(1, 0).varint(v).double(2, p).finish() : new Writer().double(1, p).double(2, v).finish());
  }
  const n = s.native;
  if (histogram && n !== undefined) {
    d.tag(5, 0).varint(zigzag(n.schema));
    d.double(6, n.zeroThreshold);
    d.tag(7, 0).varint(n.zeroCount);
    for (const [offset, length] of n.spans) d.message(12, new Writer().tag(1, 0).varint(zigzag(offset)).tag(2, 0).varint(length).finish());
    if (n.deltas.length > 0) {
      const packed = new Writer();
      for (const x of n.deltas) packed.varint(zigzag(x));
      d.message(13, packed.finish());
    }
  }
  // Metric: summary = 4, histogram = 7.
  m.message(histogram ? 7 : 4, d.finish());
  return m.finish();
}

function labelPairs(m: Writer, labels: Readonly<Record<string, string | number>> | undefined): void {
  if (!labels) return;
  for (const [k, v] of Object.entries(labels)) m.message(1, new Writer().string(1, k).string(2, String(v)).finish());
}

/** sint32/sint64 encoding of a safe integer. */
function zigzag(n: number): number {
  return n >= 0 ? 2 * n : -2 * n - 1;
}

/** A growable protobuf writer for the handful of wire types the exposition needs. */
class Writer {
  private buf = new Uint8Array(256);
  private len = 0;

  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  tag(field: number, wireType: 0 | 1 | 2): this {
    return this.varint(field * 8 + wireType);
  }

  /** A non-negative integer up to 2^53 (counts are rounded: the format has no fractional counts). */
  varint(n: number): this {
    let v = Math.max(0, Math.round(n));
    this.room(10);
    while (v >= 128) {
      this.buf[this.len++] = (v % 128) | 128;
      v = Math.floor(v / 128);
    }
    this.buf[this.len++] = v;
    return this;
  }

  double(field: number, x: number): this {
    this.tag(field, 1);
    this.room(8);
    new DataView(this.buf.buffer, this.buf.byteOffset + this.len, 8).setFloat64(0, x, true);
    this.len += 8;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.room(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }

  string(field: number, s: string): this {
    const b = Buffer.from(s, 'utf8');
    return this.tag(field, 2).varint(b.length).bytes(b);
  }

  message(field: number, b: Uint8Array): this {
    return this.tag(field, 2).varint(b.length).bytes(b);
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}
