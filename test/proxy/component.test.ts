// The proxy component: follows mesh changes (endpoints added and removed: pools and stats rows), drains
// in-flight requests on close up to the deadline, then cuts what is left; startProxy honours the config.
import net from 'node:net';
import t from 'tap';
import { Registry } from '../../src/admin/metrics-registry.js';
import { systemClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/log.js';
import { endpointId, NO_LOCALITY } from '../../src/core/types.js';
import { validateConfig } from '../../src/config/load.js';
import { MeshState } from '../../src/mesh/state.js';
import { StatsTable } from '../../src/stats/window.js';
import type { SidecarContext } from '../../src/runtime/context.js';
import { startProxy, type ProxyHandle } from '../../src/proxy/component.js';
import { backend, request, startTestProxy, until } from './helpers.js';

const spec = (service: string, port: number) => ({ id: endpointId(service, '127.0.0.1', port), service, host: '127.0.0.1', port, locality: NO_LOCALITY, priority: 0, weight: 1, labels: {} });

t.test('endpoints added and removed at run time', async (t) => {
  const b1 = await backend((_req, res) => res.end('one'));
  const b2 = await backend((_req, res) => res.end('two'));
  const p = await startTestProxy({ services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${b1.port}` }] }] });
  t.teardown(async () => {
    await p.close();
    await b1.close();
    await b2.close();
  });
  t.equal((await request(p.port, { headers: { host: 'svc' } })).body, 'one');
  p.mesh.setServices([{ spec: { name: 'svc', endpoints: [spec('svc', b2.port)] } }]);
  const slotOld = 0;
  t.equal(p.stats.get(slotOld), undefined, 'the removed endpoint\'s stats row is cleared');
  for (let i = 0; i < 5; i++) t.equal((await request(p.port, { headers: { host: 'svc' } })).body, 'two', 'traffic follows the new endpoint set');
  const ev = p.mesh.snapshot().services.get('svc')!.endpoints[0]!;
  t.ok(p.stats.get(ev.slot), 'the new endpoint has a stats row');
  t.equal(p.stats.get(ev.slot)!.lifetime[0], 5);
  p.mesh.setServices([{ spec: { name: 'other', endpoints: [spec('other', b1.port)] } }]);
  const r = await request(p.port, { headers: { host: 'svc' } });
  t.equal(r.status, 404, 'a service removed from the mesh is unknown');
  t.equal((await request(p.port, { headers: { host: 'other' } })).body, 'one');
});

t.test('close drains in-flight requests, refuses new connections, then cuts at the deadline', async (t) => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  // Requests seen by the backend: the test waits on these, not on sleeps (on a loaded machine a request
  // can take longer than any fixed pause to get there; a run once closed the proxy before it arrived).
  const seen = { gated: 0, never: 0 };
  const slow = await backend(async (req, res) => {
    if (req.url === '/never') { seen.never++; return; } // never answers
    seen.gated++;
    await gate;
    res.end('finished');
  });
  const p = await startTestProxy({ services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${slow.port}` }] }] });
  t.teardown(() => slow.close());
  const inflight = request(p.port, { headers: { host: 'svc' } });
  await until(() => seen.gated === 1, 30_000, 'the request to reach the backend');
  t.equal(p.handle.core.inflight, 1);
  const closing = p.handle.close(5000);
  await new Promise((r) => setTimeout(r, 100));
  const refused = await new Promise<boolean>((resolve) => {
    const s = net.connect(p.port, '127.0.0.1');
    s.on('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.on('error', () => resolve(true));
  });
  t.ok(refused, 'no new connections once closing');
  release();
  const r = await inflight;
  t.equal(r.status, 200);
  t.equal(r.body, 'finished', 'the in-flight request completed during the drain');
  t.equal(r.headers.connection, 'close', 'and told the client to reconnect elsewhere');
  await closing;

  // Deadline: a request that never finishes is answered 503 when the deadline passes (nothing was sent).
  const p2 = await startTestProxy({ services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${slow.port}` }] }] });
  const stuck = request(p2.port, { path: '/never', headers: { host: 'svc' } }).then(
    (r) => `answered ${r.status}`,
    () => 'cut',
  );
  await until(() => seen.never === 1, 30_000, 'the stuck request to reach the backend');
  const started = Date.now();
  await p2.handle.close(300);
  const took = Date.now() - started;
  t.ok(took >= 250 && took < 3000, `close returned after the deadline (${took} ms)`);
  t.equal(await stuck, 'answered 503', 'the stuck request was answered 503 at the deadline');
});

t.test('startProxy: a component from the sidecar context, listeners from the config', async (t) => {
  const b = await backend((req, res) => res.end(`app saw ${req.url}`));
  const v = validateConfig({
    outbound: { listen: '127.0.0.1:0' },
    inbound: { enabled: true, listen: '127.0.0.1:0', app: `http://127.0.0.1:${b.port}` },
    services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${b.port}` }] }],
    log: { level: 'silent' },
  });
  if (!v.valid) throw new Error(v.errors.join('; '));
  const mesh = new MeshState(systemClock);
  mesh.setServices([{ spec: { name: 'svc', endpoints: [spec('svc', b.port)] } }]);
  const ctx = { config: v.result, clock: systemClock, mesh, stats: new StatsTable(), log: silentLogger, metrics: new Registry(), admin: { route() {} }, components: new Map() } as SidecarContext;
  const c = (await startProxy(ctx)) as ProxyHandle;
  t.teardown(async () => {
    await c.close(1000);
    await b.close();
  });
  t.equal(c.name, 'proxy');
  t.match(c.addresses.outbound, /^127\.0\.0\.1:\d+$/);
  t.match(c.addresses.inbound, /^127\.0\.0\.1:\d+$/);
  const port = (a: string) => Number(a.split(':')[1]);
  t.equal((await request(port(c.addresses.outbound!), { path: '/o', headers: { host: 'svc' } })).body, 'app saw /o');
  t.equal((await request(port(c.addresses.inbound!), { path: '/i', headers: { host: 'x' } })).body, 'app saw /i');
});
