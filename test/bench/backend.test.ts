// The fault-injecting backend: every fault kind of the catalogue's vocabulary observed from a real client on loopback.
import t from 'tap';
import http from 'node:http';
import { VirtualClock } from '../../src/core/clock.js';
import { startBackend, parseFault, seededRandom, type Backend } from '../../src/testing/backend.js';

interface Answer { status: number; ms: number; backend?: string; body: string; error?: string }

// The default timeout is a hang guard: the backend lives in this process, and a starved machine can hold
// an answer for seconds. A test that expects a timeout passes its own short one.
function get(port: number, path = '/', timeoutMs = 20_000, method = 'GET', body?: string): Promise<Answer> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({
        status: res.statusCode ?? 0, ms: performance.now() - t0,
        backend: res.headers['x-backend'] as string | undefined, body: Buffer.concat(chunks).toString(),
      }));
    });
    req.on('timeout', () => { req.destroy(); resolve({ status: 0, ms: performance.now() - t0, body: '', error: 'timeout' }); });
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ status: 0, ms: performance.now() - t0, body: '', error: e.code ?? e.message }));
    req.end(body);
  });
}

async function withBackend(t: { teardown(fn: () => unknown): void }, opts: Parameters<typeof startBackend>[0], fn: (b: Backend) => Promise<void>): Promise<void> {
  const b = await startBackend(opts);
  t.teardown(() => b.close());
  await fn(b);
}

t.test('none: fixed body, x-backend header, logged arrival', async (t) => {
  await withBackend(t, { bodyBytes: 64 }, async (b) => {
    const a = await get(b.port, '/anything');
    t.equal(a.status, 200);
    t.equal(a.body.length, 64);
    t.equal(a.backend, b.id);
    await get(b.port, '/healthz');
    const log = b.log();
    t.equal(log.t.length, 1, 'health checks are kept out of the request log');
    t.equal(b.stats().healthChecks, 1);
  });
});

t.test('crash refuses connections; clearing brings it back on the same port', async (t) => {
  await withBackend(t, {}, async (b) => {
    b.setFault({ kind: 'crash' });
    const a = await get(b.port);
    t.equal(a.error, 'ECONNREFUSED');
    t.equal(b.stats().listening, false);
    b.clearFault();
    // The listener reopens asynchronously: wait for it rather than for a fixed pause.
    const deadline = Date.now() + 30_000;
    while (!b.stats().listening && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    t.equal((await get(b.port)).status, 200);
  });
});

t.test('crash cuts open keep-alive connections', async (t) => {
  await withBackend(t, {}, async (b) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    t.teardown(() => agent.destroy());
    const first = await new Promise<number>((resolve) => http.get({ host: '127.0.0.1', port: b.port, agent }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)); }));
    t.equal(first, 200);
    const closed = new Promise<void>((resolve) => { for (const s of Object.values(agent.freeSockets).flat()) s?.once('close', () => resolve()); });
    b.setFault({ kind: 'crash' });
    await closed;
    t.pass('pooled socket closed by the crash');
  });
});

t.test('blackhole accepts and never answers', async (t) => {
  await withBackend(t, {}, async (b) => {
    b.setFault({ kind: 'blackhole' });
    const a = await get(b.port, '/', 300);
    t.equal(a.error, 'timeout');
    const log = b.log();
    t.same(log.s, [0], 'the arrival is logged as held (status 0)');
    b.clearFault();
    t.equal((await get(b.port)).status, 200);
  });
});

t.test('hard 5xx and partial 5xx at a seeded rate', async (t) => {
  await withBackend(t, { seed: 7 }, async (b) => {
    b.setFault({ kind: 'errors', status: 503, fraction: 1 });
    const hard = await Promise.all(Array.from({ length: 10 }, () => get(b.port)));
    t.ok(hard.every((a) => a.status === 503 && a.backend === b.id), 'all 503 with x-backend');
    b.setFault({ kind: 'errors', status: 500, fraction: 0.3 });
    const statuses: number[] = [];
    for (let i = 0; i < 200; i++) statuses.push((await get(b.port)).status);
    const bad = statuses.filter((s) => s === 500).length;
    t.ok(bad > 30 && bad < 95, `about 30 % errors (${bad}/200)`);
    t.equal(b.stats().errors, 10 + bad);
  });
});

t.test('same seed, same error sequence', async (t) => {
  const seqs: number[][] = [];
  for (let k = 0; k < 2; k++) {
    await withBackend(t, { seed: 42, errorRate: 0.4 }, async (b) => {
      const s: number[] = [];
      for (let i = 0; i < 40; i++) s.push((await get(b.port)).status);
      seqs.push(s);
    });
  }
  t.same(seqs[0], seqs[1]);
  t.ok(seqs[0].includes(500) && seqs[0].includes(200), 'background errors mixed with successes');
});

t.test('gray latency multiplies the baseline', async (t) => {
  await withBackend(t, { medianMs: 20 }, async (b) => {
    const base = await get(b.port);
    b.setFault({ kind: 'latency', factor: 5 });
    const slow = await get(b.port);
    t.ok(base.ms >= 15, `baseline ~20 ms (${base.ms.toFixed(1)})`);
    t.ok(slow.ms >= 90, `x5 is >= 90 ms (${slow.ms.toFixed(1)})`);
    t.equal(slow.status, 200, 'gray: slow but answering 200');
  });
});

t.test('a timed schedule: latency ramps, then a crash starts and ends on time (drift, then crash)', async (t) => {
  // The schedule runs on a virtual clock moved by the test, so a loaded machine cannot make a probe miss
  // the crash window; only the answers' delays are real time.
  const clock = new VirtualClock();
  await withBackend(t, { medianMs: 10, clock }, async (b) => {
    const t0 = clock.now();
    b.setFault({ t0, faults: [{ kind: 'latency', factor: 21, rampMs: 200, startMs: 0, endMs: 900 }, { kind: 'crash', startMs: 900, endMs: 1200 }] });
    clock.advance(250);
    const later = await get(b.port);
    t.ok(later.ms >= 100 && later.error === undefined, `ramped to 21× of 10 ms: ≥ 100 ms (${later.ms.toFixed(1)} ms)`);
    clock.advance(700); // t = 950
    t.equal(b.stats().listening, false, 'the listener is closed at 950 ms');
    t.equal((await get(b.port)).error, 'ECONNREFUSED', 'crashed at 900 ms');
    clock.advance(350); // t = 1300
    while (!b.stats().listening) await new Promise((r) => setTimeout(r, 10));
    t.equal((await get(b.port)).status, 200, 'back once the crash ended');
  });
});

t.test('flap alternates down and up', async (t) => {
  // On a virtual clock moved by the test: sampling a wall-clock flap could straddle a phase change (a
  // request cut by the next down phase) or, on a starved machine, miss a phase.
  const clock = new VirtualClock();
  await withBackend(t, { clock }, async (b) => {
    const listening = async (want: boolean) => {
      const deadline = Date.now() + 30_000;
      while (b.stats().listening !== want && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      return b.stats().listening;
    };
    b.setFault({ kind: 'flap', upMs: 120, downMs: 120 });
    t.equal(await listening(false), false, 'down first');
    t.equal((await get(b.port)).error, 'ECONNREFUSED');
    clock.advance(120);
    t.equal(await listening(true), true, 'up after 120 ms');
    t.equal((await get(b.port)).status, 200);
    clock.advance(120);
    t.equal(await listening(false), false, 'down again after 120 ms more');
    t.equal((await get(b.port)).error, 'ECONNREFUSED');
  });
});

t.test('capacity: latency grows with the arrival rate (the overload model)', async (t) => {
  await withBackend(t, { medianMs: 5, capacityRps: 20 }, async (b) => {
    const first = await get(b.port);
    // 18 arrivals at once against a capacity of 20/s: ρ ≈ 0.9, latency × ~10.
    const crowd = await Promise.all(Array.from({ length: 18 }, () => get(b.port)));
    const worst = Math.max(...crowd.map((a) => a.ms));
    t.ok(worst >= 30, `queueing slows answers (${first.ms.toFixed(1)} -> ${worst.toFixed(1)} ms)`);
    t.equal(b.stats().inflight, 0, 'all answered');
  });
});

t.test('control API: set, read, bad input answered 400, never a crash', async (t) => {
  await withBackend(t, { controlPort: 0 }, async (b) => {
    const ok = await get(b.controlPort, '/__fault', 2000, 'POST', JSON.stringify({ kind: 'latency', factor: 3 }));
    t.equal(ok.status, 200);
    t.equal(b.fault().faults[0]?.kind, 'latency');
    const bad = await get(b.controlPort, '/__fault', 2000, 'POST', JSON.stringify({ faults: [{ kind: 'melt' }, { kind: 'errors', fraction: 7 }] }));
    t.equal(bad.status, 400);
    t.equal(JSON.parse(bad.body).error, 'MM_ERR_BAD_REQUEST', 'a stable error code');
    const errs = JSON.parse(bad.body).errors as string[];
    t.ok(errs.some((e) => e.includes('fault.faults[0].kind')) && errs.some((e) => e.includes('fault.faults[1].fraction')) && errs.some((e) => e.includes('fault.faults[1].status')), `every problem named: ${errs.join('; ')}`);
    const junk = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 97 + 13) % 256)).toString('latin1');
    t.equal((await get(b.controlPort, '/__fault', 2000, 'POST', junk)).status, 400);
    t.equal((await get(b.controlPort, '/nope')).status, 404);
    await get(b.port, '/x');
    const log = JSON.parse((await get(b.controlPort, '/__log?since=0')).body);
    t.equal(log.t.length, 1);
    t.equal(JSON.parse((await get(b.controlPort, '/__stats')).body).fault.faults[0].kind, 'latency');
    t.equal((await get(b.controlPort, '/__reset', 2000, 'POST')).status, 200);
    t.equal(b.log().t.length, 0);
  });
});

t.test('data port survives random bytes', async (t) => {
  await withBackend(t, {}, async (b) => {
    const net = await import('node:net');
    const rnd = seededRandom(3);
    await new Promise<void>((resolve) => {
      const s = net.connect(b.port, '127.0.0.1', () => s.end(Buffer.from(Array.from({ length: 512 }, () => Math.floor(rnd() * 256)))));
      s.on('data', () => {});
      s.on('close', () => resolve());
      s.on('error', () => resolve());
    });
    t.equal((await get(b.port)).status, 200);
  });
});

t.test('parseFault: one fault from now on, a timed list, every problem named', async (t) => {
  const v = parseFault({ kind: 'errors', status: 503, fraction: 0.3 }, 1000);
  t.ok(v.valid);
  if (v.valid) { t.equal(v.result.t0, 1000); t.same(v.result.faults[0], { kind: 'errors', status: 503, fraction: 0.3, startMs: 0, endMs: Infinity }); }
  const w = parseFault({ fraction: 'x', extra: 1 });
  t.notOk(w.valid, 'no kind');
  const old = parseFault({ mode: '5xx', rate: 0.3 });
  t.ok(!old.valid && old.errors.some((e) => e.includes('fault.mode') && e.includes('kind')), 'the old "mode" vocabulary is named as replaced');
  const timed = parseFault({ t0: 5, faults: [{ kind: 'crash', startMs: 10, endMs: 5 }, { kind: 'latency', factor: 2, bogus: 1 }] });
  t.ok(!timed.valid && timed.errors.length === 2, timed.valid ? '' : timed.errors.join('; '));
  t.ok(parseFault({ faults: [] }).valid, 'an empty list clears');
  t.notOk(parseFault(null).valid);
  t.notOk(parseFault([1]).valid);
});

t.test('setFault throws a coded error naming every problem', async (t) => {
  await withBackend(t, {}, async (b) => {
    t.throws(() => b.setFault({ kind: 'latency', factor: -1, bogus: true }), { code: 'MM_ERR_BAD_REQUEST', message: /fault\.factor.*fault\.bogus/ });
    t.equal(b.fault().faults.length, 0, 'an invalid fault changes nothing');
  });
});

t.test('readBody: an upload is answered only after its whole body arrived', async (t) => {
  for (const readBody of [false, true]) {
    await withBackend(t, { readBody }, async (b) => {
      const net = await import('node:net');
      const s = net.connect(b.port, '127.0.0.1');
      t.teardown(() => s.destroy());
      let got = '';
      s.on('data', (c: Buffer) => (got += c.toString('latin1')));
      await new Promise((r) => s.once('connect', r));
      s.write('POST /upload HTTP/1.1\r\nHost: b\r\nContent-Length: 4\r\n\r\nab');
      // The answer on the head (readBody off) arrives by itself; with readBody on, a request to another
      // connection is answered first, which proves the server got this far without answering the upload.
      if (!readBody) {
        while (!got.startsWith('HTTP/1.1 200')) await new Promise((r) => setTimeout(r, 10));
        t.pass('answered on the head');
        return;
      }
      while (b.stats().requests < 1) await new Promise((r) => setTimeout(r, 10));
      t.equal((await get(b.port)).status, 200, 'another request is answered meanwhile');
      t.equal(got, '', 'the upload is not answered before its body ends');
      s.write('cd');
      while (!got.startsWith('HTTP/1.1 200')) await new Promise((r) => setTimeout(r, 10));
      t.pass('answered once the body ended');
    });
  }
});
