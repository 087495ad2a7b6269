// Robust peer detectors: compare each endpoint with the median of its peers, scaled by the median
// absolute deviation. Unlike mean − k·stdev, the median and MAD are not dragged by the outliers
// themselves, so two bad endpoints out of five are both caught (stdev masks them).
import { lastQuantilePooled, lastQuantileWindows, pooledQuantile } from './features.js';
import { binomialZ, MAD_TO_SIGMA, medianMad, poissonUpperTail, signTestUpperTail } from './robust.js';
import type { DetectionInput, Detector, EndpointSignals } from './types.js';

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
    // The peers' failure rate: the median's, the pooled one, or the background floor, whichever is highest,
    // so that a perfect median does not make a few stray failures significant.
    let allF = 0;
    let allN = 0;
    for (let j = 0; j < m; j++) {
      allF += fail[j]!;
      allN += tot[j]!;
    }
    for (let j = 0; j < m; j++) {
      if (sr[j]! >= median - spread) continue;
      const others = allN - tot[j]! > 0 ? (allF - fail[j]!) / (allN - tot[j]!) : 0;
      const p0 = Math.max(1 - median, others, cfg.baseFailureRate);
      const pValue = poissonUpperTail(fail[j]!, tot[j]! * p0);
      if (pValue > cfg.maxPValue) continue;
      const z = binomialZ(fail[j]!, tot[j]!, p0);
      out.push({
        target: input.endpoints[idx[j]!]!.id,
        detector: 'peer_success',
        kind: 'failure',
        severity: 'eject',
        evidence: { successRate: r4(sr[j]!), peerMedian: r4(median), peerRate: r4(p0), pValue: Number(pValue.toPrecision(3)), z: r2(z), mad: r4(mad), requests: tot[j]!, failures: fail[j]!, hosts: m },
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
    const p50Ratio = new Float64Array(len).fill(NaN);
    const lenient = new Float64Array(len);
    let anyChannel = false;
    for (const ch of CHANNELS) {
      const minReq = ch.key === 'p99' ? cfg.minRequestsP99 : ch.key === 'p90' ? 5 * cfg.minRequests : cfg.minRequests;
      // Only p50 is pooled: a starved endpoint's few completions per window are dominated by the slow
      // tails of earlier bursts (windows count completions), so pooled p90/p99 are biased upward.
      const pool = ch.key === 'p50' ? cfg.poolWindows : 1;
      let m = 0;
      for (let k = 0; k < len; k++) {
        const x = pooledQuantile(input.endpoints[k]!, input.completedEpoch, ch.key, minReq, pool);
        if (!(x > 0)) continue;
        // A starved endpoint's pooled quantile is noisier and biased toward slow completions: it must stand
        // out by 25 % more.
        lenient[m] = lastQuantilePooled ? 1.25 : 1;
        xs[m] = x;
        idx[m++] = k;
      }
      if (m < cfg.minHosts) continue;
      anyChannel = true;
      const { median, mad } = medianMad(xs, m, scratch);
      const minExcess = Math.max(cfg.madFactor * MAD_TO_SIGMA * mad, cfg.minExcessMs * 1000);
      if (ch.key === 'p50') for (let j = 0; j < m; j++) p50Ratio[idx[j]!] = xs[j]! / median;
      for (let j = 0; j < m; j++) {
        const k = idx[j]!;
        judged[k] = 1;
        const ratio = xs[j]! / median / usualRatio(input.endpoints[k]!, cfg.usualRatioCap);
        const mult = ch.mult * lenient[j]!;
        if (ratio < cfg.degradeRatio * mult || xs[j]! - median < minExcess) continue;
        const rel = ratio / mult;
        if (rel > worst[k]!) {
          worst[k] = rel;
          worstQ[k] = ch.name;
          worstMed[k] = median;
          worstX[k] = xs[j]!;
        }
      }
    }
    if (!anyChannel) return;
    // A starved endpoint (judged on pooled windows) must be slow at the bottom too: in a gray failure the
    // whole distribution shifts, while the balancer's starvation bias only over-represents slow requests
    // and leaves the fastest ones where they were. Compare its pooled p10 with the peers' p10.
    let peerP10 = NaN;
    for (let k = 0; k < len; k++) {
      if (worst[k]! === 0 || worstQ[k] !== 'p50') continue;
      const s = input.endpoints[k]!;
      const i = s.features.index(0);
      if (i >= 0 && s.features.epoch[i] === input.completedEpoch && s.features.total[i]! >= cfg.minRequests) continue; // not pooled
      if (peerP10 !== peerP10) {
        let m = 0;
        for (let j = 0; j < len; j++) {
          const x = pooledQuantile(input.endpoints[j]!, input.completedEpoch, 'p10', cfg.minRequests, cfg.poolWindows);
          if (x > 0) xs[m++] = x;
        }
        peerP10 = medianMad(xs, m, scratch).median;
      }
      const p10 = pooledQuantile(s, input.completedEpoch, 'p10', cfg.minRequests, cfg.poolWindows);
      if (!(p10 >= cfg.degradeRatio * peerP10)) worst[k] = 0;
    }
    for (let k = 0; k < len; k++) {
      const s = input.endpoints[k]!;
      if (!judged[k]) continue; // no verdict either way on a window without enough traffic
      if (worst[k]! === 0 && p50Ratio[k]! > 0) {
        // Learn the usual ratio only from windows where the endpoint is not an outlier.
        const a = Math.max(cfg.usualRatioAlpha, 1 / (s.usualN + 1));
        s.usualLogRatio += a * (Math.log(p50Ratio[k]!) - s.usualLogRatio);
        s.usualN++;
      }
      const rel = worst[k]!;
      // A p50 at the eject level counts toward ejection only when the endpoint's median is confidently above
      // the de-weight level (sign test), not just its point estimate above the eject level: the p50 of the
      // few requests a de-weighted endpoint gets in heavy-tailed noise lands at 2× by chance.
      let signP = NaN;
      if (rel >= cfg.ejectRatio && worstQ[k] === 'p50') signP = p50SignTest(s, input.completedEpoch, cfg, cfg.degradeRatio * usualRatio(s, cfg.usualRatioCap) * worstMed[k]!, signCount);
      const ejectLevel = rel >= cfg.ejectRatio && !(signP > SIGN_TEST_MAX_P);
      // Leaky strikes: one clean window forgives one strike ("confirmWindows of the last few"), so a
      // single noisy peer window does not restart the count, and isolated flags never accumulate.
      // Ejection counts only windows at the eject level: two chance windows at 1.6× and 2.1× must not
      // add up to an ejection.
      s.latencyEjectStrikes = ejectLevel ? Math.min(cfg.confirmWindows, s.latencyEjectStrikes + 1) : Math.max(0, s.latencyEjectStrikes - 1);
      if (rel === 0) {
        s.latencyStrikes = Math.max(0, s.latencyStrikes - 1);
        continue;
      }
      s.latencyStrikes = Math.min(cfg.confirmWindows, s.latencyStrikes + 1); // stays armed while it stands out
      if (s.latencyStrikes < cfg.confirmWindows) continue;
      let eject = s.latencyEjectStrikes >= cfg.confirmWindows;
      if (!eject && ejectLevel && s.latencyEjectStrikes >= cfg.confirmWindows - 1) {
        // Confirmed slow, at the eject level now but one eject-level window short (the first window of a
        // gray failure often lands at 1.8×, and the de-weight that follows starves the sample). Eject
        // anyway when the whole distribution moved: p10 at the eject ratio of the peers' p10 as well. The
        // chance windows of heavy-tailed noise (a few slow requests among few) leave p10 in place.
        if (peerP10 !== peerP10) {
          let m = 0;
          for (let j = 0; j < len; j++) {
            const x = pooledQuantile(input.endpoints[j]!, input.completedEpoch, 'p10', cfg.minRequests, cfg.poolWindows);
            if (x > 0) xs[m++] = x;
          }
          peerP10 = medianMad(xs, m, scratch).median;
        }
        const p10 = pooledQuantile(s, input.completedEpoch, 'p10', cfg.minRequests, cfg.poolWindows);
        eject = p10 >= cfg.ejectRatio * usualRatio(s, cfg.usualRatioCap) * peerP10;
      }
      // Cold start: an endpoint's first windows of traffic (after a start of the proxy or of the endpoint:
      // JIT, caches, new connections) say little about it, and with few requests each, one of many peers
      // stands out by chance. Until it has had traffic in warmupWindows windows, it is de-weighted only.
      if (eject && !hasTrafficInWindows(s, cfg.warmupWindows)) eject = false;
      out.push({
        target: s.id,
        detector: 'peer_latency',
        kind: 'latency',
        severity: eject ? 'eject' : 'degrade',
        ...(eject ? {} : { weight: Math.max(0.01, 1 / rel) }),
        evidence: { quantile: worstQ[k]!, valueMs: r2(worstX[k]! / 1000), peerMedianMs: r2(worstMed[k]! / 1000), ratio: r2(rel), windows: s.latencyStrikes, ...(signP === signP ? { aboveDegrade: signCount[0]!, requests: signCount[1]!, signP: Number(signP.toPrecision(3)) } : {}) },
      });
    }
  },
};

/** One-sided level of the p50 sign test: the endpoint's median is above the de-weight level with 95 % confidence. */
const SIGN_TEST_MAX_P = 0.05;
const signCount = new Float64Array(2);

/**
 * Sign test of the windows the endpoint's p50 was judged on (the newest, or the pooled ones): how many of
 * their n requests took at least `thresholdUs`, and P(Binomial(n, ½) ≥ that count), the chance of so many
 * if the endpoint's median were at the threshold. Writes [count, n] into `out`.
 */
function p50SignTest(s: EndpointSignals, epoch: number, cfg: DetectionInput['settings']['peerLatency'], thresholdUs: number, out: Float64Array): number {
  const w = s.windows;
  if (!w || !(pooledQuantile(s, epoch, 'p50', cfg.minRequests, cfg.poolWindows) > 0)) return NaN;
  let n = 0;
  let above = 0;
  for (let a = 0; a < lastQuantileWindows; a++) {
    const h = w.windowHistogram(epoch - a);
    if (h === undefined) continue;
    n += h.totalCount;
    above += h.totalCount - h.countBelow(thresholdUs);
  }
  out[0] = above;
  out[1] = n;
  return n > 0 ? signTestUpperTail(above, n) : NaN;
}

function r2(x: number): number {
  return Math.round(x * 100) / 100;
}
function r4(x: number): number {
  return Math.round(x * 10000) / 10000;
}

/** Whether at least `n` of the endpoint's completed windows (newest first, as far as its ring reaches) had traffic. */
export function hasTrafficInWindows(s: EndpointSignals, n: number): boolean {
  let seen = 0;
  for (let a = 0; seen < n && a < s.features.size; a++) if (s.features.total[s.features.index(a)]! > 0) seen++;
  return seen >= n;
}

/** An endpoint's usual ratio to its peers' median, clamped to [1, cap]: natural slowness is excused up to cap, speed never counts against it. */
export function usualRatio(s: EndpointSignals, cap: number): number {
  return Math.min(cap, Math.max(1, Math.exp(s.usualLogRatio)));
}
