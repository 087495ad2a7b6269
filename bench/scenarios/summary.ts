// Tables and target verdicts of the scenario benchmark from its runs (scenario × seed × system): medians
// with min–max over seeds, ratios paired per seed, tuning and held-out reported apart. Pure functions.
import type { Cell, Table } from '../lib/report.js';
import type { ScenarioMetrics } from './analyze.js';
import { medianOrNull as median } from '../lib/stats.js';

export type Outcome = { available: true; metrics: ScenarioMetrics } | { available: false; reason: string };

export interface RunRecord {
  readonly scenario: string;
  readonly family: string;
  readonly set: 'tuning' | 'held-out';
  readonly size: number;
  readonly seed: number;
  /** A scenario with faults (not a "nothing must be ejected" one). */
  readonly faulted: boolean;
  readonly hard: boolean;
  readonly loadavg: readonly number[];
  readonly outcomes: Readonly<Record<string, Outcome>>;
}

/** "median [min–max]" over seeds; a dash when no seed has the figure, and "(k of n)" when only some do. */
export function spread(values: readonly (number | null)[], digits = 0): string {
  const have = values.filter((v): v is number => v !== null && Number.isFinite(v));
  if (have.length === 0) return '–';
  const f = (x: number): string => (digits === 0 ? String(Math.round(x)) : x.toFixed(digits));
  const m = median(have)!;
  const lo = Math.min(...have), hi = Math.max(...have);
  const base = lo === hi ? f(m) : `${f(m)} [${f(lo)}–${f(hi)}]`;
  return have.length < values.length ? `${base} (${have.length} of ${values.length})` : base;
}

const metricsOf = (r: RunRecord, sys: string): ScenarioMetrics | undefined => {
  const o = r.outcomes[sys];
  return o && o.available ? o.metrics : undefined;
};

/** Per scenario × system, over seeds. */
export function detailTable(runs: readonly RunRecord[], systems: readonly string[]): Table {
  const byScenario = new Map<string, RunRecord[]>();
  for (const r of runs) byScenario.set(r.scenario, [...(byScenario.get(r.scenario) ?? []), r]);
  const rows: Cell[][] = [];
  for (const [name, rs] of byScenario) {
    for (const sys of systems) {
      const ms = rs.map((r) => metricsOf(r, sys));
      if (ms.every((m) => !m)) continue;
      const pick = (f: (m: ScenarioMetrics) => number | null): (number | null)[] => ms.map((m) => (m ? f(m) : null));
      const falseEj = ms.reduce((a, m) => a + (m?.falseEjections ?? 0), 0);
      rows.push([name, sys, rs.length, spread(pick((m) => m.failedPct), 2), spread(pick((m) => m.detectMs)), spread(pick((m) => m.reportedDetectMs)),
        spread(pick((m) => m.recoverMs)), spread(pick((m) => m.p99)), ms.some((m) => m && m.falseEjections === null) ? '–' : falseEj]);
    }
  }
  return {
    columns: ['scenario', 'system', 'seeds', 'failed %', 'traffic shifted ms', 'decided ms', 'recovery ms', 'p99 ms', 'false ejections'],
    alignRight: [false, false, true, true, true, true, true, true, true],
    rows,
  };
}

/** Failed requests of `sys` over the runs of one seed (null when it lacks one of them). */
function failedOverSeed(runs: readonly RunRecord[], sys: string): number | null {
  let n = 0;
  for (const r of runs) {
    const m = metricsOf(r, sys);
    if (!m) return null;
    n += m.failed;
  }
  return n;
}

/** Per seed: meshmedic's and `peer`'s failed requests over the same runs (seeds where no request was measured left out). */
export function pairedFailures(runs: readonly RunRecord[], mm: string, peer: string): { mine: number; theirs: number }[] {
  const seeds = [...new Set(runs.map((r) => r.seed))];
  const out: { mine: number; theirs: number }[] = [];
  for (const s of seeds) {
    const rs = runs.filter((r) => r.seed === s && metricsOf(r, mm) && metricsOf(r, peer));
    const a = failedOverSeed(rs, mm), b = failedOverSeed(rs, peer);
    // No request measured (all left out as late): no pair, rather than a meaningless 0 / 0.
    const measured = rs.reduce((n, r) => n + Math.min(metricsOf(r, mm)!.requests, metricsOf(r, peer)!.requests), 0);
    if (a === null || b === null || rs.length === 0 || measured === 0) continue;
    out.push({ mine: a, theirs: b });
  }
  return out;
}

/** Per seed: meshmedic's failed requests over a set divided by `peer`'s (paired: the same runs); 0 ÷ 0 is 1 (equal). */
export function pairedRatios(runs: readonly RunRecord[], mm: string, peer: string): number[] {
  return pairedFailures(runs, mm, peer).map(({ mine, theirs }) => (theirs === 0 ? (mine === 0 ? 1 : Infinity) : mine / theirs));
}

/** Per system over one set: failed %, ratio to it paired per seed, decisions, recovery, false ejections. */
export function summaryTable(runs: readonly RunRecord[], systems: readonly string[], mm: string): Table {
  const rows: Cell[][] = [];
  for (const sys of systems) {
    const ms = runs.map((r) => metricsOf(r, sys)).filter((m): m is ScenarioMetrics => Boolean(m));
    if (ms.length === 0) continue;
    const requests = ms.reduce((a, m) => a + m.requests, 0), failed = ms.reduce((a, m) => a + m.failed, 0);
    const faulted = runs.filter((r) => r.faulted && metricsOf(r, sys));
    const decided = faulted.map((r) => metricsOf(r, sys)!.reportedDetectMs).filter((x): x is number => x !== null);
    const shifted = faulted.map((r) => metricsOf(r, sys)!.detectMs).filter((x): x is number => x !== null);
    const recover = faulted.map((r) => metricsOf(r, sys)!.recoverMs).filter((x): x is number => x !== null);
    const falseEj = ms.some((m) => m.falseEjections === null) ? '–' : ms.reduce((a, m) => a + (m.falseEjections ?? 0), 0);
    const ratios = sys === mm ? [] : pairedRatios(runs, mm, sys);
    rows.push([sys, ms.length, requests ? Math.round((failed / requests) * 10_000) / 100 : null, sys === mm ? '1' : spread(ratios, 2),
      `${shifted.length}/${faulted.length}`, spread(shifted), `${decided.length}/${faulted.length}`, spread(decided), spread(recover), falseEj]);
  }
  return {
    columns: ['system', 'runs', 'failed %', `${mm} failed ÷ this (per seed: median [min–max])`, 'traffic shifted', 'shifted ms (median [min–max] over runs)', 'decided', 'decided ms', 'recovery ms', 'false ejections'],
    alignRight: [false, true, true, true, true, true, true, true, true, true],
    rows,
  };
}

export interface TargetInput {
  readonly runs: readonly RunRecord[];
  readonly mm: string;
  readonly mmNoRetries?: string;
  /** Tuned peer lanes (failed-requests target: ≤ 0.5× the best of them). */
  readonly tunedPeers: readonly string[];
  /** Every lane with retries off (detection alone). */
  readonly noRetryLanes: readonly string[];
  readonly haproxyTuned: string;
}

/** Faulted scenarios where `me`'s p99 (median over seeds) is above the lowest of `lanes`' medians. */
function p99Above(runs: readonly RunRecord[], names: readonly string[], me: string, lanes: readonly string[]): { scenario: string; mine: number; best: number }[] {
  const out: { scenario: string; mine: number; best: number }[] = [];
  const p99Of = (rs: readonly RunRecord[], l: string) => median(rs.map((r) => metricsOf(r, l)?.p99).filter((v): v is number => v !== undefined));
  for (const n of names) {
    const rs = runs.filter((r) => r.scenario === n && r.faulted);
    if (rs.length === 0) continue;
    const mine = p99Of(rs, me);
    const best = Math.min(...lanes.map((l) => p99Of(rs, l) ?? Infinity));
    if (mine !== null && Number.isFinite(best) && mine > best) out.push({ scenario: n, mine, best });
  }
  return out;
}

/** Each issue-9 target checked from one set's runs: a sentence per target, met or missed with its figure. */
export function verdicts(x: TargetInput): string[] {
  const out: string[] = [];
  const { runs, mm } = x;
  const bad = disturbed(runs);
  if (bad.length > 0 && bad.length === runs.length) {
    return [`no target can be judged from these runs: every one was disturbed (the load generator starved: > 1 % of requests reached > 200 ms late, or a lane's endpoints all silent > 1 s): ${bad.join(', ')}`];
  }
  // "≤ 0.5× the best lane", judged per seed on the counts (mine ≤ 0.5 × theirs): a seed where neither failed a
  // request meets it (0 ≤ 0.5 × 0) — and is named, because such a seed does not separate the systems.
  const best = (lanes: readonly string[], me: string): { lane: string; r: number; zero: number; seeds: number } | null => {
    let b: { lane: string; r: number; zero: number; seeds: number } | null = null;
    for (const l of lanes) {
      const pairs = pairedFailures(runs, me, l);
      const r = median(pairs.map(({ mine, theirs }) => (theirs === 0 ? (mine === 0 ? 0 : Infinity) : mine / theirs)));
      // The best lane is the one meshmedic compares worst against (largest ratio).
      // On a tie, the lane that failed no request on more seeds.
      const zero = pairs.filter((p) => p.mine === 0 && p.theirs === 0).length;
      if (r !== null && (b === null || r > b.r || (r === b.r && zero > b.zero))) b = { lane: l, r, zero, seeds: pairs.length };
    }
    return b;
  };
  const judged = (b: { lane: string; r: number; zero: number; seeds: number }): string => {
    const verdict = b.r <= 0.5 ? 'met' : 'missed';
    if (b.zero === b.seeds) return `0 ÷ 0 against ${b.lane} on every seed (${b.seeds}): neither failed a request — the inequality holds (0 ≤ 0.5 × 0), but this set does not separate the two: ${verdict}`;
    const zeros = b.zero === 0 ? '' : ` (${b.zero} of ${b.seeds} seeds 0 ÷ 0: neither failed a request, counted as meeting 0 ≤ 0.5 × 0)`;
    const r = Number.isFinite(b.r) ? `${b.r.toFixed(2)}×` : '∞× (meshmedic failed requests where the lane failed none)';
    return `${r} ${b.lane} (paired per seed, median)${zeros}: ${verdict}`;
  };
  const tb = best(x.tunedPeers, mm);
  out.push(tb ? `failed requests ≤ 0.5× the best tuned peer lane: ${judged(tb)}` : 'failed requests vs tuned peers: not measured');
  if (x.mmNoRetries) {
    const nb = best(x.noRetryLanes.filter((l) => l !== x.mmNoRetries), x.mmNoRetries);
    out.push(nb ? `retries off everywhere, failed requests ≤ 0.5× the best lane: ${judged(nb)}` : 'retries off: not measured');
  }
  // Never worse than any lane in any scenario beyond the seed spread: worse when meshmedic's minimum
  // failed count exceeds the lane's maximum.
  const worse: string[] = [];
  const names = [...new Set(runs.map((r) => r.scenario))];
  const lanes = [...new Set(runs.flatMap((r) => Object.keys(r.outcomes)))].filter((l) => l !== mm && l !== x.mmNoRetries && !x.noRetryLanes.includes(l));
  for (const n of names) {
    const rs = runs.filter((r) => r.scenario === n);
    const mine = rs.map((r) => metricsOf(r, mm)?.failed).filter((v): v is number => v !== undefined);
    for (const l of lanes) {
      const theirs = rs.map((r) => metricsOf(r, l)?.failed).filter((v): v is number => v !== undefined);
      if (mine.length && theirs.length && Math.min(...mine) > Math.max(...theirs)) worse.push(`${n} vs ${l}`);
    }
  }
  out.push(`never worse than any lane in any scenario beyond the seed spread: ${worse.length ? `missed in ${worse.join(', ')}` : 'met'}`);
  const decidedIn = (pred: (r: RunRecord) => boolean, limit: number, label: string): void => {
    const rs = runs.filter(pred);
    if (rs.length === 0) return;
    const d = rs.map((r) => metricsOf(r, mm)?.reportedDetectMs ?? null);
    const m = median(d.map((v) => (v === null ? Infinity : v)));
    out.push(`${label}: decided ${spread(d)} ms over ${rs.length} runs (target ≤ ${limit} ms, median): ${m !== null && m <= limit ? 'met' : 'missed'}`);
  };
  decidedIn((r) => r.hard && /5xx|503/.test(r.family), 1000, 'hard 5xx');
  decidedIn((r) => r.family === 'partial-5xx-30', 3000, 'partial 30 % errors');
  decidedIn((r) => r.family === 'gray-3x', 3000, 'gray 3×');
  decidedIn((r) => r.family === 'gray-1.8x', 10_000, 'gray 1.8×');
  for (const fam of ['noise', 'heterogeneous-healthy', 'overload']) {
    const rs = runs.filter((r) => r.family === fam);
    if (rs.length === 0) continue;
    const fe = rs.map((r) => metricsOf(r, mm)?.falseEjections ?? null);
    const total = fe.reduce<number>((a, v) => a + (v ?? 0), 0);
    out.push(`${fam}: ${total} false ejections over ${rs.length} runs (target 0): ${total === 0 && fe.every((v) => v !== null) ? 'met' : 'missed'}`);
  }
  // Recovery, paired per run where both recovered, then the median of the per-run ratios.
  const rec: number[] = [];
  for (const r of runs.filter((q) => q.faulted)) {
    const a = metricsOf(r, mm)?.recoverMs, b = metricsOf(r, x.haproxyTuned)?.recoverMs;
    if (a !== null && a !== undefined && b !== null && b !== undefined) rec.push(b === 0 ? (a === 0 ? 1 : Infinity) : a / b);
  }
  const rm = median(rec);
  out.push(rm === null ? `recovery vs ${x.haproxyTuned}: no run where both recovered` : `recovery ≤ 0.7× ${x.haproxyTuned}: ${rm.toFixed(2)}× (median over ${rec.length} paired runs): ${rm <= 0.7 ? 'met' : 'missed'}`);
  // p99 during every fault ≤ the best peer lane's (median over seeds, per faulted scenario).
  const p99Worse = p99Above(runs, names, mm, x.tunedPeers);
  out.push(`p99 during every fault ≤ the best tuned peer lane's: ${p99Worse.length ? `missed in ${p99Worse.map((w) => `${w.scenario} (${Math.round(w.mine)} vs ${Math.round(w.best)} ms)`).join(', ')}` : 'met'}`);
  // The scale of that comparison: a median of three p99s against the lowest of four such medians. The
  // same rule applied to each tuned lane (against the other tuned lanes and meshmedic), and the seed spread.
  const faulted = names.filter((n) => runs.some((r) => r.scenario === n && r.faulted));
  if (p99Worse.length > 0 && faulted.length > 0) {
    const all = [mm, ...x.tunedPeers];
    const others = x.tunedPeers.map((l) => `${l} ${p99Above(runs, names, l, all.filter((o) => o !== l)).length}`);
    const spreads = faulted.map((n) => {
      const v = runs.filter((r) => r.scenario === n && r.faulted).map((r) => metricsOf(r, mm)?.p99).filter((p): p is number => p !== undefined);
      return v.length > 1 ? Math.max(...v) - Math.min(...v) : NaN;
    }).filter((v) => !Number.isNaN(v));
    const sm = median(spreads);
    out.push(`p99, for scale: the same rule for each tuned lane (against the others and meshmedic) finds it above the best in ${others.join(', ')} of ${faulted.length} scenarios${sm === null ? '' : `; meshmedic's p99 varies by ${sm.toFixed(1)} ms between seeds (median max − min)`}`);
  }
  if (bad.length) out.push(`disturbed runs (the load generator starved: > 1 % of requests reached > 200 ms late, or a lane's endpoints all silent > 1 s), figures not trustworthy: ${bad.join(', ')}`);
  return out;
}

/** Runs where the machine, not the system, decided the figures: "scenario seed N (load a→b)". */
export function disturbed(runs: readonly RunRecord[]): string[] {
  const out: string[] = [];
  for (const r of runs) {
    const ms = Object.values(r.outcomes).flatMap((o) => (o.available ? [o.metrics] : []));
    if (ms.some((m) => m.stallMs > 1000 || m.lateRequests > 0.01 * (m.requests + m.lateRequests))) out.push(`${r.scenario} seed ${r.seed} (load ${r.loadavg.join('→')})`);
  }
  return out;
}
