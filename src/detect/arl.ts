// Average run lengths (ARL) of the sequential tests, so that every self-baseline detector states its
// false-alarm rate: the Markov-chain approximation of Brook & Evans (1972) for CUSUM, and of Lucas &
// Saccucci (1990) for EWMA charts, for standardized normal samples with mean `shift`.
import { normalCdf } from './robust.js';

const cache = new Map<string, number>();

// One scratch matrix and two vectors, reused by every solve: a CUSUM threshold is found by bisection, ~13
// solves of an 80-state chain (51 KB each), and fresh buffers per solve left ~1.3 MB of garbage behind that
// the C allocator kept as resident memory after V8 freed it (docs/kubernetes.md, "Memory budget").
let scratch = new Float64Array(0);
let rhs = new Float64Array(0);
let solution = new Float64Array(0);
function scratchMatrix(m: number): Float64Array {
  if (scratch.length < m * m) scratch = new Float64Array(m * m);
  const a = scratch.subarray(0, m * m);
  a.fill(0);
  return a;
}

/**
 * ARL of a one-sided upper CUSUM S = max(0, S + z − k), alarm when S > h, for samples N(shift, 1).
 * Two-sided (upper and lower charts together): 1 / (1/ARL(+shift) + 1/ARL(−shift)).
 */
export function cusumArl(k: number, h: number, shift = 0, states = 120): number {
  const key = `c:${k}:${h}:${shift}:${states}`;
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  // States: 0 (S = 0) and m − 1 intervals of width w covering (0, h]; centers i·w.
  const m = states;
  const w = (2 * h) / (2 * m - 1);
  const a = scratchMatrix(m);
  for (let i = 0; i < m; i++) {
    const c = i * w;
    // to state 0: c + z − k ≤ w/2
    a[i * m] = -normalCdf(w / 2 - c + k - shift);
    for (let j = 1; j < m; j++) {
      a[i * m + j] = -(normalCdf((j + 0.5) * w - c + k - shift) - normalCdf((j - 0.5) * w - c + k - shift));
    }
    a[i * m + i]! += 1;
  }
  const arl = solveOnes(a, m)[0]!;
  cache.set(key, arl);
  return arl;
}

/** Two-sided CUSUM ARL (upper and lower charts with the same k, h). */
export function cusumArlTwoSided(k: number, h: number, shift = 0): number {
  return 1 / (1 / cusumArl(k, h, shift) + 1 / cusumArl(k, h, -shift));
}

/**
 * ARL of an EWMA chart Z = (1 − λ)Z + λx with asymptotic limits ±L·sqrt(λ/(2 − λ)), samples N(shift, 1).
 * `sides` 2: both limits; 1: the upper limit only (the lower side is unbounded, truncated far below).
 */
export function ewmaArl(lambda: number, L: number, shift = 0, sides: 1 | 2 = 2, states = 151): number {
  const key = `e:${lambda}:${L}:${shift}:${sides}:${states}`;
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const ucl = L * Math.sqrt(lambda / (2 - lambda));
  const lcl = sides === 2 ? -ucl : -ucl - 8 * Math.sqrt(lambda / (2 - lambda));
  const m = states;
  const w = (ucl - lcl) / m;
  const a = scratchMatrix(m);
  for (let i = 0; i < m; i++) {
    const c = lcl + (i + 0.5) * w;
    for (let j = 0; j < m; j++) {
      let lo = lcl + j * w;
      const hi = lo + w;
      // For a one-sided chart the lowest state absorbs everything below it (no lower alarm).
      if (sides === 1 && j === 0) lo = -Infinity;
      const p = normalCdf((hi - (1 - lambda) * c) / lambda - shift) - (lo === -Infinity ? 0 : normalCdf((lo - (1 - lambda) * c) / lambda - shift));
      a[i * m + j] = -p;
    }
    a[i * m + i]! += 1;
  }
  // Start at Z = 0: the state containing 0.
  const start = Math.min(m - 1, Math.max(0, Math.floor((0 - lcl) / w)));
  const res = solveOnes(a, m)[start]!;
  cache.set(key, res);
  return res;
}

/** Smallest CUSUM h (to 0.01) whose one-sided in-control ARL reaches `targetArl`. */
export function cusumHForArl(k: number, targetArl: number): number {
  let lo = 0.1;
  let hi = 50;
  while (hi - lo > 0.01) {
    const mid = (lo + hi) / 2;
    if (cusumArl(k, mid, 0, 80) >= targetArl) hi = mid;
    else lo = mid;
  }
  return Math.round(hi * 100) / 100;
}

/**
 * Solve A·x = 1 (Gaussian elimination with partial pivoting); A is m×m, row-major, overwritten. The
 * result is a shared scratch vector, valid until the next solve.
 */
function solveOnes(a: Float64Array, m: number): Float64Array {
  if (rhs.length < m) {
    rhs = new Float64Array(m);
    solution = new Float64Array(m);
  }
  const b = rhs.subarray(0, m).fill(1);
  for (let col = 0; col < m; col++) {
    let piv = col;
    for (let r = col + 1; r < m; r++) if (Math.abs(a[r * m + col]!) > Math.abs(a[piv * m + col]!)) piv = r;
    if (piv !== col) {
      for (let c = 0; c < m; c++) {
        const t = a[col * m + c]!;
        a[col * m + c] = a[piv * m + c]!;
        a[piv * m + c] = t;
      }
      const t = b[col]!;
      b[col] = b[piv]!;
      b[piv] = t;
    }
    const d = a[col * m + col]!;
    for (let r = col + 1; r < m; r++) {
      const f = a[r * m + col]! / d;
      if (f === 0) continue;
      for (let c = col; c < m; c++) a[r * m + c]! -= f * a[col * m + c]!;
      b[r]! -= f * b[col]!;
    }
  }
  const x = solution.subarray(0, m);
  for (let r = m - 1; r >= 0; r--) {
    let s = b[r]!;
    for (let c = r + 1; c < m; c++) s -= a[r * m + c]! * x[c]!;
    x[r] = s / a[r * m + r]!;
  }
  return x;
}
