// `npm start` runs this: the demo mesh comes up, every fault of the first cycle is injected, each is
// detected by a healing decision on its own targets during its own window, the summary says so, and the
// demo stops cleanly with exit 0 when its duration ends.
import t from 'tap';
import { spawn } from 'node:child_process';
import { BIN } from '../helpers/spawn.js';
import { CYCLE_S, FAULT_SCHEDULE } from '../../src/demo/demo.js';
import { attributeDetection, type DemoFaultRecord } from '../../src/demo/view.js';
import type { RecordedDecision } from '../../src/mesh/state.js';

t.test('detection is the first decision on the fault\'s targets during the fault, never a later one', async (t) => {
  const rec = (): DemoFaultRecord => ({ label: 'crash', targets: ['p-2'], ids: ['p/10.0.0.2:80'], cycle: 0, forS: 8, startedAt: 1000, endedAt: 9000, detectedAt: undefined, detectedBy: undefined, failedBefore: 0, lost: 0, rpsBefore: 0, sharePct: undefined, minSharePct: undefined });
  const d = (at: number, target: string, action = 'eject', applied = true): RecordedDecision => ({ action: action as 'eject', target, reason: 'r', source: 'local', at, evidence: {}, seq: at, applied });
  const late = rec();
  attributeDetection(late, [{ name: 'a', events: [d(500, 'p/10.0.0.2:80'), d(9500, 'p/10.0.0.2:80')] }], 20_000);
  t.equal(late.detectedAt, undefined, 'before the fault and after it: not credited');
  const other = rec();
  attributeDetection(other, [{ name: 'a', events: [d(2000, 'p/10.0.0.3:80'), d(2500, 'p/10.0.0.2:80', 'restore'), d(3000, 'p/10.0.0.2:80', 'eject', false)] }], 20_000);
  t.equal(other.detectedAt, undefined, 'another endpoint, a restore, a refused decision: not credited');
  const ok = rec();
  attributeDetection(ok, [{ name: 'a', events: [d(4000, 'p/10.0.0.2:80')] }, { name: 'b', events: [d(3000, 'p/10.0.0.2:80', 'weight')] }], 20_000);
  t.match(ok, { detectedAt: 3000, detectedBy: { client: 'b', action: 'weight' } }, 'the earliest over all clients');
});

t.test('meshmedic demo: every fault of the first cycle detected on its own targets or explained; summary table', async (t) => {
  const durationS = CYCLE_S;
  const child = spawn(process.execPath, [BIN, 'demo', '--duration', String(durationS), '--plain'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), (durationS + 60) * 1000);
    child.once('exit', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  t.equal(code, 0, out.slice(-3000));
  t.match(out, /meshmedic demo — up \d+s/);
  t.match(out, /payments-1 +a +healthy/);
  t.match(out, /dashboard: http:\/\/127\.0\.0\.1:\d+\/ui\//, 'the dashboard URL is printed');
  const summary = out.slice(out.lastIndexOf('summary after'));
  t.comment(summary);
  for (const f of FAULT_SCHEDULE) {
    // Each row: the fault, its targets, then either a time to detect and the decision naming one of ITS
    // targets, or NOT detected and why, in words.
    const row = summary.split('\n').find((l) => l.includes(f.label));
    t.ok(row, `summary row for ${f.label}`);
    const detected = new RegExp(`${f.targets.join(',')}\\s+\\d+ ms\\s+\\d+\\s+(frontend-1|frontend-2|reports): \\w+ (${f.targets.join('|')}) \\(`);
    const explained = new RegExp(`${f.targets.join(',')}\\s+NOT detected\\s+\\d+\\s+no healing decision on ${f.targets.join(',')} during its ${f.forS} s window`);
    t.ok(detected.test(row!) || explained.test(row!), `${f.label}: detected on its own target, or why not`);
    // Failures that answer with errors or not at all trip the consecutive-failure detectors within a
    // few hundred requests: these must be caught every time, whatever the machine's load.
    if (f.fault.kind === 'crash' || f.fault.kind === 'blackhole') t.match(row, detected, `${f.label}: detected by a decision`);
  }
  t.match(summary, /\d of 5 faults detected by a decision/);
  t.match(out, /(frontend-1|frontend-2|reports) +t=\d+\.\ds eject payments-\d \(/, 'decisions shown with instance names and reasons');
});
