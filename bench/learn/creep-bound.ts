// Diagnostic (not a benchmark; `npx tsx bench/learn/creep-bound.ts`): how early ANY test could drain a
// creeping-errors endpoint at a stated false-alarm bound. For the TUNING creeps (and the same scenarios
// with the ramp's end at 3 % and 4 %), an oracle that knows the onset, the slope and the background rate
// accumulates the expected log-likelihood ratio of the ramp against the background; a test with a bound of
// one false alarm in A requests needs about ln A of it. No test that must also estimate the onset and
// slope can do better. docs/learning.md quotes it.
import { SCENARIOS } from '../../src/sim/scenarios.js';

const P0 = 0.001;
const BOUNDS = [1e6, 1e9];
console.log('scenario, ramp end: requests/s per endpoint | s into the ramp (of its length) at which the oracle LLR reaches ln 1e6 / ln 1e9 | share of the ramp\'s failures already sent by then');
for (const spec of SCENARIOS.filter((s) => s.set === 'tuning' && s.family === 'creeping-errors')) {
  const ramp = spec.faults[0]!;
  if (ramp.kind !== 'errors' || ramp.rampMs === undefined) throw new Error(`${spec.name}: expected an error ramp`);
  const rampS = ramp.rampMs / 1000;
  const perEndpoint = spec.rps / spec.endpoints.length;
  for (const top of [0.03, 0.04, ramp.fraction]) {
    const dt = 0.001;
    const total = (perEndpoint * top * rampS) / 2;
    let llr = 0;
    let failures = 0;
    const at: string[] = [];
    let k = 0;
    for (let t = 0; t < rampS && k < BOUNDS.length; t += dt) {
      const p = (top * t) / rampS;
      const lambda = perEndpoint * Math.max(p, P0);
      const lambda0 = perEndpoint * P0;
      llr += (lambda * Math.log(lambda / lambda0) - (lambda - lambda0)) * dt;
      failures += perEndpoint * p * dt;
      while (k < BOUNDS.length && llr >= Math.log(BOUNDS[k]!)) {
        at.push(`${t.toFixed(1)} s (${Math.round((100 * failures) / total)} %)`);
        k++;
      }
    }
    while (at.length < BOUNDS.length) at.push('not within the ramp');
    console.log(`${spec.name}, ${(top * 100).toFixed(0)} %: ${perEndpoint} | ${rampS} s ramp: ln 1e6 at ${at[0]}, ln 1e9 at ${at[1]}`);
  }
}
