// bench:proxy's prediction-cost summary: paired differences of fresh-process pairs, their median, its
// distribution-free interval, and whether that interval resolves the target.
import t from 'tap';
import { costResolution, costVerdict, medianInterval, summarizeCost } from '../../bench/proxy/prediction-cost.js';

t.test('paired differences, not the difference of single runs', async (t) => {
  // One wild burst of the "on" lane (pair 2) moves a single-run comparison, not the median of the pairs.
  const c = summarizeCost({ on: [30.6, 40, 30.3, 31.2, 30.9], off: [30, 30.5, 30, 30.8, 30.3], load: [1.2, 3.5, 1.1, 1.4, 1.3] }, 2);
  t.equal(c.pairs, 5);
  t.same(c.diffsPct.map((d) => Math.round(d * 10) / 10), [2, 31.1, 1, 1.3, 2]);
  t.equal(Math.round(c.medianPct * 10) / 10, 2);
  t.equal(Math.round(c.minPct * 10) / 10, 1);
  t.equal(Math.round(c.maxPct * 10) / 10, 31.1);
  t.equal(c.onMedianUs, 30.9);
  t.equal(c.offMedianUs, 30.3);
  t.equal(c.loadMin, 1.1);
  t.equal(c.loadMax, 3.5);
  const v = costVerdict(c, 'meshmedic', 'meshmedic (prediction off)');
  t.match(v, /^prediction on vs off \('meshmedic' vs 'meshmedic \(prediction off\)'\): \+2\.0 % CPU per request, median of 5 pairs of fresh processes, 2-s bursts/);
  // Five pairs: the only interval of at least 90 % is the smallest to the largest (coverage 1 − 2/32).
  t.equal(c.coverage, 1 - 2 / 32);
  t.match(v, /\(94 % interval of the median \+1\.0 … \+31\.1 %; pairs \+1\.0 … \+31\.1 %; 30\.9 vs 30\.3 µs; load 1\.1–3\.5\) \(target ≤ \+3 %: not resolved by this run — the interval spans the target\)$/);
});

t.test('a burst without a figure drops its pair only', async (t) => {
  const c = summarizeCost({ on: [30, NaN, 29], off: [30, 30, 30], load: [1, 1, 1] }, 5);
  t.equal(c.pairs, 2);
  t.same(c.diffsPct.map((d) => Math.round(d * 10) / 10), [0, -3.3]);
  t.equal(Math.round(c.medianPct * 100) / 100, -1.67);
  const none = summarizeCost({ on: [], off: [], load: [] }, 5);
  t.equal(none.pairs, 0);
  t.match(costVerdict(none, 'a', 'b'), /not measured/);
});

t.test('the median\'s interval: order statistics by the sign test, at least 90 %', async (t) => {
  const xs = [5, -1, 3, 0, 9, -4, 2, 1]; // sorted: -4 -1 0 1 2 3 5 9
  const i = medianInterval(xs);
  // n = 8: P(B ≤ 1) = 9/256 ≈ 0.035 ≤ 0.05, P(B ≤ 2) = 37/256 > 0.05 → 2nd smallest to 2nd largest.
  t.same(i, { low: -1, high: 5, coverage: 1 - 18 / 256 });
  const twelve = medianInterval([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  // n = 12: P(B ≤ 2) = 79/4096 ≈ 0.019, P(B ≤ 3) = 299/4096 ≈ 0.073 → 3rd to 10th.
  t.equal(twelve.low, 3);
  t.equal(twelve.high, 10);
  t.ok(Math.abs(twelve.coverage - (1 - 158 / 4096)) < 1e-12);
  t.equal(medianInterval([1, 2, 3, 4]).coverage, 0, 'four pairs: no interval of 90 %');
  t.ok(Number.isNaN(medianInterval([]).low));
  t.same(medianInterval([3, NaN, 1, 2, 5, 4]).low, 1, 'a missing figure is left out');
});

t.test('met or missed only when the whole interval is on one side of +3 %', async (t) => {
  const pairs = (diffs: number[]) => summarizeCost({ on: diffs.map((d) => 100 + d), off: diffs.map(() => 100), load: diffs.map(() => 1) }, 4);
  t.equal(costResolution(pairs([-2, -1, 0, 0.5, 1, 1.5, 2, 2.5])), 'met');
  t.equal(costResolution(pairs([4, 5, 6, 7, 8, 9, 10, 11])), 'missed');
  const wide = pairs([-19.6, -8, -2, 1, 3, 9, 15, 41.2]);
  t.equal(costResolution(wide), 'not resolved', 'a median of +2 % whose interval spans −8 … +15 % proves nothing');
  t.match(costVerdict(wide, 'a', 'b'), /93 % interval of the median -8\.0 … \+15\.0 %/);
  t.equal(costResolution(pairs([1, 2, 2])), 'not resolved', 'too few pairs');
  t.match(costVerdict(pairs([1, 2, 2]), 'a', 'b'), /too few pairs for a 90 % interval/);
});
