// Latency of an endpoint the balancer starves: Peak-EWMA moves traffic off a slow endpoint within a
// request or two, so the per-window detectors never get a window of its requests. Judged instead on the
// few real answers it did get over several windows (the balancer's bounded trickle keeps them coming):
// every one of them, not just a few, must be far slower than its peers.
import { medianInPlace } from './robust.js';
import { usualRatio } from './peer.js';
import { quantilesOf, type Quantiles } from './features.js';
import type { Histogram } from '../stats/window.js';
import type { Detector, EndpointSignals } from './types.js';

let scratchA = new Float64Array(16);
let scratchB = new Float64Array(16);
const windowMedian = new Float64Array(9);
const pool: Histogram[] = [];
const q: Quantiles = { p10: NaN, p50: NaN, p90: NaN, p99: NaN };

/**
 * An ordinary member is starved in a window when it completed at most `maxShare` of that window's median
 * request count over the service's endpoints. It is judged on the windows it has been starved in, newest
 * first, up to `windows` of them (the window in which the balancer turned away still holds the fast
 * answers from before): once they hold `minRequests` answers, their fastest tenth (p10; with ten or
 * fewer answers, the fastest one) must be ≥ `ratio` × its peers' median p50 and ≥ their median p90 (both
 * raised by its learned usual ratio), and at least peerLatency.minExcessMs above. One slow outlier among
 * healthy answers never qualifies: the healthy answers are the fastest tenth. A de-weighted endpoint
 * stays flagged while every answer it got in those windows (at least one) is still that slow, so that it
 * ramps back up only once an answer is fast again.
 */
export const starvedLatency: Detector = {
  name: 'starved_latency',
  cadence: 'window',
  detect(input, out) {
    const cfg = input.settings.starvedLatency;
    const pl = input.settings.peerLatency;
    if (!cfg.enabled || input.completedEpoch < 0) return;
    const len = input.endpoints.length;
    if (scratchA.length < len) {
      scratchA = new Float64Array(2 * len);
      scratchB = new Float64Array(2 * len);
    }
    const epoch = input.completedEpoch;
    // The peers' reference: per endpoint with enough requests in a window, its slowest window p50 and p90
    // of the last `windows` (a conservative reference), then the median over those endpoints.
    let m = 0;
    for (let k = 0; k < len; k++) {
      const f = input.endpoints[k]!.features;
      let p50 = NaN;
      let p90 = NaN;
      for (let a = 0; a < cfg.windows; a++) {
        const i = f.index(a);
        if (i < 0 || f.epoch[i] !== epoch - a || f.total[i]! < pl.minRequests) continue;
        if (!(f.p50[i]! <= p50)) p50 = f.p50[i]!;
        if (!(f.p90[i]! <= p90)) p90 = f.p90[i]!;
      }
      if (p50 > 0 && p90 > 0) {
        scratchA[m] = p50;
        scratchB[m++] = p90;
      }
    }
    // With one endpoint starved, its peers are the others: minHosts − 1 of them (at least two).
    if (m < Math.max(2, pl.minHosts - 1)) return;
    const peerP50 = medianInPlace(scratchA, m);
    const peerP90 = medianInPlace(scratchB, m);
    // Each window's median request count over every endpoint: an endpoint is starved in a window when it
    // completed at most maxShare of that.
    for (let a = 0; a < cfg.windows; a++) {
      for (let k = 0; k < len; k++) {
        const f = input.endpoints[k]!.features;
        const i = f.index(a);
        scratchB[k] = i >= 0 && f.epoch[i] === epoch - a ? f.total[i]! : 0;
      }
      windowMedian[a] = medianInPlace(scratchB, len);
    }
    for (let k = 0; k < len; k++) {
      const s = input.endpoints[k]!;
      // Pool only the windows it has been starved in, newest first: the window where the balancer turned
      // away from it still holds the fast answers from before.
      const f = s.features;
      let n = 0;
      let span = 0;
      let peerRequests = 0;
      for (; span < cfg.windows; span++) {
        const i = f.index(span);
        if (i < 0 || f.epoch[i] !== epoch - span || !(f.total[i]! <= cfg.maxShare * windowMedian[span]!)) break;
        n += f.total[i]!;
        peerRequests += windowMedian[span]!;
      }
      const degraded = s.health.state === 'degraded';
      if (n < (degraded ? 1 : cfg.minRequests)) continue;
      const fastest = pooledP10(s, epoch, span);
      const usual = usualRatio(s, pl.usualRatioCap);
      const bar = Math.max(cfg.ratio * peerP50, peerP90) * usual;
      if (!(fastest >= bar) || fastest - peerP50 < pl.minExcessMs * 1000) continue;
      const ratio = fastest / peerP50 / usual;
      out.push({
        target: s.id,
        detector: 'starved_latency',
        kind: 'latency',
        severity: 'degrade',
        weight: 1 / ratio,
        evidence: { fastestTenthMs: r2(fastest / 1000), peerMedianMs: r2(peerP50 / 1000), peerP90Ms: r2(peerP90 / 1000), ratio: r2(ratio), requests: n, peerRequests, sharePct: Math.round((100 * n) / peerRequests), windows: span },
      });
    }
  },
};

/** p10 (µs) of every latency sample of the newest `windows` windows merged, NaN when none. */
function pooledP10(s: EndpointSignals, epoch: number, windows: number): number {
  const w = s.windows;
  if (!w) return NaN;
  let n = 0;
  for (let a = 0; a < Math.min(windows, w.opts.windows - 1); a++) {
    const h = w.windowHistogram(epoch - a);
    if (h !== undefined && h.totalCount > 0) pool[n++] = h;
  }
  if (n === 0) return NaN;
  return quantilesOf(pool, n, q).p10;
}

function r2(x: number): number {
  return Math.round(x * 100) / 100;
}
