// `npm start` runs this: the demo mesh comes up, every fault of the first cycle is injected, each is
// detected by a healing decision on its own targets during its own window, the summary says so, and the
// demo stops cleanly with exit 0 when its duration ends.
import t from 'tap';
import { spawn } from 'node:child_process';
import { BIN } from '../helpers/spawn.js';
import { readFileSync } from 'node:fs';
import { APP_TIMEOUT_MS, CLIENT_HEADERS_TIMEOUT_MS, CYCLE_S, FAULT_SCHEDULE, SETTLE_MAX_MS, SETTLE_MS } from '../../src/demo/demo.js';
import { attributeDetection, renderSummary, type DemoFaultRecord } from '../../src/demo/view.js';
import type { RecordedDecision } from '../../src/mesh/state.js';

t.test('detection is the first decision on the fault\'s targets during the fault, never a later one', async (t) => {
  const rec = (): DemoFaultRecord => ({ label: 'crash', targets: ['p-2'], ids: ['p/10.0.0.2:80'], cycle: 0, forS: 8, startedAt: 1000, endedAt: 9000, detectedAt: undefined, detectedBy: undefined, failedBefore: 0, lost: 0, rpsBefore: 0, sharePct: undefined, minSharePct: undefined, outAtStart: [] });
  const d = (at: number, target: string, action = 'eject', applied = true, reason = 'r'): RecordedDecision => ({ action: action as 'eject', target, reason, source: 'local', at, evidence: {}, seq: at, applied, weight: action === 'weight' || action === 'probation' ? 0.5 : undefined });
  const late = rec();
  attributeDetection(late, [{ name: 'a', events: [d(500, 'p/10.0.0.2:80'), d(9500, 'p/10.0.0.2:80')] }], 20_000);
  t.equal(late.detectedAt, undefined, 'before the fault and after it: not credited');
  const other = rec();
  attributeDetection(other, [{ name: 'a', events: [d(2000, 'p/10.0.0.3:80'), d(2500, 'p/10.0.0.2:80', 'restore'), d(3000, 'p/10.0.0.2:80', 'eject', false)] }], 20_000);
  t.equal(other.detectedAt, undefined, 'another endpoint, a restore, a refused decision: not credited');
  const readmit = rec();
  attributeDetection(readmit, [{ name: 'a', events: [d(2000, 'p/10.0.0.2:80', 'probation', true, 'probe_passed'), d(2500, 'p/10.0.0.2:80', 'weight', true, 'ramp_up')] }], 20_000);
  t.equal(readmit.detectedAt, undefined, 'steps of re-admission (probation, ramping back up) take no traffic away: not credited');
  const ok = rec();
  attributeDetection(ok, [{ name: 'a', events: [d(4000, 'p/10.0.0.2:80')] }, { name: 'b', events: [d(3000, 'p/10.0.0.2:80', 'weight')] }], 20_000);
  t.match(ok, { detectedAt: 3000, detectedBy: { client: 'b', action: 'weight' } }, 'the earliest over all clients');
  const already = { ...rec(), outAtStart: ['a: p-2 ejected'] };
  t.match(renderSummary([already], 0, 20_000), /NOT detected .*when it began, a target was already out of rotation \(a: p-2 ejected\)/, 'a target already out when the fault began is named as the reason');
});

t.test('the README describes the schedule, the warm-up and the timeouts the demo runs', async (t) => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('### What `npm start` shows'), readme.indexOf('## Running it')).replace(/\s+/g, ' ');
  for (const f of FAULT_SCHEDULE) t.match(section, new RegExp(`\\) at ${f.atS} s|black-hole at ${f.atS} s|outage at ${f.atS} s`), `fault at ${f.atS} s`);
  t.match(section, `every ${CYCLE_S} s`);
  t.match(section, `--duration ${CYCLE_S} --plain\` runs one full cycle`);
  const lengths = FAULT_SCHEDULE.map((f) => f.forS);
  t.match(section, `each lasting ${Math.min(...lengths)}–${Math.max(...lengths)} s`);
  t.match(section, `healthy on every client for ${SETTLE_MS / 1000} s`);
  t.match(section, `give an endpoint ${CLIENT_HEADERS_TIMEOUT_MS / 1000} s to answer`);
  t.match(section, `inside the traffic generator's ${APP_TIMEOUT_MS / 1000} s`);
  const gray = FAULT_SCHEDULE.find((f) => f.fault.kind === 'latency')!;
  t.match(section, `every answer ${gray.fault.kind === 'latency' ? gray.fault.addMs : NaN} ms slower, still 200 OK, for ${gray.forS} s`);
});

t.test('meshmedic demo: every fault of the first cycle detected on its own targets; summary table', async (t) => {
  const durationS = CYCLE_S;
  const child = spawn(process.execPath, [BIN, 'demo', '--duration', String(durationS), '--plain'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const code = await new Promise<number | null>((resolve) => {
    // The cycle starts once the mesh has settled (at most SETTLE_MAX_MS), then runs durationS.
    const timer = setTimeout(() => child.kill('SIGKILL'), (durationS + 60) * 1000 + SETTLE_MAX_MS);
    child.once('exit', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  t.equal(code, 0, code === 0 ? 'the demo exits 0' : out.slice(-3000));
  t.match(out, /meshmedic demo — up \d+s/);
  t.match(out, /payments-1 +a +healthy/);
  t.match(out, /dashboard: http:\/\/127\.0\.0\.1:\d+\/ui\//, 'the dashboard URL is printed');
  const summary = out.slice(out.lastIndexOf('summary after'));
  t.comment(summary);
  for (const f of FAULT_SCHEDULE) {
    // Each row: the fault, its targets, the time to detect and the decision naming one of ITS targets.
    const row = summary.split('\n').find((l) => l.includes(f.label));
    t.ok(row, `summary row for ${f.label}`);
    // Every fault must be caught by a decision that takes traffic away from one of ITS targets during
    // ITS window, in the first cycle — the gray one too, even when the Peak-EWMA balancer starves it
    // (a quiet machine): its trickle and starved_latency see it.
    const detected = new RegExp(`${f.targets.join(',')}\\s+(\\d+) ms\\s+\\d+\\s+(frontend-1|frontend-2|reports): (eject|drain|weight) (${f.targets.join('|')}) \\(([a-z_]+)`);
    t.match(row, detected, `${f.label}: detected by a decision on its own target`);
    const m = detected.exec(row ?? '');
    if (m) t.comment(`${f.label}: ${m[1]} ms by ${m[2]} (${m[3]}, ${m[5]})`);
  }
  t.match(summary, /\b5 of 5 faults detected by a decision/, 'the summary says 5 of 5');
  t.match(summary, /faults started at t=\d+s, once every endpoint had been healthy on every client for 3 s/, 'the faults waited for the mesh to settle');
  t.match(out, /(frontend-1|frontend-2|reports) +t=\d+\.\ds eject payments-\d \(/, 'decisions shown with instance names and reasons');
});
