// Host and HTTP semantics at the edge: ambiguous or invalid Host refused, no routing of foreign names to
// internal services, HTTP/0.9 refused, HTTP/1.0 without Host forwarded with one, upstream responses the
// proxy cannot forward faithfully answered 502 (or cut cleanly once bytes reached the client), and a valid
// pipelined request answered before the garbage behind it.
import t from 'tap';
import { backend, rawExchange, rawServer, request, startTestProxy } from './helpers.js';

t.test('Host: two fields or an invalid value → 400; foreign names are not routed by their first label', async (t) => {
  let seen: { host?: string; count: number }[] = [];
  const b = await backend((req, res) => {
    seen.push({ host: req.headers.host, count: req.rawHeaders.filter((_, i) => i % 2 === 0 && req.rawHeaders[i]!.toLowerCase() === 'host').length });
    res.end('ok');
  });
  const p = await startTestProxy({ services: [{ name: 'payments', endpoints: [{ address: `127.0.0.1:${b.port}` }] }] });
  t.teardown(async () => {
    await p.close();
    await b.close();
  });
  const two = await rawExchange(p.port, 'GET / HTTP/1.1\r\nHost: other\r\nHost: payments\r\n\r\n');
  t.match(two, /^HTTP\/1\.1 400 [^]*more than one Host/, 'two Host headers');
  for (const bad of ['a b', 'user@payments', 'payments/x', 'payments:80x', '[::1']) {
    const r = await rawExchange(p.port, `GET / HTTP/1.1\r\nHost: ${bad}\r\n\r\n`);
    t.match(r, /^HTTP\/1\.1 400 [^]*invalid Host/, `Host "${bad}"`);
  }
  const userinfo = await rawExchange(p.port, 'GET http://user@payments/ HTTP/1.1\r\nHost: payments\r\n\r\n');
  t.match(userinfo, /^HTTP\/1\.1 400 /, 'userinfo in an absolute target');
  t.equal(seen.length, 0, 'none of them reached the backend');
  for (const foreign of ['payments.evil.com', 'payments.com', 'payments.default']) {
    const r = await request(p.port, { path: `http://${foreign}/`, headers: { host: foreign } });
    t.equal(r.status, 404, `${foreign} is not routed to payments`);
  }
  for (const local of ['payments', 'payments.default.svc', 'payments.default.svc.cluster.local:8080', 'PAYMENTS.default.svc']) {
    const r = await request(p.port, { headers: { host: local } });
    t.equal(r.status, 200, `${local} reaches payments`);
  }
  seen = [];
  await request(p.port, { headers: { host: 'payments' } });
  t.same(seen, [{ host: 'payments', count: 1 }], 'one Host upstream');
});

t.test('HTTP/0.9 refused; HTTP/1.0 without Host is forwarded with one', async (t) => {
  const hosts: (string | undefined)[] = [];
  const b = await backend((req, res) => {
    hosts.push(req.headers.host);
    res.end('ok');
  });
  const p = await startTestProxy({ outbound: { defaultService: 'svc' }, services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${b.port}` }] }] });
  t.teardown(async () => {
    await p.close();
    await b.close();
  });
  const old = await rawExchange(p.port, 'GET /\r\n\r\n');
  t.match(old, /^HTTP\/1\.1 505 /, 'HTTP/0.9 → 505');
  t.same(hosts, [], 'not forwarded');
  const r10 = await rawExchange(p.port, 'GET / HTTP/1.0\r\n\r\n');
  t.match(r10, /^HTTP\/1\.1 200 [^]*ok$/, 'HTTP/1.0 without Host answered');
  t.same(hosts, ['svc'], 'the upstream HTTP/1.1 request carries a Host (the service)');
  const r11 = await rawExchange(p.port, 'GET / HTTP/1.1\r\n\r\n');
  t.match(r11, /^HTTP\/1\.1 400 /, 'HTTP/1.1 without Host → 400');
});

/** An upstream answering every request with `bytes` (then, if given, `later` after a pause). */
async function scripted(bytes: string, later?: string) {
  return rawServer((s) => {
    s.once('data', () => {
      s.write(bytes);
      if (later !== undefined) setTimeout(() => s.write(later), 200);
    });
  });
}

t.test('upstream responses the proxy cannot forward faithfully → 502', async (t) => {
  const cases: [string, string][] = [
    ['Transfer-Encoding: gzip', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n\x1f\x8b\x08\x00'],
    ['Transfer-Encoding: gzip, chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n4\r\n\x1f\x8b\x08\x00\r\n0\r\n\r\n'],
    ['204 with Content-Length: 5', 'HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello'],
    ['status 600', 'HTTP/1.1 600 Weird\r\nContent-Length: 2\r\n\r\nok'],
    ['status 999', 'HTTP/1.1 999 Weird\r\nContent-Length: 2\r\n\r\nok'],
    ['bad chunking right after the headers', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n'],
  ];
  for (const [what, bytes] of cases) {
    const up = await scripted(bytes);
    const p = await startTestProxy({ services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${up.port}` }] }] });
    const r = await request(p.port, { headers: { host: 'svc' } }).catch((e: Error) => ({ status: 0, body: e.message, headers: {} }));
    t.equal(r.status, 502, `${what}: 502`);
    t.match(r.body, /MM_ERR_UPSTREAM_RESET/, `${what}: error code`);
    await p.close();
    await up.close();
  }
});

t.test('bad chunking after body bytes reached the client: the response is cut, never completed', async (t) => {
  const up = await scripted('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n', 'zz\r\nmore\r\n0\r\n\r\n');
  const p = await startTestProxy({ services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${up.port}` }] }] });
  t.teardown(async () => {
    await p.close();
    await up.close();
  });
  const raw = await rawExchange(p.port, 'GET / HTTP/1.1\r\nHost: svc\r\n\r\n', 3000);
  t.match(raw, /^HTTP\/1\.1 200 [^]*hello/, 'the first bytes were forwarded');
  t.notMatch(raw, /\r\n0\r\n\r\n$/, 'no terminating chunk: the client sees a truncated response');
});

t.test('a valid pipelined request before garbage is answered, then 400', async (t) => {
  const b = await backend((req, res) => res.end(`got ${req.url}`));
  const p = await startTestProxy({ services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${b.port}` }] }] });
  t.teardown(async () => {
    await p.close();
    await b.close();
  });
  const raw = await rawExchange(p.port, 'GET /valid HTTP/1.1\r\nHost: svc\r\n\r\nNOT HTTP AT ALL\r\n\r\n', 3000);
  t.match(raw, /^HTTP\/1\.1 200 [^]*got \/valid[^]*HTTP\/1\.1 400 /, 'the valid answer, then 400');
});
