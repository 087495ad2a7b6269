// A request whose body came in the same read as its head (a small POST) goes to the endpoint in ONE write:
// head and body together, as HAProxy sends them, not one system call each (each write on loopback also
// runs the receiver's TCP path and wakes it). Writes are counted where net.Socket hands them to its handle
// (_writeGeneric: once per write or writev), on the proxy's sockets to the endpoint only.
import net from 'node:net';
import t from 'tap';
import { backend, startTestProxy } from './helpers.js';

type WriteGeneric = (this: net.Socket, writev: boolean, data: unknown, encoding: string, cb: (err?: Error) => void) => void;
const proto = net.Socket.prototype as unknown as { _writeGeneric: WriteGeneric };

/** Count the writes to `port` (the endpoint) while `fn` runs. */
async function writesTo(port: number, fn: () => Promise<void>): Promise<number> {
  const original = proto._writeGeneric;
  let n = 0;
  proto._writeGeneric = function (this: net.Socket, writev, data, encoding, cb) {
    if (this.remotePort === port) n++;
    return original.call(this, writev, data, encoding, cb);
  };
  try {
    await fn();
  } finally {
    proto._writeGeneric = original;
  }
  return n;
}

/** Send `bytes` (whole requests, in one write each) on one keep-alive connection; wait for `count` answers. */
async function exchange(s: net.Socket, bytes: string, count: number): Promise<string> {
  let got = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer): void => {
      got += d.toString('latin1');
      if (got.split('HTTP/1.1 ').length - 1 >= count && got.endsWith('ok')) {
        s.off('data', onData);
        resolve();
      }
    };
    s.on('data', onData);
    s.write(bytes, (err) => {
      if (err) reject(err);
    });
  });
  return got;
}

/** A proxy in front of `be` (service svc) and one client connection to it, all closed at the test's end. */
async function clientThroughProxy(t: { teardown(fn: () => unknown): void }, be: Awaited<ReturnType<typeof backend>>): Promise<net.Socket> {
  const p = await startTestProxy({ services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${be.port}` }] }] });
  const client = net.connect(p.port, '127.0.0.1');
  client.setNoDelay(true);
  t.teardown(async () => {
    client.destroy();
    await p.close();
    await be.close();
  });
  await new Promise<void>((r) => client.once('connect', () => r()));
  return client;
}

t.test('a small request body leaves with its head in one write to the endpoint', async (t) => {
  const bodies: string[] = [];
  const be = await backend((req, res) => {
    let b = '';
    req.setEncoding('latin1');
    req.on('data', (c: string) => (b += c));
    req.on('end', () => {
      bodies.push(b);
      res.setHeader('content-length', '2');
      res.end('ok');
    });
  });
  const client = await clientThroughProxy(t, be);
  // The endpoint connection is opened (and reused) by a first request.
  t.match(await exchange(client, 'GET / HTTP/1.1\r\nhost: svc\r\n\r\n', 1), /^HTTP\/1\.1 200/);

  const body = 'x'.repeat(100);
  const withLength = `POST /a HTTP/1.1\r\nhost: svc\r\ncontent-length: ${body.length}\r\n\r\n${body}`;
  const chunked = `POST /b HTTP/1.1\r\nhost: svc\r\ntransfer-encoding: chunked\r\n\r\n64\r\n${body}\r\n0\r\n\r\n`;
  const bodyless = 'GET /c HTTP/1.1\r\nhost: svc\r\n\r\n';
  // A chunked body's last chunk may still follow in a write of its own: the native engine reports the end
  // of the message in a callback of its own, after the turn that wrote head and body (3 writes before).
  const cases = [['content-length body', withLength, 1], ['chunked body', chunked, 2], ['no body', bodyless, 1]] as const;
  for (const [name, req, most] of cases) {
    bodies.length = 0;
    let answer = '';
    const writes = await writesTo(be.port, async () => {
      for (let i = 0; i < 5; i++) answer += await exchange(client, req, 1);
    });
    t.ok(writes >= 5 && writes <= 5 * most, `${name}: at most ${most} write(s) per request (5 requests: ${writes})`);
    t.equal(answer.split('HTTP/1.1 200 ').length - 1, 5, `${name}: five answers`);
    t.same(bodies, Array(5).fill(req === bodyless ? '' : body), `${name}: the endpoint got every body whole`);
  }
});

t.test('a body that arrives after its head is still forwarded whole (the head is not held for it)', async (t) => {
  let headSeen!: () => void;
  const headArrived = new Promise<void>((r) => (headSeen = r));
  const be = await backend((req, res) => {
    headSeen();
    let b = '';
    req.setEncoding('latin1');
    req.on('data', (c: string) => (b += c));
    req.on('end', () => {
      res.setHeader('content-length', String(b.length));
      res.end(b);
    });
  });
  const client = await clientThroughProxy(t, be);
  let got = '';
  client.on('data', (d: Buffer) => (got += d.toString('latin1')));
  client.write('POST / HTTP/1.1\r\nhost: svc\r\ncontent-length: 5\r\n\r\n');
  // The endpoint sees the head before any body byte was sent: nothing waits for the body.
  await headArrived;
  client.write('hello');
  await new Promise<void>((resolve) => {
    const check = (): void => {
      if (got.endsWith('\r\n\r\nhello')) resolve();
      else client.once('data', check);
    };
    check();
  });
  t.match(got, /^HTTP\/1\.1 200/);
});
