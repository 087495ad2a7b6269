// Scenario metrics (time to detect, to recover, false ejections, starved endpoints) on crafted evidence.
import t from 'tap';
import { analyzeScenario, type ArrivalLog } from '../../bench/scenarios/analyze.js';
import { liveScenario, rateSchedule, type LiveScenario as Scenario } from '../../bench/scenarios/live.js';
import { SCENARIOS, scenarioByName } from '../../src/sim/scenarios.js';
import type { LoadRecords } from '../../bench/lib/loadgen.js';

const START = 1_000_000;
const sc: Scenario = {
  name: 'crafted', description: '', endpoints: 5,
  schedule: [{ atMs: 0, rate: 200 }], durationMs: 9000, faultStartMs: 2000, faultEndMs: 6000, faulty: [0], hard: true,
};
const addr = (i: number): string => `127.0.0.1:${9000 + i}`;
const every = (from: number, to: number, step: number): number[] => { const a: number[] = []; for (let x = from; x < to; x += step) a.push(START + x); return a; };
const logOf = (i: number, t: number[]): ArrivalLog => ({ address: addr(i), t, s: t.map(() => 200) });

/** Client records: a request every 5 ms, failing (503) when `fails(ms)` says so. */
function records(fails: (ms: number) => boolean): LoadRecords {
  const r: LoadRecords = { name: 'x', start: START, sched: [], lat: [], svc: [], status: [], backend: [], backends: [], errors: {} };
  for (let ms = 0; ms < sc.durationMs; ms += 5) { r.sched.push(ms); r.lat.push(5); r.svc.push(5); r.status.push(fails(ms) ? 503 : 200); r.backend.push(-1); }
  return r;
}

t.test('ejected 300 ms after the fault, back 500 ms after it ends', async (t) => {
  const logs = [
    logOf(0, [...every(0, 2300, 25), ...every(6500, 9000, 25)]),
    ...[1, 2, 3, 4].map((i) => logOf(i, every(0, 9000, 20))),
  ];
  const rec = records((ms) => ms >= 2000 && ms < 2300 && ms % 25 === 0);
  const m = analyzeScenario(sc, rec, logs, [{ address: addr(0), at: START + 2310 }, { address: addr(2), at: START + 4000 }]);
  t.ok(m.detectMs !== null && m.detectMs >= 270 && m.detectMs <= 300, `detect ≈ 300 ms (${m.detectMs})`);
  t.ok(m.detectRequests !== null && m.detectRequests > 10 && m.detectRequests < 30, `affected requests counted (${m.detectRequests})`);
  t.equal(m.reportedDetectMs, 310);
  t.equal(m.recoverMs, 500);
  t.equal(m.falseEjections, 1, 'the ejection of a healthy endpoint is a false one');
  t.equal(m.healthyGaps, 0);
  t.ok(m.failed > 0 && m.failedPct > 0);
});

t.test('traffic never leaves a slow endpoint: never detected, nothing to recover', async (t) => {
  const logs = [0, 1, 2, 3, 4].map((i) => logOf(i, every(0, 9000, 25)));
  const m = analyzeScenario(sc, records(() => false), logs, undefined);
  t.equal(m.detectMs, null);
  t.equal(m.recoverMs, null);
  t.equal(m.falseEjections, null, 'a system that cannot report ejections gives null, not 0');
  t.equal(m.failed, 0);
});

t.test('failures alone (crash: nothing reaches the backend) also count', async (t) => {
  const logs = [logOf(0, every(0, 2000, 25)), ...[1, 2, 3, 4].map((i) => logOf(i, every(0, 9000, 20)))];
  const m = analyzeScenario(sc, records((ms) => ms >= 2000 && ms < 2800 && ms % 25 === 0), logs, []);
  t.ok(m.detectMs !== null && m.detectMs >= 770 && m.detectMs <= 800, `detect ≈ 800 ms (${m.detectMs})`);
  t.equal(m.falseEjections, 0);
});

t.test('a starved healthy endpoint is seen by its own log', async (t) => {
  const logs = [
    logOf(0, every(0, 9000, 25)), logOf(1, every(0, 9000, 20)), logOf(2, every(0, 9000, 20)),
    logOf(3, [...every(0, 4000, 20), ...every(5500, 9000, 20)]), logOf(4, every(0, 9000, 20)),
  ];
  t.equal(analyzeScenario(sc, records(() => false), logs, undefined).healthyGaps, 1);
});

t.test('the live view of every catalogue scenario is consistent', async (t) => {
  for (const spec of SCENARIOS) {
    const s = liveScenario(spec);
    t.equal(s.endpoints, spec.endpoints.length, `${s.name}: cluster size`);
    t.ok(s.faulty.every((i) => i >= 0 && i < s.endpoints), `${s.name}: faulty endpoints exist`);
    t.ok(s.faultEndMs === null || (s.faultStartMs < s.faultEndMs && s.faultEndMs < s.durationMs), `${s.name}: the fault ends before the run does`);
    t.equal(s.faulty.length === 0, spec.faults.length === 0, `${s.name}: faulty endpoints iff faults`);
  }
  const overload = rateSchedule(scenarioByName('overload-5')!);
  t.equal(Math.max(...overload.map((r) => r.rate)), 600, 'the overload ramp reaches 3 × 200 rps');
  t.equal(overload[overload.length - 1]!.rate, 200, 'and returns to 200 rps');
});

t.test('a stalled run (every endpoint silent at once) is neither a detection nor a starved endpoint', async (t) => {
  const gap = (i: number): ArrivalLog => logOf(i, [...every(0, 3000, i === 0 ? 25 : 20), ...every(4500, 9000, i === 0 ? 25 : 20)]);
  const m = analyzeScenario(sc, records(() => false), [0, 1, 2, 3, 4].map(gap), []);
  t.equal(m.detectMs, null, 'the faulty endpoint kept receiving traffic whenever anything did');
  t.equal(m.healthyGaps, 0);
  t.ok(m.stallMs >= 1490, `stall reported (${m.stallMs} ms)`);
});

t.test('requests the generator sent late are left out and counted', async (t) => {
  const rec = records((ms) => ms >= 3000 && ms < 3500);
  for (let i = 0; i < rec.sched.length; i++) if (rec.sched[i] >= 3000 && rec.sched[i] < 3500) { rec.lat[i] = 5000; rec.svc[i] = 10; }
  const logs = [0, 1, 2, 3, 4].map((i) => logOf(i, every(0, 9000, 20)));
  const m = analyzeScenario(sc, rec, logs, []);
  t.equal(m.failed, 0, 'failures of late requests are not charged to the system');
  t.equal(m.lateRequests, 100);
});

t.test('a 5xx from the faulty endpoint is one hurt request, not two', async (t) => {
  const rec = records((ms) => ms >= 2000 && ms < 2100 && ms % 25 === 0);
  rec.backends.push(addr(0));
  for (let i = 0; i < rec.sched.length; i++) if (rec.status[i] === 503) rec.backend[i] = 0;
  const logs = [logOf(0, [...every(0, 2100, 25), ...every(6200, 9000, 25)]), ...[1, 2, 3, 4].map((i) => logOf(i, every(0, 9000, 20)))];
  const m = analyzeScenario(sc, rec, logs, []);
  t.equal(m.detectMs, 75);
  t.equal(m.detectRequests, 4, 'four failed requests, each also in the backend log, counted once');
});

t.test('quietMs: a pause shorter than the scenario asks for is no detection', async (t) => {
  // Traffic to the faulty endpoint pauses 2 s (a flapping down phase) and comes back.
  const logs = [logOf(0, [...every(0, 3000, 25), ...every(5000, 9000, 25)]), ...[1, 2, 3, 4].map((i) => logOf(i, every(0, 9000, 20)))];
  t.equal(analyzeScenario(sc, records(() => false), logs, []).detectMs, 975, 'with the default 1 s, the pause counts');
  t.equal(analyzeScenario({ ...sc, quietMs: 3000 }, records(() => false), logs, []).detectMs, null, 'with 3 s, it does not');
});
