// Order statistics shared by the benchmarks: one definition, so two tables cannot mean different things by
// "median".

/**
 * The median of `xs`: the middle value, or the mean of the two middle values when their count is even. NaN (a
 * figure a run did not produce) is left out; ±Infinity counts (a ratio against nothing). NaN when nothing is left.
 */
export function median(xs: readonly number[]): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** {@link median}, or null when there is nothing to take it of (tables print a dash for it). */
export function medianOrNull(xs: readonly number[]): number | null {
  const m = median(xs);
  return Number.isNaN(m) ? null : m;
}
