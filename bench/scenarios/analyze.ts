// Scenario metrics from raw evidence: the client's per-request records, each backend's own arrival
// log, and the ejections a system reports. Pure functions, so the definitions are tested on their own.
import { isFailure, lateness, summarize, type LoadRecords } from '../lib/loadgen.js';
import type { LiveScenario as Scenario } from './live.js';

/** One backend's arrival log (epoch ms, status; 0 = held by a black hole). */
export interface ArrivalLog { readonly address: string; readonly t: readonly number[]; readonly s: readonly number[] }

export interface Ejection { readonly address: string; readonly at: number; readonly soft?: boolean }

export interface ScenarioMetrics {
  requests: number;
  failed: number;
  failedPct: number;
  p50: number;
  p99: number;
  /**
   * Time from the fault's start until traffic stopped being hurt by it: the last "affected" event
   * (a request arriving at a faulty endpoint, or a failed request) before the first 1 s without any.
   * null = that never happened during the fault.
   */
  detectMs: number | null;
  /** Requests hurt before that moment (failed, answered by a faulty endpoint, or slower than SLOW_MS),
   *  counted once each from the client's records: the "within N requests" figure. */
  detectRequests: number | null;
  /** The system's own first decision on a faulty endpoint (ejection, drain, mark-down or de-weight), after the fault began. */
  reportedDetectMs: number | null;
  /** From the fault's end until the faulty endpoints get ≥ 50 % of their fair share again over 1 s;
   *  null when the fault never ends or traffic was never taken off them (nothing to recover from). */
  recoverMs: number | null;
  /** Ejections the system reported of endpoints that were not faulty; null = it cannot report them. */
  falseEjections: number | null;
  /** Healthy endpoints that received no traffic for ≥ 1 s while the rest of the lane did (observed by the backends). */
  healthyGaps: number;
  /** Requests left out because the load generator sent them > MAX_LATE_MS late (a starved machine). */
  lateRequests: number;
  /** Longest time no endpoint of this system received anything: > 1 s means the run was disturbed. */
  stallMs: number;
}

const WINDOW_MS = 1000;
/** Requests the generator reached later than this (it was starved of CPU) are left out of every figure; the
 *  live benchmark does not send them at all (LoadOptions.skipLateMs), so that a stall is not followed by a burst. */
export const MAX_LATE_MS = 200;
/** A request this slow was hurt by the fault even if it finally succeeded (retried after a timeout). */
export const SLOW_MS = 1000;

/** Index of the first element ≥ x in an ascending array. */
function lowerBound(a: readonly number[], x: number): number {
  let lo = 0, hi = a.length;
  while (lo < hi) { const m = (lo + hi) >> 1; if (a[m] < x) lo = m + 1; else hi = m; }
  return lo;
}

/** Expected requests per ms at the faulty endpoints if traffic were spread evenly (rate at time t). */
function fairPerMs(sc: Scenario, relMs: number, share: number): number {
  let r = 0;
  for (const s of sc.schedule) if (s.atMs <= relMs) r = s.rate;
  return (r / 1000) * share;
}

export function analyzeScenario(sc: Scenario, rec: LoadRecords, logs: readonly ArrivalLog[], ejections: readonly Ejection[] | undefined): ScenarioMetrics {
  const start = rec.start;
  const F = start + sc.faultStartMs;
  const E = sc.faultEndMs === null ? start + sc.durationMs : start + sc.faultEndMs;
  const end = start + sc.durationMs;
  const sum = summarize(rec, sc.faultStartMs, sc.durationMs, MAX_LATE_MS);
  // Every arrival at every endpoint of this lane: to tell a stalled run from a removed endpoint.
  const all: number[] = logs.flatMap((l) => l.t as number[]).sort((a, b) => a - b);
  const healthyIx = [...Array(logs.length).keys()].filter((i) => !sc.faulty.includes(i));
  const healthy: number[] = healthyIx.flatMap((i) => logs[i].t as number[]).sort((a, b) => a - b);
  const countIn = (a: readonly number[], from: number, to: number): number => lowerBound(a, to + 1e-9) - lowerBound(a, from + 1e-9);
  /** Did the lane's healthy endpoints get at least half their share during (from, from + W]? */
  const laneFlowing = (from: number): boolean =>
    healthyIx.length === 0 || countIn(healthy, from, from + WINDOW_MS) >= 0.5 * fairPerMs(sc, from - start, healthyIx.length / sc.endpoints) * WINDOW_MS;
  const faultyAddr = new Set(sc.faulty.map((i) => logs[i]?.address).filter((a): a is string => Boolean(a)));
  const share = sc.faulty.length / sc.endpoints;

  let detectMs: number | null = null, detectRequests: number | null = null, recoverMs: number | null = null, reportedDetectMs: number | null = null;
  if (sc.faulty.length > 0) {
    // Affected events during the fault: arrivals at faulty endpoints (their own log) and failed requests (the client's).
    const ev: number[] = [];
    for (const i of sc.faulty) for (const t of logs[i]?.t ?? []) if (t >= F && t <= E) ev.push(t);
    for (let i = 0; i < rec.sched.length; i++) {
      const at = start + rec.sched[i];
      if (at >= F && at <= E && isFailure(rec.status[i]) && lateness(rec, i) <= MAX_LATE_MS) ev.push(at);
    }
    ev.sort((a, b) => a - b);
    // Traffic "stops" at the first affected event followed by a whole second without any: at a fair
    // share of tens of requests per second such a gap does not happen by chance, while sparse probes
    // sent later (canaries, re-admission tries) do not hide the moment the endpoint was taken out.
    // The healthy endpoints must have kept receiving traffic meanwhile: a stalled run is no detection.
    const quiet = sc.quietMs ?? WINDOW_MS;
    if (F + quiet <= E && (ev.length === 0 || ev[0] - F >= quiet) && laneFlowing(F)) { detectMs = 0; detectRequests = 0; } // never hurt at all
    else {
      for (let k = 0; k < ev.length; k++) {
        if (ev[k] + quiet > E) break;
        if ((k + 1 < ev.length ? ev[k + 1] : E) - ev[k] >= quiet && laneFlowing(ev[k])) { detectMs = Math.round(ev[k] - F); break; }
      }
      if (detectMs !== null) {
        // Requests hurt before that moment, from the client's side (each counted once): failed,
        // answered by a faulty endpoint, or slowed past SLOW_MS (e.g. retried after a timeout).
        const faultyIx = new Set(rec.backends.map((b, i) => (faultyAddr.has(b) ? i : -1)).filter((i) => i >= 0));
        let n = 0;
        for (let i = 0; i < rec.sched.length; i++) {
          const at = start + rec.sched[i];
          if (at < F || at > F + detectMs || lateness(rec, i) > MAX_LATE_MS) continue;
          if (isFailure(rec.status[i]) || faultyIx.has(rec.backend[i]) || rec.lat[i] >= SLOW_MS) n++;
        }
        detectRequests = n;
      }
    }
    if (ejections) {
      const first = ejections.filter((e) => faultyAddr.has(e.address) && e.at >= F - 1000 && e.at <= E).map((e) => e.at).sort((a, b) => a - b)[0];
      // nginx logs whole seconds: an event in the fault's first second may carry an earlier stamp.
      if (first !== undefined) reportedDetectMs = Math.max(0, Math.round(first - F));
    }
    // Recovery only means something if traffic was taken off the endpoint (detected) during the fault.
    if (sc.faultEndMs !== null && detectMs !== null) {
      const arrivals: number[] = [];
      for (const i of sc.faulty) for (let j = 0; j < (logs[i]?.t.length ?? 0); j++) {
        const t = logs[i].t[j];
        if (t >= E && logs[i].s[j] !== 0) arrivals.push(t);
      }
      arrivals.sort((a, b) => a - b);
      for (let k = 0; k < arrivals.length; k++) {
        if (arrivals[k] + WINDOW_MS > end) break;
        const need = 0.5 * fairPerMs(sc, arrivals[k] - start, share) * WINDOW_MS;
        if (lowerBound(arrivals, arrivals[k] + WINDOW_MS) - k >= need) { recoverMs = Math.round(arrivals[k] - E); break; }
      }
    }
  }

  let falseEjections: number | null = null;
  if (ejections) falseEjections = ejections.filter((e) => !e.soft && !faultyAddr.has(e.address) && e.at >= start - 1000 && e.at <= end).length;

  // Gaps: a healthy endpoint starved of traffic for a whole second while the lane as a whole kept
  // receiving at least half its load (skip the first and last second).
  let healthyGaps = 0;
  const lo = start + 1000, hi = end - 1000;
  for (const i of healthyIx) {
    const t = logs[i].t.filter((x) => x >= lo && x <= hi);
    let prev = lo;
    for (const x of [...t, hi]) {
      if (x - prev >= WINDOW_MS && countIn(all, prev, x) >= 0.5 * fairPerMs(sc, prev - start, 1) * (x - prev)) healthyGaps++;
      prev = x;
    }
  }
  let stallMs = 0, prevAll = lo;
  for (const x of [...all.filter((y) => y >= lo && y <= hi), hi]) { stallMs = Math.max(stallMs, x - prevAll); prevAll = x; }

  return {
    requests: sum.count, failed: sum.failed, failedPct: sum.count ? Math.round((sum.failed / sum.count) * 10_000) / 100 : 0,
    p50: sum.p50, p99: sum.p99, detectMs, detectRequests, reportedDetectMs, recoverMs, falseEjections, healthyGaps,
    lateRequests: sum.late, stallMs: Math.round(stallMs),
  };
}
