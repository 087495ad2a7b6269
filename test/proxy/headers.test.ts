// Hop-by-hop stripping (RFC 9110 §7.6.1) and the forwarding fields, unit and end to end.
import net from 'node:net';
import t from 'tap';
import { forEachForwardedRequestField, forEachForwardedResponseField, forwardRequestHeaders, forwardResponseHeaders, isNamed, scanRequestFields, type RequestScan } from '../../src/proxy/headers.js';
import { backend, startTestProxy } from './helpers.js';

const fw = { xForwardedFor: true, via: true, viaValue: '1.1 meshmedic' };
const pairs = (flat: readonly string[]) => {
  const out: [string, string][] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i]!.toLowerCase(), flat[i + 1]!]);
  return out;
};


/** Send `request` on a raw connection to the proxy; the reply (latin1) once it ends with `end`, or what came within 5 s. */
function rawExchange(port: number, request: string, end: string): Promise<string> {
  return new Promise<string>((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let data = '';
    s.setTimeout(5000, () => {
      s.destroy();
      resolve(data);
    });
    s.on('data', (c) => {
      data += c.toString('latin1');
      if (data.endsWith(end)) {
        s.destroy();
        resolve(data);
      }
    });
    s.write(request);
  });
}

t.test('request headers: hop-by-hop removed, Connection-named removed, forwarding fields appended', async (t) => {
  const scan: RequestScan = { host: '', hasBody: false, expectContinue: false, problem: '' };
  const raw = [
    'Host', 'svc:80',
    'Connection', 'keep-alive, X-Secret-Hop',
    'X-Secret-Hop', 'leak',
    'Keep-Alive', 'timeout=5',
    'Proxy-Connection', 'keep-alive',
    'Proxy-Authorization', 'Basic Zm9vOmJhcg==',
    'TE', 'trailers, deflate',
    'Trailer', 'X-Checksum',
    'Upgrade', 'websocket',
    'Transfer-Encoding', 'chunked',
    'Expect', '100-continue',
    'X-Forwarded-For', '10.0.0.1',
    'Via', '1.0 edge',
    'Accept', 'text/plain',
    'Set-Cookie-Like', 'a=1',
  ];
  const out = pairs(forwardRequestHeaders(raw, scan, '127.0.0.9', '', fw));
  const names = out.map(([n]) => n);
  for (const hop of ['connection', 'x-secret-hop', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'trailer', 'upgrade', 'transfer-encoding', 'expect']) t.notOk(names.includes(hop), `${hop} removed`);
  t.same(out.find(([n]) => n === 'te'), ['te', 'trailers'], 'TE reduced to trailers');
  t.same(out.find(([n]) => n === 'x-forwarded-for'), ['x-forwarded-for', '10.0.0.1, 127.0.0.9'], 'client appended to X-Forwarded-For');
  t.same(out.find(([n]) => n === 'x-forwarded-proto'), ['x-forwarded-proto', 'http']);
  t.same(out.find(([n]) => n === 'via'), ['via', '1.0 edge, 1.1 meshmedic']);
  t.same(out.find(([n]) => n === 'accept'), ['accept', 'text/plain'], 'end-to-end fields kept');
  t.equal(scan.host, 'svc:80');
  t.equal(scan.hasBody, true, 'chunked request has a body');
});

t.test('request headers: absolute-form authority replaces Host; forwarding fields can be disabled', async (t) => {
  const scan: RequestScan = { host: '', hasBody: true, expectContinue: false, problem: '' };
  const out = pairs(forwardRequestHeaders(['host', 'other', 'content-length', '0', 'x-forwarded-for', '1.2.3.4'], scan, '127.0.0.1', 'payments', { xForwardedFor: false, via: false, viaValue: '' }));
  t.same(out, [['host', 'payments'], ['content-length', '0'], ['x-forwarded-for', '1.2.3.4']]);
  t.equal(scan.hasBody, false, 'content-length 0: no body');
  const noHost = pairs(forwardRequestHeaders(['accept', '*/*'], scan, '127.0.0.1', 'payments:8080', fw));
  t.same(noHost.find(([n]) => n === 'host'), ['host', 'payments:8080'], 'Host added from the authority');
});

t.test('request headers are emitted in order without an array; the answer says whether a Content-Length was kept', async (t) => {
  const scan: RequestScan = { host: '', hasBody: false, expectContinue: false, problem: '' };
  const seen: string[] = [];
  const emit = (n: string, v: string) => {
    seen.push(n, v);
  };
  const raw = ['Host', 'svc', 'Connection', 'X-Hop', 'X-Hop', '1', 'Content-Length', '3', 'Via', '1.0 edge', 'Accept', '*/*'];
  t.equal(forEachForwardedRequestField(raw, '10.0.0.2', '', fw, emit), true);
  t.same(seen, ['Host', 'svc', 'Content-Length', '3', 'Accept', '*/*', 'x-forwarded-for', '10.0.0.2', 'x-forwarded-proto', 'http', 'via', '1.0 edge, 1.1 meshmedic'], 'fields in order, ours last');
  t.same(seen, forwardRequestHeaders(raw, scan, '10.0.0.2', '', fw), 'the array form is the same fields');
  t.equal(scan.host, 'svc');
  t.equal(scan.hasBody, true);
  seen.length = 0;
  const chunked = ['Host', 'svc', 'Transfer-Encoding', 'chunked', 'Expect', '100-continue'];
  t.equal(forEachForwardedRequestField(chunked, '10.0.0.2', 'other:81', { ...fw, xForwardedFor: false, via: false }, emit), false, 'no Content-Length: the pool frames the body');
  t.same(seen, ['Host', 'other:81'], 'the absolute-form authority replaces Host; Transfer-Encoding is the pool\'s, Expect the proxy\'s');
  scanRequestFields(chunked, scan);
  t.same(scan, { host: 'svc', hasBody: true, expectContinue: true, problem: '' });
});

t.test('a request is judged in one pass that only classifies: Host, body, Expect, problems', async (t) => {
  const scan: RequestScan = { host: 'stale', hasBody: true, expectContinue: true, problem: 'stale' };
  scanRequestFields([], scan);
  t.same(scan, { host: '', hasBody: false, expectContinue: false, problem: '' }, 'every field reset');
  scanRequestFields(['HOST', 'svc:80', 'content-length', '0', 'X-Host', 'evil', 'Hosts', 'x'], scan);
  t.same(scan, { host: 'svc:80', hasBody: false, expectContinue: false, problem: '' }, 'Host in any case; a zero length is no body; look-alike names ignored');
  scanRequestFields(['Host', 'a', 'Content-Length', '5', 'Expect', '100-Continue'], scan);
  t.same(scan, { host: 'a', hasBody: true, expectContinue: true, problem: '' });
  scanRequestFields(['Host', 'a', 'host', 'b'], scan);
  t.equal(scan.problem, 'more than one Host header');
  scanRequestFields(['Host', 'user@a'], scan);
  t.equal(scan.problem, 'invalid Host header "user@a"');
  scanRequestFields(['Expect', 'something-else', 'Transfer-Encoding', 'gzip, chunked'], scan);
  t.same(scan, { host: '', hasBody: true, expectContinue: false, problem: '' }, 'any Transfer-Encoding means a body; only 100-continue is answered');
  // A field the Connection header names is still judged (it cannot hide a second Host from the check).
  scanRequestFields(['Connection', 'host', 'Host', 'a', 'Host', 'b'], scan);
  t.equal(scan.problem, 'more than one Host header');
});

t.test('response headers: hop-by-hop removed, Via appended', async (t) => {
  const raw = ['Content-Type', 'text/plain', 'Connection', 'X-Internal', 'X-Internal', 'secret', 'Keep-Alive', 'timeout=5', 'Transfer-Encoding', 'chunked', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'Upgrade', 'h2c'];
  const out = pairs(forwardResponseHeaders(raw, fw));
  t.same(out, [['content-type', 'text/plain'], ['set-cookie', 'a=1'], ['set-cookie', 'b=2'], ['via', '1.1 meshmedic']]);
});

t.test('response headers are emitted in order without an array; the answer says whether a Content-Length was kept', async (t) => {
  const seen: string[] = [];
  const emit = (n: string, v: string) => {
    seen.push(n, v);
  };
  const raw = ['Date', 'x', 'Via', '1.0 edge', 'Content-Length', '3', 'Connection', 'close'];
  t.equal(forEachForwardedResponseField(raw, fw, emit), true);
  t.same(seen, ['Date', 'x', 'Content-Length', '3', 'via', '1.0 edge, 1.1 meshmedic'], 'fields in order, Via merged last');
  t.same(seen, forwardResponseHeaders(raw, fw), 'the array form is the same fields');
  seen.length = 0;
  // A Content-Length the Connection header names is hop-by-hop: dropped, so the head carries no length.
  t.equal(forEachForwardedResponseField(['Connection', 'Content-Length', 'Content-Length', '3'], { ...fw, via: false }, emit), false);
  t.same(seen, []);
  t.equal(forEachForwardedResponseField(['content-length', '0'], fw, () => {}), true, 'any case');
});

t.test('end to end: a Content-Length named in Connection is dropped and the body re-framed (chunked), not left unframed', async (t) => {
  const b = await backend((_req, res) => {
    res.writeHead(200, ['Connection', 'Content-Length', 'Content-Length', '4']);
    res.end('done');
  });
  const p = await startTestProxy({ services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${b.port}` }] }] });
  t.teardown(async () => {
    await p.close();
    await b.close();
  });
  const reply = await rawExchange(p.port, 'GET / HTTP/1.1\r\nHost: svc\r\n\r\n', '0\r\n\r\n');
  const [head, body] = reply.split('\r\n\r\n', 2) as [string, string];
  t.notOk(/content-length/i.test(head), 'no Content-Length forwarded');
  t.match(head.toLowerCase(), /transfer-encoding: chunked/, 'the proxy frames the body itself');
  t.equal(reply.slice(head.length + 4), '4\r\ndone\r\n0\r\n\r\n', 'one chunk and the terminator');
  t.ok(body !== undefined);
});

t.test('names and tokens match in any ASCII case, and only letters fold', async (t) => {
  t.ok(isNamed('Content-Length', 'content-length'));
  t.ok(isNamed('KEEP-ALIVE', 'keep-alive'));
  t.ok(isNamed('close', 'close'));
  t.notOk(isNamed('closed', 'close'), 'longer');
  t.notOk(isNamed('Keep\ralive', 'keep-alive'), 'CR is not a hyphen although they differ by the case bit');
  t.notOk(isNamed('\u212Aeep-alive', 'keep-alive'), 'the Kelvin sign is not a K');
  // A lone keep-alive/close names nothing, whatever its case; a list still names its other tokens.
  for (const v of ['Keep-Alive', 'CLOSE', 'keep-alive']) {
    t.same(pairs(forwardResponseHeaders(['Connection', v, 'X-Keep', '1'], fw)), [['x-keep', '1'], ['via', '1.1 meshmedic']], v);
  }
  t.same(pairs(forwardResponseHeaders(['Connection', 'Keep-Alive, X-Hop', 'X-Hop', '1', 'X-Keep', '2'], fw)), [['x-keep', '2'], ['via', '1.1 meshmedic']]);
  const scan: RequestScan = { host: '', hasBody: false, expectContinue: false, problem: '' };
  forwardRequestHeaders(['Host', 'a', 'Expect', '100-Continue'], scan, '127.0.0.1', '', fw);
  t.ok(scan.expectContinue, 'Expect: 100-Continue in any case');
});

t.test('end to end: the backend sees no hop-by-hop fields, the client none of the backend\'s', async (t) => {
  let seen: string[] = [];
  const b = await backend((req, res) => {
    seen = req.rawHeaders.map((h, i) => (i % 2 === 0 ? h.toLowerCase() : h));
    res.writeHead(200, [
      ['Connection', 'X-Resp-Hop'],
      ['X-Resp-Hop', 'no'],
      ['Keep-Alive', 'timeout=1'],
      ['X-End-To-End', 'yes'],
      ['Content-Length', '4'],
    ].flat());
    res.end('done');
  });
  const p = await startTestProxy({ services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${b.port}` }] }] });
  t.teardown(async () => {
    await p.close();
    await b.close();
  });
  const reply = await rawExchange(p.port, 'GET / HTTP/1.1\r\nHost: svc\r\nConnection: X-Req-Hop\r\nX-Req-Hop: no\r\nProxy-Authorization: Basic eA==\r\nTE: trailers\r\nX-Keep: yes\r\n\r\n', 'done');
  for (const hop of ['x-req-hop', 'proxy-authorization']) t.notOk(seen.includes(hop), `backend did not see ${hop}`);
  t.ok(seen.includes('x-keep'), 'end-to-end request field forwarded');
  t.equal(seen[seen.indexOf('te') + 1], 'trailers');
  t.equal(seen[seen.indexOf('x-forwarded-for') + 1], '127.0.0.1');
  t.equal(seen[seen.indexOf('via') + 1], '1.1 meshmedic');
  const head = reply.split('\r\n\r\n')[0]!.toLowerCase();
  t.notOk(head.includes('x-resp-hop'), 'client did not see the backend\'s connection-named field');
  t.notOk(head.includes('timeout=1'), 'backend keep-alive parameters not forwarded');
  t.ok(head.includes('x-end-to-end: yes'));
  t.ok(head.includes('via: 1.1 meshmedic'));
});

t.test('end to end: a retried request carries the same forwarded head to the next endpoint (written again from the client\'s fields)', async (t) => {
  const heads: string[][] = [];
  const record = (req: { rawHeaders: string[] }) => heads.push(req.rawHeaders.map((h, i) => (i % 2 === 0 ? h.toLowerCase() : h)));
  const sick = await backend((req, res) => {
    record(req);
    res.statusCode = 503;
    res.end('no');
  });
  const live = await backend((req, res) => {
    record(req);
    res.end('ok');
  });
  // Round-robin: the 503 endpoint is chosen within two requests (Peak-EWMA could keep avoiding it).
  const p = await startTestProxy({ proxy: { balancer: 'round-robin' }, services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${sick.port}` }, { address: `127.0.0.1:${live.port}` }] }] });
  t.teardown(async () => {
    await p.close();
    await live.close();
    await sick.close();
  });
  // Absolute-form target (its authority replaces Host), a hop-by-hop field, forwarding fields to merge.
  const request = 'GET http://svc/p HTTP/1.1\r\nHost: elsewhere\r\nConnection: X-Hop\r\nX-Hop: 1\r\nX-Forwarded-For: 10.9.9.9\r\nVia: 1.0 edge\r\nX-Keep: k\r\n\r\n';
  let retried = false;
  for (let i = 0; i < 4 && !retried; i++) {
    heads.length = 0;
    const reply = await rawExchange(p.port, request, 'ok');
    t.match(reply, /^HTTP\/1\.1 200 /, `request ${i} answered`);
    retried = heads.length === 2;
  }
  t.ok(retried, 'one request was answered 503 by one endpoint and retried on the other');
  const [first, second] = heads as [string[], string[]];
  t.same(second, first, 'both endpoints saw the same head');
  t.same(first, ['host', 'svc', 'x-keep', 'k', 'x-forwarded-for', '10.9.9.9, 127.0.0.1', 'x-forwarded-proto', 'http', 'via', '1.0 edge, 1.1 meshmedic']);
});
