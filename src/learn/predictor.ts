// Failure prediction per endpoint: where its latency and error rate, relative to its peers, are heading.
// One point per completed window: latency by a CUSUM of standardized per-window differences with a rising
// slope gate, errors by a Cochran–Armitage trend gated by a Bernoulli CUSUM against the endpoint's reference
// rate (its peers' or its own usual, the larger). Pure: time is the window number the caller passes.
import { cusumHForArl } from '../detect/arl.js';
import { normalCdf } from '../detect/robust.js';
import { cochranArmitage, emptyFit, type TrendFit } from './trend.js';

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
  readonly errorShift: number;
  readonly errorH: number;
  readonly errorDrainArl: number;
  readonly deweightZ: number;
  readonly drainZ: number;
  readonly cusumK: number;
  readonly deweightArl: number;
  readonly drainArl: number;
  readonly overdispersion: number;
  readonly slopeZ: number;
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
  /**
   * Mean log latency of the endpoint's requests minus that of its peers' requests pooled, minus the
   * endpoint's usual ln ratio; NaN when not measurable.
   */
  readonly latencyLogRatio: number;
  /** Standard error of latencyLogRatio from the window's own requests (NaN: unknown). */
  readonly latencySe: number;
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
  /**
   * Errors: the endpoint's own failure fraction now, as the trend fitted it (not the excess over the
   * peers) — what a probe or a canary of the endpoint would still see if the forecast is right. NaN for
   * latency.
   */
  failureRate: number;
}

export function noPrediction(): Prediction {
  return { severity: 'none', channel: '', etaMs: Infinity, confidence: 0, z: 0, slopePerSec: 0, level: 0, failureRate: NaN };
}

const RANK: Record<PredictionSeverity, number> = { none: 0, degrade: 1, drain: 2 };

/**
 * Scratch shared by every model of a process: the tick is single-threaded and a model's assessment
 * never re-enters another's.
 */
const MAX_WINDOWS = 64;
/** Lowest failure rate the error CUSUM assumes for its reference (background errors). */
const P0_FLOOR = 1e-3;
/**
 * The endpoint's own usual failure fraction: its failures over its requests, both with this forgetting
 * factor per window (a memory of ~300 windows: a 30-window creep moves it by a tenth of its excess),
 * trusted once they hold this many requests. Learned from every window: learned only while the error
 * CUSUM was low it would leave out the windows with failures and come out too low.
 */
const USUAL_FORGET = 1 / 300;
const USUAL_MIN_REQUESTS = 3000;
const errFit = emptyFit();
const latFit = emptyFit();
/** One window's standardized difference counts at most this much in either direction (one wild window is no trend). */
const STEP_CAP = 4;
/** Windows after the one where the chart left zero before its rise is judged (fewer say little). */
const MIN_SLOPE_POINTS = 4;
/**
 * A change that rises, but not yet clearly, is given this many windows after its first before it is
 * taken for a level shift (a falling one is taken for one at once): a slow ramp needs them to show.
 */
const SHIFT_JUDGED_AT = 8;

/**
 * CUSUM thresholds by reference value k and in-control ARL, shared by every model of the process. Solving
 * for one walks a Brook–Evans chain per bisection step: ~10 ms, ~30 ms while that code is still cold, a
 * stall of the event loop if it happened on a tick (the first completed window; the first endpoint whose
 * chart passes the de-weight line). `prepareThresholds` computes a policy's thresholds when the policy is
 * built; a lookup on the tick is two Map reads. Bounded: distinct settings are few; past the bound the
 * cache starts afresh.
 */
const thresholds = new Map<number, Map<number, number>>();
const MAX_THRESHOLDS = 64;
let thresholdCount = 0;

/**
 * The default settings' thresholds (`healing.prediction.cusumK` 1 with `deweightArl` 10⁶ and `drainArl`
 * 10⁸), solved ahead of time by `cusumHForArl` — test/learn/predictor checks each against the solver. A
 * sidecar on the defaults then builds its first policy without the search (~26 chain solves: besides the
 * time, ~2 MB of resident memory on Node 20 and ~10 MB on Node 24 that the process keeps afterwards;
 * docs/kubernetes.md, "Memory budget"). Any other setting is solved as before.
 */
export const PRESOLVED_THRESHOLDS: readonly (readonly [k: number, arl: number, h: number])[] = [
  [1, 1_000_000, 6.12],
  [1, 100_000_000, 8.43],
];

function presolved(k: number, arl: number): number | undefined {
  for (const [pk, pa, h] of PRESOLVED_THRESHOLDS) if (pk === k && pa === arl) return h;
  return undefined;
}

function thresholdFor(k: number, arl: number): number {
  let byArl = thresholds.get(k);
  const h = byArl?.get(arl);
  if (h !== undefined) return h;
  if (thresholdCount >= MAX_THRESHOLDS) {
    thresholds.clear();
    thresholdCount = 0;
    byArl = undefined;
  }
  if (!byArl) thresholds.set(k, (byArl = new Map()));
  const solved = presolved(k, arl) ?? cusumHForArl(k, arl);
  byArl.set(arl, solved);
  thresholdCount++;
  return solved;
}

/** The threshold for (k, arl) if it has been computed (undefined: it would be solved on its first use). */
export function cachedThreshold(k: number, arl: number): number | undefined {
  return thresholds.get(k)?.get(arl);
}

/** Compute the latency CUSUM thresholds of these settings now (when a policy is built), not on a tick. */
export function prepareThresholds(cfg: PredictionSettings): void {
  if (!cfg.enabled) return;
  thresholdFor(cfg.cusumK, cfg.deweightArl);
  thresholdFor(cfg.cusumK, cfg.drainArl);
}

/**
 * Weighted least-squares line through (t[i], x[i]) with weights 1/se[i]² for from ≤ i < to (NaN points
 * skipped): slope per unit of t, level at tNow, z = slope over its standard error (se widened by `phi`).
 */
function weightedSlope(t: Float64Array, x: Float64Array, se: Float64Array, from: number, to: number, tNow: number, phi: number, out: TrendFit): TrendFit {
  let W = 0;
  let tw = 0;
  let xw = 0;
  let n = 0;
  for (let i = from; i < to; i++) {
    const s = se[i]!;
    if (x[i]! !== x[i]! || !(s > 0)) continue;
    const w = 1 / (s * s);
    W += w;
    tw += w * t[i]!;
    xw += w * x[i]!;
    n++;
  }
  out.n = n;
  out.slope = 0;
  out.level = NaN;
  out.z = 0;
  if (n < 3) return out;
  const tBar = tw / W;
  const xBar = xw / W;
  let sxy = 0;
  let sxx = 0;
  for (let i = from; i < to; i++) {
    const s = se[i]!;
    if (x[i]! !== x[i]! || !(s > 0)) continue;
    const w = 1 / (s * s);
    const dt = t[i]! - tBar;
    sxy += w * dt * (x[i]! - xBar);
    sxx += w * dt * dt;
  }
  if (!(sxx > 0)) return out;
  out.slope = sxy / sxx;
  out.level = xBar + out.slope * (tNow - tBar);
  out.z = sxy / Math.sqrt(sxx) / phi;
  return out;
}

/**
 * The error CUSUM's drain threshold: ln of its in-control average run length in requests. The chart sums
 * each request's log-likelihood ratio of p1 against p0; on in-control data such a CUSUM crosses h no more
 * often than once in e^h observations (Wald's bound on the likelihood ratio; Siegmund, Sequential Analysis
 * 1985, §2.6). Summing a window's requests before the max(0, ·) only lowers the chart, so the bound holds.
 */
export function errorDrainH(cfg: Pick<PredictionSettings, 'errorDrainArl'>): number {
  return Math.log(cfg.errorDrainArl);
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
  private readonly se: Float64Array;
  private readonly req: Float64Array;
  private readonly fail: Float64Array;
  private readonly peerRate: Float64Array;
  private len = 0;
  /** Windows with a forecast: +1 each, −1 (down to 0) for each window without one. */
  streak = 0;
  /** Latency CUSUM of standardized windows, and the window it last left zero (−1: at zero). */
  cusum = 0;
  cusumFrom = -1;
  /**
   * The level (ln, over the peers' usual) the CUSUM judges against: 0, or the level of a shift that was
   * established and did not keep rising (a slower version, a slower host); and the lower CUSUM that
   * notices the endpoint came back down from it.
   */
  reference = 0;
  lowerCusum = 0;
  /** Bernoulli CUSUM of the failures against the larger of the peers' rate and the endpoint's own usual one. */
  errorCusum = 0;
  /** The endpoint's own usual failure fraction as failures over requests, both with a forgetting factor. */
  usualFailures = 0;
  usualRequests = 0;
  lastEpoch = -1;
  readonly last: Prediction = noPrediction();

  constructor(windows: number, errorWindows: number) {
    this.latencyWindows = Math.max(3, Math.min(MAX_WINDOWS, Math.floor(windows)));
    this.capacity = Math.max(this.latencyWindows, Math.min(MAX_WINDOWS, Math.floor(errorWindows)));
    this.t = new Float64Array(this.capacity);
    this.lat = new Float64Array(this.capacity);
    this.se = new Float64Array(this.capacity);
    this.req = new Float64Array(this.capacity);
    this.fail = new Float64Array(this.capacity);
    this.peerRate = new Float64Array(this.capacity);
  }

  get size(): number {
    return this.len;
  }

  /** Bytes held by this model (the ≤ 4 KB per endpoint bound is checked against this). */
  stateBytes(): number {
    return 6 * this.t.byteLength + 8 * 8 + 14 * 8;
  }

  clear(): void {
    this.len = 0;
    this.streak = 0;
    this.cusum = 0;
    this.cusumFrom = -1;
    this.reference = 0;
    this.lowerCusum = 0;
    this.errorCusum = 0;
    this.usualFailures = 0;
    this.usualRequests = 0;
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
      this.se.copyWithin(0, 1);
      this.req.copyWithin(0, 1);
      this.fail.copyWithin(0, 1);
      this.peerRate.copyWithin(0, 1);
      this.len--;
    }
    const i = this.len++;
    this.t[i] = p.epoch;
    this.lat[i] = p.latencyLogRatio;
    this.se[i] = p.latencySe;
    this.req[i] = p.requests > 0 ? p.requests : 0;
    this.fail[i] = p.failures > 0 ? Math.min(p.failures, this.req[i]!) : 0;
    this.peerRate[i] = p.peerFailureRate;
  }

  /**
   * Update the latency CUSUM with the newest point (call once per pushed window, with the settings it was
   * pushed under) and assess both channels. Updates `streak`, `cusum` and `last`.
   */
  assess(cfg: PredictionSettings, windowMs: number): Prediction {
    const out = this.last;
    Object.assign(out, noPrediction());
    if (this.len === 0) return out;
    const tNow = this.t[this.len - 1]!;
    const perSec = 1000 / windowMs;
    this.assessErrors(cfg, windowMs, tNow, perSec, out);
    // Error forecasts count: +1 per window with one, −1 per window without (one noisy window in between
    // does not reset the count). A single window's forecast is not acted on (noise rarely repeats); two
    // de-weight; confirmWindows drain. A forecast whose error CUSUM stands above the drain threshold
    // needs no count: the CUSUM has accumulated its evidence over the windows already, with a stated
    // false-alarm bound (as the latency chart below).
    this.streak = out.severity !== 'none' ? this.streak + 1 : Math.max(0, this.streak - 1);
    if (!(out.severity === 'drain' && this.errorCusum >= errorDrainH(cfg))) {
      if (out.severity === 'drain' && this.streak < cfg.confirmWindows) out.severity = 'degrade';
      if (this.streak < 2) out.severity = 'none';
    }
    // Latency: the CUSUM accumulates its own evidence over windows, so it needs no streak.
    this.assessLatency(cfg, windowMs, tNow, perSec, out);
    return out;
  }

  /**
   * Latency: a one-sided CUSUM of the newest window's difference to the peers in standard errors,
   * S = max(0, S + min(z, 4) − k), with thresholds set by its in-control average run length; it acts
   * only while the windows since S left zero still rise (weighted slope z ≥ slopeZ) and the fitted level
   * is at least latencyMinRatio. A warm-up falls, a deploy's step is flat once it has happened, load
   * growth moves every endpoint together: none of them rises against the peers for long.
   */
  private assessLatency(cfg: PredictionSettings, windowMs: number, tNow: number, perSec: number, out: Prediction): void {
    const i = this.len - 1;
    const x = this.lat[i]!;
    const s = this.se[i]!;
    const hDeweight = thresholdFor(cfg.cusumK, cfg.deweightArl);
    if (x === x && s > 0) {
      const z = (x - this.reference) / (s * cfg.overdispersion);
      this.cusum = Math.max(0, this.cusum + Math.min(z, STEP_CAP) - cfg.cusumK);
      if (this.cusum === 0) this.cusumFrom = -1;
      else if (this.cusumFrom < 0) this.cusumFrom = tNow;
      // Back down from a shifted reference: judge against the peers' usual again.
      if (this.reference > 0) {
        this.lowerCusum = Math.max(0, this.lowerCusum - Math.max(z, -STEP_CAP) - cfg.cusumK);
        if (this.lowerCusum > hDeweight) this.rebase(0);
      }
    }
    if (!(this.cusum > hDeweight)) return;
    // The slope is judged over the windows after the one where the chart left zero (at most `windows`):
    // a ramp keeps rising there, a step (a restart cold, a deploy) is flat or falling after it. The window
    // where it left zero is left out: a change that began inside it makes it half old, half new — a
    // rise into the next window even for a step.
    let from = i;
    while (from > 0 && i - from + 1 < this.latencyWindows && this.t[from - 1]! > this.cusumFrom) from--;
    weightedSlope(this.t, this.lat, this.se, from, this.len, tNow, cfg.overdispersion, latFit);
    if (latFit.n < MIN_SLOPE_POINTS) return;
    if (!(latFit.z >= cfg.slopeZ)) {
      if (latFit.z > 0 && latFit.n < SHIFT_JUDGED_AT) return;
      // A change is established but is not clearly rising: a level shift. Its level becomes the
      // reference, so it is not tested for a rise again and again (each test has a chance of a false
      // rise). The reference is the fitted line where the run began when that is lower than its mean: a
      // slow ramp mistaken for a step then rises above it at once and is caught again.
      const start = latFit.level - latFit.slope * (tNow - this.t[from]!);
      this.rebase(Math.max(0, Math.min(this.runMean(from), start)));
      return;
    }
    if (!(latFit.level >= Math.log(cfg.latencyMinRatio))) return;
    const failLine = Math.log(cfg.latencyFailRatio);
    const etaMs = latFit.level >= failLine ? 0 : ((failLine - latFit.level) / latFit.slope) * windowMs;
    if (etaMs > cfg.horizonMs) return;
    const severity: PredictionSeverity = this.cusum > thresholdFor(cfg.cusumK, cfg.drainArl) ? 'drain' : 'degrade';
    if (RANK[severity] < RANK[out.severity]) return;
    out.severity = severity;
    out.channel = 'latency';
    out.etaMs = Math.round(etaMs);
    out.z = Math.round(latFit.z * 100) / 100;
    out.confidence = Math.round(normalCdf(latFit.z) * 10_000) / 10_000;
    out.slopePerSec = Math.round(latFit.slope * perSec * 10_000) / 10_000;
    out.level = Math.round(Math.exp(latFit.level) * 1000) / 1000;
    out.failureRate = NaN;
  }

  /** Judge latency against a new reference level from now on. */
  private rebase(level: number): void {
    this.reference = level;
    this.cusum = 0;
    this.cusumFrom = -1;
    this.lowerCusum = 0;
  }

  /** Weighted mean latency point of windows from..len (NaN when none). */
  private runMean(from: number): number {
    let w = 0;
    let sx = 0;
    for (let j = from; j < this.len; j++) {
      const e = this.se[j]!;
      if (this.lat[j]! !== this.lat[j]! || !(e > 0)) continue;
      w += 1 / (e * e);
      sx += this.lat[j]! / (e * e);
    }
    return w > 0 ? sx / w : NaN;
  }

  /**
   * The newest window into the error CUSUM: the log-likelihood ratio of its failures under p1 = p0 +
   * errorShift against p0, the larger of the peers' failure fraction, the endpoint's own usual one and a
   * floor; S = max(0, S + Σ). Then the window feeds the usual fraction.
   */
  private updateErrorCusum(cfg: PredictionSettings): void {
    const i = this.len - 1;
    const n = this.req[i]!;
    const f = this.fail[i]!;
    const q = this.peerRate[i]!;
    const usual = this.usualRequests >= USUAL_MIN_REQUESTS ? this.usualFailures / this.usualRequests : 0;
    const p0 = Math.max(q === q ? q : 0, usual, P0_FLOOR);
    const p1 = Math.min(0.99, p0 + cfg.errorShift);
    if (!(n > 0)) return;
    this.errorCusum = Math.max(0, this.errorCusum + f * Math.log(p1 / p0) + (n - f) * Math.log((1 - p1) / (1 - p0)));
    this.usualFailures = this.usualFailures * (1 - USUAL_FORGET) + f;
    this.usualRequests = this.usualRequests * (1 - USUAL_FORGET) + n;
  }

  private assessErrors(cfg: PredictionSettings, windowMs: number, tNow: number, perSec: number, out: Prediction): void {
    this.updateErrorCusum(cfg);
    cochranArmitage(this.t, this.fail, this.req, this.len, tNow, errFit);
    if (errFit.n < cfg.minPoints || !(errFit.slope > 0)) return;
    // The failures since the CUSUM left zero must already stand above the reference beyond chance: the
    // sequential test accumulates that evidence window by window.
    if (!(this.errorCusum > cfg.errorH)) return;
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
    const etaMs = excess >= cfg.errorFailExcess ? 0 : ((cfg.errorFailExcess - excess) / errFit.slope) * windowMs;
    this.consider(cfg, 'errors', errFit, etaMs, perSec, excess, this.errorCusum >= errorDrainH(cfg), out);
  }

  private consider(cfg: PredictionSettings, channel: 'latency' | 'errors', fit: TrendFit, etaMs: number, perSec: number, level: number, shifted: boolean, out: Prediction): void {
    if (etaMs > cfg.horizonMs || fit.z < cfg.deweightZ) return;
    // Drain on a very clear trend, on a fairly clear one whose failure is near (half the horizon or less),
    // or on one whose rate the error CUSUM already finds shifted up beyond its drain threshold.
    const severity: PredictionSeverity = shifted || fit.z >= cfg.drainZ || etaMs <= cfg.horizonMs / 2 ? 'drain' : 'degrade';
    if (RANK[severity] < RANK[out.severity] || (RANK[severity] === RANK[out.severity] && etaMs >= out.etaMs)) return;
    out.severity = severity;
    out.channel = channel;
    out.etaMs = Math.round(etaMs);
    out.z = Math.round(fit.z * 100) / 100;
    out.confidence = Math.round(normalCdf(fit.z) * 10_000) / 10_000;
    out.slopePerSec = Math.round(fit.slope * perSec * 10_000) / 10_000;
    out.level = Math.round(level * 1000) / 1000;
    out.failureRate = channel === 'errors' ? Math.round(Math.min(1, Math.max(0, fit.level)) * 10_000) / 10_000 : NaN;
  }
}
