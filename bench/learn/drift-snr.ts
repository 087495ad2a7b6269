// Diagnostic (not a benchmark; `npx tsx bench/learn/drift-snr.ts [seeds]`): how much signal the predictor has
// on the TUNING drift-then-crash scenarios. It records the faulty endpoint's per-window points (mean log
// latency of its requests over that of its peers' requests, as the predictor sees them) and reports their noise before the fault, the slope
// during the drift, and the z an oracle least-squares slope test (knowing when the drift began and the noise)
// would reach 4, 6 and 8 windows into it. docs/learning.md uses these figures.
import { scenarioByName } from '../../src/sim/scenarios.js';
import { runScenario } from '../../src/sim/simulator.js';
import { recordPoints } from './record-points.js';

const seeds = Number(process.argv[2] ?? 5);
const recorder = recordPoints();

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
console.log('scenario, seed: noise sd before the fault | slope per s during the drift | requests per window | oracle z after 4/6/8 windows | ratio in the last window before the crash');
for (const name of ['drift-10pct-crash-5', 'drift-10pct-crash-10']) {
  const spec = scenarioByName(name)!;
  if (spec.set !== 'tuning') throw new Error(`${name} is not a tuning scenario`);
  for (let seed = 1; seed <= seeds; seed++) {
    recorder.take();
    runScenario(spec, { policy: 'meshmedic', seed });
    const faultS = spec.faults[0]!.startMs / 1000;
    const hardS = spec.hardAtMs! / 1000;
    // The first model created is endpoint 0's, the faulty one in these scenarios.
    const points = recorder.take()[0]!;
    const e0 = points[0]!.epoch;
    const at = (s: number) => points.find((p) => p.epoch - e0 === s)?.latencyLogRatio ?? NaN;
    const pre = Array.from({ length: 12 }, (_, i) => at(faultS - 12 + i)).filter(Number.isFinite);
    const m = mean(pre);
    const sd = Math.sqrt(pre.reduce((a, b) => a + (b - m) ** 2, 0) / (pre.length - 1));
    const drift = Array.from({ length: hardS - faultS }, (_, i) => [i, at(faultS + i)] as const).filter(([, x]) => Number.isFinite(x));
    const tm = mean(drift.map(([t]) => t));
    const xm = mean(drift.map(([, x]) => x));
    const slope = drift.reduce((a, [t, x]) => a + (t - tm) * (x - xm), 0) / drift.reduce((a, [t]) => a + (t - tm) ** 2, 0);
    const requests = mean(points.filter((p) => p.epoch - e0 >= faultS && p.epoch - e0 < hardS).map((p) => p.requests));
    const oracle = [4, 6, 8].map((k) => ((slope * Math.sqrt(Array.from({ length: k }, (_, i) => (i - (k - 1) / 2) ** 2).reduce((a, b) => a + b, 0))) / sd).toFixed(1));
    console.log(`${name}, ${seed}: ${sd.toFixed(3)} | ${slope.toFixed(3)} | ${Math.round(requests)} | ${oracle.join(' / ')} | ${Math.exp(at(hardS - 1)).toFixed(2)}`);
  }
}
