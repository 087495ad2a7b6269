// The guards that always win: max ejection share with always-eject-one, failover bypass, panic, rate limit.
import t from 'tap';
import { VirtualClock } from '../../src/core/clock.js';
import { endpointId, type EndpointSpec } from '../../src/core/types.js';
import { MeshState, type ServiceView } from '../../src/mesh/state.js';
import { resolvePolicySettings } from '../../src/config/sections/healing.js';
import { EjectionGuard, TokenBucket } from '../../src/heal/guards.js';

function service(n: number, opts: { priorities?: number[]; ejected?: number[]; panicThresholdPct?: number } = {}): ServiceView {
  const clock = new VirtualClock(1000);
  const mesh = new MeshState(clock);
  const specs: EndpointSpec[] = Array.from({ length: n }, (_, i) => ({ id: endpointId('s', '127.0.0.1', 1000 + i), service: 's', host: '127.0.0.1', port: 1000 + i, locality: { region: '', zone: '', subzone: '' }, priority: opts.priorities?.[i] ?? 0, weight: 1, labels: {} }));
  mesh.setServices([{ spec: { name: 's', endpoints: specs }, routing: opts.panicThresholdPct === undefined ? undefined : { panicThresholdPct: opts.panicThresholdPct } }]);
  for (const i of opts.ejected ?? []) mesh.apply({ action: 'eject', target: specs[i]!.id, reason: 'test', source: 'operator', at: 1000, evidence: {} });
  return mesh.snapshot().services.get('s')!;
}

const E = resolvePolicySettings().ejection;

t.test('small cluster: with 3 endpoints one bad endpoint IS ejected, a second is refused (max 50 %)', async (t) => {
  const s = service(3);
  const g = new EjectionGuard(s, E);
  t.equal(g.check(s.endpoints[0]!, true), undefined);
  g.commit(s.endpoints[0]!);
  t.equal(g.check(s.endpoints[1]!, true)?.guard, 'panic', 'a second: 1 of 3 healthy × 1.4 = 47 % < 50 %, panic refuses first');
  const g2 = new EjectionGuard(s, { ...E, panicGuard: false });
  g2.commit(s.endpoints[0]!);
  const r = g2.check(s.endpoints[1]!, true);
  t.equal(r?.guard, 'max_ejection_pct', 'and the cap refuses too');
  t.equal(r?.evidence.pctAfter, 66.7);
});

t.test('always-eject-one: allowed even when the cap forbids one ejection', async (t) => {
  const s = service(3);
  const strict = { ...E, maxEjectionPct: 10 };
  t.equal(new EjectionGuard(s, strict).check(s.endpoints[0]!, true), undefined, '33 % > 10 % but none is out yet');
  t.equal(new EjectionGuard(s, { ...strict, alwaysEjectOne: false }).check(s.endpoints[0]!, true)?.guard, 'max_ejection_pct', "without it: Envoy's small-cluster behaviour");
});

t.test('panic: never eject the last endpoints (too few healthy → spread instead)', async (t) => {
  const one = service(1);
  t.equal(new EjectionGuard(one, E).check(one.endpoints[0]!, true)?.guard, 'panic', 'a lone endpoint is never ejected');
  const s = service(4, { ejected: [0] });
  const g = new EjectionGuard(s, { ...E, maxEjectionPct: 100 });
  t.equal(g.check(s.endpoints[1]!, true), undefined, '2 of 4 healthy × 1.4 = 70 % ≥ 50 %');
  g.commit(s.endpoints[1]!);
  t.equal(g.check(s.endpoints[2]!, true)?.guard, 'panic', '1 of 4 × 1.4 = 35 % < 50 %');
  const off = new EjectionGuard(s, { ...E, maxEjectionPct: 100, panicGuard: false });
  off.commit(s.endpoints[1]!);
  t.equal(off.check(s.endpoints[2]!, true), undefined, 'panic guard off');
});

t.test('failover bypass: a hard failure may exceed the cap when another priority has healthy capacity', async (t) => {
  const s = service(6, { priorities: [0, 0, 0, 1, 1, 1], ejected: [0] });
  const g = new EjectionGuard(s, E);
  t.equal(g.check(s.endpoints[1]!, true), undefined, '2 of 3 in P0 (67 %) but P1 is healthy');
  t.equal(g.check(s.endpoints[1]!, false)?.guard, 'max_ejection_pct', 'a latency verdict gets no bypass');
  t.equal(new EjectionGuard(s, { ...E, failoverBypass: false }).check(s.endpoints[1]!, true)?.guard, 'max_ejection_pct');
});

t.test('already-out endpoints pass (nothing changes) and the cap is per priority', async (t) => {
  const s = service(4, { priorities: [0, 0, 1, 1], ejected: [0] });
  const g = new EjectionGuard(s, { ...E, failoverBypass: false });
  t.equal(g.check(s.endpoints[0]!, true), undefined);
  t.equal(g.check(s.endpoints[2]!, true), undefined, 'P1 has its own budget');
  t.equal(g.check(s.endpoints[1]!, true)?.guard, 'max_ejection_pct', 'P0 is at its cap');
});

t.test('token bucket: burst, then perSecond', async (t) => {
  const b = new TokenBucket(2, 5, 0);
  let ok = 0;
  for (let i = 0; i < 10; i++) if (b.take(0)) ok++;
  t.equal(ok, 5, 'burst of 5');
  t.notOk(b.take(100));
  t.ok(b.take(500), 'one token after 0.5 s at 2/s');
  t.notOk(b.take(500));
});
