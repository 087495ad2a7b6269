// Envoy's interval detectors, for the envoy-default baseline: success rate (eject when below
// mean − stdev_factor/1000 × population stdev) and failure percentage (eject at ≥ threshold %), each with
// Envoy's minimum-hosts and request-volume guards. Verdicts carry `enforcing` (%) for the policy to roll.
import { meanStdev } from './robust.js';
import type { DetectionInput, Detector } from './types.js';

const agg = { total: 0, failures: 0 };

function collect(input: DetectionInput, volume: number, rates: Float64Array, idx: Int32Array): number {
  const n = input.intervalWindows ?? 10;
  let m = 0;
  for (let k = 0; k < input.endpoints.length; k++) {
    const s = input.endpoints[k]!;
    s.features.sum(n, agg, input.completedEpoch - n + 1);
    if (agg.total >= volume && agg.total > 0) {
      rates[m] = (100 * (agg.total - agg.failures)) / agg.total;
      idx[m++] = k;
    }
  }
  return m;
}

export const envoySuccessRate: Detector = {
  name: 'envoy_success_rate',
  cadence: 'window',
  detect(input, out) {
    const e = input.settings.envoy;
    const len = input.endpoints.length;
    const rates = new Float64Array(len);
    const idx = new Int32Array(len);
    const m = collect(input, e.successRateRequestVolume, rates, idx);
    if (m < e.successRateMinimumHosts || m === 0) return;
    const { mean, stdev } = meanStdev(rates, m);
    const threshold = mean - (e.successRateStdevFactor / 1000) * stdev;
    for (let j = 0; j < m; j++) {
      if (rates[j]! < threshold) {
        out.push({
          target: input.endpoints[idx[j]!]!.id,
          detector: 'envoy_success_rate',
          kind: 'failure',
          severity: 'eject',
          evidence: { successRate: round(rates[j]!), mean: round(mean), stdev: round(stdev), threshold: round(threshold), hosts: m, enforcing: e.enforcingSuccessRate },
        });
      }
    }
  },
};

export const envoyFailurePercentage: Detector = {
  name: 'envoy_failure_percentage',
  cadence: 'window',
  detect(input, out) {
    const e = input.settings.envoy;
    const len = input.endpoints.length;
    const rates = new Float64Array(len);
    const idx = new Int32Array(len);
    const m = collect(input, e.failurePercentageRequestVolume, rates, idx);
    if (m < e.failurePercentageMinimumHosts) return;
    for (let j = 0; j < m; j++) {
      const failurePct = 100 - rates[j]!;
      if (failurePct >= e.failurePercentageThreshold) {
        out.push({
          target: input.endpoints[idx[j]!]!.id,
          detector: 'envoy_failure_percentage',
          kind: 'failure',
          severity: 'eject',
          evidence: { failurePct: round(failurePct), threshold: e.failurePercentageThreshold, hosts: m, enforcing: e.enforcingFailurePercentage },
        });
      }
    }
  },
};

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
