// The open-loop generator sends overdue requests in schedule order across targets, and among targets due at
// the same moment no target is always first (a fixed order gave the first-listed lane a head start).
import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { nextDue, runOpenLoop } from '../../bench/lib/loadgen.js';

t.test('the earliest due request goes first; nothing when none is due', async (t) => {
  t.equal(nextDue([5, 3, 4], [0, 0, 0], 10), 1);
  t.equal(nextDue([5, 3, 4], [0, 0, 0], 2), -1);
  t.equal(nextDue([Infinity, 7], [9, 9], 10), 1);
  t.equal(nextDue([], [], 10), -1);
});

t.test('same moment: request k goes first to target k mod n, so each target leads equally often', async (t) => {
  const n = 4;
  const firsts = new Array<number>(n).fill(0);
  const lasts = new Array<number>(n).fill(0);
  // Simulate a stall: every target has 12 requests overdue at 5 ms steps; drain them all.
  const next = new Array<number>(n).fill(0), count = new Array<number>(n).fill(0);
  const order: number[] = [];
  for (;;) {
    const j = nextDue(next, count, 55);
    if (j < 0) break;
    order.push(j); next[j] += 5; count[j]++;
  }
  t.equal(order.length, 48, 'every overdue request, once');
  for (let k = 0; k < 12; k++) {
    const round = order.slice(k * n, (k + 1) * n);
    t.same([...round].sort(), [0, 1, 2, 3], `round ${k}: each target once, in schedule order`);
    t.equal(round[0], k % n, `round ${k} starts at target ${k % n}`);
    firsts[round[0]!]++; lasts[round[n - 1]!]++;
  }
  t.same(firsts, [3, 3, 3, 3], 'each target first 3 times in 12 rounds');
  t.same(lasts, [3, 3, 3, 3], 'and last 3 times');
});

t.test('runOpenLoop sends every scheduled request to every target', async (t) => {
  const server = http.createServer((_req, res) => { res.writeHead(200, { 'x-backend': 'b' }); res.end('ok'); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const recs = await runOpenLoop({
    targets: [0, 1, 2].map((i) => ({ name: `t${i}`, url, schedule: [{ atMs: 0, rate: 100 }, { atMs: 100, rate: 0 }, { atMs: 200, rate: 100 }] })),
    durationMs: 300, timeoutMs: 5000, connections: 4,
  });
  for (const r of recs) {
    t.equal(r.sched.length, 20, `${r.name}: 10 requests in 0-100 ms, none in the idle 100 ms, 10 in 200-300 ms`);
    t.ok(r.status.every((s) => s === 200), `${r.name}: all answered`);
    t.ok(r.sched.every((s) => s < 100 || s >= 200), `${r.name}: none scheduled in the idle step`);
  }
});
