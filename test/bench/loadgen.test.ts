// The open-loop generator's records: statuses, which backend answered, the sequence header, timeouts counted
// from the scheduled time, and requests reached too late recorded as late instead of sent (skipLateMs).
import t, { type Test } from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { NOT_SENT, lateness, runOpenLoop, summarize } from '../../bench/lib/loadgen.js';

async function serve(t: Test, handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => { server.closeAllConnections(); return new Promise<void>((r) => server.close(() => r())); });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

t.test('records status, answering backend and the sequence header of every request', async (t) => {
  const seen = new Map<string, number[]>();
  const url = await serve(t, (req, res) => {
    const k = Number(req.headers['x-load-seq']);
    const who = req.url === '/a' ? 'a' : 'b';
    (seen.get(who) ?? seen.set(who, []).get(who)!).push(k);
    // Alternate two backend ids and fail every fifth request with a 503.
    res.writeHead(k % 5 === 4 ? 503 : 200, { 'X-Backend': k % 2 === 0 ? 'even:1' : 'odd:2' });
    res.end('ok');
  });
  const recs = await runOpenLoop({
    targets: [{ name: 'a', url, schedule: [{ atMs: 0, rate: 200 }] }],
    durationMs: 100, timeoutMs: 5000, connections: 4, path: '/a', seqHeader: 'x-load-seq',
  });
  const r = recs[0]!;
  t.equal(r.sched.length, 20, '20 requests in 100 ms at 200/s');
  t.same(seen.get('a')!.sort((x, y) => x - y), [...Array(20).keys()], 'request k carries x-load-seq: k');
  t.same(r.status, r.sched.map((_, k) => (k % 5 === 4 ? 503 : 200)), 'statuses in schedule order');
  t.same(r.backend.map((b) => r.backends[b]), r.sched.map((_, k) => (k % 2 === 0 ? 'even:1' : 'odd:2')), 'the x-backend header of each answer, any case');
  t.ok(r.lat.every((l, i) => l >= r.svc[i]! && r.svc[i]! > 0), 'latency from the schedule ≥ service time > 0');
  t.same(r.errors, {}, 'no transport errors');
});

t.test('a request without an answer times out counted from its scheduled time; the others are unaffected', async (t) => {
  const url = await serve(t, (req, res) => {
    if (Number(req.headers['x-load-seq']) % 4 === 0) return; // held: never answered
    res.writeHead(200); res.end('ok');
  });
  const recs = await runOpenLoop({
    targets: [{ name: 'held', url, schedule: [{ atMs: 0, rate: 100 }] }],
    durationMs: 200, timeoutMs: 300, connections: 32, seqHeader: 'x-load-seq',
  });
  const r = recs[0]!;
  t.equal(r.sched.length, 20);
  for (let k = 0; k < r.sched.length; k++) {
    if (k % 4 === 0) {
      t.equal(r.status[k], 0, `request ${k}: no answer`);
      t.ok(r.lat[k]! >= 300 && r.lat[k]! < 5000, `request ${k}: failed at the 300 ms timeout (${r.lat[k]} ms)`);
    } else t.equal(r.status[k], 200, `request ${k}: answered`);
  }
  t.same(r.errors, { timeout: 5 }, 'five timeouts, nothing else');
});

/** A generator stall: the event loop is held busy for `ms` once the load has run 50 ms. */
const stallAfterStart = (ms: number) => (): void => {
  setTimeout(() => { const until = performance.now() + ms; while (performance.now() < until) { /* the stall */ } }, 50);
};

t.test('skipLateMs: requests reached later than that are recorded as late, not sent', async (t) => {
  let arrivals = 0;
  const url = await serve(t, (_req, res) => { arrivals++; res.writeHead(200); res.end('ok'); });
  const recs = await runOpenLoop({
    targets: [{ name: 's', url, schedule: [{ atMs: 0, rate: 100 }] }],
    durationMs: 700, timeoutMs: 5000, connections: 8, skipLateMs: 100,
  }, stallAfterStart(400));
  const r = recs[0]!;
  const skipped = r.errors[NOT_SENT] ?? 0;
  t.equal(r.sched.length, 70, 'every scheduled request has a record');
  // Due 50-450 ms, reached at ~450 ms: the ones due before ~350 ms were more than 100 ms late.
  t.ok(skipped >= 20, `the stall's overdue requests were not sent (${skipped})`);
  t.equal(arrivals + skipped, 70, 'the rest were sent, once each');
  const notSent = r.status.map((s, i) => (s === 0 ? i : -1)).filter((i) => i >= 0);
  t.equal(notSent.length, skipped, 'a request not sent has status 0');
  t.ok(notSent.every((i) => lateness(r, i) > 100 && r.svc[i] === 0), 'and its lateness (> 100 ms) as latency, no service time');
  const sum = summarize(r, 0, Infinity, 100);
  t.ok(sum.late >= skipped, 'summarize counts them late, like requests sent that late');
  t.equal(sum.failed, 0, 'and not as failures of the system');
});

t.test('without skipLateMs the same stall sends every request, however late', async (t) => {
  let arrivals = 0;
  const url = await serve(t, (_req, res) => { arrivals++; res.writeHead(200); res.end('ok'); });
  const recs = await runOpenLoop({
    targets: [{ name: 's', url, schedule: [{ atMs: 0, rate: 100 }] }],
    durationMs: 700, timeoutMs: 5000, connections: 8,
  }, stallAfterStart(400));
  const r = recs[0]!;
  t.equal(arrivals, 70, 'all 70 sent');
  t.ok(r.status.every((s) => s === 200), 'all answered');
  t.ok(summarize(r, 0, Infinity, 100).late >= 20, 'the stall made at least 20 of them more than 100 ms late');
});
