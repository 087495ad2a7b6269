// The predictor as a detector of the meshmedic policy: each completed window it turns every member's
// figures into a peer-relative point, updates that endpoint's trend model and emits `predicted` verdicts
// (degrade or drain, never eject). One instance per service, owned by the policy; no I/O.
import type { ResolvedPolicySettings } from '../config/sections/healing.js';
import { usualRatio } from '../detect/peer.js';
import { medianInPlace } from '../detect/robust.js';
import type { EndpointSignals, Verdict } from '../detect/types.js';
import { EndpointModel, prepareThresholds, type Prediction, type PredictionSettings, type WindowPoint } from './predictor.js';

export interface PredictorCounters {
  /** Model assessments (one per member per completed window). */
  assessments: number;
  /** Forecasts raised, by the severity they asked for. */
  degrade: number;
  drain: number;
}

/** What /v1/learn and the metrics show of one endpoint's model. */
export interface PredictionView {
  readonly id: string;
  readonly points: number;
  readonly stateBytes: number;
  readonly streak: number;
  readonly prediction: Readonly<Prediction>;
}

/**
 * Where a window's latency sits, in ln µs: the mean of ln p10, ln p50 and ln p90. For lognormal latency
 * this estimates the same centre as ln p50 with less noise from a window's few dozen requests.
 */
function location(s: EndpointSignals, i: number): number {
  const f = s.features;
  const a = f.p10[i]!;
  const b = f.p50[i]!;
  const c = f.p90[i]!;
  return a > 0 && b > 0 && c > 0 ? (Math.log(a) + Math.log(b) + Math.log(c)) / 3 : NaN;
}

/** Log latencies are clipped this far (ln units: ×0.22 to ×4.5) around the peers' location. */
const LOG_CLIP = 1.5;
/** Floor of a window's log-latency variance (a window of identical latencies is not exact knowledge). */
const MIN_LOG_VARIANCE = 0.01;

const NO_VALUES = new Float64Array(0);
/** One member's clipped log moments, filled and read at once inside `observe` (shared: nothing keeps it). */
const ONE_MOMENTS = new Float64Array(3);

export class ServicePredictor {
  readonly counters: PredictorCounters = { assessments: 0, degrade: 0, drain: 0 };
  private readonly models = new Map<string, EndpointModel>();
  // Scratch arrays sized on the first window with members: a service that never has traffic (most of the
  // 200 a sidecar may know) holds none (docs/kubernetes.md, "Memory budget").
  private p50s = NO_VALUES;
  private readonly point: { -readonly [K in keyof WindowPoint]: WindowPoint[K] } = { epoch: 0, requests: 0, failures: 0, latencyLogRatio: NaN, latencySe: NaN, peerFailureRate: NaN };
  /** Per member of the current window: count, sum and sum of squares of clipped log latencies. */
  private moments = NO_VALUES;
  private readonly one = ONE_MOMENTS;

  /** With the settings it will run under: their CUSUM thresholds are computed now, not on the first tick. */
  constructor(settings?: PredictionSettings) {
    if (settings) prepareThresholds(settings);
  }

  /**
   * One completed window: `members` are the endpoints in ordinary rotation (their figures are comparable);
   * models of endpoints outside rotation are dropped, so a re-admitted endpoint starts afresh.
   */
  observe(members: readonly EndpointSignals[], epoch: number, settings: ResolvedPolicySettings, windowMs: number, out: Verdict[]): void {
    const cfg = settings.prediction;
    if (!cfg.enabled || epoch < 0) return;
    if (this.p50s.length < members.length) this.p50s = new Float64Array(members.length * 2);
    // Peers' median latency location of this window (over members with enough requests; at least
    // peerLatency.minHosts endpoints).
    let n = 0;
    let allTotal = 0;
    let allFailures = 0;
    for (const s of members) {
      const i = s.features.index(0);
      if (i < 0 || s.features.epoch[i] !== epoch) continue;
      allTotal += s.features.total[i]!;
      allFailures += s.features.failures[i]!;
      const loc = s.features.total[i]! >= cfg.minRequests ? location(s, i) : NaN;
      if (loc === loc) this.p50s[n++] = loc;
    }
    const peerLoc = n >= settings.peerLatency.minHosts ? medianInPlace(this.p50s, n) : NaN;
    // Every request of the window, as its log latency clipped to the peers' location ± LOG_CLIP: per member
    // and pooled over all of them (a member's peers are the pool minus itself).
    if (this.moments.length < 3 * members.length) this.moments = new Float64Array(members.length * 6);
    const mo = this.moments;
    let poolN = 0;
    let poolS = 0;
    let poolQ = 0;
    let withData = 0;
    for (let k = 0; k < members.length; k++) {
      const s = members[k]!;
      const h = peerLoc === peerLoc ? s.windows?.windowHistogram(epoch) : undefined;
      if (h === undefined || h.totalCount === 0) {
        mo[3 * k] = mo[3 * k + 1] = mo[3 * k + 2] = 0;
        continue;
      }
      h.clippedLogMoments(peerLoc - LOG_CLIP, peerLoc + LOG_CLIP, this.one);
      mo[3 * k] = this.one[0]!;
      mo[3 * k + 1] = this.one[1]!;
      mo[3 * k + 2] = this.one[2]!;
      poolN += this.one[0]!;
      poolS += this.one[1]!;
      poolQ += this.one[2]!;
      if (this.one[0]! >= cfg.minRequests) withData++;
    }
    for (let k = 0; k < members.length; k++) {
      const s = members[k]!;
      let m = this.models.get(s.id);
      if (!m) this.models.set(s.id, (m = new EndpointModel(cfg.windows, cfg.errorWindows)));
      const i = s.features.index(0);
      const p = this.point;
      p.epoch = epoch;
      p.latencyLogRatio = NaN;
      p.latencySe = NaN;
      if (i < 0 || s.features.epoch[i] !== epoch) {
        p.requests = p.failures = 0;
        p.peerFailureRate = NaN;
      } else {
        const total = s.features.total[i]!;
        const failures = s.features.failures[i]!;
        p.requests = total;
        p.failures = failures;
        const en = mo[3 * k]!;
        const pn = poolN - en;
        if (en >= cfg.minRequests && pn >= cfg.minRequests && withData >= settings.peerLatency.minHosts) {
          const em = mo[3 * k + 1]! / en;
          const pm = (poolS - mo[3 * k + 1]!) / pn;
          const ev = Math.max(MIN_LOG_VARIANCE, mo[3 * k + 2]! / en - em * em);
          const pv = Math.max(MIN_LOG_VARIANCE, (poolQ - mo[3 * k + 2]!) / pn - pm * pm);
          p.latencyLogRatio = em - pm - Math.log(usualRatio(s, settings.peerLatency.usualRatioCap));
          p.latencySe = Math.sqrt(ev / en + pv / pn);
        }
        const otherTotal = allTotal - total;
        p.peerFailureRate = otherTotal > 0 ? (allFailures - failures) / otherTotal : NaN;
      }
      m.push(p);
      this.counters.assessments++;
      const pred = m.assess(cfg, windowMs);
      if (pred.severity === 'none') continue;
      if (pred.severity === 'drain') this.counters.drain++;
      else this.counters.degrade++;
      out.push({
        target: s.id,
        detector: `predicted_${pred.channel}`,
        kind: 'predicted',
        severity: pred.severity,
        weight: cfg.deweightWeight,
        // An error forecast states the failure rate it saw: a drain ended by probes asks as many passes in a
        // row as an endpoint still failing at that rate would rarely show (as after an error ejection).
        evidence: {
          channel: pred.channel, etaMs: pred.etaMs, horizonMs: cfg.horizonMs, confidence: pred.confidence, z: pred.z, slopePerSec: pred.slopePerSec, level: pred.level,
          ...(pred.channel === 'errors' ? { failureRate: pred.failureRate } : {}),
          windows: m.size,
        },
      });
    }
    if (this.models.size > members.length) {
      const keep = new Set(members.map((s) => s.id));
      for (const id of this.models.keys()) if (!keep.has(id)) this.models.delete(id);
    }
  }

  /** Forget an endpoint's model (it left rotation). */
  forget(id: string): void {
    this.models.delete(id);
  }

  views(): PredictionView[] {
    return [...this.models].map(([id, m]) => ({ id, points: m.size, stateBytes: m.stateBytes(), streak: m.streak, prediction: { ...m.last } }));
  }
}
