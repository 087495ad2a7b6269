// Scenario benchmark tables and verdicts on crafted runs: median and min–max over seeds, ratios paired
// per seed, targets met and missed, disturbed runs named.
import t from 'tap';
import { detailTable, disturbed, pairedRatios, spread, summaryTable, verdicts, type RunRecord } from '../../bench/scenarios/summary.js';
import type { ScenarioMetrics } from '../../bench/scenarios/analyze.js';

const m = (o: Partial<ScenarioMetrics>): ScenarioMetrics => ({
  requests: 1000, failed: 0, failedPct: 0, p50: 5, p99: 20, detectMs: 100, detectRequests: 3, reportedDetectMs: 200, recoverMs: 1000,
  falseEjections: 0, healthyGaps: 0, lateRequests: 0, stallMs: 10, ...o,
});
const run = (scenario: string, family: string, seed: number, outcomes: Record<string, Partial<ScenarioMetrics>>, hard = false): RunRecord => ({
  scenario, family, set: 'held-out', size: 10, seed, faulted: family !== 'noise', hard, loadavg: [1, 1],
  outcomes: Object.fromEntries(Object.entries(outcomes).map(([k, v]) => [k, { available: true, metrics: m(v) }])),
});

const runs = [1, 2, 3].flatMap((seed) => [
  run('hard-503-7', 'hard-503', seed, { mm: { failed: 4 * seed, reportedDetectMs: 300 + seed }, peer: { failed: 10 * seed, reportedDetectMs: 900, recoverMs: 2000 } }, true),
  run('gray-1.8x-10', 'gray-1.8x', seed, { mm: { failed: 1, reportedDetectMs: seed === 2 ? null : 12_000 }, peer: { failed: 1, reportedDetectMs: null, p99: 30 } }),
  run('noise-10', 'noise', seed, { mm: { falseEjections: seed === 3 ? 1 : 0 }, peer: {} }),
]);

t.test('spread', async (t) => {
  t.equal(spread([300, 100, 200]), '200 [100–300]');
  t.equal(spread([5, 5]), '5');
  t.equal(spread([null, 2, 4]), '3 [2–4] (2 of 3)');
  t.equal(spread([null]), '–');
});

t.test('paired ratios: one per seed, over the same runs', async (t) => {
  t.same(pairedRatios(runs, 'mm', 'peer').map((r) => Math.round(r * 1000) / 1000), [5 / 11, 9 / 21, 13 / 31].map((r) => Math.round(r * 1000) / 1000));
});

t.test('verdicts name each target met or missed, with its figure', async (t) => {
  const v = verdicts({ runs, mm: 'mm', tunedPeers: ['peer'], noRetryLanes: [], haproxyTuned: 'peer' });
  t.match(v.join('\n'), /failed requests ≤ 0\.5× the best tuned peer lane: 0\.43× peer .*: met/);
  t.match(v.join('\n'), /hard 5xx: decided 302 \[301–303\] ms over 3 runs .*: met/);
  t.match(v.join('\n'), /gray 1\.8×: decided 12000 \(2 of 3\) ms .*: missed/);
  t.match(v.join('\n'), /noise: 1 false ejections over 3 runs \(target 0\): missed/);
  t.match(v.join('\n'), /recovery ≤ 0\.7× peer: 0\.75× \(median over 6 paired runs\): missed/);
  t.match(v.join('\n'), /p99 during every fault ≤ the best tuned peer lane's: met/);
});

t.test('p99: a miss names the scenario, and the same rule applied to each peer lane gives its scale', async (t) => {
  // Medians: gray-3x-5 mm 41, a 40, b 44; crash-5 mm 31, a 36, b 34. meshmedic is above the best peer in
  // gray-3x-5 only; judged the same way, a is above the best of the others in crash-5, b in both.
  const p99s: Record<string, number[][]> = { mm: [[40, 41, 42], [30, 31, 32]], a: [[39, 40, 41], [35, 36, 37]], b: [[38, 50, 44], [33, 34, 35]] };
  const rs = [1, 2, 3].flatMap((seed) => ['gray-3x-5', 'crash-5'].map((name, k) => run(name, name.replace(/-5$/, ''), seed, Object.fromEntries(Object.entries(p99s).map(([l, v]) => [l, { p99: v[k]![seed - 1]! }])))));
  const v = verdicts({ runs: rs, mm: 'mm', tunedPeers: ['a', 'b'], noRetryLanes: [], haproxyTuned: 'a' }).join('\n');
  t.match(v, /p99 during every fault ≤ the best tuned peer lane's: missed in gray-3x-5 \(41 vs 40 ms\)\n/);
  t.match(v, /p99, for scale: .* above the best in a 1, b 2 of 2 scenarios; meshmedic's p99 varies by 2\.0 ms between seeds/);
  const met = verdicts({ runs: rs.filter((r) => r.scenario === 'crash-5'), mm: 'mm', tunedPeers: ['a', 'b'], noRetryLanes: [], haproxyTuned: 'a' }).join('\n');
  t.match(met, /p99 during every fault ≤ the best tuned peer lane's: met/);
  t.notMatch(met, /for scale/, 'no scale line when the target is met');
});

t.test('tables: one row per scenario × system, a summary row per system', async (t) => {
  const d = detailTable(runs, ['mm', 'peer']);
  t.equal(d.rows.length, 6);
  t.same(d.rows[0]!.slice(0, 4), ['hard-503-7', 'mm', 3, '0.00']);
  const s = summaryTable(runs, ['mm', 'peer'], 'mm');
  t.equal(s.rows.length, 2);
  t.equal(s.rows[1]![3], '0.43 [0.42–0.45]');
});

t.test('a starved generator makes a run disturbed, and says so', async (t) => {
  const bad = [run('crash-10', 'crash', 1, { mm: { lateRequests: 500, requests: 100 } })];
  t.same(disturbed(bad), ['crash-10 seed 1 (load 1→1)']);
  t.match(verdicts({ runs: bad, mm: 'mm', tunedPeers: [], noRetryLanes: [], haproxyTuned: 'x' }).join('\n'), /no target can be judged from these runs: every one was disturbed/);
  t.match(verdicts({ runs: [...bad, ...runs], mm: 'mm', tunedPeers: ['peer'], noRetryLanes: [], haproxyTuned: 'x' }).join('\n'), /disturbed runs .*crash-10 seed 1/);
});

t.test('failed-requests target judged per seed on the counts: 0 ÷ 0 meets it and is named, never hidden as a ratio', async (t) => {
  const zero = [1, 2, 3].map((seed) => run('crash-10', 'crash', seed, { mm: { failed: 0 }, a: { failed: 0 }, b: { failed: seed } }));
  const v = verdicts({ runs: zero, mm: 'mm', tunedPeers: ['b', 'a'], noRetryLanes: [], haproxyTuned: 'a' }).join('\n');
  t.match(v, /failed requests ≤ 0\.5× the best tuned peer lane: 0 ÷ 0 against a on every seed \(3\): neither failed a request .*does not separate the two: met/);
  t.same(pairedRatios(zero, 'mm', 'a'), [1, 1, 1], 'the tables keep 0 ÷ 0 as 1 (equal)');
  // One seed where the best lane failed nothing and meshmedic failed one request: that seed misses (∞).
  const mixed = [1, 2, 3].map((seed) => run('crash-10', 'crash', seed, { mm: { failed: seed === 1 ? 0 : 3 }, a: { failed: seed === 1 ? 0 : 10 } }));
  t.match(verdicts({ runs: mixed, mm: 'mm', tunedPeers: ['a'], noRetryLanes: [], haproxyTuned: 'a' }).join('\n'), /0\.30× a \(paired per seed, median\) \(1 of 3 seeds 0 ÷ 0: .*\): met/);
  const worse = [1, 2, 3].map((seed) => run('crash-10', 'crash', seed, { mm: { failed: seed === 3 ? 0 : 1 }, a: { failed: 0 } }));
  t.match(verdicts({ runs: worse, mm: 'mm', tunedPeers: ['a'], noRetryLanes: [], haproxyTuned: 'a' }).join('\n'), /∞× \(meshmedic failed requests where the lane failed none\) a .*: missed/);
});
