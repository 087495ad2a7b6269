// The data plane's request count (src/core/activity.ts), which the young-generation governor reads to tell
// a serving process from an idle one: every forwarded request counts once, over HTTP/1 and h2c alike.
import t from 'tap';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { dataPlaneActivity, takeRequestCount } from '../../src/core/activity.js';
import { backend, request, startTestProxy } from './helpers.js';

t.test('HTTP/1 and h2c requests are counted; a read resets the count', async (t) => {
  const be = await backend((_req, res) => res.end('ok'));
  const server = http2.createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const h2port = (server.address() as AddressInfo).port;
  const p = await startTestProxy({
    services: [
      { name: 'svc', endpoints: [{ address: `127.0.0.1:${be.port}` }] },
      { name: 'grpcsvc', protocol: 'h2c', endpoints: [{ address: `127.0.0.1:${h2port}` }] },
    ],
  });
  const client = http2.connect(`http://127.0.0.1:${p.port}`);
  t.teardown(async () => {
    client.destroy();
    await p.close();
    await be.close();
    await new Promise<void>((r) => server.close(() => r()));
  });
  takeRequestCount();
  for (let i = 0; i < 7; i++) t.equal((await request(p.port, { headers: { host: 'svc' } })).status, 200);
  t.equal(takeRequestCount(), 7, 'seven HTTP/1 requests');
  t.equal(dataPlaneActivity.requests, 0, 'the read reset it');
  for (let i = 0; i < 3; i++) {
    const status = await new Promise<number>((resolve, reject) => {
      const s = client.request({ ':path': '/', ':authority': 'grpcsvc' });
      let st = 0;
      s.on('response', (h) => (st = Number(h[':status'])));
      s.on('error', reject);
      s.resume();
      s.on('end', () => resolve(st));
    });
    t.equal(status, 200);
  }
  t.equal(takeRequestCount(), 3, 'three h2c streams');
});
