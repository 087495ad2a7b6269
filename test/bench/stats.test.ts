import t from 'tap';
import { median, medianOrNull } from '../../bench/lib/stats.js';

t.test('median: middle value, or the mean of the two middle values', async (t) => {
  t.equal(median([3, 1, 2]), 2);
  t.equal(median([4, 1, 3, 2]), 2.5);
  t.equal(median([7]), 7);
  t.equal(median([-2, -8]), -5);
});

t.test('median: missing figures (NaN) are left out, infinities count', async (t) => {
  t.equal(median([NaN, 5, 1]), 3);
  t.equal(median([1, Infinity, 2]), 2);
  t.equal(median([Infinity, Infinity, 0]), Infinity);
  t.ok(Number.isNaN(median([])));
  t.ok(Number.isNaN(median([NaN, NaN])));
});

t.test('median does not reorder its input', async (t) => {
  const xs = [3, 1, 2];
  median(xs);
  t.same(xs, [3, 1, 2]);
});

t.test('medianOrNull: null when nothing is left', async (t) => {
  t.equal(medianOrNull([]), null);
  t.equal(medianOrNull([NaN]), null);
  t.equal(medianOrNull([4, 1, 2, 3]), 2.5);
});
