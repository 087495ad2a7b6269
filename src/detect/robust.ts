// Small statistics used by the detectors: median/MAD (robust), mean/population stdev (Envoy's test),
// the normal distribution. All work on caller-owned scratch arrays so the tick allocates little.

/** 1.4826 × MAD estimates the standard deviation of normal data. */
export const MAD_TO_SIGMA = 1.4826;

/** Median of the first `n` values of `xs` (sorts that prefix in place). NaN when n = 0. */
export function medianInPlace(xs: Float64Array, n: number): number {
  if (n <= 0) return NaN;
  const a = xs.subarray(0, n);
  a.sort(); // typed arrays sort numerically
  const mid = n >> 1;
  return n % 2 === 1 ? a[mid]! : (a[mid - 1]! + a[mid]!) / 2;
}

/** Median and median absolute deviation of xs[0..n). `scratch` must hold n values. */
export function medianMad(xs: Float64Array, n: number, scratch: Float64Array): { median: number; mad: number } {
  for (let i = 0; i < n; i++) scratch[i] = xs[i]!;
  const median = medianInPlace(scratch, n);
  for (let i = 0; i < n; i++) scratch[i] = Math.abs(xs[i]! - median);
  const mad = medianInPlace(scratch, n);
  return { median, mad };
}

/** Mean and population standard deviation of xs[0..n) (Envoy's success-rate test uses these). */
export function meanStdev(xs: Float64Array, n: number): { mean: number; stdev: number } {
  if (n <= 0) return { mean: NaN, stdev: NaN };
  let s = 0;
  for (let i = 0; i < n; i++) s += xs[i]!;
  const mean = s / n;
  let v = 0;
  for (let i = 0; i < n; i++) v += (xs[i]! - mean) ** 2;
  return { mean, stdev: Math.sqrt(v / n) };
}

/** Standard normal CDF (erfc via a Chebyshev fit, |error| < 1.2e-7). */
export function normalCdf(x: number): number {
  return 0.5 * erfc(-x / Math.SQRT2);
}

function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/** How many standard deviations `failures` of `n` lie above the binomial expectation at rate p. */
export function binomialZ(failures: number, n: number, p: number): number {
  if (n <= 0) return 0;
  const q = Math.min(Math.max(p, 1e-9), 1 - 1e-9);
  return (failures - n * q) / Math.sqrt(n * q * (1 - q));
}

/**
 * P(X ≥ k) for X ~ Poisson(λ): the exact upper tail (the normal approximation is far too light for rare
 * failures: 6 failures where 0.57 are expected is z = 7, yet happens once in 40,000 windows).
 */
export function poissonUpperTail(k: number, lambda: number): number {
  if (k <= 0) return 1;
  if (!(lambda > 0)) return 0;
  // 1 − P(X ≤ k − 1), summed in log space for large λ; for small tails sum the upper terms directly.
  let logTerm = -lambda + k * Math.log(lambda) - logFactorial(k);
  let sum = 0;
  for (let i = k; i < k + 1000; i++) {
    const term = Math.exp(logTerm);
    sum += term;
    if (term < sum * 1e-12) break;
    logTerm += Math.log(lambda) - Math.log(i + 1);
  }
  return Math.min(1, sum);
}

/** P(X ≥ k) for X ~ Binomial(n, ½): the sign test's one-sided p-value for k of n signs positive. */
export function signTestUpperTail(k: number, n: number): number {
  if (k <= 0) return 1;
  if (k > n) return 0;
  let logTerm = logFactorial(n) - logFactorial(k) - logFactorial(n - k) - n * Math.LN2;
  let sum = 0;
  for (let i = k; i <= n; i++) {
    const term = Math.exp(logTerm);
    sum += term;
    if (term < sum * 1e-12) break;
    logTerm += Math.log(n - i) - Math.log(i + 1);
  }
  return Math.min(1, sum);
}

function logFactorial(n: number): number {
  let s = 0;
  for (let i = 2; i <= n; i++) s += Math.log(i);
  return s;
}
