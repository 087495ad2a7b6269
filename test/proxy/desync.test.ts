// Response desync: bytes an endpoint sends after a complete response must never be taken as the answer
// to the next request queued for that connection; such a connection is closed, never reused.
import t from 'tap';
import { rawServer, request, startTestProxy } from './helpers.js';

/** An upstream that answers each request with "hello" and appends `extra` in the same write. */
async function appendingUpstream(extra: string): Promise<{ port: number; close(): Promise<void>; requests: () => number }> {
  let requests = 0;
  const srv = await rawServer((s) => {
    let buf = '';
    s.on('data', (c: Buffer) => {
      buf += c.toString('latin1');
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
        buf = buf.slice(end + 4); // GETs only: the head is the whole request
        requests++;
        s.write(`HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello${extra}`);
      }
    });
  });
  return { ...srv, requests: () => requests };
}

const INJECTED = 'HTTP/1.1 200 OK\r\nContent-Length: 8\r\nX-Injected: 1\r\n\r\nINJECTED';

for (const [what, extra] of [
  ['a full second response', INJECTED],
  ['the start of a second response', 'HTTP/1.1 200 OK\r\nContent-Le'],
  ['garbage', '\x00\x01 not http at all'],
] as const) {
  for (const connections of [1, 2]) {
    t.test(`${what} after a response never reaches another client (pool of ${connections})`, async (t) => {
      const up = await appendingUpstream(extra);
      const p = await startTestProxy({ proxy: { connectionsPerEndpoint: connections }, services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${up.port}` }] }] });
      t.teardown(async () => {
        await p.close();
        await up.close();
      });
      const clients = 60;
      const replies = await Promise.all(Array.from({ length: clients }, (_, i) => request(p.port, { path: `/r${i}`, headers: { host: 'svc' } })));
      const wrong = replies.filter((r) => r.status !== 200 || r.body !== 'hello' || r.headers['x-injected'] !== undefined);
      t.equal(wrong.length, 0, `every client got its own answer (wrong: ${JSON.stringify(wrong.slice(0, 3).map((r) => [r.status, r.body]))})`);
      t.equal(up.requests(), clients, 'one upstream request per client');
    });
  }
}
