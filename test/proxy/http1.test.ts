// HTTP/1.1 framing through the proxy: chunked responses stream (the first chunk is not held back), HEAD,
// HTTP/1.0 clients, upstream keep-alive reuse, large header sets, and a chunked request body.
import http from 'node:http';
import net from 'node:net';
import t from 'tap';
import { backend, rawExchange, rawServer, request, startTestProxy } from './helpers.js';

t.test('framing and keep-alive', async (t) => {
  const upstreamSockets = new Set<string>();
  // The backend sends the rest of /stream only once the client holds the first chunk (or, if the proxy
  // held it back, after a 20 s guard against a hang): streaming is shown by the order, not by a time.
  let firstArrived = (): void => {};
  const clientHasFirst = new Promise<void>((r) => (firstArrived = r));
  let restSent = false;
  const b = await backend((req, res) => {
    upstreamSockets.add(`${req.socket.remotePort}`);
    if (req.url === '/stream') {
      res.write('first;');
      const guard = setTimeout(firstArrived, 20_000);
      void clientHasFirst.then(() => {
        clearTimeout(guard);
        restSent = true;
        res.write('second;');
        res.end('third');
      });
      return;
    }
    if (req.url === '/many') {
      for (let i = 0; i < 60; i++) res.setHeader(`x-h${i}`, `v${i}`);
      res.end('many');
      return;
    }
    if (req.url === '/echo') {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => res.end(`${req.headers['transfer-encoding'] ?? 'no-te'}:${Buffer.concat(parts).toString()}`));
      return;
    }
    res.setHeader('content-type', 'text/plain');
    res.end('hello');
  });
  const p = await startTestProxy({ services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${b.port}` }] }] });
  t.teardown(async () => {
    await p.close();
    await b.close();
  });

  // Chunked response: the first chunk reaches the client long before the end.
  const started = Date.now();
  const timeline = await new Promise<{ at: number; text: string; restSent: boolean }[]>((resolve, reject) => {
    const seen: { at: number; text: string; restSent: boolean }[] = [];
    http.get({ host: '127.0.0.1', port: p.port, path: '/stream', headers: { host: 'svc' }, agent: false }, (res) => {
      t.equal(res.headers['transfer-encoding'], 'chunked');
      res.on('data', (c: Buffer) => {
        seen.push({ at: Date.now() - started, text: c.toString(), restSent });
        if (seen.map((x) => x.text).join('').startsWith('first;')) firstArrived();
      });
      res.on('end', () => resolve(seen));
    }).on('error', reject);
  });
  t.equal(timeline.map((x) => x.text).join(''), 'first;second;third');
  t.ok(timeline[0]!.text === 'first;' && !timeline[0]!.restSent, `the first chunk reached the client before the backend sent the rest (after ${timeline[0]!.at} ms)`);

  // HEAD: headers (with the length) and no body; the connection stays usable.
  const head = await rawExchange(p.port, 'HEAD / HTTP/1.1\r\nHost: svc\r\n\r\nGET / HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n');
  t.match(head, /^HTTP\/1\.1 200 OK\r\n[^]*?\r\n\r\nHTTP\/1\.1 200 OK\r\n[^]*?\r\n\r\nhello$/i, 'HEAD answered without a body, next request on the same connection');
  t.notMatch(head, /transfer-encoding/i, 'no chunked framing on a HEAD answer');

  // HTTP/1.0 without keep-alive: answered and closed.
  const old = await rawExchange(p.port, 'GET / HTTP/1.0\r\nHost: svc\r\n\r\n');
  t.match(old, /^HTTP\/1\.1 200 OK\r\n[\s\S]*connection: close\r\n[\s\S]*hello$/i);

  // Many response headers (over llhttp's 32-pair batch) survive.
  const many = await request(p.port, { path: '/many', headers: { host: 'svc' } });
  t.equal(many.headers['x-h59'], 'v59');
  t.equal(many.headers['x-h0'], 'v0');

  // A chunked request body is re-chunked upstream.
  const echoed = await new Promise<string>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: p.port, method: 'POST', path: '/echo', headers: { host: 'svc', 'transfer-encoding': 'chunked' }, agent: false }, (res) => {
      let s = '';
      res.on('data', (c) => (s += c));
      res.on('end', () => resolve(s));
    });
    req.on('error', reject);
    req.write('abc');
    setTimeout(() => req.end('def'), 50);
  });
  t.equal(echoed, 'chunked:abcdef');

  // Sequential requests reuse one upstream connection.
  upstreamSockets.clear();
  for (let i = 0; i < 10; i++) await request(p.port, { headers: { host: 'svc' } });
  t.equal(upstreamSockets.size, 1, 'ten sequential requests over one upstream connection');
});

t.test('an upstream response delimited by the end of the connection is forwarded whole', async (t) => {
  const eof = await rawServer((s) =>
    s.once('data', () => {
      s.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\npart one, ');
      setTimeout(() => s.end('part two'), 50);
    }),
  );
  const p = await startTestProxy({ services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${eof.port}` }] }] });
  t.teardown(async () => {
    await p.close();
    await eof.close();
  });
  for (let i = 0; i < 3; i++) {
    const r = await request(p.port, { headers: { host: 'svc' } });
    t.equal(r.status, 200);
    t.equal(r.body, 'part one, part two', `request ${i}: body read to the end of the stream`);
  }
});

t.test('a reused keep-alive connection found closed: a bodiless request is sent again on a new one', async (t) => {
  // Each connection answers its first request (keep-alive) and drops the second one unanswered, as a
  // server closing an idle connection at the moment the proxy reuses it.
  let connections = 0;
  const flaky = await rawServer((s) => {
    connections++;
    let n = 0;
    s.on('data', () => {
      n++;
      if (n === 1) s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      else s.destroy();
    });
  });
  const p = await startTestProxy({ services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${flaky.port}` }] }] });
  t.teardown(async () => {
    await p.close();
    await flaky.close();
  });
  for (let i = 0; i < 4; i++) {
    const r = await request(p.port, { headers: { host: 'svc' } });
    t.equal(r.status, 200, `GET ${i} answered`);
  }
  t.ok(connections >= 4, `new connections were opened (${connections})`);
  // With a body the request cannot be replayed (the body was streamed): the failure is reported.
  const post = await request(p.port, { method: 'POST', headers: { host: 'svc' }, body: 'payload' });
  t.equal(post.status, 502, 'POST on the dropped reused connection: 502, not replayed');
});

t.test('a response without a length: chunked to an HTTP/1.1 client, delimited by the close for HTTP/1.0 (framing decided as the head is written)', async (t) => {
  const b = await backend((_req, res) => {
    res.write('one;');
    res.end('two');
  });
  const p = await startTestProxy({ services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${b.port}` }] }] });
  t.teardown(async () => {
    await p.close();
    await b.close();
  });
  const closed = await new Promise<string>((resolve) => {
    const s = net.connect(p.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => {});
    s.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    s.write('GET / HTTP/1.0\r\nHost: svc\r\nConnection: keep-alive\r\n\r\n');
  });
  const head = closed.slice(0, closed.indexOf('\r\n\r\n'));
  t.match(head, /^HTTP\/1\.1 200 OK\r\n/);
  t.notMatch(head, /transfer-encoding|content-length/i, 'no framing fields for HTTP/1.0');
  t.match(head, /\r\nconnection: close$/i, 'the connection ends the body');
  t.equal(closed.slice(head.length + 4), 'one;two', 'the whole body, as it came');
  // HTTP/1.1: re-framed as chunks, and the connection stays for the next request.
  const two = await rawExchange(p.port, 'GET / HTTP/1.1\r\nHost: svc\r\n\r\nGET / HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n');
  const answers = two.split(/(?=HTTP\/1\.1 200 OK\r\n)/);
  t.equal(answers.length, 2, 'two answers on one connection');
  for (const a of answers) {
    t.match(a, /\r\ntransfer-encoding: chunked\r\n/i);
    const framed = a.slice(a.indexOf('\r\n\r\n') + 4);
    let body = '';
    let at = 0;
    for (;;) {
      const eol = framed.indexOf('\r\n', at);
      const size = Number.parseInt(framed.slice(at, eol), 16);
      if (!(size >= 0) || eol < 0) break;
      if (size === 0) {
        t.equal(framed.slice(eol), '\r\n\r\n', 'the last chunk ends the body');
        break;
      }
      body += framed.slice(eol + 2, eol + 2 + size);
      at = eol + 2 + size + 2;
    }
    t.equal(body, 'one;two', 'chunk-framed body');
  }
});
