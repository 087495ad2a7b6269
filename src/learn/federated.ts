// Federated baselines, the pure part: what a sidecar shares of what it learned (per service, the latency
// baseline's location and scale and the error rate, never requests), the robust mesh aggregate, and the
// adoption of that aggregate by endpoints whose own baseline is not warmed up yet.
import type { ResolvedPolicySettings } from '../config/sections/healing.js';
import type { BaselineState, EndpointSignals } from '../detect/types.js';

/**
 * One service's parameters, the five coordinates of the shared vector: the location (mean) and scale
 * (standard deviation) of ln(window p50 µs) and of ln(window p90 µs) that the latency_baseline detector
 * learns, and the error_baseline detector's failure fraction.
 */
export interface ServiceParams {
  /** Windows the parameters were learned from (the sum over the endpoints that contributed). */
  readonly samples: number;
  readonly p50Loc: number;
  readonly p50Scale: number;
  readonly p90Loc: number;
  readonly p90Scale: number;
  readonly errorRate: number;
}

export const PARAM_KEYS = ['p50Loc', 'p50Scale', 'p90Loc', 'p90Scale', 'errorRate'] as const;
/** Coordinates a sidecar may not have learned yet (NaN here, a cleared flag bit on the wire): p90 needs busy windows. */
export const OPTIONAL_KEYS: ReadonlySet<ParamKey> = new Set(['p90Loc', 'p90Scale', 'errorRate']);
export type ParamKey = (typeof PARAM_KEYS)[number];

/**
 * Valid ranges of each coordinate: ln µs from 1 µs to about 1.3 days; scales of log latency up to 5
 * (a factor of 150 per σ); a fraction. A vector outside them is refused, not clamped.
 */
export const PARAM_RANGES: Readonly<Record<ParamKey, readonly [number, number]>> = {
  p50Loc: [0, 25],
  p50Scale: [0, 5],
  p90Loc: [0, 25],
  p90Scale: [0, 5],
  errorRate: [0, 1],
};
export const MAX_SAMPLES = 1e9;

/**
 * Units in which contributions are clipped: a contribution lies at distance |(x − median) / unit| from the
 * coordinate-wise median. Log latency is already relative (1 = a factor e); an error fraction of 0.05 weighs
 * as much as a factor e of latency.
 */
const CLIP_UNITS: Readonly<Record<ParamKey, number>> = { p50Loc: 1, p50Scale: 1, p90Loc: 1, p90Scale: 1, errorRate: 0.05 };

export interface FederatedSettings {
  /** Contributions older than this (ms since received) no longer count. */
  readonly maxAgeMs: number;
  /** A contribution's weight is its samples, capped here and at the median contributor's samples. */
  readonly sampleCap: number;
  /** Contributions are pulled toward the coordinate-wise median to at most this distance (CLIP_UNITS). */
  readonly clipNorm: number;
  /** Share of the total weight trimmed from each end, per coordinate, before the weighted mean. */
  readonly trim: number;
  /** Fewer fresh contributors than this: no aggregate for the service (robustness needs a majority). */
  readonly minContributors: number;
}

/** Defaults (the config section learning.federated uses the same values). */
export const DEFAULT_FEDERATED_SETTINGS: FederatedSettings = Object.freeze({ maxAgeMs: 120_000, sampleCap: 1000, clipNorm: 1, trim: 0.2, minContributors: 3 });

export interface Contribution {
  readonly node: string;
  /** When this sidecar received (or produced) it: expiry is judged on our clock. */
  readonly receivedAt: number;
  /** The sender's own stamp and sequence (replay and freshness checks happen at decode). */
  readonly issuedAt: number;
  readonly services: ReadonlyMap<string, ServiceParams>;
}

export interface ServiceAggregate {
  readonly service: string;
  readonly params: ServiceParams;
  readonly contributors: readonly string[];
  /** Contributions moved by the norm clip. */
  readonly clipped: number;
}

/** The robust aggregate of each service over the fresh contributions. */
export function aggregate(contributions: Iterable<Contribution>, now: number, cfg: FederatedSettings): Map<string, ServiceAggregate> {
  const byService = new Map<string, { node: string; p: ServiceParams }[]>();
  for (const c of contributions) {
    if (now - c.receivedAt > cfg.maxAgeMs) continue;
    for (const [service, p] of c.services) {
      let list = byService.get(service);
      if (!list) byService.set(service, (list = []));
      list.push({ node: c.node, p });
    }
  }
  const out = new Map<string, ServiceAggregate>();
  for (const [service, list] of byService) {
    const a = aggregateService(service, list, cfg);
    if (a) out.set(service, a);
  }
  return out;
}

export function aggregateService(service: string, list: readonly { node: string; p: ServiceParams }[], cfg: FederatedSettings): ServiceAggregate | undefined {
  const n = list.length;
  if (n === 0 || n < cfg.minContributors) return undefined;
  const dims = PARAM_KEYS.length;
  const xs = new Float64Array(n * dims);
  for (let i = 0; i < n; i++) for (let d = 0; d < dims; d++) xs[i * dims + d] = list[i]!.p[PARAM_KEYS[d]!];
  // Per coordinate, only the contributors that have it (NaN: not learned yet); too few → NaN.
  const median = new Float64Array(dims);
  const col = new Float64Array(n);
  const finite = (d: number): Float64Array => {
    let m = 0;
    for (let i = 0; i < n; i++) if (Number.isFinite(xs[i * dims + d]!)) col[m++] = xs[i * dims + d]!;
    return col.subarray(0, m);
  };
  for (let d = 0; d < dims; d++) {
    const c = finite(d);
    median[d] = c.length >= cfg.minContributors ? medianOf(c) : NaN;
  }
  if (!Number.isFinite(median[0]!)) return undefined;
  // Norm clip around the coordinate-wise median: a contribution far from the others is pulled in, so
  // even one that escapes the trim (a large weight) moves the result by a bounded amount.
  let clipped = 0;
  for (let i = 0; i < n; i++) {
    let norm2 = 0;
    for (let d = 0; d < dims; d++) {
      const dev = (xs[i * dims + d]! - median[d]!) / CLIP_UNITS[PARAM_KEYS[d]!];
      if (Number.isFinite(dev)) norm2 += dev * dev;
    }
    const norm = Math.sqrt(norm2);
    if (norm <= cfg.clipNorm) continue;
    clipped++;
    const f = cfg.clipNorm / norm;
    for (let d = 0; d < dims; d++) xs[i * dims + d] = median[d]! + (xs[i * dims + d]! - median[d]!) * f;
  }
  // Weights: the sample count, capped by the setting and by the median contributor's count, so that a
  // sidecar claiming a huge count weighs no more than a typical one (and the trim can still remove it).
  const w = new Float64Array(n);
  for (let i = 0; i < n; i++) col[i] = list[i]!.p.samples;
  const cap = Math.max(1, Math.min(cfg.sampleCap, medianOf(col)));
  let samples = 0;
  for (let i = 0; i < n; i++) {
    w[i] = Math.max(1, Math.min(list[i]!.p.samples, cap));
    samples += Math.min(list[i]!.p.samples, cap);
  }
  const r: Record<string, number> = { samples: Math.min(samples, MAX_SAMPLES) };
  const wc = new Float64Array(n);
  for (let d = 0; d < dims; d++) {
    if (!Number.isFinite(median[d]!)) {
      r[PARAM_KEYS[d]!] = NaN;
      continue;
    }
    let m = 0;
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(xs[i * dims + d]!)) continue;
      col[m] = xs[i * dims + d]!;
      wc[m++] = w[i]!;
    }
    r[PARAM_KEYS[d]!] = weightedTrimmedMean(col.subarray(0, m), wc.subarray(0, m), cfg.trim);
  }
  return { service, params: r as unknown as ServiceParams, contributors: list.map((c) => c.node).sort(), clipped };
}

function medianOf(a: Float64Array): number {
  const s = Float64Array.from(a).sort();
  const n = s.length;
  return n % 2 ? s[n >> 1]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

/**
 * Weighted mean of the values after removing `trim` of the total weight from each end (a value straddling
 * the cut keeps its inner part). trim 0 is the weighted mean; trim → 0.5 approaches the weighted median.
 */
export function weightedTrimmedMean(values: Float64Array, weights: Float64Array, trim: number): number {
  const n = values.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => values[a]! - values[b]!);
  let total = 0;
  for (let i = 0; i < n; i++) total += weights[i]!;
  const t = Math.min(Math.max(trim, 0), 0.499) * total;
  const lo = t;
  const hi = total - t;
  let acc = 0;
  let sw = 0;
  let sx = 0;
  for (const i of order) {
    const a = acc;
    const b = acc + weights[i]!;
    acc = b;
    const keep = Math.max(0, Math.min(b, hi) - Math.max(a, lo));
    sw += keep;
    sx += keep * values[i]!;
  }
  return sw > 0 ? sx / sw : medianOf(values);
}

/** A baseline the endpoint learned itself, long enough to trust (not one seeded from the mesh). */
function ownTrusted(st: BaselineState, warmupWindows: number): boolean {
  return st.seedN === -1 && st.n >= warmupWindows;
}

/**
 * This sidecar's parameters for one service: the medians over its endpoints with their own warmed-up
 * baselines (a gray endpoint among them does not move a median), or undefined when none has one.
 * Only learned parameters go in: no request, no endpoint address, no per-window figure.
 */
export function localParams(signals: readonly EndpointSignals[], settings: ResolvedPolicySettings): ServiceParams | undefined {
  const lw = settings.latencyBaseline.warmupWindows;
  const ew = settings.errorBaseline.warmupWindows;
  const cols: number[][] = [[], [], [], [], []];
  let samples = 0;
  for (const s of signals) {
    if (!ownTrusted(s.latencyP50, lw)) continue;
    samples += s.latencyP50.n;
    cols[0]!.push(s.latencyP50.mean);
    cols[1]!.push(Math.sqrt(Math.max(0, s.latencyP50.variance)));
    if (ownTrusted(s.latencyP90, lw)) {
      cols[2]!.push(s.latencyP90.mean);
      cols[3]!.push(Math.sqrt(Math.max(0, s.latencyP90.variance)));
    }
    if (ownTrusted(s.errors, ew)) cols[4]!.push(s.errors.mean);
  }
  if (cols[0]!.length === 0) return undefined;
  const med = (xs: number[]): number => medianOf(Float64Array.from(xs));
  const p50Loc = med(cols[0]!);
  const p50Scale = med(cols[1]!);
  // Without windows busy enough for a p90 chart, p90 is not shared (NaN): the aggregate uses the others'.
  const p = {
    samples: Math.min(samples, MAX_SAMPLES),
    p50Loc,
    p50Scale,
    p90Loc: cols[2]!.length ? med(cols[2]!) : NaN,
    p90Scale: cols[3]!.length ? med(cols[3]!) : NaN,
    errorRate: cols[4]!.length ? med(cols[4]!) : NaN,
  };
  return paramsProblem(p) === undefined ? p : undefined;
}

/** What is wrong with a parameter set (non-finite or out of range), or undefined. */
export function paramsProblem(p: ServiceParams): string | undefined {
  if (!Number.isFinite(p.samples) || p.samples < 0 || p.samples > MAX_SAMPLES) return `samples ${p.samples} is not in [0, ${MAX_SAMPLES}]`;
  for (const k of PARAM_KEYS) {
    const v = p[k];
    const [lo, hi] = PARAM_RANGES[k];
    if (Number.isNaN(v) && OPTIONAL_KEYS.has(k)) continue; // not learned: allowed for optional coordinates
    if (!Number.isFinite(v)) return `${k} is not a finite number (${v})`;
    if (v < lo || v > hi) return `${k} ${v} is not in [${lo}, ${hi}]`;
  }
  return undefined;
}

/**
 * Seed every endpoint of a service whose own baseline is not yet trusted with the mesh aggregate, so its
 * self-baseline detectors judge from its first windows. The endpoint's local warm-up so far is kept on the
 * side and takes over once it has warmupWindows samples. Returns how many baselines were seeded.
 */
export function adoptAggregate(signals: readonly EndpointSignals[], agg: ServiceParams, settings: ResolvedPolicySettings): number {
  const lw = settings.latencyBaseline.warmupWindows;
  const ew = settings.errorBaseline.warmupWindows;
  let seeded = 0;
  for (const s of signals) {
    if (seed(s.latencyP50, agg.p50Loc, agg.p50Scale ** 2, lw, 0)) seeded++;
    if (Number.isFinite(agg.p90Loc) && Number.isFinite(agg.p90Scale) && seed(s.latencyP90, agg.p90Loc, agg.p90Scale ** 2, lw, 0)) seeded++;
    if (Number.isFinite(agg.errorRate) && seed(s.errors, agg.errorRate, 0, ew, Math.max(agg.errorRate, settings.errorBaseline.pFloor))) seeded++;
  }
  return seeded;
}

function seed(st: BaselineState, mean: number, variance: number, warmupWindows: number, stat: number): boolean {
  if (st.n >= warmupWindows || st.seedN >= 0) return false;
  st.localMean = st.mean;
  st.localVariance = st.variance;
  st.seedN = st.n;
  st.mean = mean;
  st.variance = variance;
  st.n = warmupWindows;
  st.stat = stat;
  st.alarm = false;
  return true;
}

/** Relative shift of the aggregate's latency baselines (exp of the locations) and scales: max over them. */
export function relativeShift(a: ServiceParams, b: ServiceParams): number {
  // A coordinate present on one side only counts as a 100 % shift; absent on both, as none.
  const both = (x: number, y: number, f: () => number) => (Number.isNaN(x) && Number.isNaN(y) ? 0 : Number.isNaN(x) || Number.isNaN(y) ? 1 : f());
  const rel = (x: number, y: number) => both(x, y, () => Math.abs(x - y) / Math.max(Math.abs(x), 1e-12));
  const ratio = (x: number, y: number) => both(x, y, () => Math.abs(Math.expm1(y - x)));
  return Math.max(ratio(a.p50Loc, b.p50Loc), ratio(a.p90Loc, b.p90Loc), rel(a.p50Scale, b.p50Scale), rel(a.p90Scale, b.p90Scale));
}
