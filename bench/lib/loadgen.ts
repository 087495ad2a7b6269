// Open-loop load at a fixed rate (wrk has no fixed-rate mode and Debian has no wrk2): requests are sent
// on a schedule whatever the answers do, and latency is measured from the scheduled time, so a stall
// is charged to every request it delays (no coordinated omission).
import { Pool } from 'undici';

/** Rate steps relative to the start: from `atMs` on, send `rate` requests per second. */
export interface RateStep { readonly atMs: number; readonly rate: number }

export interface LoadTarget {
  readonly name: string;
  /** Origin, e.g. http://127.0.0.1:8080 */
  readonly url: string;
  readonly schedule: readonly RateStep[];
}

export interface LoadOptions {
  readonly targets: readonly LoadTarget[];
  readonly durationMs: number;
  /** A request with no complete answer after this long counts as failed (status 0, error "timeout"). */
  readonly timeoutMs: number;
  /** Connections per target (requests beyond this wait in the client queue, and that wait counts). */
  readonly connections: number;
  readonly path?: string;
  /** Send each request's index in its target's schedule in this header (e.g. x-load-seq), so that
   *  backends can draw the same latency for request K of every target (common random numbers). */
  readonly seqHeader?: string;
  /**
   * Requests the generator reaches later than this (ms after their scheduled time) are not sent: they are
   * recorded as late (status 0, `lat` = how late, `svc` 0, counted under errors["late, not sent"]), which is
   * what a request sent that late counts as anyway (see summarize's maxLateMs). Sending a backlog all at
   * once after a stall opens connections by the hundred and delays every request behind it, so one stall
   * became seconds of lateness. Default: send everything, however late.
   */
  readonly skipLateMs?: number;
  /** Epoch ms at which to begin (default: at once). */
  readonly startAt?: number;
}

/** One target's raw results: parallel arrays, one entry per request, in schedule order. */
export interface LoadRecords {
  name: string;
  /** Epoch ms of the schedule's origin. */
  start: number;
  /** Scheduled send time, ms after start. */
  sched: number[];
  /** Latency from the scheduled time to the end of the answer (or the error), ms. */
  lat: number[];
  /** Service time: from the moment the request was handed to the client to the end of the answer, ms
   *  (excludes the generator's own lateness; `lat` is the figure that counts). */
  svc: number[];
  /** HTTP status, or 0 when there was no answer (error or timeout). */
  status: number[];
  /** Index into `backends` of the x-backend header of the answer, -1 when absent. */
  backend: number[];
  backends: string[];
  /** Count of transport errors by code. */
  errors: Record<string, number>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function rateAt(schedule: readonly RateStep[], t: number): number {
  let r = 0;
  for (const s of schedule) if (s.atMs <= t) r = s.rate;
  return r;
}

/** One target's running state. */
interface TargetState {
  readonly tg: LoadTarget;
  readonly pool: Pool;
  readonly rec: LoadRecords;
  /** The raw x-backend values seen so far, parallel to rec.backends (compared as bytes: no string per answer). */
  readonly backendRaw: Buffer[];
  next: number;
  done: boolean;
}

const X_BACKEND = Buffer.from('x-backend');
/** errors[] key of the requests not sent because the generator reached them too late (LoadOptions.skipLateMs). */
export const NOT_SENT = 'late, not sent';

/** Index of a raw header name equal to `name` (ASCII, case-insensitive), or -1. */
function headerIndex(raw: readonly Buffer[], name: Buffer): number {
  for (let k = 0; k < raw.length; k += 2) {
    const b = raw[k];
    if (b.length !== name.length) continue;
    let j = 0;
    while (j < b.length && (b[j] | 0x20) === name[j]) j++;
    if (j === b.length) return k;
  }
  return -1;
}

/**
 * One request in flight, as undici's low-level handler (Dispatcher.dispatch): no promise, no body stream,
 * no AbortSignal and no closure per request — the generator's own work per request is what decides whether
 * it keeps its schedule while it shares the machine with every lane. Timeouts are one timer for all
 * (see runOpenLoop's `sweep`), in send order.
 */
class InFlight {
  abort: ((err?: Error) => void) | null = null;
  backend = -1;
  status = 0;
  headersSeen = false;
  done = false;
  constructor(
    readonly s: TargetState, readonly i: number, readonly schedMs: number, readonly sentAt: number,
    /** performance.now() after which the request counts as timed out (its scheduled time + the timeout). */
    readonly deadline: number, readonly settled: (r: InFlight, status: number, err: string | undefined) => void,
  ) {}
  onConnect(abort: (err?: Error) => void): void { this.abort = abort; if (this.done) abort(); }
  onHeaders(statusCode: number, raw: Buffer[]): boolean {
    if (statusCode < 200) return true; // 1xx: the answer is still to come
    this.headersSeen = true;
    const k = headerIndex(raw, X_BACKEND);
    if (k >= 0) {
      const v = raw[k + 1];
      const known = this.s.backendRaw;
      let ix = 0;
      while (ix < known.length && !known[ix].equals(v)) ix++;
      if (ix === known.length) { known.push(Buffer.from(v)); this.s.rec.backends.push(v.toString('latin1')); }
      this.backend = ix;
    }
    this.status = statusCode;
    return true;
  }
  onData(): boolean { return true; }
  onComplete(): void { this.settled(this, this.status, undefined); }
  onError(e: Error & { code?: string }): void {
    this.settled(this, 0, this.headersSeen ? 'body' : e.name === 'TimeoutError' || e.name === 'AbortError' ? 'timeout' : e.code ?? e.name);
  }
}

/** Number strings for the sequence header, built once and shared by every target (request K has the same K everywhere). */
const seqText: string[] = [];
const seqString = (i: number): string => {
  for (let k = seqText.length; k <= i; k++) seqText.push(String(k));
  return seqText[i];
};

/** Run the load against every target at once; resolves when every request has an outcome.
 *  `onStart` is told the epoch ms of the schedule's origin (the fault schedule is set from it). */
export async function runOpenLoop(o: LoadOptions, onStart?: (epochMs: number) => void): Promise<LoadRecords[]> {
  const path = o.path ?? '/';
  const state: TargetState[] = o.targets.map((tg) => ({
    tg,
    pool: new Pool(tg.url, {
      connections: o.connections, pipelining: 1, keepAliveTimeout: 60_000, keepAliveMaxTimeout: 600_000,
      connect: { timeout: o.timeoutMs },
    }),
    rec: { name: tg.name, start: 0, sched: [], lat: [], svc: [], status: [], backend: [], backends: [], errors: {} },
    backendRaw: [], next: 0, done: false,
  }));
  if (o.startAt !== undefined) await sleep(Math.max(0, o.startAt - Date.now()));
  const startEpoch = Date.now();
  onStart?.(startEpoch);
  const t0 = performance.now();
  let outstanding = 0;
  let allSent = false;
  let resolveDone!: () => void;
  const finished = new Promise<void>((r) => { resolveDone = r; });

  const settled = (r: InFlight, status: number, err: string | undefined): void => {
    if (r.done) return;
    r.done = true;
    const now = performance.now();
    const rec = r.s.rec, i = r.i;
    rec.lat[i] = Math.round((now - t0 - r.schedMs) * 100) / 100;
    rec.svc[i] = Math.round((now - r.sentAt) * 100) / 100;
    rec.status[i] = status;
    rec.backend[i] = r.backend;
    if (err) rec.errors[err] = (rec.errors[err] ?? 0) + 1;
    if (--outstanding === 0 && allSent) resolveDone();
  };

  // Requests in send order; deadlines follow it (send order is schedule order, see nextDue), so one timer
  // armed for the oldest unfinished request times them all out.
  const inflight: InFlight[] = [];
  let head = 0;
  let sweepTimer: NodeJS.Timeout | undefined;
  const sweep = (): void => {
    sweepTimer = undefined;
    const now = performance.now();
    while (head < inflight.length) {
      const r = inflight[head];
      if (!r.done) {
        if (r.deadline > now) break;
        settled(r, 0, r.headersSeen ? 'body' : 'timeout');
        r.abort?.();
      }
      inflight[head++] = undefined as unknown as InFlight;
    }
    if (head > 4096 && head * 2 > inflight.length) { inflight.splice(0, head); head = 0; }
    if (head < inflight.length) sweepTimer = setTimeout(sweep, Math.max(1, inflight[head].deadline - now));
  };

  const timeoutMs = o.timeoutMs;
  const seqHeader = o.seqHeader;
  const skipLateMs = o.skipLateMs ?? Infinity;
  const skip = (s: TargetState, schedMs: number, now: number): void => {
    const rec = s.rec;
    rec.sched.push(Math.round(schedMs * 100) / 100);
    rec.lat.push(Math.round((now - t0 - schedMs) * 100) / 100); rec.svc.push(0); rec.status.push(0); rec.backend.push(-1);
    rec.errors[NOT_SENT] = (rec.errors[NOT_SENT] ?? 0) + 1;
  };
  const fire = (s: TargetState, schedMs: number): void => {
    const rec = s.rec;
    const i = rec.sched.length;
    rec.sched.push(Math.round(schedMs * 100) / 100);
    rec.lat.push(NaN); rec.svc.push(NaN); rec.status.push(0); rec.backend.push(-1);
    outstanding++;
    const sentAt = performance.now();
    // The deadline counts from the scheduled time, as the latency does.
    const r = new InFlight(s, i, schedMs, sentAt, t0 + schedMs + timeoutMs, settled);
    inflight.push(r);
    if (sweepTimer === undefined) sweepTimer = setTimeout(sweep, Math.max(1, r.deadline - sentAt));
    s.pool.dispatch({
      path, method: 'GET', headers: seqHeader === undefined ? undefined : [seqHeader, seqString(i)],
      headersTimeout: timeoutMs, bodyTimeout: timeoutMs,
    }, r);
  };
  const nexts = new Float64Array(state.length);
  const counts = new Float64Array(state.length);
  await new Promise<void>((resolveSent) => {
    const tick = (): void => {
      const now = performance.now() - t0;
      for (let j = 0; j < state.length; j++) {
        const s = state[j];
        if (s.next >= o.durationMs) s.done = true;
        nexts[j] = s.done ? Infinity : s.next;
        counts[j] = s.rec.sched.length;
      }
      for (let j = nextDue(nexts, counts, now); j >= 0; j = nextDue(nexts, counts, now)) {
        const s = state[j];
        const r = rateAt(s.tg.schedule, s.next);
        if (r > 0) {
          if (now - s.next > skipLateMs) skip(s, s.next, t0 + now); else fire(s, s.next);
          s.next += 1000 / r; counts[j]++;
        } else s.next += 10; // idle step: look again in 10 ms
        if (s.next >= o.durationMs) s.done = true;
        nexts[j] = s.done ? Infinity : s.next;
      }
      if (state.some((s) => !s.done)) setTimeout(tick, 1); else resolveSent();
    };
    tick();
  });
  allSent = true;
  if (outstanding > 0) await finished;
  if (sweepTimer !== undefined) clearTimeout(sweepTimer);
  await Promise.all(state.map((s) => s.pool.destroy().catch(() => {})));
  for (const s of state) s.rec.start = startEpoch;
  return state.map((s) => s.rec);
}

/**
 * Which target sends next: the one whose next request is due earliest (≤ now), -1 when none is due. Among
 * targets due at the same moment (every lane of a scenario runs the same schedule) the first to send
 * rotates with the request's index (`counts[j]`: requests target j sent so far): request k goes first to
 * target k mod n. Sending each target's overdue requests in one go, targets always in the same order, made
 * the last target's requests the latest after every stall of the generator: in the quiet judged run the
 * first lane's mean lateness was 0.3-0.4 ms below the last's and its 99th percentile up to 4 ms below
 * (zone-outage-20, seed 2) — a head start for whichever system is listed first.
 */
export function nextDue(nexts: ArrayLike<number>, counts: ArrayLike<number>, now: number): number {
  const n = nexts.length;
  let pick = -1, at = Infinity, rank = Infinity;
  for (let j = 0; j < n; j++) {
    const t = nexts[j];
    if (!(t <= now)) continue;
    const r = (((j - counts[j]) % n) + n) % n;
    if (t < at || (t === at && r < rank)) { pick = j; at = t; rank = r; }
  }
  return pick;
}

/** A request failed when it got no answer (0) or an error status: 5xx, and 4xx too, since the
 *  load only sends valid requests (a proxy answering 404 has failed them). */
export function isFailure(status: number): boolean {
  return status === 0 || status >= 400;
}

/** Quantile of an ascending array (nearest rank). */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

export interface LatencySummary {
  count: number; failed: number;
  /** Requests left out because the generator sent them too late (see summarize). */
  late: number;
  p50: number; p90: number; p99: number; max: number; achievedRps: number;
  /** p99 of the service time (see LoadRecords.svc). */
  p99Service: number;
}

/** Summary of a record set; `from`/`to` (ms after start) restrict it to requests scheduled in that span. */
/** How late the generator itself sent request i (ms after its scheduled time). */
export const lateness = (r: LoadRecords, i: number): number => r.lat[i] - r.svc[i];

/**
 * Summary of a record set; `from`/`to` (ms after start) restrict it to requests scheduled in that span.
 * With `maxLateMs`, requests the generator itself sent (or reached, see skipLateMs) later than that (it was starved of CPU) are
 * left out and counted in `late`: their fate says nothing about the system under test.
 */
export function summarize(r: LoadRecords, from = 0, to = Infinity, maxLateMs = Infinity): LatencySummary {
  const lats: number[] = [];
  const svcs: number[] = [];
  let failed = 0, late = 0, first = Infinity, last = -Infinity;
  for (let i = 0; i < r.sched.length; i++) {
    const s = r.sched[i];
    if (s < from || s >= to) continue;
    if (lateness(r, i) > maxLateMs) { late++; continue; }
    lats.push(r.lat[i]);
    if (r.svc) svcs.push(r.svc[i]);
    if (isFailure(r.status[i])) failed++;
    if (s < first) first = s;
    if (s > last) last = s;
  }
  const sorted = Float64Array.from(lats).sort();
  const spanS = last > first ? (last - first) / 1000 : 0;
  return {
    count: lats.length, failed, late,
    p50: quantile(sorted, 0.5), p90: quantile(sorted, 0.9), p99: quantile(sorted, 0.99), max: sorted.length ? sorted[sorted.length - 1] : NaN,
    achievedRps: spanS > 0 ? Math.round(lats.length / spanS) : 0,
    p99Service: quantile(Float64Array.from(svcs).sort(), 0.99),
  };
}
