// A stall of the proxy's own event loop (a long GC, a busy machine) must not be judged as the endpoint's
// timeout: after the stall, the pool's timers run before the socket events that arrived meanwhile, so the
// pool looks at those events before it decides that a connect or the response headers timed out. The
// same holds on the client side: the listener's idle timeout and request-head deadline.
import net from 'node:net';
import t, { type Test } from 'tap';
import { selectHttp1Engine, type Http1EngineSetting } from '../../src/proxy/engine/index.js';
import { H1Pool, type H1Handler } from '../../src/proxy/h1pool.js';
import { ExpiryQueue, type Expirable } from '../../src/proxy/expiry-queue.js';
import { backend, startTestProxy, testEngine, until } from './helpers.js';

/** Block this process's event loop for `ms`, as a stalled process would. */
function stall(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy: no timer, no socket event can run
  }
}

/** One GET through `pool`; resolves with the status or the error's code. */
function get(pool: H1Pool, onSent: () => void = () => {}): Promise<string> {
  return new Promise((resolve) => {
    let status = 0;
    const h: H1Handler = {
      onConnect: () => onSent(),
      onHeaders: (s) => {
        status = s;
        return true;
      },
      onData: () => true,
      onComplete: () => resolve(String(status)),
      onError: (err) => resolve((err as { code?: string }).code ?? err.message),
    };
    const forEachHeaderField = (emit: (name: string, value: string) => void): boolean => {
      emit('host', 'x');
      return false;
    };
    pool.dispatch({ method: 'GET', path: '/', forEachHeaderField, body: null }, h);
  });
}

async function upstream(t: Test, onRequest: (s: net.Socket) => void): Promise<number> {
  const server = net.createServer((s) => {
    s.once('data', () => onRequest(s));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return (server.address() as net.AddressInfo).port;
}

const OK = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok';

async function pool(t: Test, port: number, timeouts: { connectTimeoutMs?: number; headersTimeoutMs?: number }): Promise<H1Pool> {
  const { engine } = await selectHttp1Engine(testEngine as Http1EngineSetting);
  const p = new H1Pool('127.0.0.1', port, {
    engine, connections: 1, connectTimeoutMs: timeouts.connectTimeoutMs ?? 10_000, headersTimeoutMs: timeouts.headersTimeoutMs ?? 10_000,
    bodyTimeoutMs: 0, keepAliveTimeoutMs: 10_000, maxHeaderSize: 16_384, queueTimeoutMs: 10_000, maxUploading: 1,
  });
  t.teardown(() => p.destroy());
  return p;
}

t.test('a connect that completed while the loop stalled is not a connect timeout', async (t) => {
  const port = await upstream(t, (s) => s.write(OK));
  const p = await pool(t, port, { connectTimeoutMs: 50 });
  // From a check-phase callback: after it, the loop runs the expired timers before it polls the sockets.
  const result = await new Promise<Promise<string>>((resolve) => setImmediate(() => {
    const r = get(p);
    stall(300); // the kernel completes the loopback handshake meanwhile
    resolve(r);
  }));
  t.equal(await result, '200', 'the request is answered on the connection that was made');
});

t.test('response headers that arrived while the loop stalled are not a headers timeout', async (t) => {
  // The endpoint answers at once; then this process stalls (inside the server's callback) before the
  // pool's socket has been read: the answer waits in the kernel while the headers timeout elapses.
  const port = await upstream(t, (s) => {
    s.write(OK);
    stall(400);
  });
  const p = await pool(t, port, { headersTimeoutMs: 100 });
  t.equal(await get(p), '200', 'the answer that arrived in time is taken');
});

t.test('the headers timeout still fires when nothing arrives', async (t) => {
  const silent = await upstream(t, () => {}); // accepts, reads the request, never answers
  const p = await pool(t, silent, { headersTimeoutMs: 100 });
  const t0 = performance.now();
  t.equal(await get(p), 'MM_ERR_UPSTREAM_HEADERS_TIMEOUT');
  t.ok(performance.now() - t0 >= 100, 'not before the limit');
});

// ------------------------------------------------------------------ the client side (the listener)

/**
 * A proxy with `proxy` settings in front of a backend answering "ok", one raw client connection to it
 * (connected, and accepted by the proxy), what the client has read, and the reasons the listener's expiry
 * queue was handed a connection ('idle', or a deadline's message).
 */
async function clientSide(t: Test, proxy: Record<string, number>) {
  const b = await backend((_req, res) => res.end('ok'));
  const p = await startTestProxy({ proxy, services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${b.port}` }] }] });
  const queued: string[] = [];
  const proto = ExpiryQueue.prototype as unknown as { add(item: Expirable, why: string): void };
  const original = proto.add;
  proto.add = function (this: unknown, item: Expirable, why: string): void {
    queued.push(why);
    original.call(this, item, why);
  };
  const s = net.connect(p.port, '127.0.0.1');
  let got = '';
  let closed = false;
  s.on('data', (c: Buffer) => (got += c.toString('latin1')));
  s.on('error', () => {});
  s.on('close', () => (closed = true));
  t.teardown(async () => {
    proto.add = original;
    s.destroy();
    await p.close();
    await b.close();
  });
  await new Promise<void>((r) => s.once('connect', () => r()));
  await until(() => p.handle.outbound!.connections().open === 1, 5000, 'the proxy to accept the connection');
  return {
    s, queued,
    got: () => got,
    closed: () => closed,
    /** Write `bytes`, then stall this process `ms` before anything else runs (from a check-phase callback). */
    writeAndStall: (bytes: string, ms: number) => new Promise<void>((r) => setImmediate(() => {
      s.write(bytes);
      stall(ms);
      r();
    })),
  };
}

const GET = 'GET / HTTP/1.1\r\nHost: svc\r\n\r\n';
const answers = (got: string) => got.split('HTTP/1.1 ').length - 1;

t.test('a request sent while the loop stalled past the idle timeout is served, the connection kept', async (t) => {
  // Its idle timer fires before the poll that reads the request: judged after that poll, it is not idle.
  // 1 s: no gap between the test's own steps on a loaded machine is that long; only the stall is.
  const c = await clientSide(t, { idleTimeoutMs: 1000 });
  await c.writeAndStall(GET, 1300);
  await until(() => answers(c.got()) === 1 || c.closed(), 5000, 'the first answer');
  t.match(c.got(), /^HTTP\/1\.1 200 /, 'the first request (read by the protocol sniffer) answered 200');
  // Idle again, on the HTTP/1 connection's own timer now.
  await c.writeAndStall(GET, 1300);
  await until(() => answers(c.got()) === 2 || c.closed(), 5000, 'the second answer');
  t.equal(answers(c.got()), 2, 'the second request (on the kept-alive connection) answered too');
  t.same(c.queued, [], 'neither was queued to be closed as idle');
  // And idleness is still judged: nothing more is sent, the connection is closed.
  await until(() => c.closed(), 5000, 'the idle connection to be closed');
  t.same(c.queued, ['idle'], 'closed as idle once');
});

t.test('a connection that never sends a byte is still closed as idle', async (t) => {
  const c = await clientSide(t, { idleTimeoutMs: 100 });
  await until(() => c.closed(), 5000, 'the idle connection to be closed');
  t.same(c.queued, ['idle']);
  t.equal(c.got(), '', 'closed without an answer');
});

t.test('the rest of a request head sent while the loop stalled is not a request-head timeout', async (t) => {
  const c = await clientSide(t, { requestHeadersTimeoutMs: 1000 });
  c.s.write('GET / HTTP/1.1\r\n');
  // The head has started (the proxy read its first line); the rest comes well before the deadline, but the
  // process stalls past it before the rest is read.
  await new Promise((r) => setTimeout(r, 20));
  await c.writeAndStall('Host: svc\r\n\r\n', 1500);
  await until(() => answers(c.got()) === 1 || c.closed(), 5000, 'the answer');
  t.match(c.got(), /^HTTP\/1\.1 200 /, 'answered 200, not 408');
  t.same(c.queued, [], 'no deadline was found past');
});

t.test('a request head that really trickles past the deadline is still answered 408', async (t) => {
  const c = await clientSide(t, { requestHeadersTimeoutMs: 200 });
  c.s.write('GET / HTTP/1.1\r\n');
  await until(() => c.closed(), 5000, 'the connection to be closed');
  t.match(c.got(), /^HTTP\/1\.1 408 [^]*MM_ERR_REQUEST_TIMEOUT/, '408 with the error code');
  t.equal(c.queued.length, 1, 'queued once');
});
