// The shared attempt protocol (src/proxy/attempt.ts): the one latency sample definition, the handler chain
// (begin → sent → head → settle, each once per attempt), and that queueing and connect time stay out of
// the sample and go to the wait metrics, for HTTP/1 and h2c alike.
import t from 'tap';
import http from 'node:http';
import http2 from 'node:http2';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { Registry } from '../../src/admin/metrics-registry.js';
import { Outcome } from '../../src/core/types.js';
import { Attempt, KIND_HTTP1, type AttemptHandler } from '../../src/proxy/attempt.js';
import { ATTEMPT_HANDLERS } from '../../src/proxy/attempt-handlers.js';
import { registerWaitMetrics } from '../../src/proxy/component.js';
import type { ProxyCore } from '../../src/proxy/core.js';
import type { Upstream } from '../../src/proxy/upstream.js';
import { backend, request, startTestProxy, until } from './helpers.js';

/** What a spy handler saw of one attempt. */
interface Seen {
  readonly kind: number;
  events: string;
  wait: number;
  latency: number;
  status: number;
}

/** A handler appended to the chain that records each attempt's events and its sample at settle. */
function spy(): { handler: AttemptHandler; seen: Map<Attempt, Seen[]> } {
  const seen = new Map<Attempt, Seen[]>();
  const cur = (a: Attempt): Seen => {
    const list = seen.get(a)!;
    return list[list.length - 1]!;
  };
  const handler: AttemptHandler = {
    begin(a) {
      const list = seen.get(a) ?? [];
      list.push({ kind: a.kind, events: 'b', wait: 0, latency: 0, status: 0 });
      seen.set(a, list);
    },
    sent: (a) => void (cur(a).events += 's'),
    headers: (a) => void (cur(a).events += 'h'),
    settle(a, outcome) {
      const s = cur(a);
      s.events += outcome === Outcome.Cancelled ? 'c' : 'e';
      s.wait = a.waitMs();
      s.latency = a.latencyMs(performance.now());
      s.status = a.status;
    },
  };
  return { handler, seen };
}

class Probe extends Attempt {
  constructor(core: ProxyCore) {
    super(core, KIND_HTTP1, null, { slot: -1 } as Upstream, false);
  }
  run(steps: string): void {
    for (const s of steps) {
      if (s === 'b') this.beginAttempt();
      else if (s === 's') this.markSent();
      else if (s === 'h') this.markHeaders(200);
      else this.settle(Outcome.Success);
    }
  }
}

t.test('the latency sample: sent → head; without a head sent → end; never sent: the wait', async (t) => {
  const { handler, seen } = spy();
  const core = { attemptHandlers: [handler], budget: () => null } as unknown as ProxyCore;
  const a = new Probe(core);
  a.run('b');
  a.beginAt = 100;
  t.equal(a.latencyMs(130), 30, 'never sent: begin → end');
  t.equal(a.waitMs(), 0, 'no wait counted before sent');
  a.sentAt = 140;
  t.equal(a.waitMs(), 40, 'wait: begin → sent');
  t.equal(a.latencyMs(175), 35, 'sent, no head: sent → end');
  a.headersAt = 150;
  t.equal(a.latencyMs(900), 10, 'sent → head, whatever the body took');
  const b = new Probe(core);
  b.run('bsshee');
  t.equal(seen.get(b)![0]!.events, 'bshe', 'sent is raised once per attempt (a resend moves the mark only), settle once');
  b.run('bse');
  t.equal(seen.get(b)![1]!.events, 'bse', 'a second attempt runs the chain again');
  t.equal(b.attempts, 2);
});

t.test('the handler chain allocates (almost) nothing per attempt', async (t) => {
  // Measured in a clean child process: the test runner's own instrumentation would dominate here.
  const script = fileURLToPath(new URL('./fixtures/attempt-alloc.ts', import.meta.url));
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', script], { encoding: 'utf8', timeout: 60_000 });
  t.equal(r.status, 0, r.stderr);
  const row = JSON.parse(r.stdout.trim()) as { bytesPerAttempt: number; rounds: number[]; inflight: number };
  t.equal(row.inflight, 0, 'every begin was settled');
  // Budget as for Balancer.pick: under 16 bytes per attempt on average, a boxed number now and then, never an object.
  t.ok(row.bytesPerAttempt < 16, `${row.bytesPerAttempt.toFixed(2)} bytes/attempt (the smallest of rounds ${row.rounds.join(', ')})`);
});

t.test('HTTP/1: pool queueing is a wait, not latency; the windows and the wait metric agree', async (t) => {
  let held: http.ServerResponse | null = null;
  let gotHeld: () => void = () => {};
  const heldArrived = new Promise<void>((r) => (gotHeld = r));
  const be = await backend((req, res) => {
    if (req.url === '/hold') {
      held = res;
      gotHeld();
    } else res.end('fast');
  });
  const { handler, seen } = spy();
  const p = await startTestProxy({ proxy: { connectionsPerEndpoint: 1 }, services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${be.port}` }] }] }, { attemptHandlers: [...ATTEMPT_HANDLERS, handler] });
  t.teardown(async () => {
    await p.close();
    await be.close();
  });
  const first = request(p.port, { path: '/hold', headers: { host: 'svc' } });
  await heldArrived;
  const second = request(p.port, { path: '/fast', headers: { host: 'svc' } });
  await until(() => seen.size === 2, 10_000, 'the second request to begin (queued behind the first)');
  // The second waits in the pool's queue for at least this long; then the first is answered.
  const HOLD_MS = 1000;
  await new Promise((r) => setTimeout(r, HOLD_MS));
  held!.end('slow');
  t.equal((await first).body, 'slow');
  t.equal((await second).body, 'fast');
  await until(() => [...seen.values()].every((l) => l[0]!.events.endsWith('e')), 10_000, 'both attempts settled');
  const [a1, a2] = [...seen.values()].map((l) => l[0]!);
  t.equal(a1!.events, 'bshe');
  t.equal(a2!.events, 'bshe');
  t.ok(a1!.latency >= HOLD_MS, `the held request's sample covers the endpoint's time (${a1!.latency.toFixed(1)} ms)`);
  t.ok(a2!.wait >= HOLD_MS, `the queued request waited ${a2!.wait.toFixed(1)} ms`);
  t.ok(a2!.latency < a2!.wait, `its sample (${a2!.latency.toFixed(1)} ms) excludes that wait`);
  const ev = [...p.mesh.snapshot().endpoints.values()][0]!;
  const w = p.stats.get(ev.slot)!;
  t.equal(w.lifetime[Outcome.Success], 2);
  const sumUs = Math.round(a1!.latency * 1000) + Math.round(a2!.latency * 1000);
  t.equal(w.latencySumUs, sumUs, 'the windows recorded the same samples');
  const reg = new Registry();
  registerWaitMetrics(reg, p.handle.core);
  const text = await reg.metrics();
  t.match(text, /meshmedic_proxy_upstream_sent_total\{protocol="http1"\} 2\n/);
  const waited = Number(/meshmedic_proxy_upstream_wait_seconds_total\{protocol="http1"\} ([0-9.e-]+)/.exec(text)![1]);
  t.ok(waited >= HOLD_MS / 1000, `the wait metric has the queueing (${waited} s)`);
});

t.test('h2c: the session connect is a wait; the chain runs once per stream', async (t) => {
  const server = http2.createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const { handler, seen } = spy();
  const p = await startTestProxy({ services: [{ name: 'grpcsvc', protocol: 'h2c', endpoints: [{ address: `127.0.0.1:${port}` }] }] }, { attemptHandlers: [...ATTEMPT_HANDLERS, handler] });
  const client = http2.connect(`http://127.0.0.1:${p.port}`);
  t.teardown(async () => {
    client.destroy();
    await p.close();
    await new Promise<void>((r) => server.close(() => r()));
  });
  const get = () =>
    new Promise<number>((resolve, reject) => {
      const s = client.request({ ':path': '/', ':authority': 'grpcsvc' });
      let status = 0;
      s.on('response', (h) => (status = Number(h[':status'])));
      s.on('error', reject);
      s.resume();
      s.on('end', () => resolve(status));
    });
  t.equal(await get(), 200, 'first stream (opens the upstream session)');
  t.equal(await get(), 200, 'second stream (reuses it)');
  await until(() => seen.size === 2 && [...seen.values()].every((l) => l[0]!.events.endsWith('e')), 10_000, 'both streams settled');
  const [a1, a2] = [...seen.values()].map((l) => l[0]!);
  t.equal(a1!.events, 'bshe', 'first stream: sent once the session connected');
  t.equal(a2!.events, 'bshe');
  t.equal(a1!.status, 200);
  t.ok(a1!.wait >= 0 && a2!.wait >= 0, 'waits recorded');
  const text = await (async () => {
    const reg = new Registry();
    registerWaitMetrics(reg, p.handle.core);
    return reg.metrics();
  })();
  t.match(text, /meshmedic_proxy_upstream_sent_total\{protocol="h2c"\} 2\n/);
});
