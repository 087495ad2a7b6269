// The failure predictor on synthetic series: a rising trend is forecast (de-weight, then drain), and
// what is not a failure — noise, warm-up, a level shift, a shared rise — is left alone.
import t from 'tap';
import { DEFAULT_POLICY_SETTINGS } from '../../src/config/sections/healing.js';
import { cochranArmitage, emptyFit, theilSen } from '../../src/learn/trend.js';
import { EndpointModel, PRESOLVED_THRESHOLDS, cachedThreshold, errorDrainH, type Prediction } from '../../src/learn/predictor.js';
import { ServicePredictor } from '../../src/learn/prediction.js';
import { cusumHForArl } from '../../src/detect/arl.js';
import { Rng } from '../../src/sim/rng.js';
import { normalCdf } from '../../src/detect/robust.js';

const cfg = DEFAULT_POLICY_SETTINGS.prediction;
const WINDOW_MS = 1000;

interface Series {
  /** ln ratio to peers at window k (NaN: not measurable). */
  lat: (k: number) => number;
  /** failure probability at window k. */
  err?: (k: number) => number;
  peerErr?: (k: number) => number;
  requests?: number;
}

/** Feed `n` windows of a series with seeded noise; returns every window's assessment. */
function run(series: Series, n: number, seed: number): Prediction[] {
  const rng = new Rng(seed);
  const m = new EndpointModel(cfg.windows, cfg.errorWindows);
  const out: Prediction[] = [];
  const req = series.requests ?? 40;
  for (let k = 0; k < n; k++) {
    let failures = 0;
    const p = series.err ? series.err(k) : 0.002;
    for (let r = 0; r < req; r++) if (rng.next() < p) failures++;
    // Mean log latency of ~40 lognormal(σ 0.55) requests against the peers': standard error ≈ 0.1 in ln,
    // and the window reports it.
    m.push({ epoch: 1000 + k, requests: req, failures, latencyLogRatio: series.lat(k) + 0.1 * rng.normal(), latencySe: 0.1, peerFailureRate: series.peerErr ? series.peerErr(k) : 0.002 });
    out.push({ ...m.assess(cfg, WINDOW_MS) });
  }
  return out;
}

const firstAt = (ps: Prediction[], sev: 'degrade' | 'drain') => ps.findIndex((p) => p.severity === sev || (sev === 'degrade' && p.severity === 'drain'));
const count = (ps: Prediction[]) => ps.filter((p) => p.severity !== 'none').length;

t.test('Theil–Sen and Mann–Kendall on an exact line, with an outlier', async (t) => {
  const tt = Float64Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const x = Float64Array.from(tt, (v) => 0.5 + 0.1 * v);
  x[4] = 50; // a wild window: the slope must not follow it (breakdown point 29 %)
  const fit = theilSen(tt, x, 0, 10, 9, new Float64Array(45), new Float64Array(10), emptyFit());
  t.equal(fit.n, 10);
  t.ok(Math.abs(fit.slope - 0.1) < 1e-9, `slope ${fit.slope}`);
  t.ok(Math.abs(fit.level - 1.4) < 1e-9, `level ${fit.level}`);
  t.ok(fit.z > 3, `z ${fit.z}`);
  x[2] = NaN; // missing windows are skipped
  t.equal(theilSen(tt, x, 0, 10, 9, new Float64Array(45), new Float64Array(10), emptyFit()).n, 9);
  const flat = Float64Array.from(tt, () => 1);
  t.equal(theilSen(tt, flat, 0, 10, 9, new Float64Array(45), new Float64Array(10), emptyFit()).z, 0);
});

t.test('Cochran–Armitage: rising proportion found, constant one not', async (t) => {
  const tt = Float64Array.from({ length: 20 }, (_, i) => i);
  const n = Float64Array.from(tt, () => 100);
  const rising = Float64Array.from(tt, (i) => i / 2); // 0 % → 9.5 %
  const fit = cochranArmitage(tt, rising, n, 20, 19, emptyFit());
  t.ok(Math.abs(fit.slope - 0.005) < 1e-9, `slope ${fit.slope}`);
  t.ok(Math.abs(fit.level - 0.095) < 1e-9, `level ${fit.level}`);
  t.ok(fit.z > 5, `z ${fit.z}`);
  const flat = Float64Array.from(tt, () => 3);
  t.equal(cochranArmitage(tt, flat, n, 20, 19, emptyFit()).z, 0);
  t.equal(cochranArmitage(tt, flat, new Float64Array(20), 20, 19, emptyFit()).n, 0, 'no traffic: no fit');
});

t.test('latency drift: drained before the failure line', async (t) => {
  for (const rate of [0.05, 0.1, 0.2]) {
    let early = 0;
    for (let seed = 1; seed <= 5; seed++) {
      // Flat for 20 windows, then latency grows linearly by `rate` of the baseline per second.
      const ps = run({ lat: (k) => (k < 20 ? 0 : Math.log(1 + rate * (k - 20))) }, 60, seed);
      const dr = firstAt(ps, 'drain');
      const cross = 20 + (cfg.latencyFailRatio - 1) / rate; // where the latency reaches the failure line
      // Bound: the failure line (2×) plus two windows, or 3× for the fastest drift (20 %/s reaches 2× in
      // 5 s, 3× in 10 s).
      const bound = rate >= 0.2 ? 20 + 2 / rate : cross + 2;
      if (dr > 20 && dr <= bound) early++;
      t.ok(dr > 20, `rate ${rate} seed ${seed}: drained at window ${dr}, failure line at ${cross}, bound ${bound}`);
      const p = ps[dr]!;
      t.equal(p.channel, 'latency');
      // Confidence is Φ of the rising slope's z, which the gate holds at slopeZ or more.
      t.ok(p.confidence >= normalCdf(cfg.slopeZ) - 1e-4 && p.etaMs <= cfg.horizonMs, JSON.stringify(p));
    }
    // A slow ramp in noise can look flat for a few windows and be taken for a level shift, which delays
    // its drain (docs/learning.md): 3 of these 5 seeds at 5 %/s are in time, every seed at 10 and 20 %/s.
    t.ok(early >= (rate < 0.1 ? 3 : 5), `rate ${rate}: drained in time in ${early} of 5 seeds`);
  }
});

t.test('a sudden level shift is mostly not taken for a rise', async (t) => {
  // A step to 1.5× with no usual ratio learned: the CUSUM leaves zero at once, and the windows after the
  // step are flat, so the shift becomes the reference. Measured on seeds 1–200: 18 drained (9 %); a
  // step is judged by noise for up to SHIFT_JUDGED_AT windows (docs/learning.md).
  let drained = 0;
  for (let seed = 1; seed <= 200; seed++) if (run({ lat: (k) => (k < 30 ? 0 : Math.log(1.5)) }, 80, seed).some((p) => p.severity === 'drain')) drained++;
  t.ok(drained <= 40, `${drained} of 200 level shifts drained`);
});

t.test('creeping errors: forecast while still below the failure line', async (t) => {
  for (let seed = 1; seed <= 5; seed++) {
    // 0 → 5 % over 30 windows after 30 quiet windows.
    const ps = run({ lat: () => 0, err: (k) => (k < 30 ? 0.002 : 0.002 + (0.05 * (k - 30)) / 30) }, 60, seed);
    const dw = firstAt(ps, 'degrade');
    // Failures are rare events (40 requests a window here): the forecast comes once enough have been seen.
    t.ok(dw > 30 && dw < 60, `seed ${seed}: errors forecast at window ${dw}, before the crash at 60`);
    t.equal(ps[dw]!.channel, 'errors');
    // The forecast states the failure rate it saw (the fitted fraction, not the excess over the peers):
    // what ends its drain depends on it. Near the ramp's own rate at that window.
    const rate = ps[dw]!.failureRate;
    const truth = 0.002 + (0.05 * (dw - 30)) / 30;
    t.ok(rate > 0.005 && Math.abs(rate - truth) < 0.02, `seed ${seed}: failure rate ${rate} at window ${dw} (ramp ${truth.toFixed(4)})`);
  }
  // A latency forecast states none.
  const lat = run({ lat: (k) => (k < 20 ? 0 : Math.log(1 + 0.1 * (k - 20))) }, 40, 1).find((p) => p.severity !== 'none')!;
  t.equal(lat.channel, 'latency');
  t.ok(Number.isNaN(lat.failureRate), 'latency forecast: no failure rate');
});

t.test('creeping errors: drained within the first two thirds of the ramp in most runs', async (t) => {
  // 0 → 5 % over 30 windows of 40 requests, after 30 quiet windows. With the failure line at 5 % above
  // the peers the drain came 22 windows into the ramp (median of 50 seeds) and by window 20 in 5 of 50;
  // at 3 % (the default) 19 windows in, and by window 20 in 29 of 50. Every window of the ramp spent
  // in rotation fails more requests than the one before.
  let early = 0;
  const late: number[] = [];
  for (let seed = 1; seed <= 50; seed++) {
    const ps = run({ lat: () => 0, err: (k) => (k < 30 ? 0.002 : 0.002 + (0.05 * (k - 30)) / 30) }, 60, seed);
    const at = firstAt(ps, 'drain') - 30;
    if (at >= 0 && at <= 20) early++;
    else late.push(seed);
  }
  t.ok(early >= 20, `${early} of 50 creeps drained by window 20 of the ramp (late or never: seeds ${late.join(', ')})`);
});

t.test('creeping errors at 20 requests a window: the error CUSUM judges the few failures as they come', async (t) => {
  // 0 → 5 % over 30 windows of 20 requests (an endpoint of ten): by window 20 of the ramp the endpoint
  // has failed ~7 requests. With a fixed floor of 8 failures in the windows and a three-window binomial
  // check, 6 of 50 seeds were drained by then; with the Bernoulli CUSUM against the peers' rate, 12.
  let early = 0;
  for (let seed = 1; seed <= 50; seed++) {
    const ps = run({ lat: () => 0, err: (k) => (k < 30 ? 0.002 : 0.002 + (0.05 * (k - 30)) / 30), requests: 20 }, 60, seed);
    const at = firstAt(ps, 'drain') - 30;
    if (at >= 0 && at <= 20) early++;
  }
  t.ok(early >= 10, `${early} of 50 creeps drained by window 20 of the ramp`);
});

t.test('slow creeps (0 → 3 % and 4 % over 30 windows): the error CUSUM above its drain threshold drains without the window count', async (t) => {
  // Before the CUSUM's own drain threshold a drain needed confirmWindows windows of forecasts in a row,
  // which a slow creep's few failures interrupt: by the ramp's end 25 of 50 creeps to 3 % were drained,
  // and 29 of 50 to 4 % by window 25 (now 33 and 39).
  const drainedBy = (frac: number, by: number) => {
    let n = 0;
    for (let seed = 1; seed <= 50; seed++) {
      const ps = run({ lat: () => 0, err: (k) => (k < 30 ? 0.002 : 0.002 + (frac * (k - 30)) / 30) }, 60, seed);
      const at = firstAt(ps, 'drain') - 30;
      if (at >= 0 && at <= by) n++;
    }
    return n;
  };
  const three = drainedBy(0.03, 30);
  t.ok(three >= 30, `${three} of 50 creeps to 3 % drained by the ramp's end`);
  const four = drainedBy(0.04, 25);
  t.ok(four >= 35, `${four} of 50 creeps to 4 % drained by window 25 of the ramp`);
});

t.test('the error CUSUM\'s drain threshold is ln of its in-control run length in requests, and holds it', async (t) => {
  t.equal(errorDrainH({ errorDrainArl: 1e9 }), Math.log(1e9));
  // 1,000,000 in-control requests (40 a window at the peers' 0.2 %): an LLR CUSUM crosses ln(ARL) at most
  // about once per ARL requests (Wald's bound is conservative: far fewer here).
  for (const arl of [1e3, 1e4]) {
    const c = { ...cfg, errorDrainArl: arl };
    const h = errorDrainH(c);
    const rng = new Rng(7);
    const m = new EndpointModel(c.windows, c.errorWindows);
    let alarms = 0;
    for (let k = 0; k < 25_000; k++) {
      let f = 0;
      for (let r = 0; r < 40; r++) if (rng.next() < 0.002) f++;
      m.push({ epoch: k, requests: 40, failures: f, latencyLogRatio: NaN, latencySe: NaN, peerFailureRate: 0.002 });
      m.assess(c, WINDOW_MS);
      if (m.errorCusum >= h) {
        alarms++;
        m.errorCusum = 0;
      }
    }
    t.ok(alarms <= 1_000_000 / arl, `ARL ${arl}: ${alarms} crossings of h = ${h.toFixed(2)} in 1,000,000 requests`);
  }
});

t.test('an endpoint that always fails more than its peers is judged against its own usual rate', async (t) => {
  // 1 % failures, steady, against peers at 0.1 %: not a trend. Against the peers alone the error test
  // saw a rise again and again (11 de-weights and 3 drains over these 9,000 windows); once the
  // endpoint's own rate is learned (3,000 requests) it is the reference.
  let forecasts = 0;
  for (let seed = 1; seed <= 3; seed++) forecasts += count(run({ lat: () => 0, err: () => 0.01, peerErr: () => 0.001 }, 3000, seed));
  t.equal(forecasts, 0, 'no forecast for a steadily 1 % endpoint');
});

t.test('not failures: noise, warm-up, a level shift, a rise shared with the peers', async (t) => {
  const n = 3000;
  for (let seed = 1; seed <= 3; seed++) {
    t.equal(count(run({ lat: () => 0 }, n, seed)), 0, `seed ${seed}: stationary noise`);
    // A steadily slower endpoint whose usual ratio is not learned yet: rare soft de-weights, no drain.
    const slower = run({ lat: () => Math.log(1.2) }, n, seed);
    t.equal(slower.filter((p) => p.severity === 'drain').length, 0, `seed ${seed}: a steadily 1.2× slower endpoint, de-weights ${count(slower)}`);
    t.ok(count(slower) <= 10, `seed ${seed}: at most 10 de-weights in ${n} windows`);
    // Warm-up: starts 3× slower than the peers and converges (JIT, caches).
    t.equal(count(run({ lat: (k) => Math.log(1 + 2 * Math.exp(-k / 8)) }, 80, seed)), 0, `seed ${seed}: warm-up`);
    // A deploy of a slower version: one step to 1.5×, then flat. Soft de-weights may follow a step;
    // a drain must not.
    const step = run({ lat: (k) => (k < 30 ? 0 : Math.log(1.5)) }, 80, seed);
    t.equal(step.filter((p) => p.severity === 'drain').length, 0, `seed ${seed}: level shift, de-weights ${count(step)}`);
    // Errors creeping up on every endpoint together: the peers' rate rises with this one's.
    const rise = (k: number) => Math.min(0.05, k / 600);
    const shared = run({ lat: () => 0, err: rise, peerErr: rise }, 60, seed);
    t.equal(count(shared), 0, `seed ${seed}: shared error rise`);
    // Background errors of 0.5 % with the peers at 0.2 %.
    t.equal(count(run({ lat: () => 0, err: () => 0.005 }, n, seed)), 0, `seed ${seed}: steady background errors`);
  }
});

t.test('a trend that reverses clears the forecast', async (t) => {
  const ps = run({ lat: (k) => (k < 10 ? 0 : k < 25 ? Math.log(1 + 0.1 * (k - 10)) : Math.log(2.5) - 0.15 * (k - 25)) }, 60, 3);
  t.ok(count(ps.slice(10, 27)) > 0, 'forecast while rising');
  t.equal(count(ps.slice(32)), 0, 'none once falling');
});

t.test('model state is small and bounded', async (t) => {
  const m = new EndpointModel(cfg.windows, cfg.errorWindows);
  t.ok(m.stateBytes() <= 4096, `${m.stateBytes()} bytes`);
  t.ok(new EndpointModel(64, 64).stateBytes() <= 4096, 'largest configurable model');
  for (let k = 0; k < 500; k++) m.push({ epoch: k, requests: 10, failures: 0, latencyLogRatio: 0, latencySe: 0.1, peerFailureRate: 0 });
  t.equal(m.size, m.capacity);
  m.push({ epoch: 10, requests: 10, failures: 0, latencyLogRatio: 5, latencySe: 0.1, peerFailureRate: 0 });
  t.equal(m.size, m.capacity, 'an old window is ignored');
  // Odd input does not throw or produce a forecast.
  const odd = new EndpointModel(cfg.windows, cfg.errorWindows);
  for (let k = 0; k < 40; k++) odd.push({ epoch: k, requests: NaN, failures: -3, latencyLogRatio: NaN, latencySe: NaN, peerFailureRate: NaN });
  t.equal(odd.assess(cfg, WINDOW_MS).severity, 'none');
});

t.test('the default settings\' thresholds are presolved, and each presolved one is what the solver gives', async (t) => {
  // A sidecar on the defaults builds its first policy without the bisection (time and resident memory).
  for (const arl of [cfg.deweightArl, cfg.drainArl]) {
    t.ok(PRESOLVED_THRESHOLDS.some(([k, a]) => k === cfg.cusumK && a === arl), `k ${cfg.cusumK}, ARL ${arl} is presolved`);
  }
  for (const [k, arl, h] of PRESOLVED_THRESHOLDS) t.equal(h, cusumHForArl(k, arl), `k ${k}, ARL ${arl}: h ${h}`);
  new ServicePredictor(cfg);
  t.equal(cachedThreshold(cfg.cusumK, cfg.deweightArl), cusumHForArl(cfg.cusumK, cfg.deweightArl), 'the de-weight line in use');
  t.equal(cachedThreshold(cfg.cusumK, cfg.drainArl), cusumHForArl(cfg.cusumK, cfg.drainArl), 'the drain line in use');
});

t.test('CUSUM thresholds are solved when a predictor is built, for every service\'s settings, not on a tick', async (t) => {
  // Solving one takes ~10-30 ms (a Markov chain per bisection step): on a tick it stalls the proxy's event loop.
  const a = { ...cfg, cusumK: 0.9, deweightArl: 123_457, drainArl: 9_876_543 };
  const b = { ...cfg, cusumK: 1.1, deweightArl: 234_567, drainArl: 8_765_432 };
  for (const s of [a, b]) {
    t.equal(cachedThreshold(s.cusumK, s.deweightArl), undefined, 'not solved before');
    t.equal(cachedThreshold(s.cusumK, s.drainArl), undefined, 'not solved before');
  }
  new ServicePredictor(a);
  new ServicePredictor(b);
  new ServicePredictor({ ...cfg, enabled: false, cusumK: 1.3 });
  // Both services' thresholds stay cached together (four settings, not the last two asked).
  for (const s of [a, b]) {
    t.equal(cachedThreshold(s.cusumK, s.deweightArl), cusumHForArl(s.cusumK, s.deweightArl), 'de-weight threshold solved at construction');
    t.equal(cachedThreshold(s.cusumK, s.drainArl), cusumHForArl(s.cusumK, s.drainArl), 'drain threshold solved at construction');
    t.ok(cachedThreshold(s.cusumK, s.drainArl)! > cachedThreshold(s.cusumK, s.deweightArl)!, 'a longer run length needs a higher line');
  }
  t.equal(cachedThreshold(1.3, cfg.deweightArl), undefined, 'prediction off: nothing solved');
  // A model assessed under those settings finds them ready: the cache does not change.
  const m = new EndpointModel(a.windows, a.errorWindows);
  m.push({ epoch: 0, requests: 40, failures: 0, latencyLogRatio: 0.1, latencySe: 0.05, peerFailureRate: 0 });
  m.assess(a, WINDOW_MS);
  t.equal(cachedThreshold(a.cusumK, a.deweightArl), cusumHForArl(a.cusumK, a.deweightArl));
});
