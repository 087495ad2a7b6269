// Balancer: weights, priorities and spill-over, panic, probation canary share, ejection, Peak-EWMA preference.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { VirtualClock } from '../../src/core/clock.js';
import { endpointId, NO_LOCALITY, type EndpointSpec } from '../../src/core/types.js';
import { MeshState, type ServiceView } from '../../src/mesh/state.js';
import { Balancer } from '../../src/proxy/balancer.js';

function ep(port: number, priority = 0, weight = 1): EndpointSpec {
  return { id: endpointId('svc', '127.0.0.1', port), service: 'svc', host: '127.0.0.1', port, locality: NO_LOCALITY, priority, weight, labels: {} };
}

/** Deterministic PRNG (mulberry32) so that tolerances are stable run to run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

function setup(specs: EndpointSpec[]) {
  const clock = new VirtualClock();
  const mesh = new MeshState(clock);
  mesh.setServices([{ spec: { name: 'svc', endpoints: specs } }]);
  const bal = new Balancer(clock, { random: prng(42) });
  const view = (): ServiceView => mesh.snapshot().services.get('svc')!;
  return { clock, mesh, bal, view };
}

/** Count picks per port over n requests, each finishing at once (no pending load building up). */
function distribution(bal: Balancer, view: ServiceView, n: number): Map<number, number> {
  const out = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const e = bal.pick(view);
    if (!e) throw new Error('no endpoint picked');
    out.set(e.spec.port, (out.get(e.spec.port) ?? 0) + 1);
  }
  return out;
}

t.test('equal endpoints share evenly; static weights are honoured', async (t) => {
  const { bal, view } = setup([ep(1), ep(2), ep(3, 0, 2)]);
  const n = 40_000;
  const d = distribution(bal, view(), n);
  t.ok(Math.abs(d.get(1)! / n - 0.25) < 0.02, `port 1 share ${d.get(1)! / n}`);
  t.ok(Math.abs(d.get(2)! / n - 0.25) < 0.02, `port 2 share ${d.get(2)! / n}`);
  t.ok(Math.abs(d.get(3)! / n - 0.5) < 0.02, `port 3 (weight 2) share ${d.get(3)! / n}`);
});

t.test('degraded endpoint gets weight × weightFactor', async (t) => {
  const { bal, view, mesh, clock } = setup([ep(1), ep(2)]);
  mesh.apply({ action: 'weight', target: 'svc/127.0.0.1:2', weight: 0.25, reason: 'latency_peer', source: 'local', at: clock.now(), evidence: {} });
  const n = 40_000;
  const d = distribution(bal, view(), n);
  t.ok(Math.abs(d.get(2)! / n - 0.2) < 0.02, `degraded share ${d.get(2)! / n} ≈ 0.25/1.25`);
});

t.test('ejected and draining endpoints get nothing', async (t) => {
  const { bal, view, mesh, clock } = setup([ep(1), ep(2), ep(3), ep(4), ep(5)]);
  mesh.apply({ action: 'eject', target: 'svc/127.0.0.1:2', reason: 'consecutive_5xx', source: 'local', at: clock.now(), evidence: {} });
  mesh.apply({ action: 'drain', target: 'svc/127.0.0.1:3', reason: 'operator', source: 'operator', at: clock.now(), evidence: {} });
  const d = distribution(bal, view(), 10_000);
  t.equal(d.get(2) ?? 0, 0, 'ejected endpoint untouched');
  t.equal(d.get(3) ?? 0, 0, 'draining endpoint untouched');
  t.ok((d.get(1) ?? 0) > 2500, 'the others take the traffic');
});

t.test('probation endpoint gets only its canary share', async (t) => {
  const { bal, view, mesh, clock } = setup([ep(1), ep(2), ep(3), ep(4)]);
  mesh.apply({ action: 'probation', target: 'svc/127.0.0.1:4', weight: 0.05, reason: 'probation', source: 'local', at: clock.now(), evidence: {} });
  const n = 100_000;
  const d = distribution(bal, view(), n);
  const share = (d.get(4) ?? 0) / n;
  // 5 % of the share it would have at full health (1/4): 1.25 %.
  t.ok(share > 0.008 && share < 0.017, `probation share ${share} ≈ 0.0125`);
});

t.test('priorities: P0 while healthy, spill-over to P1 as P0 loses endpoints', async (t) => {
  const { bal, view, mesh, clock } = setup([ep(1, 0), ep(2, 0), ep(3, 0), ep(4, 0), ep(11, 1), ep(12, 1)]);
  let d = distribution(bal, view(), 10_000);
  t.equal((d.get(11) ?? 0) + (d.get(12) ?? 0), 0, 'no traffic to P1 while P0 is healthy');
  // 2 of 4 ejected: availability 50 % × 1.4 = 70 %; P1 takes the remaining 30 %.
  mesh.applyAll([1, 2].map((p) => ({ action: 'eject' as const, target: `svc/127.0.0.1:${p}`, reason: 'x', source: 'local' as const, at: clock.now(), evidence: {} })));
  t.same(view().plan.load.map((x) => Math.round(x * 100)), [70, 30]);
  const n = 40_000;
  d = distribution(bal, view(), n);
  const p1 = ((d.get(11) ?? 0) + (d.get(12) ?? 0)) / n;
  t.ok(Math.abs(p1 - 0.3) < 0.02, `P1 share ${p1} ≈ 0.30`);
  t.equal((d.get(1) ?? 0) + (d.get(2) ?? 0), 0, 'ejected P0 endpoints untouched');
});

t.test('panic: health ignored, every endpoint of the priority used', async (t) => {
  const { bal, view, mesh, clock } = setup([ep(1), ep(2), ep(3), ep(4)]);
  mesh.applyAll([1, 2, 3].map((p) => ({ action: 'eject' as const, target: `svc/127.0.0.1:${p}`, reason: 'x', source: 'local' as const, at: clock.now(), evidence: {} })));
  t.equal(view().plan.panic, true);
  const n = 20_000;
  const d = distribution(bal, view(), n);
  for (const p of [1, 2, 3, 4]) t.ok(Math.abs((d.get(p) ?? 0) / n - 0.25) < 0.03, `port ${p} share ${(d.get(p) ?? 0) / n}`);
});

t.test('Peak-EWMA: a slow endpoint is avoided at once and forgiven with time', async (t) => {
  const { bal, view, clock } = setup([ep(1), ep(2), ep(3)]);
  const v = view();
  const slot = (port: number) => v.endpoints.find((e) => e.spec.port === port)!.slot;
  for (const p of [1, 2, 3]) bal.load.ensure(slot(p));
  bal.observe(slot(1), 5);
  bal.observe(slot(2), 5);
  bal.observe(slot(3), 500); // peak: taken at once
  let d = distribution(bal, v, 9_000);
  const slowShare = (d.get(3) ?? 0) / 9_000;
  // P2C: the slow endpoint wins only when both draws are itself, which they never are (distinct draws).
  t.ok(slowShare < 0.01, `slow endpoint share ${slowShare}`);
  // 60 s later, one fast sample: the old peak has decayed away and the cost is close to the others'.
  clock.advance(60_000);
  for (const p of [1, 2, 3]) bal.observe(slot(p), 5);
  t.ok(bal.cost(slot(3)) < 1.3 * bal.cost(slot(1)), `forgiven: cost ${bal.cost(slot(3))} vs ${bal.cost(slot(1))}`);
  // So as soon as the fast endpoints carry one request each, the recovered one is preferred again.
  bal.begin(slot(1));
  bal.begin(slot(2));
  d = distribution(bal, v, 3_000);
  // It wins every pair it is drawn into: 2 pairs of 3 → about 2/3 of the traffic.
  const share = (d.get(3) ?? 0) / 3_000;
  t.ok(share > 0.6 && share < 0.74, `recovered endpoint share ${share} ≈ 2/3 while the others are busy`);
});

t.test('pending requests raise the cost (least-loaded wins)', async (t) => {
  const { bal, view } = setup([ep(1), ep(2)]);
  const v = view();
  for (const e of v.endpoints) bal.load.ensure(e.slot);
  const busy = v.endpoints[0]!.slot;
  for (let i = 0; i < 10; i++) bal.begin(busy);
  const d = distribution(bal, v, 2_000);
  t.ok((d.get(1) ?? 0) <= 1, `the busy endpoint is chosen over an idle one with the same RTT only as the trickle, once (the clock does not move): ${d.get(1) ?? 0}`);
  for (let i = 0; i < 10; i++) bal.end(busy);
  t.equal(bal.load.pending[busy], 0);
});

t.test('avoid: a failed endpoint is skipped when another exists; none at all → undefined', async (t) => {
  const { bal, view, mesh, clock } = setup([ep(1), ep(2)]);
  const v = view();
  const s1 = v.endpoints[0]!.slot;
  let hits = 0;
  for (let i = 0; i < 1000; i++) if (bal.pick(v, s1)!.slot === s1) hits++;
  t.equal(hits, 0, 'the avoided endpoint is never returned while another exists');
  t.equal(bal.pick(v, s1, v.endpoints[1]!.slot), undefined, 'both avoided');
  mesh.setServices([{ spec: { name: 'svc', endpoints: [] } }]);
  t.equal(bal.pick(view()), undefined, 'empty service');
  void clock;
});

t.test('pick allocates (almost) nothing once the table is built', async (t) => {
  // Measured in a clean child process: the test runner's own instrumentation would dominate here.
  const script = fileURLToPath(new URL('./fixtures/pick-alloc.ts', import.meta.url));
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', script], { encoding: 'utf8', timeout: 60_000 });
  t.equal(r.status, 0, r.stderr);
  const rows = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { name: string; bytesPerPick: number });
  t.equal(rows.length, 2);
  // Budget: under 16 bytes per pick on average: at most a boxed number now and then, never an object.
  for (const row of rows) t.ok(row.bytesPerPick < 16, `${row.name}: ${row.bytesPerPick.toFixed(2)} bytes/pick`);
});

t.test('a never-measured endpoint gets one probe at once, not a flood', async (t) => {
  const { bal, view } = setup([ep(1), ep(2), ep(3)]);
  const v = view();
  for (const e of v.endpoints) bal.load.ensure(e.slot);
  const [a, b, fresh] = v.endpoints.map((e) => e.slot) as [number, number, number];
  bal.observe(a, 1);
  bal.observe(b, 1);
  // Idle and unmeasured: it wins every pair it is drawn into.
  let hits = 0;
  for (let i = 0; i < 300; i++) if (bal.pick(v)!.slot === fresh) hits++;
  t.ok(hits > 150, `idle unmeasured endpoint preferred (${hits}/300)`);
  // With its probe in flight it costs the default RTT: the measured endpoints win again.
  bal.begin(fresh);
  hits = 0;
  for (let i = 0; i < 300; i++) if (bal.pick(v)!.slot === fresh) hits++;
  t.equal(hits, 0, 'no second request before the first answer');
  bal.end(fresh);
  bal.observe(fresh, 1);
  hits = 0;
  for (let i = 0; i < 3000; i++) if (bal.pick(v)!.slot === fresh) hits++;
  t.ok(hits > 800 && hits < 1200, `once measured like the others, an even share (${hits}/3000)`);
});

t.test('costs within 10 % or 0.5 ms are ties (weighted draw); a real difference decides', async (t) => {
  const { bal, view } = setup([ep(1), ep(2)]);
  const v = view();
  for (const e of v.endpoints) bal.load.ensure(e.slot);
  const [a, b] = v.endpoints.map((e) => e.slot) as [number, number];
  bal.observe(a, 0.4);
  bal.observe(b, 0.8); // 0.4 ms apart: noise on loopback
  let d = distribution(bal, v, 4000);
  t.ok(Math.abs(d.get(1)! / 4000 - 0.5) < 0.05, `near-equal costs split evenly (${d.get(1)! / 4000})`);
  bal.observe(b, 12); // a real difference, even for light traffic (over 2× and 5 ms apart)
  d = distribution(bal, v, 4000);
  t.ok((d.get(2) ?? 0) / 4000 < 0.01, `the slower endpoint avoided (${(d.get(2) ?? 0) / 4000})`);
});

t.test('with nothing in flight, one slow sample under 2× or 5 ms does not pin light traffic on the other endpoint', async (t) => {
  const { bal, view } = setup([ep(1), ep(2)]);
  const v = view();
  for (const e of v.endpoints) bal.load.ensure(e.slot);
  const [a, b] = v.endpoints.map((e) => e.slot) as [number, number];
  bal.observe(a, 0.4);
  bal.observe(b, 4); // a cold first request, a GC pause
  let d = distribution(bal, v, 4000);
  t.ok(Math.abs(d.get(1)! / 4000 - 0.5) < 0.05, `idle: both used evenly (${d.get(1)! / 4000})`);
  // Under concurrency the same difference decides.
  bal.begin(a);
  bal.begin(b);
  d = distribution(bal, v, 4000);
  t.ok((d.get(2) ?? 0) / 4000 < 0.01, `busy: the slower endpoint avoided (${(d.get(2) ?? 0) / 4000})`);
});

t.test('Peak-EWMA trickle: a starved endpoint still gets a bounded trickle of requests, so it is measured again', async (t) => {
  /** Picks every `gapMs` for 20 s; the slow endpoint (port 3) answers in `slowMs`, the others in 3 ms. */
  const trickle = (gapMs: number, opts: { trickleLosses?: number } = {}, slowMs = 100) => {
    const clock = new VirtualClock();
    const mesh = new MeshState(clock);
    mesh.setServices([{ spec: { name: 'svc', endpoints: [ep(1), ep(2), ep(3)] } }]);
    const bal = new Balancer(clock, { random: prng(7), ...opts });
    const v = mesh.snapshot().services.get('svc')!;
    for (const e of v.endpoints) {
      bal.load.ensure(e.slot);
      bal.observe(e.slot, e.spec.port === 3 ? slowMs : 3);
    }
    let slow = 0;
    let n = 0;
    for (let at = 0; at < 20_000; at += gapMs, n++) {
      clock.advance(gapMs);
      const e = bal.pick(v)!;
      // Each answer feeds the estimate, as the proxy does: the slow one stays slow.
      bal.observe(e.slot, e.spec.port === 3 ? slowMs : 3);
      if (e.spec.port === 3) slow++;
    }
    return { slow, n };
  };
  const busy = trickle(5); // 200 requests/s
  t.ok(busy.slow >= 30 && busy.slow <= 41, `200 rps: about one request each 500 ms (${busy.slow} of ${busy.n})`);
  const light = trickle(100); // 10 requests/s
  // At most one of every trickleLosses + 1 comparisons it takes part in (about 2/3 of picks): ≤ 200 × 2/3 / 21 ≈ 6.
  t.ok(light.slow >= 2 && light.slow <= 8, `10 rps: at most one in 21 of its comparisons (${light.slow} of ${light.n})`);
  t.equal(trickle(5, { trickleLosses: 0 }).slow, 0, 'trickleLosses 0: starved until its cost decays');
  // A 1.5× slower endpoint still gets requests whenever its idle estimate has decayed below the others':
  // exactly as many with the trickle as without (it never loses by 2× or more).
  const mild = trickle(5, {}, 4.5).slow;
  t.equal(mild, trickle(5, { trickleLosses: 0 }, 4.5).slow, `an endpoint 1.5× slower loses by less than 2×: no trickle (${mild} picks either way)`);
});
