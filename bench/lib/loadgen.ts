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

/** Run the load against every target at once; resolves when every request has an outcome.
 *  `onStart` is told the epoch ms of the schedule's origin (the fault schedule is set from it). */
export async function runOpenLoop(o: LoadOptions, onStart?: (epochMs: number) => void): Promise<LoadRecords[]> {
  const path = o.path ?? '/';
  const state = o.targets.map((tg) => {
    const pool = new Pool(tg.url, {
      connections: o.connections, pipelining: 1, keepAliveTimeout: 60_000, keepAliveMaxTimeout: 600_000,
      connect: { timeout: o.timeoutMs },
    });
    const rec: LoadRecords = { name: tg.name, start: 0, sched: [], lat: [], svc: [], status: [], backend: [], backends: [], errors: {} };
    const backendIx = new Map<string, number>();
    return { tg, pool, rec, backendIx, next: 0, done: false };
  });
  if (o.startAt !== undefined) await sleep(Math.max(0, o.startAt - Date.now()));
  const startEpoch = Date.now();
  onStart?.(startEpoch);
  const t0 = performance.now();
  let outstanding = 0;
  let allSent = false;
  let resolveDone!: () => void;
  const finished = new Promise<void>((r) => { resolveDone = r; });

  const fire = (s: (typeof state)[number], schedMs: number): void => {
    const i = s.rec.sched.length;
    s.rec.sched.push(Math.round(schedMs * 100) / 100);
    s.rec.lat.push(NaN); s.rec.svc.push(NaN); s.rec.status.push(0); s.rec.backend.push(-1);
    outstanding++;
    const sentAt = performance.now();
    const settle = (status: number, backend: string | undefined, err?: string): void => {
      const now = performance.now();
      s.rec.lat[i] = Math.round((now - t0 - schedMs) * 100) / 100;
      s.rec.svc[i] = Math.round((now - sentAt) * 100) / 100;
      s.rec.status[i] = status;
      if (backend !== undefined) {
        let ix = s.backendIx.get(backend);
        if (ix === undefined) { ix = s.rec.backends.length; s.rec.backends.push(backend); s.backendIx.set(backend, ix); }
        s.rec.backend[i] = ix;
      }
      if (err) s.rec.errors[err] = (s.rec.errors[err] ?? 0) + 1;
      if (--outstanding === 0 && allSent) resolveDone();
    };
    const signal = AbortSignal.timeout(Math.max(1, Math.round(o.timeoutMs - (performance.now() - t0 - schedMs))));
    const headers = o.seqHeader === undefined ? undefined : { [o.seqHeader]: String(i) };
    s.pool.request({ path, method: 'GET', headers, signal, headersTimeout: o.timeoutMs, bodyTimeout: o.timeoutMs })
      .then(async (res) => {
        const b = res.headers['x-backend'];
        try { await res.body.dump({ signal, limit: 1 << 20 }); } catch { settle(0, typeof b === 'string' ? b : undefined, 'body'); return; }
        settle(res.statusCode, typeof b === 'string' ? b : undefined);
      })
      .catch((e: Error & { code?: string; name: string }) => {
        const code = e.name === 'TimeoutError' || e.name === 'AbortError' ? 'timeout' : e.code ?? e.name;
        settle(0, undefined, code);
      });
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
        if (r > 0) { fire(s, s.next); s.next += 1000 / r; counts[j]++; } else s.next += 10; // idle step: look again in 10 ms
        if (s.next >= o.durationMs) s.done = true;
        nexts[j] = s.done ? Infinity : s.next;
      }
      if (state.some((s) => !s.done)) setTimeout(tick, 1); else resolveSent();
    };
    tick();
  });
  allSent = true;
  if (outstanding > 0) await finished;
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
 * With `maxLateMs`, requests the generator itself sent later than that (it was starved of CPU) are
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
