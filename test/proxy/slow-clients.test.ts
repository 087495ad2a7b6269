// Slow and hostile clients cannot stall a sidecar: trickling uploads hold at most a share of an
// endpoint's connections and are cut below a minimum rate, requests wait for a connection only so long,
// a request head must arrive in time (slowloris), and downstream connections are capped.
import net from 'node:net';
import t, { type Test } from 'tap';
import { ExpiryQueue, type Expirable } from '../../src/proxy/expiry-queue.js';
import { backend, rawExchange, rawServer, request, startTestProxy, until } from './helpers.js';

interface Trickle {
  readonly socket: net.Socket;
  received(): string;
  readonly closed: Promise<void>;
}

/** An upload announcing 100 MB that sends one byte every `everyMs` (the review's attack, faster). */
function trickle(port: number, everyMs: number): Trickle {
  const socket = net.connect(port, '127.0.0.1');
  let got = '';
  socket.on('data', (c: Buffer) => (got += c.toString('latin1')));
  socket.on('error', () => {});
  const closed = new Promise<void>((r) => socket.on('close', () => r()));
  socket.write('POST /upload HTTP/1.1\r\nHost: svc\r\nContent-Length: 100000000\r\n\r\nx');
  const timer = setInterval(() => {
    if (!socket.destroyed) socket.write('x');
  }, everyMs);
  void closed.then(() => clearInterval(timer));
  return { socket, received: () => got, closed };
}

/** A backend that reads whole request bodies before answering (as most applications do). */
async function wholeBodyBackend(): Promise<Awaited<ReturnType<typeof backend>> & { uploads: () => number }> {
  let uploads = 0;
  const b = await backend((req, res) => {
    if (req.method === 'POST') uploads++;
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  return { ...b, uploads: () => uploads };
}

t.test('trickling uploads cannot take every upstream connection: ordinary requests are answered', async (t) => {
  const b = await wholeBodyBackend();
  // Minimum body rate off: this is about the connection share alone.
  const p = await startTestProxy({ proxy: { connectionsPerEndpoint: 8, requestBodyMinBytesPerSecond: 0 }, services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${b.port}` }] }] });
  const trickles: Trickle[] = [];
  t.teardown(async () => {
    for (const x of trickles) x.socket.destroy();
    await p.close();
    await b.close();
  });
  // More trickling uploads than the endpoint has connections (the review: 330 against 256).
  for (let i = 0; i < 12; i++) trickles.push(trickle(p.port, 100));
  await until(() => b.uploads() >= 4, 10_000, 'uploads reaching the backend');
  await new Promise((r) => setTimeout(r, 300)); // let any further uploads take connections too
  t.ok(b.uploads() <= 4, `at most half of the 8 connections carry uploads (${b.uploads()})`);
  const t0 = performance.now();
  const replies = await Promise.all(Array.from({ length: 20 }, () => request(p.port, { headers: { host: 'svc' }, timeoutMs: 30_000 }).catch((e: Error) => ({ status: 0, body: e.message }))));
  t.same(replies.map((r) => r.status), Array(20).fill(200), 'every ordinary request answered');
  // No wall-clock bound (a starved machine could exceed any): a request that had waited for one of the
  // connections the uploads hold would never have got one (they never end) and failed with a 503 after
  // the 5 s queue timeout (the client's 30 s is only a guard against a hang).
  t.comment(`answered in ${Math.round(performance.now() - t0)} ms`);
  // Connections the ordinary requests released must not go to the waiting uploads either.
  await new Promise((r) => setTimeout(r, 300));
  t.ok(b.uploads() <= 4, `still at most 4 uploads after the others released their connections (${b.uploads()})`);
  const again = await Promise.all(Array.from({ length: 20 }, () => request(p.port, { headers: { host: 'svc' }, timeoutMs: 30_000 }).catch((e: Error) => ({ status: 0, body: e.message }))));
  t.same(again.map((r) => r.status), Array(20).fill(200), 'and ordinary requests are still answered');
});

t.test('a request body below the minimum rate is answered 408 and closed; a fast one passes', async (t) => {
  const b = await wholeBodyBackend();
  const p = await startTestProxy({ proxy: { requestBodyMinBytesPerSecond: 500, requestBodyGraceMs: 500 }, services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${b.port}` }] }] });
  const x = trickle(p.port, 100);
  t.teardown(async () => {
    x.socket.destroy();
    await p.close();
    await b.close();
  });
  const t0 = performance.now();
  const cut = await Promise.race([x.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000))]);
  t.ok(cut, `the trickling upload was cut (after ${Math.round(performance.now() - t0)} ms)`);
  t.match(x.received(), /^HTTP\/1\.1 408 [^]*MM_ERR_REQUEST_TIMEOUT/, '408 with the error code');
  const big = Buffer.alloc(200_000, 'a');
  const r = await request(p.port, { method: 'POST', headers: { host: 'svc' }, body: big });
  t.equal(r.status, 200, 'a fast 200 KB upload is not affected');
});

t.test('a request waits for a free upstream connection at most proxy.queueTimeoutMs', async (t) => {
  // An endpoint that reads requests and never answers: the pool's one connection stays busy.
  const hole = await rawServer((s) => s.resume());
  const p = await startTestProxy({ proxy: { connectionsPerEndpoint: 1, queueTimeoutMs: 300, headersTimeoutMs: 20_000, retryConnectFailures: 0 }, services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${hole.port}` }] }] });
  t.teardown(async () => {
    await p.close();
    await hole.close();
  });
  const first = request(p.port, { headers: { host: 'svc' }, timeoutMs: 30_000 }).catch(() => null);
  await until(() => p.handle.core.inflight === 1, 5000, 'the first request in flight');
  const t0 = performance.now();
  const r = await request(p.port, { headers: { host: 'svc' }, timeoutMs: 5000 });
  t.equal(r.status, 503);
  t.match(r.body, /MM_ERR_UPSTREAM_BUSY/);
  // MM_ERR_UPSTREAM_BUSY comes only from the queue timeout (the headers timeout is 20 s): no wall-clock
  // bound needed, which a starved machine could exceed.
  t.comment(`answered in ${Math.round(performance.now() - t0)} ms (queueTimeoutMs 300)`);
  void first;
});

t.test('a request head trickling in (slowloris) is answered 408 and closed', async (t) => {
  const b = await wholeBodyBackend();
  const p = await startTestProxy({ proxy: { requestHeadersTimeoutMs: 500 }, services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${b.port}` }] }] });
  const s = net.connect(p.port, '127.0.0.1');
  let got = '';
  s.on('data', (c: Buffer) => (got += c.toString('latin1')));
  s.on('error', () => {});
  const closed = new Promise<void>((r) => s.on('close', () => r()));
  s.write('GET / HTTP/1.1\r\nHost: svc\r\n');
  let n = 0;
  const timer = setInterval(() => {
    if (!s.destroyed) s.write(`X-Slow-${n++}: a\r\n`);
  }, 100);
  t.teardown(async () => {
    clearInterval(timer);
    s.destroy();
    await p.close();
    await b.close();
  });
  const cut = await Promise.race([closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000))]);
  t.ok(cut, 'the connection was closed');
  t.match(got, /^HTTP\/1\.1 408 [^]*MM_ERR_REQUEST_TIMEOUT/, '408 with the error code');
  t.equal((await request(p.port, { headers: { host: 'svc' } })).status, 200, 'others still served');
});

/**
 * Counts, per turn of the event loop, what the listeners' expiry queues handle (answer 408 or close): a
 * setImmediate ticker numbers the turns, and every queued item is wrapped to count itself when handled.
 */
function countExpiriesPerTurn(): { perTurn: Map<number, number>; noops: { count: number }; restore(): void } {
  let turn = 0;
  let ticking = true;
  const tick = (): void => {
    turn++;
    if (ticking) setImmediate(tick);
  };
  setImmediate(tick);
  const perTurn = new Map<number, number>();
  const proto = ExpiryQueue.prototype as unknown as { add(item: Expirable, why: string): void };
  const original = proto.add;
  // Counted when the item acted (answered or closed); an item whose connection was used before its turn came
  // is a no-op by design (counted apart: on a loaded machine a client's first bytes can come after its idle timer).
  const noops = { count: 0 };
  proto.add = function (this: unknown, item: Expirable, why: string): void {
    original.call(this, {
      expire: (w: string) => {
        const acted = item.expire(w);
        if (acted) perTurn.set(turn, (perTurn.get(turn) ?? 0) + 1);
        else noops.count++;
        return acted;
      },
    }, why);
  };
  return {
    perTurn,
    noops,
    restore: () => {
      proto.add = original;
      ticking = false;
    },
  };
}

/**
 * N connections opened together to a proxy with `proxy` settings; `onConnect` drives each one and
 * resolves once it is in the state under test. `done()` counts the ones the proxy has dealt with; when all
 * have been, the expiry queues must have handled each once and at most 16 in one turn of the event loop,
 * and a fresh request must still be served.
 */
async function flood(t: Test, proxy: Record<string, number>, what: string, onConnect: (s: net.Socket, i: number, ready: () => void, done: () => void) => void): Promise<void> {
  const N = 300;
  const b = await wholeBodyBackend();
  const p = await startTestProxy({ proxy, services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${b.port}` }] }] });
  const socks: net.Socket[] = [];
  let handled = 0;
  const { perTurn, noops, restore } = countExpiriesPerTurn();
  t.teardown(async () => {
    restore();
    for (const s of socks) s.destroy();
    await p.close();
    await b.close();
  });
  await Promise.all(Array.from({ length: N }, (_, i) => new Promise<void>((resolve) => {
    const s = net.connect(p.port, '127.0.0.1');
    s.on('error', () => {});
    socks.push(s);
    let counted = false;
    onConnect(s, i, resolve, () => {
      if (!counted) handled++;
      counted = true;
    });
  })));
  await until(() => handled === N, 20_000, `all ${N} ${what} (got ${handled})`);
  const most = Math.max(...perTurn.values());
  t.equal([...perTurn.values()].reduce((a, v) => a + v, 0), N, `each connection ${what.split(' ')[0]} once (queued items that found their connection in use: ${noops.count})`);
  t.ok(most <= 16, `at most 16 ${what.split(' ')[0]} in one turn of the event loop (most: ${most}, over ${perTurn.size} turns)`);
  t.equal((await request(p.port, { headers: { host: 'svc' } })).status, 200, 'others still served');
}

t.test('connections that expire together are answered a few per event-loop turn, none lost', async (t) => {
  // 300 slowloris connections opened together pass their deadline together. Answering them in one go
  // stalled every other client (a 408 and a close cost ~0.1 ms each); they must be spread over turns.
  await flood(t, { requestHeadersTimeoutMs: 300 }, 'answered 408', (s, _i, ready, done) => {
    let got = '';
    s.on('data', (c: Buffer) => {
      got += c.toString('latin1');
      if (got.startsWith('HTTP/1.1 408')) done();
    });
    s.once('connect', () => {
      s.write('GET / HTTP/1.1\r\nHost: svc\r\n');
      ready();
    });
  });
});

t.test('idle connections that time out together are closed a few per event-loop turn, none left open', async (t) => {
  // Half never send a byte; half finish one request and stay open (keep-alive).
  await flood(t, { idleTimeoutMs: 300 }, 'closed by the proxy', (s, i, ready, done) => {
    s.on('close', done);
    s.once('connect', () => {
      if (i % 2 === 0) ready();
      else {
        s.write('GET / HTTP/1.1\r\nHost: svc\r\n\r\n');
        s.once('data', () => ready());
      }
    });
  });
});

t.test('requests queued together past the queue deadline are all answered 503', async (t) => {
  // The pool answers at most a few dozen expired requests per sweep; none may be lost.
  const hole = await rawServer((s) => s.resume());
  const p = await startTestProxy({ proxy: { connectionsPerEndpoint: 1, queueTimeoutMs: 200, headersTimeoutMs: 60_000, retryConnectFailures: 0 }, services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${hole.port}` }] }] });
  t.teardown(async () => {
    await p.close();
    await hole.close();
  });
  const first = request(p.port, { headers: { host: 'svc' }, timeoutMs: 60_000 }).catch(() => null);
  await until(() => p.handle.core.inflight === 1, 5000, 'the first request in flight');
  const queued = await Promise.all(Array.from({ length: 100 }, () => request(p.port, { headers: { host: 'svc' }, timeoutMs: 20_000 })));
  t.same([...new Set(queued.map((r) => r.status))], [503], 'every queued request answered 503');
  t.ok(queued.every((r) => /MM_ERR_UPSTREAM_BUSY/.test(r.body)), 'with the error code');
  void first;
});

t.test('downstream connections beyond proxy.maxConnections are closed at once and counted', async (t) => {
  const b = await wholeBodyBackend();
  const p = await startTestProxy({ proxy: { maxConnections: 20 }, services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${b.port}` }] }] });
  const idle: net.Socket[] = [];
  t.teardown(async () => {
    for (const s of idle) s.destroy();
    await p.close();
    await b.close();
  });
  for (let i = 0; i < 20; i++) {
    const s = net.connect(p.port, '127.0.0.1');
    s.on('error', () => {});
    idle.push(s);
    await new Promise((r) => s.once('connect', r));
  }
  const listener = p.handle.outbound!;
  await until(() => listener.connections().open === 20, 5000, '20 open connections');
  const reply = await rawExchange(p.port, 'GET / HTTP/1.1\r\nHost: svc\r\n\r\n', 3000);
  t.equal(reply, '', 'the 21st connection is closed without an answer');
  t.ok(listener.connections().refused >= 1, `counted as refused (${listener.connections().refused})`);
  for (const s of idle) s.destroy();
  await until(() => listener.connections().open === 0, 5000, 'the idle connections gone');
  t.equal((await request(p.port, { headers: { host: 'svc' } })).status, 200, 'served again below the cap');
});
