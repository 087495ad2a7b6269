// Shutdown: a request still open when the drain deadline passes gets a 503 if nothing of its response was
// sent yet (instead of a connection cut with no status).
import net from 'node:net';
import t from 'tap';
import { rawServer, startTestProxy, until } from './helpers.js';

t.test('the drain deadline answers an unanswered request 503 MM_ERR_DRAIN_DEADLINE', async (t) => {
  const hole = await rawServer((s) => s.resume()); // reads the request, never answers
  const p = await startTestProxy({ proxy: { headersTimeoutMs: 60_000 }, services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${hole.port}` }] }] });
  t.teardown(async () => {
    await p.close();
    await hole.close();
  });
  const s = net.connect(p.port, '127.0.0.1');
  let got = '';
  s.on('data', (c: Buffer) => (got += c.toString('latin1')));
  s.on('error', () => {});
  const closed = new Promise<void>((r) => s.on('close', () => r()));
  s.write('GET /slow HTTP/1.1\r\nHost: svc\r\n\r\n');
  await until(() => p.handle.core.inflight === 1, 5000, 'the request in flight');
  const t0 = performance.now();
  await p.handle.close(300);
  await closed;
  t.ok(performance.now() - t0 < 3000, 'closed at the deadline');
  t.match(got, /^HTTP\/1\.1 503 [^]*connection: close[^]*MM_ERR_DRAIN_DEADLINE/, `a 503 status (${got.split('\r\n')[0]})`);
  t.equal(p.handle.core.inflight, 0, 'nothing left in flight');
});
