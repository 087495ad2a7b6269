// The whole scenario catalogue in virtual time (seeded, deterministic): its shape, no false ejections
// anywhere, the tuning set's hard-fault targets; and longer runs of some scenarios (scenarioAt) for
// recovery and ejection timing. Held-out scenarios are only checked for safety here, never tuned on.
import t from 'tap';
import { SCENARIOS, FAMILIES, scenarioByName, scenarioAt, faultyEndpoints, type Timing } from '../../src/sim/scenarios.js';
import { FAULT_KINDS } from '../../src/sim/faults.js';
import { runScenario, type SimResult } from '../../src/sim/simulator.js';

/** The timing the older, longer simulator checks use: a 40 s fault after 30 s, 20 s to recover. */
const LONG: Timing = { warmMs: 30_000, faultMs: 40_000, afterMs: 20_000 };
const long = (name: string) => scenarioAt(name, LONG)!;

const results = new Map<string, { meshmedic: SimResult; envoy: SimResult }>();
for (const s of SCENARIOS) {
  results.set(s.name, { meshmedic: runScenario(s, { policy: 'meshmedic', seed: 1 }), envoy: runScenario(s, { policy: 'envoy-default', seed: 1 }) });
}

t.test('the catalogue: every fault at 5 and 10 endpoints, partial and zone faults at 20 too, a held-out set', async (t) => {
  for (const f of FAMILIES.filter((f) => f.set === 'tuning')) {
    t.ok(f.sizes.includes(5) && f.sizes.includes(10), `${f.family}: 5 and 10 endpoints`);
    if (/partial|zone/.test(f.family)) t.ok(f.sizes.includes(20), `${f.family}: 20 endpoints`);
  }
  const held = SCENARIOS.filter((s) => s.set === 'held-out');
  t.ok(held.length >= 6, `${held.length} held-out scenarios`);
  const tuningTiming = JSON.stringify(SCENARIOS.find((s) => s.set === 'tuning')!.timing);
  for (const s of held) t.not(JSON.stringify(s.timing), tuningTiming, `${s.name}: its own timing`);
  const kinds = new Set(SCENARIOS.flatMap((s) => s.faults.map((f) => f.kind)));
  for (const k of FAULT_KINDS) t.ok(kinds.has(k), `fault kind ${k} is used by some scenario`);
});

t.test('the catalogue is well-formed plain data for the other drivers (bench, demo, backend)', async (t) => {
  const names = new Set<string>();
  for (const s of SCENARIOS) {
    t.notOk(names.has(s.name), `unique name ${s.name}`);
    names.add(s.name);
    t.equal(s.name, `${s.family}-${s.endpoints.length}`, 'the name states the cluster size');
    for (const f of s.faults) {
      t.ok(f.startMs < f.endMs && f.endMs < s.durationMs, `${s.name}: fault window inside the run`);
      for (const i of f.endpoints) t.ok(i >= 0 && i < s.endpoints.length, `${s.name}: endpoint ${i} exists`);
    }
    t.equal(JSON.parse(JSON.stringify(s)).name, s.name, 'plain data (JSON round trip)');
  }
  t.same([...faultyEndpoints(scenarioByName('zone-outage-10')!)], [0, 1, 2, 3]);
});

for (const s of SCENARIOS) {
  t.test(`${s.name} (${s.set}): ${s.description}`, async (t) => {
    const { meshmedic: m, envoy: e } = results.get(s.name)!;
    t.equal(m.falseEjections, 0, 'no endpoint without a fault is ejected');
    if (s.endpoints.length < 10) t.equal(e.falseEjections, 0, 'envoy-default: nothing ejected below 10 hosts');
    t.equal(m.engineErrors, 0, 'the engine never failed');
    t.ok(m.requests > 0.9 * s.rps * (s.durationMs / 1000) * (s.load ? 1 : 1), 'the offered load was served');
    // Decision targets are asserted for hard faults of the tuning set; the rest are reported.
    const target = s.targets.decideWithinMs;
    if (s.set === 'tuning' && s.hard && target !== undefined) t.ok(m.detectMs >= 0 && m.detectMs <= target, `decided after ${m.detectMs} ms (target ${target} ms)`);
    t.comment(`meshmedic: failed ${m.failed}, decided ${Math.round(m.detectMs)} ms; envoy-default: failed ${e.failed}, decided ${Math.round(e.detectMs)} ms`);
  });
}

t.test('hard failures are decided within 5 requests or 1 s at 200 rps', async (t) => {
  for (const name of ['crash-5', 'crash-10', 'hard-5xx-5', 'hard-5xx-10', 'flapping-5', 'zone-outage-5', 'zone-outage-10']) {
    const r = results.get(name)!.meshmedic;
    t.ok(r.detectMs <= 1000, `${name}: ${r.detectMs} ms`);
    const first = r.decisions.find((d) => d.action === 'eject')!;
    t.ok(Number(first.evidence.consecutive) <= 5, `${name}: ejected after ${first.evidence.consecutive} failed requests`);
  }
});

t.test('recovery: crash, hard-5xx and black-hole are back at full weight within 10 s of the fault ending, across seeds', async (t) => {
  for (const name of ['crash-5', 'hard-5xx-5', 'blackhole-5']) {
    for (const seed of [1, 2, 3]) {
      const r = runScenario(long(name), { policy: 'meshmedic', seed });
      t.ok(r.restoreMs >= 0 && r.restoreMs <= 10_000, `${name} seed ${seed}: full weight ${r.restoreMs} ms after the fault ended`);
      // Probes kept it out while the fault lasted: one ejection, no canary round spent on a dead endpoint.
      t.equal(r.ejections, 1, `${name} seed ${seed}: ejected once`);
      const target = scenarioByName(name)!.targets.decideWithinMs ?? 1000;
      t.ok(r.detectMs >= 0 && r.detectMs <= target, `${name} seed ${seed}: detected after ${r.detectMs} ms (target ${target} ms)`);
      t.equal(r.falseEjections, 0);
    }
  }
});

t.test('recovery: without probes the backoff timer alone cannot bring a 40 s crash back quickly (what probes fix)', async (t) => {
  const r = runScenario(long('crash-5'), { policy: 'meshmedic', seed: 1, probes: false });
  t.ok(Number.isNaN(r.restoreMs) || r.restoreMs > 10_000, `timer only: ${r.restoreMs} ms`);
  t.ok(r.ejections > 1, 'canary rounds during the fault, each at a higher level');
});

t.test('gray failure (3× on one of five) is detected within 3 s, across seeds', async (t) => {
  for (const seed of [1, 2, 3, 4]) {
    const r = runScenario(long('gray-3x-5'), { policy: 'meshmedic', seed });
    t.ok(r.detectMs >= 0 && r.detectMs <= 3000, `seed ${seed}: ${r.detectMs} ms`);
    t.equal(r.falseEjections, 0);
  }
});

t.test('gray failure (3× on one of five): ejected (not only de-weighted) soon, across 12 seeds', async (t) => {
  const times: number[] = [];
  for (let seed = 1; seed <= 12; seed++) {
    const r = runScenario(long('gray-3x-5'), { policy: 'meshmedic', seed });
    const ej = r.decisions.find((d) => d.action === 'eject');
    t.ok(ej, `seed ${seed}: ejected`);
    times.push(ej ? ej.at - 1_700_000_000_000 - 30_000 : Infinity);
    t.equal(r.falseEjections, 0);
  }
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  t.ok(Math.max(...times) <= 5000, `every ejection within 5 s: ${times.join(', ')} ms`);
  t.ok(mean <= 3000, `mean time to ejection ${mean.toFixed(0)} ms ≤ 3 s`);
});

t.test('gray 10×: the balancer already starves the slow endpoint; client p99 stays near its fault-free level', async (t) => {
  const m = results.get('gray-10x-5')!.meshmedic;
  t.ok(m.p99Ms < 1.2 * results.get('crash-5')!.meshmedic.p99Ms, `p99 ${m.p99Ms} ms`);
  t.equal(m.falseEjections, 0);
});

t.test('crash on ten endpoints: envoy-default ejects (5 consecutive failures)', async (t) => {
  const { meshmedic: m, envoy: e } = results.get('crash-10')!;
  t.ok(e.ejections >= 1, 'Envoy can act with 10 hosts');
  t.ok(m.failed <= e.failed, `${m.failed} ≤ ${e.failed}`);
});

t.test('overload: latency rising everywhere is load — nothing is ejected or de-weighted', async (t) => {
  for (const name of ['overload-5', 'overload-10']) {
    const r = results.get(name)!.meshmedic;
    t.equal(r.ejections, 0, name);
    t.equal(r.falseDeweights, 0, name);
    t.ok(r.p99Ms > 3 * results.get('crash-5')!.meshmedic.p99Ms, `${name}: the scenario really loads the endpoints (p99 ${r.p99Ms} ms)`);
  }
});

t.test('zone outage below 10 hosts: envoy-default ejects nothing, meshmedic contains it', async (t) => {
  const { meshmedic: m, envoy: e } = results.get('zone-outage-5')!;
  t.ok(e.failedPct > 10, `envoy-default failed ${e.failedPct.toFixed(1)} %`);
  t.ok(m.failedPct < 1, `meshmedic failed ${m.failedPct.toFixed(2)} %`);
});

t.test('deterministic: same seed, same run; another seed, another run', async (t) => {
  const s = scenarioByName('partial-5xx-30-5')!;
  const a = runScenario(s, { policy: 'meshmedic', seed: 9, keepDecisions: false });
  const b = runScenario(s, { policy: 'meshmedic', seed: 9, keepDecisions: false });
  const c = runScenario(s, { policy: 'meshmedic', seed: 10, keepDecisions: false });
  const strip = (r: SimResult) => ({ ...r, cpuMs: 0 });
  t.same(strip(a), strip(b));
  t.not(a.requests, c.requests);
});

t.test('a bounded queue (queueSeconds): off by default; on, an endpoint holds at most ⌈capacity × D⌉ in flight and answers 503 beyond', async (t) => {
  const s = scenarioByName('overload-5')!;
  const plain = results.get('overload-5')!.meshmedic;
  t.same(plain.queueOverflows, [0, 0, 0, 0, 0], 'no bound, no overflow');
  t.ok(Math.max(...plain.maxInFlight) > 0, `in flight measured (${plain.maxInFlight.join(', ')})`);
  const wide = runScenario(s, { policy: 'meshmedic', seed: 1, queueSeconds: 1000 });
  t.same({ ...wide, cpuMs: 0 }, { ...plain, cpuMs: 0 }, 'a bound never reached changes nothing');
  const D = 0.02;
  const r = runScenario(s, { policy: 'meshmedic', seed: 1, queueSeconds: D });
  const overflows = r.queueOverflows.reduce((a, b) => a + b, 0);
  t.ok(overflows > 0, `tripled load overflows a ${D * 1000} ms queue (${r.queueOverflows.join(', ')})`);
  r.maxInFlight.forEach((m, i) => t.ok(m <= Math.ceil(s.endpoints[i]!.capacityRps * D), `endpoint ${i}: ${m} in flight at most`));
  // Each overflow is a failed request (a 503, no retries in the simulator). The background errors need not
  // add the unbounded run's count on top: other requests reach other endpoints once the queue sheds load.
  t.ok(r.failed >= overflows, `the overflows are failed requests (${r.failed} failed, ${overflows} overflows; ${plain.failed} failed without the bound)`);
  // Endpoints without a capacity are never bounded.
  const noCap = runScenario(scenarioByName('crash-5')!, { policy: 'meshmedic', seed: 1, queueSeconds: D });
  t.same(noCap.queueOverflows, [0, 0, 0, 0, 0]);
});
