import t from 'tap';
import { planPriorities } from '../../src/mesh/priority.js';

t.test('all healthy: P0 takes everything', async (t) => {
  const p = planPriorities([{ healthy: 5, total: 5 }, { healthy: 5, total: 5 }]);
  t.same(p.load, [1, 0]);
  t.equal(p.panic, false);
});

t.test('P0 sheds once fewer than 71.4 % are healthy (overprovisioning 1.4)', async (t) => {
  // 3 of 5 healthy: availability round(140 * 3/5) = 84 → P0 84 %, P1 16 %.
  const p = planPriorities([{ healthy: 3, total: 5 }, { healthy: 5, total: 5 }]);
  t.ok(Math.abs(p.load[0]! - 0.84) < 1e-9);
  t.ok(Math.abs(p.load[1]! - 0.16) < 1e-9);
  // 4 of 5 healthy: 112 → capped at 100, nothing spills.
  t.same(planPriorities([{ healthy: 4, total: 5 }, { healthy: 5, total: 5 }]).load, [1, 0]);
});

t.test('P0 empty: everything fails over to P1', async (t) => {
  const p = planPriorities([{ healthy: 0, total: 3 }, { healthy: 3, total: 3 }]);
  t.same(p.load, [0, 1]);
  t.equal(p.panic, false);
});

t.test('panic below the threshold: health ignored, P0 gets all', async (t) => {
  const p = planPriorities([{ healthy: 1, total: 10 }], 1.4, 50);
  t.equal(p.panic, true);
  t.same(p.load, [1]);
  t.equal(planPriorities([{ healthy: 1, total: 10 }], 1.4, 0).panic, false, 'threshold 0 disables panic');
});

t.test('total availability under 100 is normalised', async (t) => {
  // P0: round(140*2/5)=56, P1: round(140*1/5)=28 → sum 84 → 56/84, 28/84
  const p = planPriorities([{ healthy: 2, total: 5 }, { healthy: 1, total: 5 }]);
  t.ok(Math.abs(p.load[0]! - 56 / 84) < 1e-9);
  t.ok(Math.abs(p.load[1]! - 28 / 84) < 1e-9);
});

t.test('no endpoints', async (t) => {
  t.same(planPriorities([]).load, []);
});
