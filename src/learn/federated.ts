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
 * Contributions are clipped per coordinate in a space where distances are relative: log latency as it is
 * (0.01 = 1 %), scales as their logarithm (so a scale twice the median is as far as one half of it), the
 * error fraction as it is. The clip radius is clipNorm robust deviations (1.4826 × the median absolute
 * deviation over the contributors) but never less than these floors, so that near-identical honest
 * contributions do not clip each other to nothing.
 */
export const CLIP_FLOORS: Readonly<Record<ParamKey, number>> = { p50Loc: 0.01, p50Scale: 0.01, p90Loc: 0.01, p90Scale: 0.01, errorRate: 0.0005 };
const SCALE_KEYS: ReadonlySet<ParamKey> = new Set(['p50Scale', 'p90Scale']);
/** Scales of 0 (a constant baseline) are valid: taken as this before the logarithm. */
const MIN_SCALE = 1e-6;
const toClipSpace = (k: ParamKey, x: number): number => (SCALE_KEYS.has(k) ? Math.log(Math.max(x, MIN_SCALE)) : x);
const fromClipSpace = (k: ParamKey, x: number): number => (SCALE_KEYS.has(k) ? Math.exp(x) : x);

export interface FederatedSettings {
  /** Contributions older than this (ms since received) no longer count. */
  readonly maxAgeMs: number;
  /** A contribution's weight is its samples, capped here and at the median contributor's samples. */
  readonly sampleCap: number;
  /** Per coordinate, contributions are pulled toward the median to within this many robust deviations. */
  readonly clipNorm: number;
  /** Share of the total weight trimmed from each end, per coordinate, before the weighted mean. */
  readonly trim: number;
  /** Fewer fresh contributors than this: no aggregate for the service (robustness needs a majority). */
  readonly minContributors: number;
}

/** Defaults (the config section learning.federated uses the same values). */
export const DEFAULT_FEDERATED_SETTINGS: FederatedSettings = Object.freeze({ maxAgeMs: 120_000, sampleCap: 1000, clipNorm: 1, trim: 0.1, minContributors: 3 });

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
  // Weights: the sample count, capped by the setting and by the median contributor's count, so that a
  // sidecar claiming a huge count weighs no more than a typical one.
  const col = new Float64Array(n);
  for (let i = 0; i < n; i++) col[i] = list[i]!.p.samples;
  const cap = Math.max(1, Math.min(cfg.sampleCap, medianOf(col)));
  const w = new Float64Array(n);
  let samples = 0;
  for (let i = 0; i < n; i++) {
    w[i] = Math.max(1, Math.min(list[i]!.p.samples, cap));
    samples += Math.min(list[i]!.p.samples, cap);
  }
  const r: Record<string, number> = { samples: Math.min(samples, MAX_SAMPLES) };
  const xs = new Float64Array(n);
  const wc = new Float64Array(n);
  const dev = new Float64Array(n);
  const owners = new Int32Array(n);
  const clippedBy = new Uint8Array(n);
  for (const k of PARAM_KEYS) {
    // Only the contributors that have the coordinate (NaN: not learned yet); too few → not aggregated.
    let m = 0;
    for (let i = 0; i < n; i++) {
      const v = list[i]!.p[k];
      if (!Number.isFinite(v)) continue;
      xs[m] = toClipSpace(k, v);
      wc[m] = w[i]!;
      owners[m++] = i;
    }
    if (m < cfg.minContributors) {
      r[k] = NaN;
      continue;
    }
    const vals = xs.subarray(0, m);
    // Clip toward the median by a radius set by the contributors' own spread (median absolute deviation):
    // one contribution, however far and whatever weight it claims, moves the result by at most about
    // (radius + the honest spread) / contributors; the honest ones, close together, are barely touched.
    const med = medianOf(vals);
    for (let j = 0; j < m; j++) dev[j] = Math.abs(vals[j]! - med);
    const radius = cfg.clipNorm * Math.max(1.4826 * medianOf(dev.subarray(0, m)), CLIP_FLOORS[k]);
    for (let j = 0; j < m; j++) {
      const v = vals[j]!;
      const c = Math.min(med + radius, Math.max(med - radius, v));
      if (c !== v) {
        vals[j] = c;
        clippedBy[owners[j]!] = 1;
      }
    }
    r[k] = fromClipSpace(k, weightedTrimmedMean(vals, wc.subarray(0, m), cfg.trim));
  }
  if (!Number.isFinite(r.p50Loc!)) return undefined;
  let clipped = 0;
  for (let i = 0; i < n; i++) clipped += clippedBy[i]!;
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
 * Fast initial response (Lucas & Crosier, 1982): a latency CUSUM seeded from the mesh starts at this share of
 * its decision interval h instead of 0, so a shift present in a sidecar's first seconds is caught in about
 * half the windows (3× at a 2-endpoint service: 2–3 windows instead of 4). The price is that the chart's
 * protection against an endpoint a little off the mesh's baseline (another level, more noise) is halved
 * while the head start lasts — in the simulator, kept for 30 s it tripled or worse the soft false
 * de-weights of such an endpoint — so it is withdrawn after HEADSTART_WINDOWS windows (a sidecar's first
 * seconds, the case it is for) unless the chart is alarming by then. Applied only in services too small
 * for the peer-latency detector (see adoptAggregate); the alarm is a `degrade` verdict as without it.
 */
export const SEEDED_HEADSTART = 0.5;
export const HEADSTART_WINDOWS = 5;

/**
 * Seed every endpoint of a service whose own baseline is not yet trusted with the mesh aggregate, so its
 * self-baseline detectors judge from its first windows. The endpoint's local warm-up so far is kept on the
 * side and takes over once it has warmupWindows samples. Returns how many baselines were seeded.
 */
export function adoptAggregate(signals: readonly EndpointSignals[], agg: ServiceParams, settings: ResolvedPolicySettings): number {
  const lw = settings.latencyBaseline.warmupWindows;
  const ew = settings.errorBaseline.warmupWindows;
  // Only where the peers cannot judge latency (fewer endpoints than the peer detector needs): there the
  // seeded CUSUM is the only latency detector; with more, the peers catch a gray endpoint in two windows
  // without any warm-up, and a head start would only add exposure for an endpoint a little slower than
  // the mesh's baseline (its CUSUM drifts up until its local estimate takes over).
  const headstart = signals.length < settings.peerLatency.minHosts ? SEEDED_HEADSTART * settings.latencyBaseline.h : 0;
  let seeded = 0;
  for (const s of signals) {
    withdrawHeadstart(s.latencyP50, lw);
    withdrawHeadstart(s.latencyP90, lw);
    if (seed(s.latencyP50, agg.p50Loc, agg.p50Scale ** 2, lw, headstart, headstart)) seeded++;
    if (Number.isFinite(agg.p90Loc) && Number.isFinite(agg.p90Scale) && seed(s.latencyP90, agg.p90Loc, agg.p90Scale ** 2, lw, headstart, headstart)) seeded++;
    if (Number.isFinite(agg.errorRate) && seed(s.errors, agg.errorRate, 0, ew, Math.max(agg.errorRate, settings.errorBaseline.pFloor))) seeded++;
  }
  return seeded;
}

/** After HEADSTART_WINDOWS windows on the seed, take back what is left of the head start (an alarm stands). */
function withdrawHeadstart(st: BaselineState, warmupWindows: number): void {
  if (st.headstart === 0) return;
  if (st.seedN >= 0 && st.n - warmupWindows < HEADSTART_WINDOWS) return;
  if (st.seedN >= 0 && !st.alarm) st.stat = Math.max(0, st.stat - st.headstart);
  st.headstart = 0;
}

function seed(st: BaselineState, mean: number, variance: number, warmupWindows: number, stat: number, headstart = 0): boolean {
  if (st.n >= warmupWindows || st.seedN >= 0) return false;
  st.localMean = st.mean;
  st.localVariance = st.variance;
  st.seedN = st.n;
  st.mean = mean;
  st.variance = variance;
  st.n = warmupWindows;
  st.stat = stat;
  st.alarm = false;
  st.headstart = headstart;
  return true;
}

/**
 * Relative shift of the aggregate's latency baselines (exp of the locations) and scales: the max over the
 * coordinates both sides have. Whether a coordinate exists at all is reported by presenceChanges.
 */
export function relativeShift(a: ServiceParams, b: ServiceParams): number {
  const both = (x: number, y: number, f: () => number) => (Number.isNaN(x) || Number.isNaN(y) ? 0 : f());
  const rel = (x: number, y: number) => both(x, y, () => Math.abs(x - y) / Math.max(Math.abs(x), 1e-12));
  const ratio = (x: number, y: number) => both(x, y, () => Math.abs(Math.expm1(y - x)));
  return Math.max(ratio(a.p50Loc, b.p50Loc), ratio(a.p90Loc, b.p90Loc), rel(a.p50Scale, b.p50Scale), rel(a.p90Scale, b.p90Scale));
}

/** Coordinates aggregated on one side only (an optional one needs minContributors who learned it). */
export function presenceChanges(a: ServiceParams, b: ServiceParams): ParamKey[] {
  return PARAM_KEYS.filter((k) => Number.isNaN(a[k]) !== Number.isNaN(b[k]));
}
