// Self-baseline detectors: each endpoint against its own history, with sequential tests whose
// false-alarm rate is known. Latency: one-sided CUSUM over log(window p50) and log(window p90),
// standardized by a learned mean and deviation. Errors: an EWMA chart over the window failure fraction.
// The baselines learn only from in-control windows (and slowly while alarming, so that a permanent,
// harmless shift is eventually accepted). Verdicts are `degrade`: the peers decide ejections.
import { cusumArl, ewmaArl } from './arl.js';
import { pooledP50Since } from './features.js';
import type { BaselineState, DetectionInput, Detector, EndpointSignals } from './types.js';

/** Feed one standardized-able sample into a latency CUSUM; returns whether it alarms. */
export function updateLatencyCusum(st: BaselineState, x: number, cfg: { k: number; h: number; sigmaFloor: number; zClip: number; alpha: number; warmupWindows: number }): boolean {
  if (st.n < cfg.warmupWindows) {
    learn(st, x, Math.max(cfg.alpha, 1 / (st.n + 1)));
    st.n++;
    st.alarm = false;
    st.stat = 0;
    return false;
  }
  const sigma = Math.max(Math.sqrt(st.variance), cfg.sigmaFloor);
  const z = (x - st.mean) / sigma;
  st.last = z;
  // Winsorized: a heavy-tailed window adds at most zClip − k, so an alarm needs a sustained shift.
  st.stat = Math.max(0, st.stat + Math.min(z, cfg.zClip) - cfg.k);
  st.alarm = st.stat > cfg.h;
  // Learn from every window, clipped at ±3σ so one wild window cannot move the baseline: at full rate
  // while in control, at a quarter rate while alarming (a lasting, harmless shift is absorbed in
  // minutes). The rate must not depend on the sign of z, or the baseline drifts.
  const zc = Math.max(-3, Math.min(3, z));
  const xc = st.mean + zc * sigma;
  learn(st, xc, st.alarm ? cfg.alpha / 4 : cfg.alpha);
  st.n++;
  // Beside a seed, learn every window within 3σ of it: an endpoint a little slower than the mesh's
  // baseline is learned (and wins), a gray failure (a shift of several σ) is not.
  if (st.seedN >= 0 && Math.abs(z) < 3) learnLocalBesideSeed(st, x, cfg.alpha, cfg.warmupWindows, true);
  return st.alarm;
}

function learn(st: BaselineState, x: number, a: number): void {
  const d = x - st.mean;
  st.mean += a * d;
  st.variance = (1 - a) * (st.variance + a * d * d);
}

/**
 * A baseline seeded from the mesh keeps a local warm-up estimate on the side (in-control samples only, as
 * the local warm-up would have learned them); once it has warmupWindows samples, the local one wins.
 */
function learnLocalBesideSeed(st: BaselineState, x: number, alpha: number, warmupWindows: number, withVariance: boolean): void {
  const a = Math.max(alpha, 1 / (st.seedN + 1));
  const d = x - st.localMean;
  st.localMean += a * d;
  if (withVariance) st.localVariance = (1 - a) * (st.localVariance + a * d * d);
  st.seedN++;
  if (st.seedN < warmupWindows) return;
  st.mean = st.localMean;
  if (withVariance) st.variance = st.localVariance;
  st.seedN = -1;
  st.stat = withVariance ? 0 : Math.max(st.mean, 0); // the chart restarts from the endpoint's own baseline
  st.alarm = false;
}

/** Feed one window's failure fraction into an EWMA chart; returns whether it alarms. */
export function updateErrorEwma(st: BaselineState, failures: number, total: number, cfg: { lambda: number; L: number; minDelta: number; pFloor: number; alpha: number; warmupWindows: number }): boolean {
  const r = failures / total;
  st.last = r;
  if (st.n < cfg.warmupWindows) {
    st.mean += (r - st.mean) * Math.max(cfg.alpha, 1 / (st.n + 1));
    st.n++;
    st.stat = Math.max(st.mean, cfg.pFloor);
    st.alarm = false;
    return false;
  }
  const p0 = Math.max(st.mean, cfg.pFloor);
  st.stat = cfg.lambda * r + (1 - cfg.lambda) * st.stat;
  const sigma = Math.sqrt((p0 * (1 - p0)) / total);
  const ucl = p0 + cfg.L * sigma * Math.sqrt(cfg.lambda / (2 - cfg.lambda));
  st.alarm = st.stat > ucl && st.stat - p0 >= cfg.minDelta;
  if (!st.alarm) st.mean += (r - st.mean) * cfg.alpha;
  st.n++;
  if (st.seedN >= 0 && !st.alarm) learnLocalBesideSeed(st, r, cfg.alpha, cfg.warmupWindows, false);
  return st.alarm;
}

function newestIndex(s: EndpointSignals, epoch: number): number {
  const i = s.features.index(0);
  return i >= 0 && s.features.epoch[i] === epoch ? i : -1;
}

export const latencyBaseline: Detector = {
  name: 'latency_baseline',
  cadence: 'window',
  detect(input: DetectionInput, out) {
    const cfg = input.settings.latencyBaseline;
    if (!cfg.enabled) return;
    for (const s of input.endpoints) {
      const i = newestIndex(s, input.completedEpoch);
      if (i < 0) continue;
      // One sample per window with enough requests, or per run of windows pooled until they have enough
      // (a starved endpoint); pooled samples never overlap, so the samples stay independent.
      const st50 = s.latencyP50;
      const p50 = pooledP50Since(s, input.completedEpoch, st50.from, cfg.minRequests, input.settings.peerLatency.poolWindows);
      const p90 = s.features.p90[i]!;
      if (!(p50 > 0)) continue;
      st50.from = input.completedEpoch + 1;
      st50.lastEpoch = input.completedEpoch;
      const a50 = updateLatencyCusum(st50, Math.log(p50), cfg);
      // A window's p90 is only trusted with five times the requests (an order statistic of the tail).
      const a90 = s.features.total[i]! >= 5 * cfg.minRequests && p90 > 0 ? updateLatencyCusum(s.latencyP90, Math.log(p90), cfg) : s.latencyP90.alarm;
      // Act only on an endpoint with enough traffic of its own in this window: a starved endpoint's pooled
      // figures are biased toward slow requests (the baseline still learns from them).
      if ((!a50 && !a90) || s.features.total[i]! < cfg.minRequests) continue;
      const st = a50 ? s.latencyP50 : s.latencyP90;
      const value = a50 ? p50 : p90;
      const ratio = value / Math.exp(st.mean);
      out.push({
        target: s.id,
        detector: 'latency_baseline',
        kind: 'latency',
        severity: 'degrade',
        weight: Math.max(0.01, Math.min(1, 1 / ratio)),
        evidence: {
          quantile: a50 ? 'p50' : 'p90',
          valueMs: Math.round(value) / 1000,
          baselineMs: Math.round(Math.exp(st.mean)) / 1000,
          ratio: Math.round(ratio * 100) / 100,
          cusum: Math.round(st.stat * 100) / 100,
          k: cfg.k,
          h: cfg.h,
          arl0Windows: Math.round(cusumArl(cfg.k, cfg.h, 0)),
        },
      });
    }
  },
};

export const errorBaseline: Detector = {
  name: 'error_baseline',
  cadence: 'window',
  detect(input: DetectionInput, out) {
    const cfg = input.settings.errorBaseline;
    if (!cfg.enabled) return;
    for (const s of input.endpoints) {
      const i = newestIndex(s, input.completedEpoch);
      if (i < 0 || s.features.total[i]! < cfg.minRequests) continue;
      if (!updateErrorEwma(s.errors, s.features.failures[i]!, s.features.total[i]!, cfg)) continue;
      out.push({
        target: s.id,
        detector: 'error_baseline',
        kind: 'failure',
        severity: 'degrade',
        weight: Math.max(0.01, 1 - s.errors.stat),
        evidence: {
          failureFraction: Math.round(s.errors.last * 10000) / 10000,
          ewma: Math.round(s.errors.stat * 10000) / 10000,
          baseline: Math.round(Math.max(s.errors.mean, cfg.pFloor) * 10000) / 10000,
          lambda: cfg.lambda,
          L: cfg.L,
          arl0WindowsNormal: Math.round(ewmaArl(cfg.lambda, cfg.L, 0, 1)),
        },
      });
    }
  },
};
