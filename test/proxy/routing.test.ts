// Routing both ways: outbound by Host and by absolute-form target, quick-mode default service, unknown
// service, inbound to the local app; each forwarded request recorded in its endpoint's windows.
import t from 'tap';
import { Outcome } from '../../src/core/types.js';
import { backend, request, startTestProxy } from './helpers.js';

t.test('outbound routes by Host and by absolute-form target, inbound to the app', async (t) => {
  const seen: { name: string; url: string; host: string | undefined }[] = [];
  const mk = (name: string) =>
    backend((req, res) => {
      seen.push({ name, url: req.url!, host: req.headers.host });
      res.setHeader('x-backend', name);
      res.end(`${name} ${req.method} ${req.url}`);
    });
  const a = await mk('a');
  const b = await mk('b');
  const app = await mk('app');
  const p = await startTestProxy({
    services: [
      { name: 'alpha', endpoints: [{ address: `127.0.0.1:${a.port}` }] },
      { name: 'beta', endpoints: [{ address: `127.0.0.1:${b.port}` }] },
    ],
    inbound: { enabled: true, app: `http://127.0.0.1:${app.port}` },
  });
  t.teardown(async () => {
    await p.close();
    await Promise.all([a.close(), b.close(), app.close()]);
  });

  let r = await request(p.port, { path: '/x?y=1', headers: { host: 'alpha:8080' } });
  t.equal(r.status, 200);
  t.equal(r.body, 'a GET /x?y=1', 'Host alpha:8080 → alpha (port ignored)');
  t.equal(seen.at(-1)!.host, 'alpha:8080', 'Host preserved');

  r = await request(p.port, { path: 'http://beta/path/z?q=2', headers: { host: 'ignored' } });
  t.equal(r.body, 'b GET /path/z?q=2', 'absolute-form → beta, path extracted');
  t.equal(seen.at(-1)!.host, 'beta', 'absolute-form authority replaces Host');

  r = await request(p.port, { path: 'http://BETA.default.svc.cluster.local:80?only=query' });
  t.equal(r.body, 'b GET /?only=query', 'first label of a dotted name, case folded; empty path becomes /');

  r = await request(p.port, { method: 'POST', path: '/upload', headers: { host: 'beta', 'content-type': 'text/plain' }, body: 'hello' });
  t.equal(r.body, 'b POST /upload');

  r = await request(p.port, { path: '/', headers: { host: 'gamma' } });
  t.equal(r.status, 404);
  t.same(JSON.parse(r.body), { error: 'MM_ERR_UNKNOWN_SERVICE', message: 'no service named "gamma"', endpoint: '' });

  r = await request(p.inboundPort, { path: '/in', headers: { host: 'whatever' } });
  t.equal(r.body, 'app GET /in', 'inbound → the local app');

  const alpha = p.mesh.snapshot().services.get('alpha')!.endpoints[0]!;
  const beta = p.mesh.snapshot().services.get('beta')!.endpoints[0]!;
  t.equal(p.stats.get(alpha.slot)!.lifetime[Outcome.Success], 1, 'alpha: one success recorded');
  t.equal(p.stats.get(beta.slot)!.lifetime[Outcome.Success], 3, 'beta: three successes recorded');
  t.equal(p.handle.core.app!.windows.lifetime[Outcome.Success], 1, 'the app is measured as a pseudo-endpoint');
  t.ok(p.stats.get(beta.slot)!.latencyCount === 3 && p.stats.get(beta.slot)!.latencySumUs > 0, 'latency recorded');
});

t.test('quick mode: every request goes to the default service whatever its Host', async (t) => {
  const ports: number[] = [];
  const b1 = await backend((_req, res) => res.end('1'));
  const b2 = await backend((_req, res) => res.end('2'));
  ports.push(b1.port, b2.port);
  const p = await startTestProxy({ services: [{ name: 'one', endpoints: ports.map((port) => ({ address: `127.0.0.1:${port}` })) }], outbound: { defaultService: 'one' } });
  t.teardown(async () => {
    await p.close();
    await b1.close();
    await b2.close();
  });
  const got = new Set<string>();
  for (let i = 0; i < 40; i++) {
    const r = await request(p.port, { path: '/', headers: { host: `random-${i}.example:1234` } });
    t.equal(r.status, 200);
    got.add(r.body);
  }
  t.same([...got].sort(), ['1', '2'], 'both endpoints served');
  const r = await request(p.port, { path: 'http://elsewhere/abs' });
  t.equal(r.status, 200, 'absolute-form to another name still goes to the default service');
});
