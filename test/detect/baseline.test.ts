// Self-baseline detectors: CUSUM over log latency and the EWMA error chart, on seeded synthetic samples.
import t from 'tap';
import { DEFAULT_POLICY_SETTINGS as S } from '../../src/config/sections/healing.js';
import { updateErrorEwma, updateLatencyCusum, latencyBaseline } from '../../src/detect/baseline.js';
import { newBaseline, type Verdict } from '../../src/detect/types.js';
import { Rng } from '../../src/sim/rng.js';
import { around, close, fill, signals } from './_signals.js';

t.test('latency CUSUM: no alarm in 20,000 in-control windows; a 3σ shift alarms within 6 windows', async (t) => {
  const rng = new Rng(42);
  const st = newBaseline();
  const cfg = S.latencyBaseline;
  let alarms = 0;
  // log latency with σ 0.2 (above the floor), mean log(10 ms)
  for (let i = 0; i < 20_000; i++) if (updateLatencyCusum(st, Math.log(10_000) + 0.2 * rng.normal(), cfg)) alarms++;
  t.equal(alarms, 0, `in-control alarms (ARL0 ≈ 1e6 windows for normal data)`);
  t.ok(Math.abs(Math.exp(st.mean) - 10_000) < 500, `baseline learned: ${Math.exp(st.mean)}`);
  let k = 0;
  while (!updateLatencyCusum(st, Math.log(10_000) + 0.6 + 0.2 * rng.normal(), cfg) && k < 100) k++;
  t.ok(k < 6, `3σ shift detected after ${k + 1} windows`);
});

t.test('latency CUSUM: warm-up windows only learn; clipping bounds one wild window', async (t) => {
  const st = newBaseline();
  const cfg = S.latencyBaseline;
  for (let i = 0; i < cfg.warmupWindows; i++) t.notOk(updateLatencyCusum(st, Math.log(10_000) + (i % 2 ? 0.1 : -0.1), cfg));
  t.equal(st.n, cfg.warmupWindows);
  updateLatencyCusum(st, Math.log(10_000) + 50, cfg); // absurd sample
  t.ok(st.stat <= cfg.zClip - cfg.k + 1e-9, `one window adds at most zClip − k: ${st.stat}`);
  t.notOk(st.alarm);
});

t.test('error EWMA: steady background errors do not alarm; a jump to 20 % does', async (t) => {
  const rng = new Rng(7);
  const st = newBaseline();
  const cfg = S.errorBaseline;
  let alarms = 0;
  for (let i = 0; i < 5000; i++) {
    let f = 0;
    for (let j = 0; j < 50; j++) if (rng.next() < 0.005) f++;
    if (updateErrorEwma(st, f, 50, cfg)) alarms++;
  }
  t.equal(alarms, 0);
  let k = 0;
  while (!updateErrorEwma(st, 10, 50, cfg) && k < 50) k++;
  t.ok(k < 5, `20 % failures detected after ${k + 1} windows`);
  t.ok(st.mean < 0.01, 'the baseline did not learn from the alarming windows');
});

t.test('latency_baseline detector: degrade verdict with ARL evidence after a shift', async (t) => {
  const s = signals('a');
  let out: Verdict[] = [];
  let e = 0;
  for (; e < 40; e++) {
    fill(s, e % 1000, 40, 0, around(10_000, 0.1));
    close([s], e);
    out = [];
    latencyBaseline.detect({ now: (e + 1) * 1000, completedEpoch: e, endpoints: [s], settings: S }, out);
    t.same(out, [], `window ${e}`);
  }
  for (let k = 0; k < 10 && out.length === 0; k++, e++) {
    fill(s, e, 40, 0, around(30_000, 0.1));
    close([s], e);
    latencyBaseline.detect({ now: (e + 1) * 1000, completedEpoch: e, endpoints: [s], settings: S }, out);
  }
  t.equal(out.length, 1);
  t.equal(out[0]!.severity, 'degrade');
  t.equal(out[0]!.evidence.arl0Windows, 1028046);
  t.ok(Number(out[0]!.evidence.ratio) > 2.5);
});
