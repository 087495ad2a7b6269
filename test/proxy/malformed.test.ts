// Malformed HTTP is answered 400/431 on its own connection without harming others; random bytes never
// crash the listener.
import http from 'node:http';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { backend, rawExchange, request, startTestProxy } from './helpers.js';

t.test('malformed requests: 400/431, other connections unaffected', async (t) => {
  let served = 0;
  const b = await backend((req, res) => {
    req.resume();
    req.on('end', () => {
      served++;
      res.end('ok');
    });
  });
  const p = await startTestProxy({ proxy: { maxHeaderBytes: 4096 }, services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${b.port}` }] }] });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(async () => {
    agent.destroy();
    await p.close();
    await b.close();
  });
  const good = () =>
    new Promise<{ status: number; socketPort: number }>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: p.port, headers: { host: 'svc' }, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode!, socketPort: req.socket!.localPort! }));
      });
      req.on('error', reject);
    });
  const first = await good();
  t.equal(first.status, 200);

  const cases: [string, string, RegExp][] = [
    ['bad Content-Length', 'POST / HTTP/1.1\r\nHost: svc\r\nContent-Length: abc\r\n\r\nhello', /^HTTP\/1\.1 400 /],
    ['two Content-Lengths', 'POST / HTTP/1.1\r\nHost: svc\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!', /^HTTP\/1\.1 400 /],
    ['Content-Length + Transfer-Encoding (smuggling)', 'POST / HTTP/1.1\r\nHost: svc\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: svc\r\n\r\n', /^HTTP\/1\.1 400 /],
    ['oversized headers', `GET / HTTP/1.1\r\nHost: svc\r\nX-Big: ${'a'.repeat(8000)}\r\n\r\n`, /^HTTP\/1\.1 431 /],
    ['bad chunked encoding', 'POST / HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n', /^HTTP\/1\.1 400 /],
    ['garbage request line', 'HELLO THERE\r\n\r\n', /^HTTP\/1\.1 400 /],
    ['bad header name', 'GET / HTTP/1.1\r\nHost: svc\r\nBad Header: x\r\n\r\n', /^HTTP\/1\.1 400 /],
    ['missing Host in HTTP/1.1', 'GET / HTTP/1.1\r\n\r\n', /^HTTP\/1\.1 400 /],
  ];
  for (const [name, bytes, expect] of cases) {
    const before = served;
    const reply = await rawExchange(p.port, bytes);
    t.match(reply, expect, `${name}: ${reply.split('\r\n')[0]}`);
    if (!/431|smuggling/.test(name)) t.match(reply, /MM_ERR_BAD_REQUEST|MM_ERR_UNKNOWN_SERVICE/, `${name}: JSON error code`);
    t.notOk(reply.includes('smuggled'), `${name}: nothing smuggled`);
    t.equal(served - before, 0, `${name}: nothing reached the backend`);
  }
  const again = await good();
  t.equal(again.status, 200, 'the keep-alive connection still works');
  t.equal(again.socketPort, first.socketPort, 'on the same connection');
});

t.test('random bytes never crash the listener', async (t) => {
  const b = await backend((_req, res) => res.end('ok'));
  const p = await startTestProxy({ services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${b.port}` }] }] });
  t.teardown(async () => {
    await p.close();
    await b.close();
  });
  const inputs: Buffer[] = [];
  for (let i = 0; i < 60; i++) inputs.push(randomBytes(1 + ((i * 977) % 3000)));
  // Valid starts with random continuations, and an HTTP/2 preface followed by junk.
  for (let i = 0; i < 20; i++) inputs.push(Buffer.concat([Buffer.from('GET / HTTP/1.1\r\nHost: svc\r\n'), randomBytes(50 + i * 40)]));
  for (let i = 0; i < 10; i++) inputs.push(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), randomBytes(20 + i * 100)]));
  for (let i = 0; i < inputs.length; i += 10) await Promise.all(inputs.slice(i, i + 10).map((buf) => rawExchange(p.port, buf, 500)));
  const r = await request(p.port, { headers: { host: 'svc' } });
  t.equal(r.status, 200, 'still serving after 90 junk connections');
  t.equal(p.handle.core.inflight, 0);
});

t.test('pipelined requests are answered in order; Expect: 100-continue is answered by the proxy', async (t) => {
  const b = await backend((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => res.end(`${req.url}:${body}`));
  });
  const p = await startTestProxy({ services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${b.port}` }] }] });
  t.teardown(async () => {
    await p.close();
    await b.close();
  });
  const two = await rawExchange(p.port, 'GET /first HTTP/1.1\r\nHost: svc\r\n\r\nPOST /second HTTP/1.1\r\nHost: svc\r\nContent-Length: 3\r\n\r\nabcGET /third HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n', 3000);
  const bodies = [...two.matchAll(/\/(first|second|third):([a-z]*)/g)].map((m) => m[0]);
  t.same(bodies, ['/first:', '/second:abc', '/third:'], 'three pipelined responses in order');
  const cont = await new Promise<string>((resolve) => {
    const s = net.connect(p.port, '127.0.0.1');
    let data = '';
    s.on('data', (c) => {
      data += c.toString('latin1');
      if (data.startsWith('HTTP/1.1 100 Continue\r\n\r\n') && !data.includes('/up')) s.write('hello');
      if (data.includes('/up:hello')) {
        s.destroy();
        resolve(data);
      }
    });
    s.setTimeout(3000, () => {
      s.destroy();
      resolve(data);
    });
    s.write('POST /up HTTP/1.1\r\nHost: svc\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n');
  });
  t.match(cont, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /, 'interim 100 then the answer');
  t.match(cont, /\/up:hello/);
});
