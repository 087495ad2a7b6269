// The whole scenario catalogue in virtual time (seeded, deterministic): detection targets, no false
// ejections, and meshmedic's failed requests against envoy-default's over the suite.
import t from 'tap';
import { SCENARIOS, scenarioByName, faultyEndpoints } from '../../src/sim/scenarios.js';
import { runScenario, type SimResult } from '../../src/sim/simulator.js';

const results = new Map<string, { meshmedic: SimResult; envoy: SimResult }>();
for (const s of SCENARIOS) {
  const durationMs = s.name === 'noise' ? 120_000 : undefined; // the long noise run has its own test
  results.set(s.name, {
    meshmedic: runScenario(s, { policy: 'meshmedic', seed: 1, durationMs }),
    envoy: runScenario(s, { policy: 'envoy-default', seed: 1, durationMs }),
  });
}

for (const s of SCENARIOS) {
  t.test(`${s.name}: ${s.description}`, async (t) => {
    const { meshmedic: m, envoy: e } = results.get(s.name)!;
    t.equal(m.falseEjections, 0, 'no endpoint without a fault is ejected');
    // envoy-default's success-rate test does eject a healthy host now and then when every host is nearly
    // perfect (crash-10: before the fault); that is Envoy's behaviour, reported, not asserted away.
    if (s.endpoints.length < 10) t.equal(e.falseEjections, 0, 'envoy-default: nothing ejected below 10 hosts');
    t.equal(m.engineErrors, 0, 'the engine never failed');
    if (s.targets.detectWithinMs !== undefined) {
      t.ok(m.detectMs >= 0 && m.detectMs <= s.targets.detectWithinMs, `detected after ${m.detectMs} ms (target ${s.targets.detectWithinMs} ms)`);
    }
    if (e.failedPct > 1) t.ok(m.failed <= e.failed, `failed requests ${m.failed} ≤ envoy-default's ${e.failed}`);
    // Where the fault costs envoy-default little (the balancer already avoids a black hole or a slow
    // endpoint), meshmedic stays near the background error rate; its probation re-tests cost a few requests.
    else t.ok(m.failedPct < 0.5, `failed ${m.failedPct.toFixed(3)} % (envoy-default ${e.failedPct.toFixed(3)} %)`);
    t.ok(m.requests > 0.9 * (s.rps * (s.name === 'noise' ? 120 : s.durationMs / 1000)), 'the offered load was served');
  });
}

t.test('hard failures are detected within 5 requests or 1 s at 200 rps', async (t) => {
  for (const name of ['crash', 'hard-5xx', 'flapping', 'zone-outage']) {
    const r = results.get(name)!.meshmedic;
    t.ok(r.detectMs <= 1000, `${name}: ${r.detectMs} ms`);
    const first = runScenario(scenarioByName(name)!, { policy: 'meshmedic', seed: 1 }).decisions.find((d) => d.action === 'eject')!;
    t.ok(Number(first.evidence.consecutive) <= 5, `${name}: ejected after ${first.evidence.consecutive} failed requests`);
  }
});

t.test('recovery: crash, hard-5xx and black-hole are back at full weight within 10 s of the fault ending, across seeds', async (t) => {
  for (const name of ['crash', 'hard-5xx', 'blackhole']) {
    for (const seed of [1, 2, 3]) {
      const r = seed === 1 ? results.get(name)!.meshmedic : runScenario(scenarioByName(name)!, { policy: 'meshmedic', seed });
      t.ok(r.restoreMs >= 0 && r.restoreMs <= 10_000, `${name} seed ${seed}: full weight ${r.restoreMs} ms after the fault ended`);
      // Probes kept it out while the fault lasted: one ejection, no canary round spent on a dead endpoint.
      t.equal(r.ejections, 1, `${name} seed ${seed}: ejected once`);
      const target = scenarioByName(name)!.targets.detectWithinMs ?? 1000;
      t.ok(r.detectMs >= 0 && r.detectMs <= target, `${name} seed ${seed}: detected after ${r.detectMs} ms (target ${target} ms)`);
      t.equal(r.falseEjections, 0);
    }
  }
});

t.test('recovery: without probes the backoff timer alone cannot bring a 40 s crash back quickly (what probes fix)', async (t) => {
  const r = runScenario(scenarioByName('crash')!, { policy: 'meshmedic', seed: 1, probes: false });
  t.ok(Number.isNaN(r.restoreMs) || r.restoreMs > 10_000, `timer only: ${r.restoreMs} ms`);
  t.ok(r.ejections > 1, 'canary rounds during the fault, each at a higher level');
});

t.test('gray failure (3× on one of five) is detected within 3 s, across seeds', async (t) => {
  for (const seed of [1, 2, 3, 4]) {
    const r = runScenario(scenarioByName('gray-3x')!, { policy: 'meshmedic', seed });
    t.ok(r.detectMs >= 0 && r.detectMs <= 3000, `seed ${seed}: ${r.detectMs} ms`);
    t.equal(r.falseEjections, 0);
  }
});

t.test('gray failure (3× on one of five): ejected (not only de-weighted) soon, across 12 seeds', async (t) => {
  const times: number[] = [];
  for (let seed = 1; seed <= 12; seed++) {
    const r = runScenario(scenarioByName('gray-3x')!, { policy: 'meshmedic', seed });
    const ej = r.decisions.find((d) => d.action === 'eject');
    t.ok(ej, `seed ${seed}: ejected`);
    times.push(ej ? ej.at - 1_700_000_000_000 - 30_000 : Infinity);
    t.equal(r.falseEjections, 0);
  }
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  t.ok(Math.max(...times) <= 5000, `every ejection within 5 s: ${times.join(', ')} ms`);
  t.ok(mean <= 3000, `mean time to ejection ${mean.toFixed(0)} ms ≤ 3 s`);
});

t.test('gray 10×: the balancer already starves the slow endpoint; client p99 stays at its fault-free level', async (t) => {
  const m = results.get('gray-10x')!.meshmedic;
  t.ok(m.p99Ms < 1.2 * results.get('crash')!.meshmedic.p99Ms, `p99 ${m.p99Ms} ms`);
  t.equal(m.falseEjections, 0);
});

t.test('crash on ten endpoints: envoy-default ejects (5 consecutive failures), meshmedic sooner and with fewer failures', async (t) => {
  const { meshmedic: m, envoy: e } = results.get('crash-10')!;
  t.ok(e.ejections >= 1, 'Envoy can act with 10 hosts');
  t.ok(m.failed < e.failed, `${m.failed} < ${e.failed}`);
});

t.test('overload: latency rising everywhere is load — nothing is ejected or de-weighted', async (t) => {
  const r = results.get('overload')!.meshmedic;
  t.equal(r.ejections, 0);
  t.equal(r.falseDeweights, 0);
  t.ok(r.p99Ms > 3 * results.get('crash')!.meshmedic.p99Ms, 'the scenario really loads the endpoints');
});

t.test('zone outage fails over to priority 1 and fails back', async (t) => {
  const r = runScenario(scenarioByName('zone-outage')!, { policy: 'meshmedic', seed: 1 });
  t.ok(r.decisionCounts['failover:priority_shift']! >= 1);
  t.ok(r.decisionCounts['failover:failback']! >= 1);
  t.ok(r.failedPct < 1, `failed ${r.failedPct} %`);
  t.ok(results.get('zone-outage')!.envoy.failedPct > 20, 'envoy-default (6 hosts < 10) ejects nothing');
});

t.test("suite: meshmedic's failed requests ≤ 40 % of envoy-default's", async (t) => {
  let m = 0;
  let e = 0;
  for (const { meshmedic, envoy } of results.values()) {
    m += meshmedic.failed;
    e += envoy.failed;
  }
  t.ok(m <= 0.4 * e, `meshmedic ${m} vs envoy-default ${e} (${((100 * m) / e).toFixed(1)} %)`);
});

t.test('deterministic: same seed, same run; another seed, another run', async (t) => {
  const a = runScenario(scenarioByName('partial-5xx-30')!, { policy: 'meshmedic', seed: 9, keepDecisions: false });
  const b = runScenario(scenarioByName('partial-5xx-30')!, { policy: 'meshmedic', seed: 9, keepDecisions: false });
  const c = runScenario(scenarioByName('partial-5xx-30')!, { policy: 'meshmedic', seed: 10, keepDecisions: false });
  const strip = (r: SimResult) => ({ ...r, cpuMs: 0 });
  t.same(strip(a), strip(b));
  t.not(a.requests, c.requests);
});

t.test('the catalogue is well-formed for the other drivers (bench)', async (t) => {
  const names = new Set<string>();
  for (const s of SCENARIOS) {
    t.notOk(names.has(s.name), `unique name ${s.name}`);
    names.add(s.name);
    for (const f of s.faults) {
      t.ok(f.startMs < f.endMs && f.endMs <= s.durationMs, `${s.name}: fault window inside the run`);
      for (const i of f.endpoints) t.ok(i >= 0 && i < s.endpoints.length, `${s.name}: endpoint ${i} exists`);
    }
    t.ok(JSON.parse(JSON.stringify(s)).name === s.name, 'plain data (JSON round trip)');
  }
  t.same([...faultyEndpoints(scenarioByName('zone-outage')!)], [0, 1, 2]);
});
