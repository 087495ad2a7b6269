// A stall of the proxy's own event loop (a long GC, a busy machine) must not be judged as the endpoint's
// timeout: after the stall, the pool's timers run before the socket events that arrived meanwhile, so the
// pool looks at those events before it decides that a connect or the response headers timed out.
import net from 'node:net';
import t, { type Test } from 'tap';
import { selectHttp1Engine, type Http1EngineSetting } from '../../src/proxy/engine/index.js';
import { H1Pool, type H1Handler } from '../../src/proxy/h1pool.js';
import { testEngine } from './helpers.js';

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
    pool.dispatch({ method: 'GET', path: '/', headers: ['host', 'x'], body: null }, h);
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
