// The demo's live terminal view: one row per endpoint as the client sidecars see it, and the fault log
// with time to detect and requests lost per fault.
import type { Sidecar } from '../runtime/sidecar.js';
import { emptySummary, newHistogram, type Histogram, type WindowSummary } from '../stats/window.js';
import type { DemoInstance } from './demo.js';
import type { TrafficGenerator } from './traffic.js';

export interface DemoFaultRecord {
  label: string;
  targets: readonly string[];
  ids: string[];
  startedAt: number;
  endedAt: number | undefined;
  detectedAt: number | undefined;
  failedBefore: number;
  lost: number;
  /** Requests per second the faulty endpoints got before the fault, and the share of that they get now. */
  rpsBefore: number;
  sharePct: number | undefined;
}

export interface ViewInput {
  now: number;
  started: number;
  instances: readonly DemoInstance[];
  clients: readonly Sidecar[];
  traffic: TrafficGenerator;
  records: readonly DemoFaultRecord[];
  plain: boolean;
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
  lines.push(`meshmedic demo — up ${up}s — ${v.clients.length} client sidecars gossiping ("reports" sends payments no traffic), ${v.instances.length} instances each behind its own sidecar`);
  lines.push(`requests sent ${sent}, failed ${failed} (${sent ? ((100 * failed) / sent).toFixed(2) : '0.00'} %)   admin APIs: ${v.clients.map((c) => `http://${c.addresses.admin}/v1/endpoints`).join('  ')}`);
  lines.push('');
  lines.push(pad('endpoint', 30) + pad('instance', 12) + pad('zone', 8) + pad('state: frontend-1 / frontend-2 / reports', 44) + pad('rps', 7) + pad('p50 ms', 9) + pad('p99 ms', 9) + pad('errors', 8));
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
  lines.push('faults injected (time to detect = first healing decision by any client sidecar; lost = failed requests seen by the app)');
  if (v.records.length === 0) lines.push('  (none yet: the first fault starts 8 s in)');
  for (const r of v.records.slice(-8)) {
    const at = ((r.startedAt - v.started) / 1000).toFixed(0);
    const status = r.endedAt === undefined ? 'ACTIVE' : 'cleared';
    const ttd = r.detectedAt === undefined ? (r.endedAt === undefined ? 'detecting…' : 'not detected') : `${r.detectedAt - r.startedAt} ms`;
    const shifted = r.sharePct !== undefined && r.endedAt === undefined ? `  (balancer: it gets ${r.sharePct} % of its usual traffic)` : '';
    lines.push(`  t=${pad(at + 's', 6)} ${pad(r.label, 48)} on ${pad(r.targets.join(','), 22)} ${pad(status, 8)} detected in ${pad(ttd, 14)} lost ${r.lost}${shifted}`);
  }
  const recent: string[] = [];
  for (const [i, c] of v.clients.entries()) {
    for (const e of c.context.mesh.eventsSince(0).slice(-4)) {
      if (!e.applied) continue;
      const ev = Object.entries(e.evidence).slice(0, 3).map(([k, val]) => `${k}=${typeof val === 'number' ? +val.toFixed(3) : val}`).join(' ');
      recent.push(`  ${i < 2 ? `frontend-${i + 1}` : 'reports'} t=${((e.at - v.started) / 1000).toFixed(1)}s ${e.action} ${e.target} (${e.reason}${ev ? '; ' + ev : ''})`);
    }
  }
  lines.push('');
  lines.push('recent decisions');
  lines.push(...(recent.length ? recent.slice(-8) : ['  (none yet)']));
  lines.push('');
  lines.push('Ctrl-C stops the demo.');
  const text = lines.join('\n') + '\n';
  return v.plain ? `\n${text}` : `\x1b[H\x1b[2J${text}`;
}

function pad(s: string, n: number): string {
  return s.length >= n ? s.slice(0, n - 1) + ' ' : s + ' '.repeat(n - s.length);
}
