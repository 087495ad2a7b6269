// The live benchmark runs a scenario's lanes in batches when all of them at once would offer the machine
// more than it carries on time (the overload scenario's peak).
import t from 'tap';
import { MAX_OFFERED_RPS, laneBatches, liveScenario, peakRate } from '../../bench/scenarios/live.js';
import { SCENARIOS, scenarioByName } from '../../src/sim/scenarios.js';

const lanes = Array.from({ length: 12 }, (_, i) => `lane ${i}`);

t.test('every scenario at 200/s runs its 12 lanes at once', async (t) => {
  for (const sc of SCENARIOS.filter((s) => s.suite !== 'learning' && s.family !== 'overload')) {
    const b = laneBatches(lanes, liveScenario(sc).schedule);
    t.same(b, [lanes], sc.name);
  }
});

t.test('overload (600/s at its peak) runs 12 lanes as 3 batches of 4, each lane once, in order', async (t) => {
  for (const name of ['overload-5', 'overload-10']) {
    const schedule = liveScenario(scenarioByName(name)!).schedule;
    t.equal(peakRate(schedule), 600, `${name} peaks at 600/s`);
    const b = laneBatches(lanes, schedule);
    t.same(b.map((x) => x.length), [4, 4, 4], name);
    t.same(b.flat(), lanes, 'every lane exactly once, in order');
    for (const x of b) t.ok(x.length * peakRate(schedule) <= MAX_OFFERED_RPS, 'no batch offers more than the budget');
  }
});

t.test('batches are even, a lane above the budget alone still runs, bad budgets are refused', async (t) => {
  const steady = (rate: number) => [{ atMs: 0, rate }];
  t.same(laneBatches(lanes, steady(500), 2400).map((x) => x.length), [4, 4, 4], '4 fit: 12 → 4 + 4 + 4');
  t.same(laneBatches(lanes.slice(0, 10), steady(700), 2400).map((x) => x.length), [3, 3, 2, 2], '3 fit: 10 → 3 + 3 + 2 + 2');
  t.same(laneBatches(lanes.slice(0, 3), steady(5000), 2400).map((x) => x.length), [1, 1, 1], 'one lane above the budget: one per batch');
  t.same(laneBatches([], steady(200)), []);
  t.throws(() => laneBatches(lanes, steady(200), 0), /maxRps must be a positive number, got 0/);
});
