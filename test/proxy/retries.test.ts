// The retry policy (proxy.retries): replayable requests (idempotent method, no body) are retried on another
// endpoint after a reset, a per-try timeout or a retriable status, only while nothing has reached the
// client, within the per-service retry budget; every attempt is recorded against its own endpoint.
import t from 'tap';
import { Registry } from '../../src/admin/metrics-registry.js';
import { Outcome } from '../../src/core/types.js';
import { registerRetryMetrics } from '../../src/proxy/component.js';
import { RESULT_BUDGET, RESULT_RETRIED, RETRY_RESULTS, REASON_STATUS, RetryBudget, isReplayableMethod } from '../../src/proxy/retry.js';
import { backend, rawServer, request, startTestProxy, type TestProxy } from './helpers.js';

function windowsOf(p: TestProxy, port: number) {
  const ev = [...p.mesh.snapshot().endpoints.values()].find((e) => e.spec.port === port)!;
  return p.stats.ensure(ev.slot); // windows come with the first request: an endpoint never called reads as empty
}
const lifetime = (p: TestProxy, port: number, o: Outcome) => windowsOf(p, port).lifetime[o]!;
const total = (p: TestProxy, port: number) => windowsOf(p, port).lifetime.reduce((a, b) => a + b, 0);
/** Lifetime retry verdicts of `svc` for one reason / result. */
function count(p: TestProxy, reason: string, result: string): number {
  const b = p.handle.core.budgets.get('svc');
  if (b === undefined) return 0;
  const r = ['connect', 'reset', 'timeout', 'status'].indexOf(reason);
  return b.counts[r * RETRY_RESULTS.length + RETRY_RESULTS.indexOf(result as never)]!;
}
const svc = (...ports: number[]) => [{ name: 'svc', endpoints: ports.map((x) => ({ address: `127.0.0.1:${x}` })) }];

t.test('RetryBudget: 20 % of the requests + the per-second floor over 10 s, then the window slides', async (t) => {
  const b = new RetryBudget('svc', { budgetPercent: 20, budgetMinPerSecond: 1 });
  const t0 = 1_000_000_000_000;
  for (let i = 0; i < 100; i++) b.request(t0);
  let granted = 0;
  for (let i = 0; i < 100; i++) if (b.tryRetry(t0 + 500, REASON_STATUS)) granted++;
  t.equal(granted, 30, '20 % of 100 requests + 1/s × 10 s');
  t.equal(b.counts[REASON_STATUS * RETRY_RESULTS.length + RESULT_RETRIED], 30);
  t.equal(b.counts[REASON_STATUS * RETRY_RESULTS.length + RESULT_BUDGET], 70);
  t.notOk(b.tryRetry(t0 + 9_000, REASON_STATUS), 'still exhausted 9 s later');
  t.ok(b.tryRetry(t0 + 10_000, REASON_STATUS), '10 s later the old second has left the window');
  t.same(b.window(t0 + 10_000), { requests: 0, retries: 1, allowed: 10 });
  const none = new RetryBudget('x', { budgetPercent: 0, budgetMinPerSecond: 0 });
  none.request(t0);
  t.notOk(none.tryRetry(t0, REASON_STATUS), 'a zero budget allows nothing');
});

t.test('replayable methods: idempotent ones only', async (t) => {
  for (const m of ['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']) t.ok(isReplayableMethod(m), m);
  for (const m of ['POST', 'PATCH', 'CONNECT', 'get', '']) t.notOk(isReplayableMethod(m), m);
});

t.test('per-try timeout: a black-holed GET is answered by another endpoint', async (t) => {
  const hole = await rawServer(() => {}); // accepts, never answers
  const live = await backend((_req, res) => res.end('ok'));
  const p = await startTestProxy({ proxy: { headersTimeoutMs: 20_000, retries: { perTryTimeoutMs: 300 } }, services: svc(hole.port, live.port) });
  t.teardown(async () => {
    await p.close();
    await live.close();
    await hole.close();
  });
  for (let i = 0; i < 30 && lifetime(p, hole.port, Outcome.LocalOrigin) === 0; i++) {
    const started = Date.now();
    const r = await request(p.port, { headers: { host: 'svc' }, timeoutMs: 15_000 });
    t.equal(r.status, 200, `GET ${i} answered`);
    t.ok(Date.now() - started < 10_000, 'well before headersTimeoutMs');
  }
  t.ok(lifetime(p, hole.port, Outcome.LocalOrigin) >= 1, 'the timed-out attempt is recorded against the black hole');
  t.equal(count(p, 'timeout', 'retried'), lifetime(p, hole.port, Outcome.LocalOrigin), 'each timeout retried once');
  t.equal(lifetime(p, live.port, Outcome.Success), total(p, live.port), 'the live endpoint only succeeded');
});

t.test('retriable status: a 503 is discarded and the GET retried elsewhere; every attempt recorded', async (t) => {
  const sick = await backend((_req, res) => {
    res.statusCode = 503;
    res.end('overloaded '.repeat(100));
  });
  const live = await backend((_req, res) => res.end('ok'));
  const p = await startTestProxy({ services: svc(sick.port, live.port) });
  t.teardown(async () => {
    await p.close();
    await live.close();
    await sick.close();
  });
  let n = 0;
  for (; n < 40 && lifetime(p, sick.port, Outcome.Gateway) < 3; n++) {
    const r = await request(p.port, { method: n % 2 ? 'GET' : 'DELETE', headers: { host: 'svc' } });
    t.equal(r.status, 200);
    t.equal(r.body, 'ok', 'nothing of the discarded answer leaks');
  }
  const sickHits = lifetime(p, sick.port, Outcome.Gateway);
  t.ok(sickHits >= 1, `the 503 endpoint was tried (${sickHits})`);
  t.equal(total(p, sick.port), sickHits, 'recorded as gateway (503)');
  t.equal(lifetime(p, live.port, Outcome.Success), n, 'every request answered by the live endpoint');
  t.equal(count(p, 'status', 'retried'), sickHits);
  const reg = new Registry();
  registerRetryMetrics(reg, p.handle.core);
  const text = await reg.metrics();
  t.match(text, new RegExp(`meshmedic_retries_total\\{service="svc",reason="status",result="retried"\\} ${sickHits}\\n`));
  t.match(text, /meshmedic_retries_total\{service="svc",reason="timeout",result="budget_exhausted"\} 0\n/);
});

t.test('not replayable: a POST, and a GET with a body, get the 503 as it is', async (t) => {
  const sick = await backend((req, res) => {
    req.resume();
    req.on('end', () => {
      res.statusCode = 503;
      res.end('no');
    });
  });
  const live = await backend((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  const p = await startTestProxy({ services: svc(sick.port, live.port) });
  t.teardown(async () => {
    await p.close();
    await live.close();
    await sick.close();
  });
  let got503 = 0;
  for (let i = 0; i < 40 && got503 < 4; i++) {
    const r = await request(p.port, { method: i % 2 ? 'POST' : 'GET', headers: { host: 'svc', 'content-type': 'text/plain', 'content-length': '7' }, body: 'payload' });
    if (r.status === 503) got503++;
    else t.equal(r.status, 200);
  }
  t.ok(got503 >= 1, 'requests reaching the sick endpoint got its 503');
  t.equal(lifetime(p, sick.port, Outcome.Gateway), got503, 'each recorded once, none replayed');
  t.equal(count(p, 'status', 'retried') + count(p, 'status', 'budget_exhausted') + count(p, 'status', 'no_endpoint'), 0, 'no retry considered');
});

t.test('reset before any response byte is retried; reset after the response started is not', async (t) => {
  const early = await rawServer((s) => s.once('data', () => s.resetAndDestroy()));
  const late = await rawServer((s) =>
    s.once('data', () => {
      s.write('HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n' + 'x'.repeat(1000));
      setTimeout(() => s.resetAndDestroy(), 50);
    }),
  );
  const live = await backend((_req, res) => res.end('ok'));
  const p1 = await startTestProxy({ services: svc(early.port, live.port) });
  const p2 = await startTestProxy({ services: svc(late.port, live.port) });
  t.teardown(async () => {
    await p1.close();
    await p2.close();
    await live.close();
    await early.close();
    await late.close();
  });
  for (let i = 0; i < 30 && lifetime(p1, early.port, Outcome.LocalOrigin) < 2; i++) {
    t.equal((await request(p1.port, { headers: { host: 'svc' } })).status, 200, 'early reset hidden by a retry');
  }
  t.ok(lifetime(p1, early.port, Outcome.LocalOrigin) >= 1);
  t.equal(count(p1, 'reset', 'retried'), lifetime(p1, early.port, Outcome.LocalOrigin));
  let cut = 0;
  for (let i = 0; i < 30 && cut < 2; i++) {
    try {
      const r = await request(p2.port, { headers: { host: 'svc' } });
      t.equal(r.status, 200);
      t.equal(r.body, 'ok');
    } catch {
      cut++; // the client saw the 200 head and part of the body, then the connection was cut
    }
  }
  t.ok(cut >= 1, 'the late reset reached the client as a cut response');
  t.equal(lifetime(p2, late.port, Outcome.LocalOrigin), cut, 'recorded against the failing endpoint');
  t.equal(count(p2, 'reset', 'retried'), 0, 'never replayed once the response started');
});

t.test('budget exhausted: the original 503 is returned', async (t) => {
  const sick = await backend((_req, res) => {
    res.statusCode = 503;
    res.end('no');
  });
  // The live endpoint is the slower one, so that the balancer keeps choosing the sick one first (Peak-EWMA
  // would otherwise settle on the live one after a few sequential requests and the budget would never run out).
  const live = await backend((_req, res) => void setTimeout(() => res.end('ok'), 5));
  // 0 % of requests + 0.1/s × 10 s = one retry per 10 s
  const p = await startTestProxy({ proxy: { retries: { budgetPercent: 0, budgetMinPerSecond: 0.1 } }, services: svc(sick.port, live.port) });
  t.teardown(async () => {
    await p.close();
    await live.close();
    await sick.close();
  });
  const statuses: number[] = [];
  for (let i = 0; i < 60 && lifetime(p, sick.port, Outcome.Gateway) < 3; i++) statuses.push((await request(p.port, { headers: { host: 'svc' } })).status);
  const hits = lifetime(p, sick.port, Outcome.Gateway);
  t.ok(hits >= 2, `the sick endpoint was tried ${hits} times`);
  t.equal(count(p, 'status', 'retried'), 1, 'one retry fits the budget');
  t.equal(count(p, 'status', 'budget_exhausted'), hits - 1, 'the others were refused by the budget');
  t.equal(statuses.filter((s) => s === 503).length, hits - 1, 'and their 503 went back to the client');
});

t.test('never the same endpoint: one endpoint answering 503 is tried once', async (t) => {
  const sick = await backend((_req, res) => {
    res.statusCode = 503;
    res.end('no');
  });
  const p = await startTestProxy({ services: svc(sick.port) });
  t.teardown(async () => {
    await p.close();
    await sick.close();
  });
  const r = await request(p.port, { headers: { host: 'svc' } });
  t.equal(r.status, 503);
  t.equal(r.body, 'no', 'the endpoint’s own answer');
  t.equal(total(p, sick.port), 1);
  t.equal(count(p, 'status', 'no_endpoint'), 1);
});

t.test('retries.attempts 0 turns the policy off (connect failures keep retryConnectFailures)', async (t) => {
  const sick = await backend((_req, res) => {
    res.statusCode = 502;
    res.end('bad gateway');
  });
  const live = await backend((_req, res) => res.end('ok'));
  const p = await startTestProxy({ proxy: { retries: { attempts: 0 } }, services: svc(sick.port, live.port) });
  t.teardown(async () => {
    await p.close();
    await live.close();
    await sick.close();
  });
  let got502 = 0;
  for (let i = 0; i < 40 && got502 < 2; i++) if ((await request(p.port, { headers: { host: 'svc' } })).status === 502) got502++;
  t.ok(got502 >= 1);
  t.equal(lifetime(p, sick.port, Outcome.Gateway), got502);
  t.equal(count(p, 'status', 'retried'), 0);
});

t.test('a retriable answer with a large body is not read to the end: its connection is dropped', async (t) => {
  let sickCalls = 0;
  const sick = await backend((_req, res) => {
    sickCalls++;
    res.writeHead(503, { 'content-length': String(8 << 20) });
    res.write(Buffer.alloc(256 << 10)); // then never finishes: only a dropped connection ends this
  });
  const live = await backend((_req, res) => res.end('ok'));
  const p = await startTestProxy({ proxy: { bodyTimeoutMs: 20_000 }, services: svc(sick.port, live.port) });
  t.teardown(async () => {
    await p.close();
    await live.close();
    await sick.close();
  });
  for (let i = 0; i < 30 && sickCalls < 2; i++) {
    const started = Date.now();
    const r = await request(p.port, { headers: { host: 'svc' }, timeoutMs: 15_000 });
    t.equal(r.status, 200);
    t.ok(Date.now() - started < 10_000, 'not waiting for the body timeout');
  }
  t.ok(sickCalls >= 1);
  t.equal(lifetime(p, sick.port, Outcome.Gateway), sickCalls, 'recorded as the 503 it was');
});
