// Every upstream failure class: status, JSON body naming the cause, and the outcome recorded against the
// endpoint — refused (503, retried elsewhere when possible), reset and bad response (502), black hole and
// slow headers (504 after the configured timeout), reset mid-body (connection cut), client abort (Cancelled).
import http from 'node:http';
import t from 'tap';
import { Outcome } from '../../src/core/types.js';
import { backend, refusedEndpoint, rawServer, request, startTestProxy, until, type TestProxy } from './helpers.js';

function windowsOf(p: TestProxy, port: number) {
  const ev = [...p.mesh.snapshot().endpoints.values()].find((e) => e.spec.port === port)!;
  return p.stats.ensure(ev.slot); // windows come with the first request: an endpoint never called reads as empty
}

t.test('connection refused → 503 MM_ERR_UPSTREAM_CONNECT, local-origin recorded', async (t) => {
  const dead = await refusedEndpoint(t);
  const p = await startTestProxy({ services: [{ name: 'svc', endpoints: [{ address: dead.address }] }] });
  t.teardown(() => p.close());
  const r = await request(p.port, { headers: { host: 'svc' } });
  t.equal(r.status, 503);
  const body = JSON.parse(r.body);
  t.equal(body.error, 'MM_ERR_UPSTREAM_CONNECT');
  t.equal(body.endpoint, `svc/${dead.address}`);
  t.match(body.message, /connection refused \(ECONNREFUSED\)/);
  t.equal(windowsOf(p, dead.port).lifetime[Outcome.LocalOrigin], 1, 'one local-origin failure recorded');
});

t.test('connection refused is retried on another endpoint; each failed attempt still recorded', async (t) => {
  const dead = await refusedEndpoint(t);
  const live = await backend((_req, res) => res.end('ok'));
  const p = await startTestProxy({ services: [{ name: 'svc', endpoints: [{ address: dead.address }, { address: `127.0.0.1:${live.port}` }] }] });
  t.teardown(async () => {
    await p.close();
    await live.close();
  });
  for (let i = 0; i < 20; i++) {
    const r = await request(p.port, { method: 'POST', headers: { host: 'svc' }, body: `payload ${i}` });
    t.equal(r.status, 200, `request ${i} served despite the dead endpoint`);
  }
  t.ok(windowsOf(p, dead.port).lifetime[Outcome.LocalOrigin]! >= 1, 'failed attempts recorded against the dead endpoint');
  t.equal(windowsOf(p, live.port).lifetime[Outcome.Success], 20);
});

t.test('retries are bounded by proxy.retryConnectFailures', async (t) => {
  const dead = [await refusedEndpoint(t), await refusedEndpoint(t), await refusedEndpoint(t)];
  const [d1, d2, d3] = dead.map((d) => d.port);
  const p = await startTestProxy({ proxy: { retryConnectFailures: 1 }, services: [{ name: 'svc', endpoints: dead.map((d) => ({ address: d.address })) }] });
  t.teardown(() => p.close());
  const r = await request(p.port, { headers: { host: 'svc' } });
  t.equal(r.status, 503);
  t.match(JSON.parse(r.body).message, /after 2 attempts/);
  const failures = [d1, d2, d3].reduce((n, port) => n + windowsOf(p, port).lifetime[Outcome.LocalOrigin]!, 0);
  t.equal(failures, 2, 'one try + one retry, each recorded');
});

t.test('reset before the response → 502 MM_ERR_UPSTREAM_RESET', async (t) => {
  const rst = await rawServer((s) => s.once('data', () => s.resetAndDestroy()));
  const p = await startTestProxy({ services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${rst.port}` }] }] });
  t.teardown(async () => {
    await p.close();
    await rst.close();
  });
  const r = await request(p.port, { method: 'POST', headers: { host: 'svc' }, body: 'x'.repeat(1000) });
  t.equal(r.status, 502);
  t.equal(JSON.parse(r.body).error, 'MM_ERR_UPSTREAM_RESET');
  t.equal(windowsOf(p, rst.port).lifetime[Outcome.LocalOrigin], 1);
});

t.test('malformed response → 502', async (t) => {
  const bad = await rawServer((s) => s.once('data', () => s.end('HTTP/1.1 abc nonsense\r\n\r\n')));
  const p = await startTestProxy({ services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${bad.port}` }] }] });
  t.teardown(async () => {
    await p.close();
    await bad.close();
  });
  const r = await request(p.port, { headers: { host: 'svc' } });
  t.equal(r.status, 502);
  t.equal(JSON.parse(r.body).error, 'MM_ERR_UPSTREAM_RESET');
  t.match(JSON.parse(r.body).message, /malformed response/);
});

t.test('reset mid-body: the client connection is cut, local-origin recorded', async (t) => {
  const rst = await rawServer((s) =>
    s.once('data', () => {
      s.write('HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n' + 'x'.repeat(1000));
      setTimeout(() => s.resetAndDestroy(), 50);
    }),
  );
  const p = await startTestProxy({ services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${rst.port}` }] }] });
  t.teardown(async () => {
    await p.close();
    await rst.close();
  });
  const outcome = await new Promise<string>((resolve) => {
    const req = http.get({ host: '127.0.0.1', port: p.port, headers: { host: 'svc' }, agent: false }, (res) => {
      t.equal(res.statusCode, 200, 'headers were already forwarded');
      res.on('data', () => {});
      res.on('end', () => resolve('end'));
      res.on('error', () => resolve('error'));
      res.on('aborted', () => resolve('aborted'));
    });
    req.on('error', () => resolve('error'));
  });
  t.not(outcome, 'end', `the client sees a truncated response (${outcome})`);
  await until(() => windowsOf(p, rst.port).lifetime[Outcome.LocalOrigin] === 1, 3000, 'local-origin record');
  t.pass('local-origin recorded');
});

t.test('black hole → 504 after headersTimeoutMs; slow headers → 504', async (t) => {
  const hole = await rawServer(() => {}); // accepts, never answers
  let slowAnswered = false;
  const slow = await backend((_req, res) => {
    const timer = setTimeout(() => {
      slowAnswered = true;
      res.end('late');
    }, 2000);
    res.on('close', () => clearTimeout(timer));
  });
  const p = await startTestProxy({
    proxy: { headersTimeoutMs: 300 },
    services: [
      { name: 'hole', endpoints: [{ address: `127.0.0.1:${hole.port}` }] },
      { name: 'slow', endpoints: [{ address: `127.0.0.1:${slow.port}` }] },
    ],
  });
  t.teardown(async () => {
    await p.close();
    await hole.close();
    await slow.close();
  });
  for (const [name, port] of [['hole', hole.port], ['slow', slow.port]] as const) {
    const started = Date.now();
    const r = await request(p.port, { headers: { host: name } });
    const took = Date.now() - started;
    t.equal(r.status, 504, `${name}: 504`);
    t.equal(JSON.parse(r.body).error, 'MM_ERR_UPSTREAM_TIMEOUT');
    t.ok(took >= 250, `${name}: answered after the timeout, not before (${took} ms)`);
    // Not a wall-clock bound (a starved machine could exceed any): the 504 came from the timeout, before
    // the slow backend's own answer was due.
    if (name === 'slow') t.notOk(slowAnswered, 'slow: answered before the backend answered');
    t.equal(windowsOf(p, port).lifetime[Outcome.LocalOrigin], 1, `${name}: local-origin recorded`);
  }
});

t.test('status classes recorded: 5xx, gateway from the endpoint, 4xx is success', async (t) => {
  const b = await backend((req, res) => {
    res.statusCode = Number(req.url!.slice(1));
    res.end();
  });
  const p = await startTestProxy({ services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${b.port}` }] }] });
  t.teardown(async () => {
    await p.close();
    await b.close();
  });
  for (const code of [200, 404, 500, 503]) t.equal((await request(p.port, { path: `/${code}`, headers: { host: 'svc' } })).status, code, `status ${code} passed through`);
  const w = windowsOf(p, b.port);
  t.equal(w.lifetime[Outcome.Success], 2);
  t.equal(w.lifetime[Outcome.Error5xx], 1);
  t.equal(w.lifetime[Outcome.Gateway], 1);
});

t.test('client abort cancels the upstream request; outcome Cancelled, not charged', async (t) => {
  let upstreamClosed = false;
  let arrived!: () => void;
  const arrivedP = new Promise<void>((r) => (arrived = r));
  const b = await backend((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('first part');
    arrived();
    res.on('close', () => (upstreamClosed = true)); // never ends on its own
  });
  const p = await startTestProxy({ services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${b.port}` }] }] });
  t.teardown(async () => {
    await p.close();
    await b.close();
  });
  const req = http.get({ host: '127.0.0.1', port: p.port, headers: { host: 'svc' }, agent: false }, (res) => {
    res.once('data', () => req.destroy());
  });
  req.on('error', () => {});
  await arrivedP;
  await until(() => upstreamClosed, 3000, 'upstream request aborted');
  const w = windowsOf(p, b.port);
  await until(() => w.lifetime[Outcome.Cancelled] === 1, 3000, 'cancelled outcome');
  t.equal(w.lifetime[Outcome.LocalOrigin], 0, 'not charged to the endpoint');
  t.equal(w.consecutive5xx, 0);
  t.equal(p.handle.core.inflight, 0, 'nothing left in flight');
});

t.test('client abort while the upstream has not answered yet', async (t) => {
  let upstreamClosed = false;
  let arrived!: () => void;
  const arrivedP = new Promise<void>((r) => (arrived = r));
  const b = await backend((req) => {
    arrived();
    req.socket.on('close', () => (upstreamClosed = true));
  });
  const p = await startTestProxy({ services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${b.port}` }] }] });
  t.teardown(async () => {
    await p.close();
    await b.close();
  });
  const req = http.get({ host: '127.0.0.1', port: p.port, headers: { host: 'svc' }, agent: false });
  req.on('error', () => {});
  await arrivedP;
  req.destroy();
  await until(() => upstreamClosed, 3000, 'upstream connection closed');
  const w = windowsOf(p, b.port);
  await until(() => w.lifetime[Outcome.Cancelled] === 1, 3000, 'cancelled outcome');
  t.equal(p.handle.core.inflight, 0);
});
