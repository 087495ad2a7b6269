// peer_error_cusum: a sequential test (Bernoulli CUSUM) of each endpoint's failures against the rate of
// the other endpoints, fed every tick from the windows' lifetime counters, so that a partial failure
// (a share of 5xx) is decided on the evidence as it arrives instead of at window boundaries.
import { Outcome } from '../core/types.js';
import type { Detector, EndpointSignals } from './types.js';

const agg = { total: 0, failures: 0 };
/** Not judged for this long (ten ticks): it was out of rotation or its service quiet. */
const GAP_MS = 1000;

const requestsOf = (l: Float64Array): number => l[Outcome.Success]! + l[Outcome.Error5xx]! + l[Outcome.Gateway]! + l[Outcome.LocalOrigin]!;

/**
 * Each request adds its log-likelihood ratio of "failing at p1 = p0 + shift" against "at the peers' p0":
 * ln(p1 / p0) for a failure, ln((1 − p1) / (1 − p0)) for a success; the sum is kept ≥ 0 and an endpoint
 * whose sum reaches `h` is reported (and the sum restarts). At the peers' rate the sum drifts down, and
 * by Wald's bound a false alarm takes at least e^h requests (h 23: 1e10, 8 years of 40 requests/s); a
 * burst of failures in a row must reach h alone (8 at p0 0.005, shift 0.1), where consecutive_5xx ejects
 * at 5 anyway. Peers' rate: the other endpoints' failures over the last `windows` completed windows, at
 * least `baseFailureRate`; refreshed when a window completes. Call at every evaluation (ticks and urgent
 * ones): it consumes only what was recorded since the last call.
 */
export const peerErrorCusum: Detector = {
  name: 'peer_error_cusum',
  cadence: 'request',
  detect(input, out) {
    const cfg = input.settings.peerErrorCusum;
    if (!cfg.enabled) return;
    const eps = input.endpoints;
    if (input.completedEpoch >= 0) refreshPeerRates(eps, input.completedEpoch, cfg.windows, cfg.baseFailureRate);
    for (let k = 0; k < eps.length; k++) {
      const s = eps[k]!;
      const w = s.windows;
      if (w === undefined) continue;
      const run = s.errorRun;
      const requests = requestsOf(w.lifetime);
      const failures = requests - w.lifetime[Outcome.Success]!;
      // Out of rotation for more than a window (ejected, probation, quiet service): start afresh.
      const fresh = run.requests < 0 || input.now - run.at > GAP_MS;
      const dn = requests - run.requests;
      const df = failures - run.failures;
      run.requests = requests;
      run.failures = failures;
      run.at = input.now;
      if (fresh) {
        run.llr = 0;
        run.segRequests = run.segFailures = 0;
        continue;
      }
      const p0 = run.peerRate;
      if (!(p0 > 0) || run.peerHosts + 1 < cfg.minHosts || dn <= 0) continue;
      const p1 = Math.min(0.999, p0 + cfg.shift);
      run.llr = Math.max(0, run.llr + df * Math.log(p1 / p0) + (dn - df) * Math.log((1 - p1) / (1 - p0)));
      if (run.llr > 0) {
        run.segRequests += dn;
        run.segFailures += df;
      } else run.segRequests = run.segFailures = 0;
      if (run.llr < cfg.h) continue;
      out.push({
        target: s.id,
        detector: 'peer_error_cusum',
        kind: 'failure',
        severity: 'eject',
        evidence: {
          llr: Math.round(run.llr * 10) / 10, threshold: cfg.h, peerRate: Math.round(p0 * 1e4) / 1e4, alternative: Math.round(p1 * 1e4) / 1e4, peerHosts: run.peerHosts,
          // Its failure rate since the sum last left zero: the rate of the fault, as the test dates its start.
          failureRate: Math.round((run.segFailures / run.segRequests) * 1e4) / 1e4, requests: run.segRequests,
        },
      });
      run.llr = 0;
      run.segRequests = run.segFailures = 0;
    }
  },
};

/** The other endpoints' pooled failure rate over the last `windows` completed windows, per endpoint. */
function refreshPeerRates(eps: readonly EndpointSignals[], epoch: number, windows: number, floor: number): void {
  let allF = 0;
  let allN = 0;
  let hosts = 0;
  for (let k = 0; k < eps.length; k++) {
    eps[k]!.features.sum(windows, agg, epoch - windows + 1);
    allF += agg.failures;
    allN += agg.total;
    if (agg.total > 0) hosts++;
  }
  for (let k = 0; k < eps.length; k++) {
    const s = eps[k]!;
    s.features.sum(windows, agg, epoch - windows + 1);
    const n = allN - agg.total;
    s.errorRun.peerRate = n > 0 ? Math.max(floor, (allF - agg.failures) / n) : NaN;
    s.errorRun.peerHosts = hosts - (agg.total > 0 ? 1 : 0);
  }
}
