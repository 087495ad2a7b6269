// Diagnostic (not a benchmark; `npx tsx bench/learn/saturation-queue.ts [seeds]`): would the TUNING
// saturation scenarios fail on their own if their 503s came from a bounded queue instead of a schedule?
// Every endpoint with a capacity gets the same rule — at most ceil(capacity × D) requests in flight, 503 at
// once beyond that (SimOptions.queueSeconds) — the scheduled 503s are removed, and the tuning non-failures
// with capacities (load growth, diurnal) run under the same rule. docs/learning.md quotes it.
import { SCENARIOS, type ScenarioSpec } from '../../src/sim/scenarios.js';
import { runScenario } from '../../src/sim/simulator.js';

const seeds = Number(process.argv[2] ?? 5);
const LANES = [
  { name: 'rules only', settings: { prediction: { enabled: false } } },
  { name: 'rules + prediction', settings: {} },
] as const;
const QUEUE_SECONDS = [0.01, 0.02, 0.03, 0.05, 0.1];

/** The scenario as run here: a saturation scenario without its scheduled 503s, any other as it is. */
const unscheduled = (base: ScenarioSpec): ScenarioSpec => (base.family === 'saturation' ? { ...base, faults: [] } : base);
/** The endpoint with the lowest capacity (the first when all are equal). */
const weakest = (spec: ScenarioSpec): number => spec.endpoints.reduce((w, e, i) => (e.capacityRps < spec.endpoints[w]!.capacityRps ? i : w), 0);

const tuning = SCENARIOS.filter((s) => s.suite === 'learning' && s.set === 'tuning' && s.endpoints.some((e) => e.capacityRps > 0));
console.log(`tuning scenarios with capacities, ${seeds} seeds; the saturation scenarios without their scheduled 503s`);
console.log('"weak": the saturation scenarios\' weak endpoint; elsewhere the lowest capacity (endpoint 0 when all are equal)');
console.log('(1) the most requests in flight at once (no bound), weak | the others (max), and as seconds of work at capacity');
for (const base of tuning) {
  const spec = unscheduled(base);
  const weak = weakest(spec);
  const cols = LANES.map((lane) => {
    let w = 0;
    let o = 0;
    let ws = 0;
    let os = 0;
    for (let seed = 1; seed <= seeds; seed++) {
      const r = runScenario(spec, { policy: 'meshmedic', seed, settings: lane.settings });
      r.maxInFlight.forEach((m, i) => {
        const secs = m / spec.endpoints[i]!.capacityRps;
        if (i === weak) { w = Math.max(w, m); ws = Math.max(ws, secs); } else { o = Math.max(o, m); os = Math.max(os, secs); }
      });
    }
    return `${lane.name}: ${w} (${(ws * 1000).toFixed(0)} ms) | ${o} (${(os * 1000).toFixed(0)} ms)`;
  });
  console.log(`${spec.name.padEnd(18)} ${cols.join('   ')}`);
}
console.log('(2) 503s from a full queue, summed over seeds: weak | the others; failed requests of the run');
for (const D of QUEUE_SECONDS) {
  for (const base of tuning) {
    const spec = unscheduled(base);
    const weak = weakest(spec);
    const cols = LANES.map((lane) => {
      let w = 0;
      let o = 0;
      let failed = 0;
      for (let seed = 1; seed <= seeds; seed++) {
        const r = runScenario(spec, { policy: 'meshmedic', seed, settings: lane.settings, queueSeconds: D });
        r.queueOverflows.forEach((x, i) => (i === weak ? (w += x) : (o += x)));
        failed += r.failed;
      }
      return `${lane.name}: ${w} | ${o}; failed ${failed}`;
    });
    console.log(`D ${(D * 1000).toFixed(0).padStart(3)} ms ${spec.name.padEnd(18)} ${cols.join('   ')}`);
  }
}
