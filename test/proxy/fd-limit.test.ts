// File descriptors: a connection flood against the proxy listener cannot exhaust the process's
// descriptors, so the admin /healthz keeps answering; exhaustion is logged once and counted.
import net from 'node:net';
import t from 'tap';
import { request } from 'undici';
import { fittedConnectionCap, fdExhaustionCount, noteFdExhaustion } from '../../src/proxy/fd-limit.js';
import { startBackend } from '../../src/testing/backend.js';
import { startMeshmedic } from '../helpers/spawn.js';
import { waitForValue } from '../helpers/wait-value.js';
import type { Logger } from '../../src/core/log.js';

t.test('the connection cap fits under the descriptor limit with headroom', async (t) => {
  t.equal(fittedConnectionCap(10_000, undefined, 2), 10_000, 'unknown limit: as configured');
  t.equal(fittedConnectionCap(10_000, 1_048_576, 2), 10_000, 'a large limit does not raise it');
  t.equal(fittedConnectionCap(10_000, 20_000, 2), 4936, '20,000 fds, two listeners: (20000 − 256) / 4');
  t.equal(fittedConnectionCap(10_000, 400, 1), 72);
  t.equal(fittedConnectionCap(10_000, 100, 1), 1, 'never below one');
});

t.test('running out of descriptors is logged once and counted every time', async (t) => {
  const lines: string[] = [];
  const log = { error: (msg: string) => lines.push(msg) } as unknown as Logger;
  const before = fdExhaustionCount();
  const emfile = Object.assign(new Error('accept EMFILE'), { code: 'EMFILE' });
  t.ok(noteFdExhaustion(emfile, log, 'test'));
  t.ok(noteFdExhaustion(emfile, log, 'test'));
  t.notOk(noteFdExhaustion(Object.assign(new Error('x'), { code: 'ECONNRESET' }), log, 'test'), 'other errors are not counted');
  t.equal(fdExhaustionCount() - before, 2);
  t.equal(lines.length, 1, 'one log line');
  t.match(lines[0], /OUT OF FILE DESCRIPTORS/);
});

t.test('a connection flood under a low fd limit: refused early, /healthz and requests keep answering', async (t) => {
  const b = await startBackend({ port: 0, controlPort: null, id: 'b1' });
  t.teardown(() => b.close());
  // 400 descriptors: the cap becomes (400 − 256) / 2 = 72 connections.
  const mm = await startMeshmedic(t, ['proxy', '--listen', '127.0.0.1:0', '--upstream', `http://127.0.0.1:${b.port}`, '--admin', '127.0.0.1:0', '--log-level', 'info'], { fdLimit: 400 });
  t.match(mm.stderr() + mm.stdout(), /maxConnections lowered/, 'the lowered cap is logged');
  const [host, port] = [mm.addresses.outbound!.split(':')[0]!, Number(mm.addresses.outbound!.split(':')[1])];
  const flood: net.Socket[] = [];
  t.teardown(() => {
    for (const s of flood) s.destroy();
  });
  // More connections than the process has descriptors.
  for (let i = 0; i < 500; i++) {
    const s = net.connect(port, host);
    s.on('error', () => {});
    flood.push(s);
  }
  await Promise.all(flood.map((s) => new Promise<void>((r) => (s.connecting ? s.once('connect', () => r()).once('error', () => r()) : r()))));
  // The kernel completes a handshake before the proxy accepts it: wait until the proxy has judged the flood
  // (72 held, the rest refused) rather than for a fixed time.
  const gauge = async (name: string): Promise<number> => {
    const text = await (await request(`http://${mm.addresses.admin}/metrics`)).body.text();
    return Number(new RegExp(`^${name}\\{listener="outbound"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? -1);
  };
  const refused = await waitForValue('400 refused connections', async () => {
    const n = await gauge('meshmedic_proxy_connections_refused_total');
    return n >= 400 ? n : undefined;
  }, 20_000);
  const health = await request(`http://${mm.addresses.admin}/healthz`, { headersTimeout: 5000 });
  t.equal(health.statusCode, 200, 'admin /healthz answers during the flood');
  await health.body.dump();
  t.ok(refused >= 400, `refused connections counted (${refused})`);
  t.notMatch(mm.stderr() + mm.stdout(), /OUT OF FILE DESCRIPTORS/, 'descriptors never ran out');
  for (const s of flood.splice(0)) s.destroy();
  // The proxy frees a slot when it sees the close: wait until it holds no downstream connection.
  await waitForValue('the flood\'s connections closed by the proxy', async () => ((await gauge('meshmedic_proxy_connections')) === 0 ? true : undefined), 20_000);
  const r = await request(`http://${mm.addresses.outbound}/after`);
  t.equal(r.statusCode, 200, 'the proxy serves again once the flood is gone');
  await r.body.dump();
});
