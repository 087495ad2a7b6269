// Diagnostic (not a benchmark; `npx tsx bench/learn/signals.ts [noise-hours]`): signals and detectors the
// predictor could use, measured on the TUNING learning scenarios and fault-free noise only. docs/learning.md
// quotes it. (1) Little's law: time-averaged in-flight (requests × mean latency) against latency alone.
// (2) A likelihood ratio for a linear ramp against the CUSUM, each at its own largest value in the noise.
import { EndpointModel, noPrediction, type WindowPoint } from '../../src/learn/predictor.js';
import { ServicePredictor } from '../../src/learn/prediction.js';
import type { EndpointSignals, Verdict } from '../../src/detect/types.js';
import type { ResolvedPolicySettings } from '../../src/config/sections/healing.js';
import { SCENARIOS, scenarioByName, type ScenarioSpec } from '../../src/sim/scenarios.js';
import { runScenario } from '../../src/sim/simulator.js';
import { recordPoints } from './record-points.js';

const noiseHours = Number(process.argv[2] ?? 4);
const SEEDS = 5;
/** As the predictor: overdispersion, per-window cap (standard errors), CUSUM reference value. */
const PHI = 1.25;
const CAP = 4;
const K = 1;
/** Ramp onsets considered: the newest RAMP_WINDOWS windows. */
const RAMP_WINDOWS = 12;

const tuning = (name: string): ScenarioSpec => {
  const spec = scenarioByName(name);
  if (!spec || spec.set !== 'tuning') throw new Error(`${name} is not a tuning scenario`);
  return spec;
};
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const sd = (xs: number[]): number => {
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
};

// (1) Per window, the first endpoint (the faulty one in these scenarios) against its peers' median, ln:
// mean latency, request count, and their product (in-flight by Little's law).
interface Peer { epoch: number; latency: number; rate: number; inflight: number }
let peerSeries: Peer[] = [];
const observe = ServicePredictor.prototype.observe;
ServicePredictor.prototype.observe = function recordInflight(this: ServicePredictor, members: readonly EndpointSignals[], epoch: number, settings: ResolvedPolicySettings, windowMs: number, out: Verdict[]) {
  const lat: number[] = [];
  const rate: number[] = [];
  for (const s of members) {
    const h = s.windows?.windowHistogram(epoch);
    const ok = h !== undefined && h.totalCount >= 5;
    lat.push(ok ? Math.log(h.mean) : NaN);
    rate.push(ok ? Math.log(h.totalCount) : NaN);
  }
  const med = (a: number[]): number => {
    const b = a.filter(Number.isFinite).sort((x, y) => x - y);
    return b.length ? b[b.length >> 1]! : NaN;
  };
  if (members.length > 0 && members[0]!.id.endsWith(':20000')) {
    const l = lat[0]! - med(lat.slice(1));
    const r = rate[0]! - med(rate.slice(1));
    peerSeries.push({ epoch, latency: l, rate: r, inflight: lat[0]! + rate[0]! - med(lat.slice(1).map((x, i) => x + rate[i + 1]!)) });
  }
  observe.call(this, members, epoch, settings, windowMs, out);
};
console.log('(1) faulty endpoint vs its peers (ln): sd over the 12 windows before the fault | rise in the last 3 windows before it turns hard | rise / sd');
for (const name of ['drift-10pct-crash-5', 'drift-10pct-crash-10', 'saturation-5', 'saturation-10']) {
  const spec = tuning(name);
  for (let seed = 1; seed <= SEEDS; seed++) {
    peerSeries = [];
    runScenario(spec, { policy: 'meshmedic', seed });
    const e0 = peerSeries[0]!.epoch;
    const F = spec.faults[0]!.startMs / 1000;
    const C = spec.hardAtMs! / 1000;
    const cols = (['latency', 'rate', 'inflight'] as const).map((k) => {
      const pre = peerSeries.filter((p) => p.epoch - e0 >= F - 12 && p.epoch - e0 < F).map((p) => p[k]).filter(Number.isFinite);
      const last = peerSeries.filter((p) => p.epoch - e0 >= C - 3 && p.epoch - e0 < C).map((p) => p[k]).filter(Number.isFinite);
      if (pre.length < 3 || last.length === 0) return `${k} –`;
      const rise = mean(last) - mean(pre);
      return `${k} ${sd(pre).toFixed(3)} | ${rise.toFixed(3)} | ${(rise / sd(pre)).toFixed(1)}`;
    });
    console.log(`${name} seed ${seed}: ${cols.join('   ')}`);
  }
}
ServicePredictor.prototype.observe = observe;

// (2) The predictor's per-window points, recorded with every forecast suppressed (open loop).
const recorder = recordPoints();
EndpointModel.prototype.assess = function silent(this: EndpointModel) {
  return Object.assign(this.last, noPrediction());
};

/** Per window: the CUSUM (as the predictor's, reference 0) and the largest ramp likelihood-ratio z over onsets. */
function statistics(points: WindowPoint[]): { cusum: number[]; ramp: number[] } {
  const cusum: number[] = [];
  const ramp: number[] = [];
  let s = 0;
  const usable = (p: WindowPoint) => p.latencyLogRatio === p.latencyLogRatio && p.latencySe > 0;
  for (let t = 0; t < points.length; t++) {
    const p = points[t]!;
    if (usable(p)) s = Math.max(0, s + Math.min(p.latencyLogRatio / (PHI * p.latencySe), CAP) - K);
    cusum.push(s);
    // x_u = β·(u − τ) after an onset τ, 0 before (the peers' usual level is known): the likelihood-ratio
    // z of β > 0 is Σ j·x/σ² / √(Σ j²/σ²), j = u − τ.
    let best = 0;
    for (let tau = t - 1; tau >= Math.max(-1, t - RAMP_WINDOWS); tau--) {
      let num = 0;
      let den = 0;
      for (let u = tau + 1; u <= t; u++) {
        const q = points[u]!;
        if (!usable(q)) continue;
        const sigma = PHI * q.latencySe;
        const j = u - tau;
        num += (j * Math.min(q.latencyLogRatio, CAP * sigma)) / (sigma * sigma);
        den += (j * j) / (sigma * sigma);
      }
      if (den > 0) best = Math.max(best, num / Math.sqrt(den));
    }
    ramp.push(best);
  }
  return { cusum, ramp };
}

recorder.take();
runScenario(scenarioByName('noise-5')!, { policy: 'meshmedic', seed: 11, durationMs: noiseHours * 3_600_000 });
let hCusum = 0;
let hRamp = 0;
let windows = 0;
for (const points of recorder.take()) {
  const { cusum, ramp } = statistics(points);
  windows += points.length;
  for (const v of cusum) hCusum = Math.max(hCusum, v);
  for (const v of ramp) hRamp = Math.max(hRamp, v);
}
console.log(`\n(2) ${noiseHours} h of noise-5 (seed 11), ${windows} endpoint-windows: largest CUSUM ${hCusum.toFixed(2)}, largest ramp z ${hRamp.toFixed(2)} — each detector's threshold below`);
console.log('first window (s before the crash; – none before it) at which each detector exceeds its threshold, open loop:');
for (const name of ['drift-10pct-crash-5', 'drift-10pct-crash-10']) {
  const spec = tuning(name);
  const row: string[] = [];
  for (let seed = 1; seed <= SEEDS; seed++) {
    recorder.take();
    runScenario(spec, { policy: 'meshmedic', seed });
    const points = recorder.take()[0]!;
    const e0 = points[0]!.epoch;
    const F = spec.faults[0]!.startMs / 1000;
    const C = spec.hardAtMs! / 1000;
    const { cusum, ramp } = statistics(points);
    const first = (xs: number[], h: number): string => {
      for (let t = 0; t < points.length; t++) {
        const at = points[t]!.epoch - e0;
        if (at >= F - 2 && at < C && xs[t]! > h) return String(C - at);
      }
      return '–';
    };
    row.push(`seed ${seed}: CUSUM ${first(cusum, hCusum)}, ramp ${first(ramp, hRamp)}`);
  }
  console.log(`${name}: ${row.join(' | ')}`);
}
console.log('endpoints of the tuning non-failure scenarios (5 seeds) exceeding each threshold at some window (the gates must stop these):');
for (const spec of SCENARIOS.filter((s) => s.suite === 'learning' && s.set === 'tuning' && s.hardAtMs === undefined)) {
  let series = 0;
  let overCusum = 0;
  let overRamp = 0;
  for (let seed = 1; seed <= SEEDS; seed++) {
    recorder.take();
    runScenario(spec, { policy: 'meshmedic', seed });
    for (const points of recorder.take()) {
      const { cusum, ramp } = statistics(points);
      series++;
      if (cusum.some((v) => v > hCusum)) overCusum++;
      if (ramp.some((v) => v > hRamp)) overRamp++;
    }
  }
  console.log(`${spec.name}: ${series} endpoint series, CUSUM ${overCusum}, ramp ${overRamp}`);
}
