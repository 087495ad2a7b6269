// The sidecar itself runs clean under --pending-deprecation --throw-deprecation: any deprecated Node API
// on its paths (start-up, HTTP/1 and h2c proxying, admin API, shutdown) would kill the process. CI runs
// this on every tested Node line (scripts/test-node-lines.sh).
import t from 'tap';
import { connect, createServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { startBackend } from '../../src/testing/backend.js';
import { startMeshmedic } from '../helpers/spawn.js';

// On Node 22 and later --pending-deprecation reports what Node will deprecate next in the sidecar's own
// code. Node 20 (end of life) also reports `punycode` loaded by dependencies inside node_modules, which
// later lines no longer count against the application; there only runtime deprecations are fatal.
const major = Number(process.versions.node.split('.')[0]);
const NODE_OPTIONS = major >= 22 ? '--pending-deprecation --throw-deprecation' : '--throw-deprecation';

t.test(`no deprecated API on the proxy's paths (Node ${process.version})`, async (t) => {
  const b = await startBackend({ port: 0, controlPort: null, id: 'b1' });
  t.teardown(() => b.close());
  // Exactly these NODE_OPTIONS: the test runner's own hooks use deprecated APIs; the built command needs none.
  const mm = await startMeshmedic(t, ['proxy', '--listen', '127.0.0.1:0', '--upstream', `http://127.0.0.1:${b.port}`, '--admin', '127.0.0.1:0', '--log-level', 'warn'], {
    nodeOptions: NODE_OPTIONS,
  });
  for (let i = 0; i < 20; i++) {
    const r = await request(`http://${mm.addresses.outbound}/x${i}`, { method: i % 2 ? 'POST' : 'GET', body: i % 2 ? 'payload' : undefined });
    t.equal(r.statusCode, 200, `HTTP/1.1 request ${i}`);
    await r.body.dump();
  }
  for (const path of ['/healthz', '/metrics', '/v1/endpoints', '/v1/events']) {
    const r = await request(`http://${mm.addresses.admin}${path}`);
    t.equal(r.statusCode, 200, `admin ${path}`);
    await r.body.dump();
  }
  mm.child.kill('SIGTERM');
  t.equal(await mm.exited, 0, 'exit 0 after SIGTERM');
  t.notMatch(mm.stderr(), /DeprecationWarning|\[DEP\d+\]/, 'no deprecation warning');
});

t.test(`no deprecated API on the h2c path (Node ${process.version})`, async (t) => {
  const backend = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => backend.close(() => r())));
  const port = (backend.address() as AddressInfo).port;
  const mm = await startMeshmedic(t, ['proxy', '--listen', '127.0.0.1:0', '--upstream', `http://127.0.0.1:${port}`, '--protocol', 'h2c', '--log-level', 'warn'], {
    nodeOptions: NODE_OPTIONS,
  });
  const session = connect(`http://${mm.addresses.outbound}`);
  t.teardown(() => session.close());
  for (let i = 0; i < 5; i++) {
    const status = await new Promise<number>((resolve, reject) => {
      const s = session.request({ ':path': `/h2/${i}`, ':method': 'POST' });
      s.on('response', (h) => resolve(Number(h[':status'])));
      s.on('error', reject);
      s.resume();
      s.end('payload');
    });
    t.equal(status, 200, `h2c request ${i}`);
  }
  session.close();
  mm.child.kill('SIGTERM');
  t.equal(await mm.exited, 0, 'exit 0 after SIGTERM');
  t.notMatch(mm.stderr(), /DeprecationWarning|\[DEP\d+\]/, 'no deprecation warning');
});
