// The demo's live terminal view: one row per endpoint as the client sidecars see it, and the fault log
// with time to detect and requests lost per fault.
import type { RecordedDecision } from '../mesh/state.js';
import { isDisruptive } from '../heal/policy.js';
import type { Sidecar } from '../runtime/sidecar.js';
import { emptySummary, newHistogram, type Histogram, type WindowSummary } from '../stats/window.js';
import type { DemoInstance } from './demo.js';
import type { TrafficGenerator } from './traffic.js';

export interface DemoFaultRecord {
  label: string;
  targets: readonly string[];
  ids: string[];
  /** Which repetition of the schedule (0 = first). */
  cycle: number;
  forS: number;
  startedAt: number;
  endedAt: number | undefined;
  detectedAt: number | undefined;
  /** The decision that detected it: which client sidecar, and what it did. */
  detectedBy: { client: string; action: string; target: string; reason: string } | undefined;
  failedBefore: number;
  lost: number;
  /** Requests per second the faulty endpoints got before the fault, and the share of that they get now. */
  rpsBefore: number;
  sharePct: number | undefined;
  /** The lowest share seen during the fault. */
  minSharePct: number | undefined;
  /** Targets already out of rotation when the fault began, as "client: instance state" (nothing left to detect there). */
  outAtStart: string[];
}

/** The warm-up before the first fault: the schedule starts once the mesh has settled (or it gave up waiting). */
export interface Warmup {
  /** The mesh must be healthy this long without a break (ms), waiting at most maxMs. */
  readonly settleMs: number;
  readonly maxMs: number;
  settled: boolean;
  /** When the fault schedule started (epoch ms); undefined while warming up. */
  doneAt: number | undefined;
}

/**
 * A fault is detected by the first decision that takes traffic away (an ejection, a drain or a de-weight;
 * not a step of re-admission or a restore) that any client sidecar applied to one of ITS targets during
 * ITS window (from its start to its end, or now while it lasts): a later decision about another fault
 * cannot be credited to it.
 */
export function attributeDetection(r: DemoFaultRecord, clients: readonly { name: string; events: readonly RecordedDecision[] }[], now: number): void {
  const until = r.endedAt ?? now;
  for (const c of clients) {
    for (const e of c.events) {
      if (!e.applied || !isDisruptive(e) || e.at < r.startedAt || e.at > until || !r.ids.includes(e.target)) continue;
      if (r.detectedAt === undefined || e.at < r.detectedAt) {
        r.detectedAt = e.at;
        r.detectedBy = { client: c.name, action: e.action, target: e.target, reason: e.reason };
      }
      break; // events are in time order: the first match is this client's earliest
    }
  }
}

/** Why a fault that ended was not detected, in words. */
function whyNotDetected(r: DemoFaultRecord): string {
  const share = r.minSharePct !== undefined && r.minSharePct < 50 ? `; the balancer had already cut its traffic to ${r.minSharePct} % of usual, so the detectors saw too few requests` : '';
  const out = r.outAtStart.length ? `; when it began, a target was already out of rotation (${r.outAtStart.join(', ')})` : '';
  return `no ejection, drain or de-weight on ${r.targets.join(',')} during its ${r.forS} s window${out}${share}`;
}

export interface ViewInput {
  now: number;
  started: number;
  instances: readonly DemoInstance[];
  clients: readonly Sidecar[];
  clientNames: readonly string[];
  traffic: TrafficGenerator;
  records: readonly DemoFaultRecord[];
  plain: boolean;
  /** The web dashboard of the first client sidecar. */
  dashboard: string;
  /** When the first fault starts, s after the warm-up (0 = no faults). */
  firstFaultS: number;
  warmup: Warmup;
}

const STATE_MARK: Record<string, string> = { healthy: 'healthy', degraded: 'DEGRADED', ejected: 'EJECTED', probation: 'probation', draining: 'draining' };
let scratch: Histogram | undefined;
const sum: WindowSummary = emptySummary();

export function renderView(v: ViewInput): string {
  const lines: string[] = [];
  const up = ((v.now - v.started) / 1000).toFixed(0);
  let sent = 0;
  let failed = 0;
  for (const c of v.traffic.counters.values()) {
    sent += c.sent;
    failed += c.failed;
  }
  lines.push(`meshmedic demo — up ${up}s — ${v.clients.length} client sidecars gossiping (${v.clientNames.join(', ')}; "reports" sends payments no traffic), ${v.instances.length} instances each behind its own sidecar`);
  lines.push(`requests sent ${sent}, failed ${failed} (${sent ? ((100 * failed) / sent).toFixed(2) : '0.00'} %)   dashboard: ${v.dashboard}`);
  lines.push(`admin APIs: ${v.clients.map((c, i) => `${v.clientNames[i]} http://${c.addresses.admin}`).join('  ')}`);
  lines.push('');
  lines.push(pad('endpoint', 30) + pad('instance', 12) + pad('zone', 8) + pad(`state: ${v.clientNames.join(' / ')}`, 44) + pad('rps', 7) + pad('p50 ms', 9) + pad('p99 ms', 9) + pad('errors', 8));
  const windows = 5;
  for (const inst of v.instances) {
    const id = `${inst.service}/${inst.address}`;
    let rps = 0;
    let p50 = 0;
    let p99 = 0;
    let total = 0;
    let fails = 0;
    const states: string[] = [];
    for (const c of v.clients) {
      const ev = c.context.mesh.snapshot().endpoints.get(id);
      if (!ev) continue;
      states.push(STATE_MARK[ev.health.state] ?? ev.health.state);
      const w = c.context.stats.get(ev.slot);
      if (!w) continue;
      scratch ??= newHistogram(c.context.stats.opts);
      w.summarize(v.now, windows, sum, scratch);
      total += sum.total;
      fails += sum.failures;
      rps += sum.total / ((windows * c.context.stats.opts.windowMs) / 1000);
      p50 = Math.max(p50, sum.p50);
      p99 = Math.max(p99, sum.p99);
    }
    lines.push(
      pad(id, 30) + pad(inst.name, 12) + pad(inst.zone, 8) + pad(states.join(' / '), 44) + pad(rps.toFixed(0), 7) +
        pad(total ? (p50 / 1000).toFixed(1) : '-', 9) + pad(total ? (p99 / 1000).toFixed(1) : '-', 9) + pad(total ? `${((100 * fails) / total).toFixed(1)}%` : '-', 8),
    );
  }
  lines.push('');
  lines.push('faults injected (detected = the first ejection, drain or de-weight by any client sidecar on the fault\'s targets during the fault; lost = failed requests the app saw)');
  if (v.records.length === 0) {
    if (v.firstFaultS === 0) lines.push('  (none: started with --no-faults)');
    else if (v.warmup.doneAt === undefined) lines.push(`  (none yet: warming up; the first fault comes ${v.firstFaultS} s after every endpoint has been healthy on every client for ${v.warmup.settleMs / 1000} s)`);
    else lines.push(`  (none yet: the first fault comes ${v.firstFaultS} s after t=${((v.warmup.doneAt - v.started) / 1000).toFixed(0)}s)`);
  }
  if (v.warmup.doneAt !== undefined && !v.warmup.settled) lines.push(`  the mesh did not settle (every endpoint healthy on every client for ${v.warmup.settleMs / 1000} s) within ${v.warmup.maxMs / 1000} s: this machine may be too loaded for the demo; faults started anyway`);
  for (const r of v.records.slice(-8)) {
    const at = ((r.startedAt - v.started) / 1000).toFixed(0);
    const status = r.endedAt === undefined ? 'ACTIVE' : 'cleared';
    const ttd = r.detectedAt === undefined ? (r.endedAt === undefined ? 'detecting…' : 'NOT detected') : `${r.detectedAt - r.startedAt} ms`;
    const by = r.detectedBy ? `  by ${r.detectedBy.client}: ${r.detectedBy.action} (${r.detectedBy.reason})` : r.endedAt !== undefined && r.detectedAt === undefined ? `  (${whyNotDetected(r)})` : '';
    const shifted = r.sharePct !== undefined && r.endedAt === undefined ? `  (balancer: it gets ${r.sharePct} % of its usual traffic)` : '';
    lines.push(`  t=${pad(at + 's', 6)} ${pad(r.label, 48)} on ${pad(r.targets.join(','), 22)} ${pad(status, 8)} detected in ${pad(ttd, 14)} lost ${r.lost}${by}${shifted}`);
  }
  // Every client's decisions, merged in time order, with instance names as in the table above.
  const names = new Map(v.instances.map((x) => [`${x.service}/${x.address}`, x.name]));
  const recent: { at: number; line: string }[] = [];
  for (const [i, c] of v.clients.entries()) {
    for (const e of c.context.mesh.eventsSince(0).slice(-8)) {
      if (!e.applied) continue;
      const ev = Object.entries(e.evidence).slice(0, 3).map(([k, val]) => `${k}=${typeof val === 'number' ? +val.toFixed(3) : val}`).join(' ');
      recent.push({ at: e.at, line: `  ${pad(v.clientNames[i] ?? `client-${i + 1}`, 11)} t=${((e.at - v.started) / 1000).toFixed(1)}s ${e.action} ${names.get(e.target) ?? e.target} (${e.reason}${ev ? '; ' + ev : ''})` });
    }
  }
  recent.sort((a, b) => a.at - b.at);
  lines.push('');
  lines.push('recent decisions');
  lines.push(...(recent.length ? recent.slice(-8).map((r) => r.line) : ['  (none yet)']));
  lines.push('');
  lines.push('Ctrl-C stops the demo.');
  const text = lines.join('\n') + '\n';
  return v.plain ? `\n${text}` : `\x1b[H\x1b[2J${text}`;
}

/** The table printed when the demo ends: every fault, whether and how fast a decision caught it. */
export function renderSummary(records: readonly DemoFaultRecord[], started: number, now: number, names: ReadonlyMap<string, string> = new Map(), warmup?: Warmup): string {
  const lines = ['', `summary after ${((now - started) / 1000).toFixed(0)} s (detected = first ejection, drain or de-weight on the fault's targets during the fault)`];
  if (warmup?.doneAt !== undefined && records.length) lines.push(`  faults started at t=${((warmup.doneAt - started) / 1000).toFixed(0)}s, ${warmup.settled ? `once every endpoint had been healthy on every client for ${warmup.settleMs / 1000} s` : `without the mesh having settled in ${warmup.maxMs / 1000} s (a loaded machine?)`}`);
  lines.push(`  ${pad('cycle', 6)}${pad('t', 7)}${pad('fault', 48)}${pad('targets', 22)}${pad('detected in', 13)}${pad('lost', 6)}by`);
  for (const r of records) {
    const ttd = r.detectedAt !== undefined ? `${r.detectedAt - r.startedAt} ms` : r.endedAt === undefined ? 'still active' : 'NOT detected';
    const by = r.detectedBy ? `${r.detectedBy.client}: ${r.detectedBy.action} ${names.get(r.detectedBy.target) ?? r.detectedBy.target} (${r.detectedBy.reason})` : r.endedAt !== undefined ? whyNotDetected(r) : '';
    lines.push(`  ${pad(String(r.cycle + 1), 6)}${pad(((r.startedAt - started) / 1000).toFixed(0) + 's', 7)}${pad(r.label, 48)}${pad(r.targets.join(','), 22)}${pad(ttd, 13)}${pad(String(r.lost), 6)}${by}`);
  }
  const done = records.filter((r) => r.endedAt !== undefined || r.detectedAt !== undefined);
  const caught = done.filter((r) => r.detectedAt !== undefined).length;
  lines.push(records.length ? `  ${caught} of ${done.length} faults detected by a decision${records.length > done.length ? ` (${records.length - done.length} still active, not counted)` : ''}` : '  no fault was injected');
  return lines.join('\n') + '\n';
}

function pad(s: string, n: number): string {
  return s.length >= n ? s.slice(0, n - 1) + ' ' : s + ' '.repeat(n - s.length);
}
