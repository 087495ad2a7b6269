// Robust trend statistics over short, irregular series (one point per completed stats window):
// Theil–Sen slope with the Mann–Kendall trend test, and the Cochran–Armitage trend test for proportions.
// Pure functions over caller-owned typed arrays; nothing is allocated per call.

/** Result of a trend fit, filled into a caller-owned object. */
export interface TrendFit {
  /** Points used. */
  n: number;
  /** Slope per unit of t (Theil–Sen: median of pairwise slopes; Cochran–Armitage: weighted least squares). */
  slope: number;
  /** Fitted value at `tNow`. */
  level: number;
  /** Standardized trend statistic (Mann–Kendall or Cochran–Armitage z); positive = rising. */
  z: number;
}

export function emptyFit(): TrendFit {
  return { n: 0, slope: 0, level: NaN, z: 0 };
}

/**
 * Theil–Sen slope and Mann–Kendall z of (t[i], x[i]) for from ≤ i < to, skipping NaN x. `pairs` must
 * hold n·(n−1)/2 values and `scratch` n values (n = to − from). The level is the median of x[i] + slope·(tNow − t[i]).
 * Mann–Kendall's variance n(n−1)(2n+5)/18 ignores ties (ties only shrink the true variance, so the z
 * reported is conservative) and uses the continuity correction.
 */
export function theilSen(t: Float64Array, x: Float64Array, from: number, to: number, tNow: number, pairs: Float64Array, scratch: Float64Array, out: TrendFit): TrendFit {
  let np = 0;
  let s = 0;
  let n = 0;
  for (let i = from; i < to; i++) {
    const xi = x[i]!;
    if (xi !== xi) continue;
    n++;
    for (let j = i + 1; j < to; j++) {
      const xj = x[j]!;
      if (xj !== xj) continue;
      const dt = t[j]! - t[i]!;
      if (dt === 0) continue;
      const d = (xj - xi) / dt;
      pairs[np++] = d;
      // Sign of the change forward in time, whatever the storage order.
      s += d > 0 ? 1 : d < 0 ? -1 : 0;
    }
  }
  out.n = n;
  if (n < 3 || np === 0) return noTrend(out);
  const slope = median(pairs, np);
  let m = 0;
  for (let i = from; i < to; i++) if (x[i]! === x[i]!) scratch[m++] = x[i]! + slope * (tNow - t[i]!);
  out.slope = slope;
  out.level = median(scratch, m);
  const variance = (n * (n - 1) * (2 * n + 5)) / 18;
  out.z = s === 0 ? 0 : (s - Math.sign(s)) / Math.sqrt(variance);
  return out;
}

/** Too few points to judge: no slope, no level, no evidence (the point count is already set). */
function noTrend(out: TrendFit): TrendFit {
  out.slope = 0;
  out.level = NaN;
  out.z = 0;
  return out;
}

/**
 * Cochran–Armitage test for a trend in a proportion: failures f[i] of n[i] trials at time t[i]
 * (windows with n[i] = 0 carry no information and are skipped). The slope is the weighted least-squares
 * slope of f/n on t (per unit of t), the level its value at `tNow`.
 */
export function cochranArmitage(t: Float64Array, f: Float64Array, n: Float64Array, len: number, tNow: number, out: TrendFit): TrendFit {
  let N = 0;
  let F = 0;
  let tw = 0;
  let pts = 0;
  for (let i = 0; i < len; i++) {
    const ni = n[i]!;
    if (!(ni > 0)) continue;
    N += ni;
    F += f[i]!;
    tw += ni * t[i]!;
    pts++;
  }
  out.n = pts;
  if (pts < 3 || N === 0) return noTrend(out);
  const pBar = F / N;
  const tBar = tw / N;
  let num = 0;
  let sxx = 0;
  for (let i = 0; i < len; i++) {
    const ni = n[i]!;
    if (!(ni > 0)) continue;
    const dt = t[i]! - tBar;
    num += (f[i]! - ni * pBar) * dt;
    sxx += ni * dt * dt;
  }
  out.slope = sxx > 0 ? num / sxx : 0;
  out.level = pBar + out.slope * (tNow - tBar);
  const v = pBar * (1 - pBar) * sxx;
  out.z = v > 0 ? num / Math.sqrt(v) : 0;
  return out;
}

/** Median of xs[0..n) (sorts that prefix in place); NaN when n = 0. */
function median(xs: Float64Array, n: number): number {
  if (n <= 0) return NaN;
  const a = xs.subarray(0, n);
  a.sort();
  const mid = n >> 1;
  return n % 2 === 1 ? a[mid]! : (a[mid - 1]! + a[mid]!) / 2;
}
