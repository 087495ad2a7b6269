// Per-endpoint rolling windows: a ring of N windows (default 10 × 1 s), each an HDR histogram of
// latency in microseconds plus outcome counters, and Envoy-style consecutive-failure counters.
// A window's histogram (sparse HDR bins: ~1–2 KB for a typical spread, at most ~5.6 KB) is created on the
// first request recorded into its ring slot and all of them are released once the endpoint has been idle
// for the whole ring; the counters are allocated on the first request too, so an endpoint that is known
// but sent nothing costs one small object. Once a slot's histogram has seen its latency range, record()
// allocates nothing.
import { LatencyHistogram } from './histogram.js';
import { Outcome, OUTCOME_COUNT } from '../core/types.js';

export interface WindowOptions {
  /** Width of one window, ms. */
  readonly windowMs: number;
  /** How many windows the ring keeps. */
  readonly windows: number;
  /** Latencies above this (µs) are clamped to it. */
  readonly maxLatencyUs: number;
  /** HDR precision (2 = 1 % relative error). */
  readonly significantDigits: 1 | 2 | 3;
}

export const DEFAULT_WINDOWS: WindowOptions = Object.freeze({ windowMs: 1000, windows: 10, maxLatencyUs: 60_000_000, significantDigits: 2 });

export type Histogram = LatencyHistogram;

/** Response-code classes counted per endpoint: 0 = no response, 1..5 = 1xx..5xx. */
export const STATUS_CLASSES = 6;

export function newHistogram(opts: WindowOptions): Histogram {
  return new LatencyHistogram(opts.maxLatencyUs, opts.significantDigits);
}

/** Totals over the last k windows, plus latency quantiles (µs), filled into a caller-owned object. */
export interface WindowSummary {
  /** Requests per outcome class, indexed by Outcome. */
  counts: number[];
  /** All requests except client-cancelled ones. */
  total: number;
  /** Failures charged to the endpoint (5xx + gateway + local-origin). */
  failures: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
  /** Span covered, ms (k × window width; the current window counts whole). */
  spanMs: number;
}

export function emptySummary(): WindowSummary {
  return { counts: new Array<number>(OUTCOME_COUNT).fill(0), total: 0, failures: 0, p50: 0, p90: 0, p99: 0, max: 0, mean: 0, spanMs: 0 };
}

/**
 * What one process's windows recorded for an endpoint since its last export (EndpointWindows.exportDelta),
 * to be merged into another's (mergeDelta). Plain numbers only: it crosses process boundaries as JSON.
 */
export interface WindowsDelta {
  /** Per window: [epoch, count per outcome (OUTCOME_COUNT), largest latency µs, then (bin, count) pairs]. */
  readonly windows: readonly (readonly number[])[];
  /** Code-class counters as (index into byCode, increment) pairs. */
  readonly byCode: readonly number[];
  readonly latencySumUs: number;
  readonly latencyCount: number;
  /**
   * Consecutive runs counted since the previous export: 5xx, gateway, local-origin, success, and (optional,
   * for deltas of older exporters) refused.
   */
  readonly consecutive: readonly number[];
}

/** Bins of the histograms of windows with these options (the same for every endpoint). */
const binCounts = new WeakMap<WindowOptions, number>();
function binsOf(opts: WindowOptions): number {
  let n = binCounts.get(opts);
  if (n === undefined) binCounts.set(opts, (n = newHistogram(opts).countsArrayLength));
  return n;
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

/** Throw a RangeError naming the first malformed part of a delta (it came from another process). */
function checkDelta(d: WindowsDelta, byCodeLength: number, bins: number): void {
  if (typeof d !== 'object' || d === null || !Array.isArray(d.windows) || !Array.isArray(d.byCode) || !Array.isArray(d.consecutive)) throw new RangeError('delta: not {windows, byCode, consecutive, ...}');
  for (const row of d.windows) {
    if (!Array.isArray(row) || row.length < 2 + OUTCOME_COUNT || (row.length - 2 - OUTCOME_COUNT) % 2 !== 0 || !row.every(isCount)) throw new RangeError(`delta: window row ${JSON.stringify(row).slice(0, 80)} is not [epoch, ${OUTCOME_COUNT} counts, max, bin pairs...] of non-negative integers`);
    for (let i = 2 + OUTCOME_COUNT; i < row.length; i += 2) if (row[i]! >= bins) throw new RangeError(`delta: bin ${row[i]} is outside the histogram (${bins} bins)`);
  }
  for (let i = 0; i < d.byCode.length; i += 2) {
    if (!isCount(d.byCode[i]) || d.byCode[i]! >= byCodeLength || !isCount(d.byCode[i + 1])) throw new RangeError(`delta: byCode pair ${i / 2} is not (index < ${byCodeLength}, count)`);
  }
  if ((d.consecutive.length !== 4 && d.consecutive.length !== 5) || !d.consecutive.every(isCount)) throw new RangeError('delta: consecutive is not 4 or 5 counts');
  if (!(d.latencySumUs >= 0) || !isCount(d.latencyCount)) throw new RangeError('delta: latency sum or count is not a non-negative number');
}

/** Counter arrays of one geometry, laid out in one buffer (see EndpointWindows.own). */
interface Counters {
  readonly epochs: Float64Array;
  readonly counts: Float64Array;
  readonly lifetime: Float64Array;
  readonly byCode: Float64Array;
  readonly hists: (Histogram | undefined)[];
}

function newCounters(opts: WindowOptions): Counters {
  // One buffer for the four counter arrays: each separate ArrayBuffer costs ~250 bytes of object and
  // backing-store bookkeeping on top of its data.
  const lengths = [opts.windows, opts.windows * OUTCOME_COUNT, OUTCOME_COUNT, OUTCOME_COUNT * STATUS_CLASSES];
  const buffer = new ArrayBuffer(lengths.reduce((a, b) => a + b, 0) * Float64Array.BYTES_PER_ELEMENT);
  let offset = 0;
  const [epochs, counts, lifetime, byCode] = lengths.map((n) => {
    const view = new Float64Array(buffer, offset, n);
    offset += n * Float64Array.BYTES_PER_ELEMENT;
    return view;
  }) as [Float64Array, Float64Array, Float64Array, Float64Array];
  return { epochs: epochs.fill(-1), counts, lifetime, byCode, hists: new Array<Histogram | undefined>(opts.windows).fill(undefined) };
}

/**
 * The counters every endpoint without a request shares, per geometry: every window empty, every total
 * zero. Read only: an endpoint takes its own (own()) before its first write.
 */
const unused = new WeakMap<WindowOptions, Counters>();
function unusedCounters(opts: WindowOptions): Counters {
  let c = unused.get(opts);
  if (c === undefined) unused.set(opts, (c = newCounters(opts)));
  return c;
}

export class EndpointWindows {
  readonly opts: WindowOptions;
  private epochs: Float64Array; // window number held by each slot (-1 = empty)
  private counts: Float64Array; // slot * OUTCOME_COUNT + outcome
  private hists: (Histogram | undefined)[];
  private owned = false;
  /** Cumulative counters since start, per outcome (for Prometheus). Read only. */
  lifetime: Float64Array;
  /**
   * Cumulative requests since start by outcome and response-code class (index outcome * STATUS_CLASSES +
   * class; class 0 = no response, 1..5 = 1xx..5xx), for the Prometheus `response_code` label. Read only.
   */
  byCode: Float64Array;
  /** Sum of latency µs since start, and count, for the Prometheus histogram's _sum and _count. */
  latencySumUs = 0;
  latencyCount = 0;
  // Consecutive counters, Envoy semantics: reset by a success; local-origin also counts as 5xx and gateway
  // (Envoy without split_external_local_origin_errors maps connect failures to 503, timeouts to 504).
  consecutive5xx = 0;
  consecutiveGateway = 0;
  consecutiveLocalOrigin = 0;
  consecutiveSuccess = 0;
  /**
   * Refused connections in a row (ECONNREFUSED on connect: nothing listens there), a subset of the
   * local-origin run. Certain evidence where a timeout is not, so the policy may eject on the first one.
   */
  consecutiveRefused = 0;
  /** Window number of the last record (for idle detection). */
  lastEpoch = -1;
  /**
   * Called after a failure once consecutive5xx ≥ failureHookAt, so that the healing engine ejects on a
   * consecutive-failure threshold without waiting for its tick. Set by the engine; null = none.
   */
  failureHook: ((w: EndpointWindows) => void) | null = null;
  failureHookAt = 0;
  /** The hook also runs once consecutiveRefused ≥ this after a refused connection (0 = only failureHookAt). */
  failureHookRefusedAt = 0;

  constructor(opts: WindowOptions = DEFAULT_WINDOWS) {
    this.opts = opts;
    // Every known endpoint has windows, most of them never see a request (a sidecar that discovers a
    // whole namespace): until the first one they share the empty counters.
    const c = unusedCounters(opts);
    this.epochs = c.epochs;
    this.counts = c.counts;
    this.lifetime = c.lifetime;
    this.byCode = c.byCode;
    this.hists = c.hists;
  }

  /** Take counters of its own before the first write (the shared ones are all empty). */
  private own(): void {
    if (this.owned) return;
    const c = newCounters(this.opts);
    this.epochs = c.epochs;
    this.counts = c.counts;
    this.lifetime = c.lifetime;
    this.byCode = c.byCode;
    this.hists = c.hists;
    this.owned = true;
  }

  /**
   * Record one finished request (`status`: the endpoint's HTTP status, 0 = none; `refused`: a local-origin
   * failure that was a refused connection). `latencyUs` is clamped to [1, maxLatencyUs].
   */
  record(outcome: Outcome, latencyUs: number, nowMs: number, status = 0, refused = false): void {
    this.recordEpoch(outcome, latencyUs, Math.floor(nowMs / this.opts.windowMs), status, refused);
  }

  /**
   * The hot-path form of record(): the caller passes the window number (`epochOf(nowMs)`), a small
   * integer, rather than an epoch-ms timestamp, which as a double would be boxed on every call.
   */
  recordEpoch(outcome: Outcome, latencyUs: number, epoch: number, status = 0, refused = false): void {
    const slot = epoch % this.opts.windows;
    if (this.epochs[slot] !== epoch) this.rotate(slot, epoch);
    this.counts[slot * OUTCOME_COUNT + outcome]! += 1;
    this.lifetime[outcome]! += 1;
    this.byCode[outcome * STATUS_CLASSES + (status >= 100 && status < 600 ? (status / 100) | 0 : 0)]! += 1;
    this.lastEpoch = epoch;
    if (outcome === Outcome.Cancelled) return;
    let v = latencyUs < 1 ? 1 : Math.round(latencyUs);
    if (v > this.opts.maxLatencyUs) v = this.opts.maxLatencyUs;
    let h = this.hists[slot];
    if (h === undefined) this.hists[slot] = h = newHistogram(this.opts); // first request in this slot
    h.recordValue(v);
    this.latencySumUs += v;
    this.latencyCount += 1;
    switch (outcome) {
      case Outcome.Success:
        this.consecutive5xx = 0;
        this.consecutiveGateway = 0;
        this.consecutiveLocalOrigin = 0;
        this.consecutiveRefused = 0;
        this.consecutiveSuccess += 1;
        break;
      case Outcome.Error5xx:
        this.consecutive5xx += 1;
        this.consecutiveGateway = 0;
        this.consecutiveRefused = 0;
        this.consecutiveSuccess = 0;
        break;
      case Outcome.Gateway:
        this.consecutive5xx += 1;
        this.consecutiveGateway += 1;
        this.consecutiveRefused = 0;
        this.consecutiveSuccess = 0;
        break;
      case Outcome.LocalOrigin:
        this.consecutive5xx += 1;
        this.consecutiveGateway += 1;
        this.consecutiveLocalOrigin += 1;
        this.consecutiveRefused = refused ? this.consecutiveRefused + 1 : 0;
        this.consecutiveSuccess = 0;
        break;
    }
    if (outcome !== Outcome.Success && this.failureHook !== null && (this.consecutive5xx >= this.failureHookAt || (refused && this.failureHookRefusedAt > 0 && this.consecutiveRefused >= this.failureHookRefusedAt))) this.failureHook(this);
  }

  /** Clear the consecutive counters (after an ejection, as Envoy does). */
  resetConsecutive(): void {
    this.consecutive5xx = 0;
    this.consecutiveGateway = 0;
    this.consecutiveLocalOrigin = 0;
    this.consecutiveRefused = 0;
    this.consecutiveSuccess = 0;
  }

  /**
   * Summarise the last `k` windows ending at `nowMs` (k = 1: the current window only) into `out`,
   * merging histograms into `scratch`. Call on the tick, not per request.
   */
  summarize(nowMs: number, k: number, out: WindowSummary, scratch: Histogram, opts: { skipCurrent?: boolean } = {}): WindowSummary {
    const w = this.opts.windows;
    const n = Math.min(Math.max(1, k), w);
    const current = Math.floor(nowMs / this.opts.windowMs);
    const last = opts.skipCurrent ? current - 1 : current;
    out.counts.fill(0);
    scratch.reset();
    for (let e = last - n + 1; e <= last; e++) {
      if (e < 0) continue;
      const slot = e % w;
      if (this.epochs[slot] !== e) continue;
      for (let o = 0; o < OUTCOME_COUNT; o++) out.counts[o]! += this.counts[slot * OUTCOME_COUNT + o]!;
      const h = this.hists[slot];
      if (h !== undefined && h.totalCount > 0) scratch.add(h);
    }
    out.failures = out.counts[Outcome.Error5xx]! + out.counts[Outcome.Gateway]! + out.counts[Outcome.LocalOrigin]!;
    out.total = out.counts[Outcome.Success]! + out.failures;
    out.spanMs = n * this.opts.windowMs;
    if (scratch.totalCount > 0) {
      out.p50 = scratch.getValueAtPercentile(50);
      out.p90 = scratch.getValueAtPercentile(90);
      out.p99 = scratch.getValueAtPercentile(99);
      out.max = scratch.maxValue;
      out.mean = scratch.mean;
    } else {
      out.p50 = out.p90 = out.p99 = out.max = out.mean = 0;
    }
    return out;
  }

  /** Outcome counts of exactly one window (epoch number), without quantiles: for per-window detectors. */
  windowCounts(epoch: number, out: number[]): boolean {
    const slot = epoch % this.opts.windows;
    if (epoch < 0 || this.epochs[slot] !== epoch) {
      out.fill(0);
      return false;
    }
    for (let o = 0; o < OUTCOME_COUNT; o++) out[o] = this.counts[slot * OUTCOME_COUNT + o]!;
    return true;
  }

  /** The HDR histogram of one window, or undefined if that window is gone or empty. Read-only use. */
  windowHistogram(epoch: number): Histogram | undefined {
    const slot = epoch % this.opts.windows;
    if (epoch < 0 || this.epochs[slot] !== epoch) return undefined;
    return this.hists[slot];
  }

  epochOf(nowMs: number): number {
    return Math.floor(nowMs / this.opts.windowMs);
  }

  /**
   * Everything recorded since the previous export, then cleared (counts, histograms, code classes, latency
   * sums, consecutive runs): a worker process ships this to the process that runs detection, once per tick.
   * Null when nothing was recorded. Allocates, so call it on a tick, never per request.
   */
  exportDelta(): WindowsDelta | null {
    const windows: number[][] = [];
    for (let slot = 0; slot < this.opts.windows; slot++) {
      const epoch = this.epochs[slot]!;
      if (epoch < 0) continue;
      let any = 0;
      for (let o = 0; o < OUTCOME_COUNT; o++) any += this.counts[slot * OUTCOME_COUNT + o]!;
      if (any === 0) continue;
      const h = this.hists[slot];
      const row = [epoch];
      for (let o = 0; o < OUTCOME_COUNT; o++) {
        row.push(this.counts[slot * OUTCOME_COUNT + o]!);
        this.counts[slot * OUTCOME_COUNT + o] = 0;
      }
      row.push(h?.maxValue ?? 0);
      if (h !== undefined) {
        h.exportBins(row);
        h.reset();
      }
      windows.push(row);
    }
    if (windows.length === 0) return null;
    const byCode: number[] = [];
    for (let i = 0; i < this.byCode.length; i++) {
      if (this.byCode[i] !== 0) byCode.push(i, this.byCode[i]!);
      this.byCode[i] = 0;
    }
    const delta: WindowsDelta = {
      windows,
      byCode,
      latencySumUs: this.latencySumUs,
      latencyCount: this.latencyCount,
      consecutive: [this.consecutive5xx, this.consecutiveGateway, this.consecutiveLocalOrigin, this.consecutiveSuccess, this.consecutiveRefused],
    };
    this.latencySumUs = 0;
    this.latencyCount = 0;
    this.resetConsecutive();
    return delta;
  }

  /**
   * Add a delta exported by another process's windows of the same geometry. Windows older than the ring
   * count in the lifetime totals only. A consecutive run continues this one's unless the delta holds the
   * outcome that ends it (then it replaces it: the other process saw the run restart). Runs the failure
   * hook as record() does. Throws a RangeError naming what is malformed, before changing anything.
   */
  mergeDelta(d: WindowsDelta): void {
    checkDelta(d, this.byCode.length, binsOf(this.opts));
    this.own();
    const total = new Array<number>(OUTCOME_COUNT).fill(0);
    for (const row of d.windows) {
      const epoch = row[0]!;
      for (let o = 0; o < OUTCOME_COUNT; o++) {
        total[o]! += row[1 + o]!;
        this.lifetime[o]! += row[1 + o]!;
      }
      const slot = epoch % this.opts.windows;
      if (this.epochs[slot]! > epoch) continue; // older than the ring
      if (this.epochs[slot] !== epoch) this.rotate(slot, epoch);
      for (let o = 0; o < OUTCOME_COUNT; o++) this.counts[slot * OUTCOME_COUNT + o]! += row[1 + o]!;
      if (row.length > 2 + OUTCOME_COUNT) {
        let h = this.hists[slot];
        if (h === undefined) this.hists[slot] = h = newHistogram(this.opts);
        h.addBins(row.slice(2 + OUTCOME_COUNT), row[1 + OUTCOME_COUNT]!);
      }
      if (epoch > this.lastEpoch) this.lastEpoch = epoch;
    }
    for (let i = 0; i + 1 < d.byCode.length; i += 2) this.byCode[d.byCode[i]!]! += d.byCode[i + 1]!;
    this.latencySumUs += d.latencySumUs;
    this.latencyCount += d.latencyCount;
    const [c5xx, cGateway, cLocal, cSuccess, cRefused = 0] = d.consecutive;
    const failures = total[Outcome.Error5xx]! + total[Outcome.Gateway]! + total[Outcome.LocalOrigin]!;
    const successes = total[Outcome.Success]!;
    this.consecutive5xx = successes > 0 ? c5xx : this.consecutive5xx + c5xx;
    this.consecutiveGateway = successes > 0 || total[Outcome.Error5xx]! > 0 ? cGateway : this.consecutiveGateway + cGateway;
    this.consecutiveLocalOrigin = successes > 0 ? cLocal : this.consecutiveLocalOrigin + cLocal;
    this.consecutiveSuccess = failures > 0 ? cSuccess : this.consecutiveSuccess + cSuccess;
    // A refused run is broken by any other outcome, so it continues only if the whole delta was refusals.
    this.consecutiveRefused = cRefused === total[Outcome.Success]! + failures ? this.consecutiveRefused + cRefused : cRefused;
    const refusedDue = cRefused > 0 && this.failureHookRefusedAt > 0 && this.consecutiveRefused >= this.failureHookRefusedAt;
    if (failures > 0 && this.failureHook !== null && (this.consecutive5xx >= this.failureHookAt || refusedDue)) this.failureHook(this);
  }

  /** Bytes held by this endpoint's windows (documented bound). */
  memoryBytes(): number {
    let b = this.owned ? this.epochs.buffer.byteLength : 0;
    for (const h of this.hists) if (h !== undefined) b += h.estimatedFootprintInBytes;
    return b;
  }

  /** Histograms currently allocated (0 for an endpoint idle for the whole ring). */
  histogramCount(): number {
    let n = 0;
    for (const h of this.hists) if (h !== undefined) n++;
    return n;
  }

  /**
   * Release every histogram when no window of the ring holds a request any more (the endpoint has been
   * idle for windows × windowMs). Counters, lifetime totals and consecutive counts stay. True if released.
   */
  releaseIfIdle(nowMs: number): boolean {
    if (this.epochOf(nowMs) - this.lastEpoch < this.opts.windows) return false;
    let released = false;
    for (let i = 0; i < this.hists.length; i++) {
      if (this.hists[i] !== undefined) {
        this.hists[i] = undefined;
        released = true;
      }
    }
    return released;
  }

  private rotate(slot: number, epoch: number): void {
    this.own(); // a first request always rotates: the shared epochs are all -1
    this.epochs[slot] = epoch;
    for (let o = 0; o < OUTCOME_COUNT; o++) this.counts[slot * OUTCOME_COUNT + o] = 0;
    this.hists[slot]?.reset();
  }
}

/** A failure hook with its thresholds (EndpointWindows.failureHook, failureHookAt, failureHookRefusedAt). */
export interface FailureHook {
  readonly hook: (w: EndpointWindows) => void;
  readonly at: number;
  readonly refusedAt: number;
}

function setHook(w: EndpointWindows, h: FailureHook): void {
  w.failureHook = h.hook;
  w.failureHookAt = h.at;
  w.failureHookRefusedAt = h.refusedAt;
}

/** Windows for every endpoint slot handed out by the mesh state. */
export class StatsTable {
  readonly opts: WindowOptions;
  private readonly rows: (EndpointWindows | undefined)[] = [];
  /**
   * Failure hooks set on slots whose windows do not exist yet, given to the windows when they are created:
   * an endpoint gets its windows on its first request (or when a consumer needs them), not when it becomes
   * known — most endpoints a sidecar knows are never called (~180 B each; docs/kubernetes.md, "Memory budget").
   */
  private readonly pendingHooks: (FailureHook | undefined)[] = [];
  /** The local application behind the inbound listener, measured like an endpoint (set by the proxy). */
  inbound: { readonly id: string; readonly windows: EndpointWindows } | undefined;

  constructor(opts: WindowOptions = DEFAULT_WINDOWS) {
    this.opts = opts;
  }

  /** The windows of a slot, created on first use (not on the request path: an endpoint's first request creates its Upstream, which calls this). */
  ensure(slot: number): EndpointWindows {
    let r = this.rows[slot];
    if (!r) {
      this.rows[slot] = r = new EndpointWindows(this.opts);
      const h = this.pendingHooks[slot];
      if (h !== undefined) {
        this.pendingHooks[slot] = undefined;
        setHook(r, h);
      }
    }
    return r;
  }

  get(slot: number): EndpointWindows | undefined {
    return this.rows[slot];
  }

  /** The failure hook the slot's windows have or will get when created (null: none). */
  hookOf(slot: number): EndpointWindows['failureHook'] {
    const r = this.rows[slot];
    return r !== undefined ? r.failureHook : (this.pendingHooks[slot]?.hook ?? null);
  }

  /**
   * Put `h` on the slot's windows — now if they exist, else when they are created — unless it already
   * has a hook. Returns whether it was put.
   */
  hook(slot: number, h: FailureHook): boolean {
    if (this.hookOf(slot) !== null) return false;
    const r = this.rows[slot];
    if (r !== undefined) setHook(r, h);
    else this.pendingHooks[slot] = h;
    return true;
  }

  /** Take `hook` off the slot (its windows, or the hook waiting for them); another hook is left alone. */
  unhook(slot: number, hook: FailureHook['hook']): void {
    const r = this.rows[slot];
    if (r !== undefined && r.failureHook === hook) r.failureHook = null;
    if (this.pendingHooks[slot]?.hook === hook) this.pendingHooks[slot] = undefined;
  }

  /** Forget a slot's data and hook (endpoint removed; its slot may be reused). */
  clear(slot: number): void {
    this.rows[slot] = undefined;
    this.pendingHooks[slot] = undefined;
  }

  private lastSweepEpoch = -1;

  /**
   * Release the histograms of endpoints idle for the whole ring. Cheap to call often: it walks the table
   * at most once per window. Returns how many endpoints released theirs.
   */
  sweep(nowMs: number): number {
    const epoch = Math.floor(nowMs / this.opts.windowMs);
    if (epoch === this.lastSweepEpoch) return 0;
    this.lastSweepEpoch = epoch;
    let n = 0;
    for (const r of this.rows) if (r !== undefined && r.releaseIfIdle(nowMs)) n++;
    return n;
  }
}
