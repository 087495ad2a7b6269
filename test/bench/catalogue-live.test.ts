// The catalogue's consumers agree: every scenario runs through the simulator, and its faults through real
// backends (the test backend speaking the catalogue's vocabulary) on loopback. Each scenario gets a short
// live check of its fault phase (every faulty endpoint misbehaves as effectAt says, healthy ones answer);
// a representative subset (one per fault kind, every cluster size) also gets a 2-second run of its fault
// phase through a real meshmedic sidecar. Running all 30+ through a sidecar would take minutes.
import t from 'tap';
import { quickConfig } from '../../src/cli/quick.js';
import { silentLogger } from '../../src/core/log.js';
import { startSidecar } from '../../src/runtime/sidecar.js';
import { startBackend, type Backend } from '../../src/testing/backend.js';
import { SCENARIOS, faultsOf, scenarioByName, type ScenarioSpec } from '../../src/sim/scenarios.js';
import { effectAt, newEffect } from '../../src/sim/faults.js';
import { runScenario } from '../../src/sim/simulator.js';

const SIDECAR_SUBSET = ['crash-10', 'blackhole-5', 'partial-5xx-30-20', 'gray-3x-5', 'flapping-5', 'slow-degradation-8'];

async function cluster(t: Tap, s: ScenarioSpec, seed: number): Promise<Backend[]> {
  const bs = await Promise.all(s.endpoints.map((e, i) => startBackend({ seed: seed * 100 + i, medianMs: e.medianMs / 5, sigma: 0.2, errorRate: 0, capacityRps: 0 })));
  t.teardown(() => Promise.all(bs.map((b) => b.close())));
  return bs;
}
type Tap = { teardown(fn: () => unknown): void };

async function hit(url: string, timeoutMs: number): Promise<{ status: number; ms: number }> {
  const t0 = performance.now();
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await r.arrayBuffer();
    return { status: r.status, ms: performance.now() - t0 };
  } catch {
    return { status: 0, ms: performance.now() - t0 };
  }
}

/** What a live check can assert about an endpoint with this effect. */
function behaviour(e: ReturnType<typeof newEffect>): 'refused' | 'black hole' | 'all errors' | 'healthy' | 'mixed' {
  if (e.down !== 0) return e.down === 1 ? 'refused' : 'black hole';
  if (e.errorFraction >= 1) return 'all errors';
  return e.errorFraction === 0 && e.latencyFactor < 5 ? 'healthy' : 'mixed';
}

/** The middle of the fault phase (or of the run, without faults): where the live checks look. */
const middle = (s: ScenarioSpec): number => (s.faults.length ? Math.max(...s.faults.map((f) => f.startMs)) + 200 : s.durationMs / 2);

for (const s of SCENARIOS) {
  t.test(`${s.name}: simulator and real backends agree on the faults`, async (t) => {
    const seed = 1;
    const sim = runScenario(s, { policy: 'meshmedic', seed, keepDecisions: false });
    t.ok(sim.requests > 0 && sim.engineErrors === 0, `simulated: ${sim.requests} requests, ${sim.failed} failed (seed ${seed})`);
    const bs = await cluster(t, s, seed);
    const at = middle(s);
    for (let i = 0; i < bs.length; i++) {
      // Each endpoint is anchored just before its own check (t0 so that "now" is inside the fault phase: the
      // backend realizes its own faults from the catalogue), and the check is repeated with a fresh anchor when
      // the expected behaviour changed while it ran: a loaded machine can carry a short phase (the creeping
      // scenarios' 1-s crash) past its end, and a backend re-opens its listener asynchronously.
      for (let attempt = 1; ; attempt++) {
        const t0 = Date.now() - at;
        bs[i]!.setFault({ faults: faultsOf(s, i), t0 });
        await new Promise((r) => setTimeout(r, 30)); // listeners follow crash/flap state
        const e = effectAt(faultsOf(s, i), Date.now() - t0, newEffect());
        const expected = behaviour(e);
        // A black hole is judged by a short timeout; anything else gets time to answer on a loaded machine.
        const answers = await Promise.all(Array.from({ length: 8 }, () => hit(bs[i]!.url, e.down === 2 ? 300 : 3000)));
        const after = behaviour(effectAt(faultsOf(s, i), Date.now() - t0, newEffect()));
        if (after !== expected && attempt < 3) {
          t.comment(`endpoint ${i}: the fault's phase moved from ${expected} to ${after} during the check; checked again`);
          continue;
        }
        const ok = answers.filter((a) => a.status === 200).length;
        const seen = answers.map((a) => a.status).join(' ');
        if (expected === 'refused' || expected === 'black hole') t.equal(ok, 0, `endpoint ${i}: down (${expected}; ${seen})`);
        else if (expected === 'all errors') t.ok(answers.every((a) => a.status === e.status), `endpoint ${i}: all ${e.status} (${seen})`);
        else if (expected === 'healthy') t.equal(ok, 8, `endpoint ${i}: answers (${seen})`);
        else t.ok(answers.every((a) => a.status === 200 || a.status === e.status || a.status === 0), `endpoint ${i}: answers or fails as the fault says (${seen})`);
        break;
      }
    }
  });
}

t.test('a representative subset: 2 s of the fault phase through a real meshmedic sidecar', async (t) => {
  for (const name of SIDECAR_SUBSET) {
    const s = scenarioByName(name)!;
    const bs = await cluster(t, s, 2);
    const v = quickConfig({ listen: '127.0.0.1:0', upstream: bs.map((b) => b.url).join(','), service: 's', admin: '127.0.0.1:0' });
    if (!v.valid) throw new Error(v.errors.join('; '));
    // The scenario's request timeout as the proxy's upstream timeout, as in the benchmark.
    const config = { ...v.result, proxy: { ...v.result.proxy, headersTimeoutMs: s.requestTimeoutMs, bodyTimeoutMs: s.requestTimeoutMs } };
    const sc = await startSidecar(config, { log: silentLogger });
    t.teardown(() => sc.close());
    const t0 = Date.now() - s.faults[0]!.startMs;
    for (let i = 0; i < bs.length; i++) bs[i]!.setFault({ faults: faultsOf(s, i), t0 });
    // 2 s of open-loop traffic at 100 requests/s (200 requests), then every answer.
    const pending: Promise<{ status: number }>[] = [];
    for (let k = 0; k < 200; k++) {
      pending.push(hit(`http://${sc.addresses.outbound}/`, 4000));
      await new Promise((r) => setTimeout(r, 10));
    }
    const results = await Promise.all(pending);
    const ok = results.filter((r) => r.status === 200).length;
    const faulty = new Set(s.faults.flatMap((f) => f.endpoints));
    const hits = bs.map((b) => b.stats().requests);
        t.ok(ok / results.length >= 0.9, `${name}: ${ok} of ${results.length} answered 200 through the sidecar`);
    t.ok(hits.some((h, i) => !faulty.has(i) && h > 0), `${name}: healthy endpoints served (${hits.join(', ')})`);
    await sc.close();
  }
});
