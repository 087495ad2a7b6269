// Robust peer detectors: compare each endpoint with the median of its peers, scaled by the median
// absolute deviation. Unlike mean − k·stdev, the median and MAD are not dragged by the outliers
// themselves, so two bad endpoints out of five are both caught (stdev masks them).
import { newHistogram, emptySummary, type Histogram, type WindowOptions } from '../stats/window.js';
import { binomialZ, MAD_TO_SIGMA, medianMad } from './robust.js';
import type { DetectionInput, Detector, EndpointSignals } from './types.js';

// Scratch for pooled quantiles (one histogram per window geometry, reused).
const scratchHists = new WeakMap<WindowOptions, Histogram>();
const pooled = emptySummary();

/**
 * Quantile `key` of an endpoint judged on its newest window, or — when that window has fewer than
 * `minReq` requests — on up to `poolWindows` recent windows merged (the balancer starves slow endpoints,
 * so a gray endpoint often has little traffic). NaN when even the pool is too small.
 */
function quantileOf(s: EndpointSignals, epoch: number, key: 'p50' | 'p90' | 'p99', minReq: number, poolWindows: number): number {
  const f = s.features;
  const i = f.index(0);
  if (i < 0 || f.epoch[i] !== epoch) return NaN;
  if (f.total[i]! >= minReq) return f[key][i]!;
  const w = s.windows;
  if (!w || poolWindows <= 1) return NaN;
  let total = 0;
  let k = 0;
  for (; k < Math.min(poolWindows, f.size, w.opts.windows - 1); k++) {
    const j = f.index(k);
    if (f.epoch[j]! !== epoch - k) break;
    total += f.total[j]!;
    if (total >= minReq) break;
  }
  if (total < minReq) return NaN;
  let scratch = scratchHists.get(w.opts);
  if (!scratch) scratchHists.set(w.opts, (scratch = newHistogram(w.opts)));
  w.summarize((epoch + 1) * w.opts.windowMs, k + 1, pooled, scratch, { skipCurrent: true });
  return pooled[key];
}

const agg = { total: 0, failures: 0 };

/** Success rate over the last `windows` windows versus the peers' median success rate. */
export const peerSuccess: Detector = {
  name: 'peer_success',
  cadence: 'window',
  detect(input, out) {
    const cfg = input.settings.peerSuccess;
    if (!cfg.enabled) return;
    const len = input.endpoints.length;
    const sr = new Float64Array(len);
    const tot = new Float64Array(len);
    const fail = new Float64Array(len);
    const idx = new Int32Array(len);
    const scratch = new Float64Array(len);
    let m = 0;
    for (let k = 0; k < len; k++) {
      input.endpoints[k]!.features.sum(cfg.windows, agg, input.completedEpoch - cfg.windows + 1);
      if (agg.total < cfg.minRequests) continue;
      sr[m] = 1 - agg.failures / agg.total;
      tot[m] = agg.total;
      fail[m] = agg.failures;
      idx[m++] = k;
    }
    if (m < cfg.minHosts) return;
    const { median, mad } = medianMad(sr, m, scratch);
    const spread = Math.max(cfg.madFactor * MAD_TO_SIGMA * mad, cfg.minDrop);
    // The binomial test uses the median failure rate, floored so that a perfect median does not make one
    // stray failure significant.
    const p0 = Math.max(1 - median, 0.005);
    for (let j = 0; j < m; j++) {
      if (sr[j]! >= median - spread) continue;
      const z = binomialZ(fail[j]!, tot[j]!, p0);
      if (z < cfg.minZ) continue;
      out.push({
        target: input.endpoints[idx[j]!]!.id,
        detector: 'peer_success',
        kind: 'failure',
        severity: 'eject',
        evidence: { successRate: r4(sr[j]!), peerMedian: r4(median), mad: r4(mad), z: r2(z), requests: tot[j]!, failures: fail[j]!, hosts: m },
      });
    }
  },
};

const CHANNELS = [
  { name: 'p50', mult: 1, key: 'p50' as const },
  { name: 'p90', mult: 1.25, key: 'p90' as const },
  { name: 'p99', mult: 1.25, key: 'p99' as const },
];

/**
 * Latency of the newest window (p50, p90, p99) versus the peers' median of the same quantile. An endpoint
 * must stand out by a ratio, by MADs and by an absolute margin, for `confirmWindows` windows in a row.
 * Updates each endpoint's `latencyStrikes`; call once per completed window.
 */
export const peerLatency: Detector = {
  name: 'peer_latency',
  cadence: 'window',
  detect(input, out) {
    const cfg = input.settings.peerLatency;
    if (!cfg.enabled) return;
    const len = input.endpoints.length;
    const xs = new Float64Array(len);
    const idx = new Int32Array(len);
    const scratch = new Float64Array(len);
    const worst = new Float64Array(len); // best evidence per endpoint: highest ratio over the channels
    const worstQ = new Array<string>(len).fill('');
    const worstMed = new Float64Array(len);
    const worstX = new Float64Array(len);
    const judged = new Uint8Array(len);
    let anyChannel = false;
    for (const ch of CHANNELS) {
      const minReq = ch.key === 'p99' ? cfg.minRequestsP99 : ch.key === 'p90' ? 2 * cfg.minRequests : cfg.minRequests;
      const pool = ch.key === 'p99' ? 1 : cfg.poolWindows;
      let m = 0;
      for (let k = 0; k < len; k++) {
        const x = quantileOf(input.endpoints[k]!, input.completedEpoch, ch.key, minReq, pool);
        if (!(x > 0)) continue;
        xs[m] = x;
        idx[m++] = k;
      }
      if (m < cfg.minHosts) continue;
      anyChannel = true;
      const { median, mad } = medianMad(xs, m, scratch);
      const minExcess = Math.max(cfg.madFactor * MAD_TO_SIGMA * mad, cfg.minExcessMs * 1000);
      for (let j = 0; j < m; j++) {
        const k = idx[j]!;
        judged[k] = 1;
        const ratio = xs[j]! / median;
        if (ratio < cfg.degradeRatio * ch.mult || xs[j]! - median < minExcess) continue;
        const rel = ratio / ch.mult;
        if (rel > worst[k]!) {
          worst[k] = rel;
          worstQ[k] = ch.name;
          worstMed[k] = median;
          worstX[k] = xs[j]!;
        }
      }
    }
    if (!anyChannel) return;
    for (let k = 0; k < len; k++) {
      const s = input.endpoints[k]!;
      if (!judged[k]) continue; // no verdict either way on a window without enough traffic
      if (worst[k]! === 0) {
        s.latencyStrikes = 0;
        continue;
      }
      s.latencyStrikes++;
      if (s.latencyStrikes < cfg.confirmWindows) continue;
      const rel = worst[k]!;
      const eject = rel >= cfg.ejectRatio;
      out.push({
        target: s.id,
        detector: 'peer_latency',
        kind: 'latency',
        severity: eject ? 'eject' : 'degrade',
        ...(eject ? {} : { weight: Math.max(0.01, 1 / rel) }),
        evidence: { quantile: worstQ[k]!, valueMs: r2(worstX[k]! / 1000), peerMedianMs: r2(worstMed[k]! / 1000), ratio: r2(rel), windows: s.latencyStrikes },
      });
    }
  },
};

function r2(x: number): number {
  return Math.round(x * 100) / 100;
}
function r4(x: number): number {
  return Math.round(x * 10000) / 10000;
}
