// Failure prediction per endpoint: where its latency and error rate, relative to its peers, are heading.
// One point per completed window; a robust trend over the last few windows forecasts when the endpoint
// will cross the failure line, and how sure that is. Pure: time is the window number the caller passes.
import { normalCdf } from '../detect/robust.js';
import { cochranArmitage, emptyFit, theilSen, type TrendFit } from './trend.js';

/** The predictor's settings (the `healing.prediction` config group). */
export interface PredictionSettings {
  readonly enabled: boolean;
  readonly horizonMs: number;
  readonly windows: number;
  readonly errorWindows: number;
  readonly errorMinFailures: number;
  readonly minPoints: number;
  readonly minRequests: number;
  readonly latencyFailRatio: number;
  readonly latencyMinRatio: number;
  readonly errorFailExcess: number;
  readonly errorMinExcess: number;
  readonly deweightZ: number;
  readonly drainZ: number;
  readonly recentShare: number;
  readonly confirmWindows: number;
  readonly deweightWeight: number;
  readonly drainMs: number;
}

/** One completed window of one endpoint, peer-relative. */
export interface WindowPoint {
  readonly epoch: number;
  /** Requests (failures included) the endpoint completed in the window. */
  readonly requests: number;
  readonly failures: number;
  /** ln(endpoint latency / peers' median latency) minus the endpoint's usual ln ratio; NaN when not measurable. */
  readonly latencyLogRatio: number;
  /** Failure fraction of the other endpoints in the same window (NaN when they had no traffic). */
  readonly peerFailureRate: number;
}

export type PredictionSeverity = 'none' | 'degrade' | 'drain';

export interface Prediction {
  severity: PredictionSeverity;
  channel: 'latency' | 'errors' | '';
  /** Forecast time until the failure line is crossed, ms (0: already there). */
  etaMs: number;
  /** Φ(z) of the trend test: the probability, under the test's model, that the rise is not chance. */
  confidence: number;
  z: number;
  /** Trend per second: ln ratio for latency, failure fraction for errors. */
  slopePerSec: number;
  /** Current fitted level: ratio to peers for latency, failure-fraction excess over peers for errors. */
  level: number;
}

export function noPrediction(): Prediction {
  return { severity: 'none', channel: '', etaMs: Infinity, confidence: 0, z: 0, slopePerSec: 0, level: 0 };
}

const RANK: Record<PredictionSeverity, number> = { none: 0, degrade: 1, drain: 2 };

/**
 * Scratch shared by every model of a process: the tick is single-threaded and a model's assessment
 * never re-enters another's.
 */
const MAX_WINDOWS = 64;
const pairs = new Float64Array((MAX_WINDOWS * (MAX_WINDOWS - 1)) / 2);
const scratch = new Float64Array(MAX_WINDOWS);
const full = emptyFit();
const errFit = emptyFit();

/** Median of the non-NaN x[from..to) (in the shared scratch); NaN when none. */
function medianOf(x: Float64Array, from: number, to: number): number {
  let m = 0;
  for (let i = Math.max(0, from); i < to; i++) if (x[i]! === x[i]!) scratch[m++] = x[i]!;
  if (m === 0) return NaN;
  const a = scratch.subarray(0, m);
  a.sort();
  const mid = m >> 1;
  return m % 2 === 1 ? a[mid]! : (a[mid - 1]! + a[mid]!) / 2;
}

/**
 * The model of one endpoint: the newest points in fixed typed arrays (oldest first). Latency uses the
 * newest `windows` of them; errors, being rare events, the newest `errorWindows`.
 */
export class EndpointModel {
  readonly capacity: number;
  private readonly latencyWindows: number;
  private readonly t: Float64Array;
  private readonly lat: Float64Array;
  private readonly req: Float64Array;
  private readonly fail: Float64Array;
  private readonly peerRate: Float64Array;
  private len = 0;
  /** Windows with a forecast: +1 each, −1 (down to 0) for each window without one. */
  streak = 0;
  lastEpoch = -1;
  readonly last: Prediction = noPrediction();

  constructor(windows: number, errorWindows: number) {
    this.latencyWindows = Math.max(3, Math.min(MAX_WINDOWS, Math.floor(windows)));
    this.capacity = Math.max(this.latencyWindows, Math.min(MAX_WINDOWS, Math.floor(errorWindows)));
    this.t = new Float64Array(this.capacity);
    this.lat = new Float64Array(this.capacity);
    this.req = new Float64Array(this.capacity);
    this.fail = new Float64Array(this.capacity);
    this.peerRate = new Float64Array(this.capacity);
  }

  get size(): number {
    return this.len;
  }

  /** Bytes held by this model (the ≤ 4 KB per endpoint bound is checked against this). */
  stateBytes(): number {
    return 5 * this.t.byteLength + 8 * 8 + 7 * 8;
  }

  clear(): void {
    this.len = 0;
    this.streak = 0;
    this.lastEpoch = -1;
    Object.assign(this.last, noPrediction());
  }

  /** Add a window's point (a window already seen is ignored). */
  push(p: WindowPoint): void {
    if (p.epoch <= this.lastEpoch) return;
    this.lastEpoch = p.epoch;
    if (this.len === this.capacity) {
      this.t.copyWithin(0, 1);
      this.lat.copyWithin(0, 1);
      this.req.copyWithin(0, 1);
      this.fail.copyWithin(0, 1);
      this.peerRate.copyWithin(0, 1);
      this.len--;
    }
    const i = this.len++;
    this.t[i] = p.epoch;
    this.lat[i] = p.latencyLogRatio;
    this.req[i] = p.requests > 0 ? p.requests : 0;
    this.fail[i] = p.failures > 0 ? Math.min(p.failures, this.req[i]!) : 0;
    this.peerRate[i] = p.peerFailureRate;
  }

  /** Assess the newest point (call once per pushed window). Updates `streak` and `last`. */
  assess(cfg: PredictionSettings, windowMs: number): Prediction {
    const out = this.last;
    Object.assign(out, noPrediction());
    if (this.len === 0) return out;
    const tNow = this.t[this.len - 1]!;
    const perSec = 1000 / windowMs;
    this.assessLatency(cfg, windowMs, tNow, perSec, out);
    this.assessErrors(cfg, windowMs, tNow, perSec, out);
    // Forecasts count: +1 per window with one, −1 per window without (one noisy window in between does
    // not reset the count). A single window's forecast is not acted on (noise rarely repeats); two
    // de-weight; confirmWindows drain.
    this.streak = out.severity !== 'none' ? this.streak + 1 : Math.max(0, this.streak - 1);
    if (out.severity === 'drain' && this.streak < cfg.confirmWindows) out.severity = 'degrade';
    if (this.streak < 2) out.severity = 'none';
    return out;
  }

  private assessLatency(cfg: PredictionSettings, windowMs: number, tNow: number, perSec: number, out: Prediction): void {
    const first = Math.max(0, this.len - this.latencyWindows);
    theilSen(this.t, this.lat, first, this.len, tNow, pairs, scratch, full);
    if (full.n < cfg.minPoints || !(full.slope > 0)) return;
    if (!(full.level >= Math.log(cfg.latencyMinRatio))) return;
    // Still rising now: the newest third must stand above the middle third by a share of what the slope
    // says. A level shift (a deploy of a slower version) fits a line across the whole window, but once
    // it is older than a third of the window, the two thirds are level.
    const third = Math.floor((this.len - first) / 3);
    const newest = medianOf(this.lat, this.len - third, this.len);
    const middle = medianOf(this.lat, this.len - 2 * third, this.len - third);
    if (!(newest - middle >= cfg.recentShare * full.slope * third)) return;
    // And the newest windows themselves, not only the fitted line, are already above the action line.
    if (!(newest >= Math.log(cfg.latencyMinRatio))) return;
    const failLine = Math.log(cfg.latencyFailRatio);
    const etaMs = full.level >= failLine ? 0 : ((failLine - full.level) / full.slope) * windowMs;
    this.consider(cfg, 'latency', full, etaMs, perSec, Math.exp(full.level), out);
  }

  private assessErrors(cfg: PredictionSettings, windowMs: number, tNow: number, perSec: number, out: Prediction): void {
    cochranArmitage(this.t, this.fail, this.req, this.len, tNow, errFit);
    if (errFit.n < cfg.minPoints || !(errFit.slope > 0)) return;
    // Rare events: a handful of failures is no trend, whatever the statistic says.
    let failures = 0;
    for (let i = 0; i < this.len; i++) failures += this.fail[i]!;
    if (failures < cfg.errorMinFailures) return;
    // Peer-relative: a rate creeping up on every endpoint together is a shared dependency, not this one.
    let pn = 0;
    let pr = 0;
    for (let i = Math.max(0, this.len - 3); i < this.len; i++) {
      const q = this.peerRate[i]!;
      if (q === q) {
        pr += q;
        pn++;
      }
    }
    const peer = pn > 0 ? pr / pn : 0;
    const excess = errFit.level - peer;
    if (!(excess >= cfg.errorMinExcess)) return;
    // The newest windows pooled must already stand above the peers, beyond chance (binomial z ≥ deweightZ).
    let rn = 0;
    let rf = 0;
    for (let i = Math.max(0, this.len - 3); i < this.len; i++) {
      rn += this.req[i]!;
      rf += this.fail[i]!;
    }
    const p0 = Math.max(peer, 1e-3);
    if (rn === 0 || (rf - rn * p0) / Math.sqrt(rn * p0 * (1 - p0)) < cfg.deweightZ) return;
    const etaMs = excess >= cfg.errorFailExcess ? 0 : ((cfg.errorFailExcess - excess) / errFit.slope) * windowMs;
    this.consider(cfg, 'errors', errFit, etaMs, perSec, excess, out);
  }

  private consider(cfg: PredictionSettings, channel: 'latency' | 'errors', fit: TrendFit, etaMs: number, perSec: number, level: number, out: Prediction): void {
    if (etaMs > cfg.horizonMs || fit.z < cfg.deweightZ) return;
    // Drain on a very clear trend, or on a fairly clear one whose failure is near (half the horizon or less).
    const severity: PredictionSeverity = fit.z >= cfg.drainZ || etaMs <= cfg.horizonMs / 2 ? 'drain' : 'degrade';
    if (RANK[severity] < RANK[out.severity] || (RANK[severity] === RANK[out.severity] && etaMs >= out.etaMs)) return;
    out.severity = severity;
    out.channel = channel;
    out.etaMs = Math.round(etaMs);
    out.z = Math.round(fit.z * 100) / 100;
    out.confidence = Math.round(normalCdf(fit.z) * 10_000) / 10_000;
    out.slopePerSec = Math.round(fit.slope * perSec * 10_000) / 10_000;
    out.level = Math.round(level * 1000) / 1000;
  }
}
