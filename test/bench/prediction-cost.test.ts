// bench:proxy's prediction-cost summary: paired differences of neighbouring bursts, their median and range.
import t from 'tap';
import { costVerdict, summarizeCost } from '../../bench/proxy/prediction-cost.js';

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
  t.match(v, /^prediction on vs off \('meshmedic' vs 'meshmedic \(prediction off\)'\): \+2\.0 % CPU per request, median of 5 interleaved pairs of 2-s bursts/);
  t.match(v, /pairs \+1\.0 … \+31\.1 %; 30\.9 vs 30\.3 µs; load 1\.1–3\.5\) \(target ≤ \+3 %\)$/);
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
