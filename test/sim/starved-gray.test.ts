// A gray failure the Peak-EWMA balancer starves at once (+100 ms on a 3 ms service), in virtual time —
// a quiet machine: no detector ever gets a window of its requests, so only the balancer's trickle and
// starved_latency can see it. It must be de-weighted during the fault and back at full weight after.
import t from 'tap';
import { runScenario } from '../../src/sim/simulator.js';
import type { ScenarioSpec } from '../../src/sim/scenarios.js';

const healthy = { medianMs: 3, zone: 'a', priority: 0, errorRate: 0.001, capacityRps: 0 };
const spec: ScenarioSpec = {
  name: 'starved-gray-3', family: 'starved-gray', set: 'tuning', title: 'gray failure +100 ms, starved by the balancer',
  description: 'one of 3 answers 200, 100 ms slower, for 20 s', rps: 150, durationMs: 45_000,
  timing: { warmMs: 10_000, faultMs: 20_000, afterMs: 15_000 },
  endpoints: [healthy, healthy, healthy], latencySigma: 0.35, requestTimeoutMs: 1000, hard: false,
  faults: [{ kind: 'latency', factor: 1, addMs: 100, endpoints: [0], startMs: 10_000, endMs: 30_000 }],
  targets: { falseEjections: 0 },
};

for (const seed of [1, 2, 3, 4, 5]) {
  t.test(`seed ${seed}: decided during the fault, restored after it, nothing else touched`, async (t) => {
    const r = runScenario(spec, { policy: 'meshmedic', seed });
    const first = r.decisions.find((d) => d.applied && (d.action === 'weight' || d.action === 'eject' || d.action === 'drain'));
    t.ok(r.detectMs <= 6000, `decided ${r.detectMs} ms into the 20 s fault (seed ${seed}) by ${first?.action} (${first?.reason})`);
    t.ok(r.restoreMs <= 8000, `back at full weight ${r.restoreMs} ms after the fault (seed ${seed})`);
    t.equal(r.falseEjections + r.falseDeweights, 0, `no decision on a healthy endpoint (seed ${seed})`);
    t.equal(r.engineErrors, 0);
  });
}
