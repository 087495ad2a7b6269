// The envoy-default policy: Envoy's outlier detection with its defaults, small-cluster behaviour included.
import t from 'tap';
import { Outcome } from '../../src/core/types.js';
import { harness } from './_harness.js';

const envoy = { policy: 'envoy-default' as const };
const healthy = () => ({ n: 2 });

t.test('fewer than 10 hosts: max_ejection_percent 10 ejects nothing, however bad', async (t) => {
  const h = harness({ endpoints: 5, settings: envoy });
  h.run(1000, healthy);
  for (let k = 0; k < 50; k++) h.record(0, Outcome.Error5xx);
  h.run(30_000, (i) => (i === 0 ? { n: 2, outcome: Outcome.Error5xx } : healthy()));
  t.same(h.decisions('eject'), []);
  t.ok(h.engine.policyOf('svc')!.counters.refusals.max_ejection_pct >= 1, 'detected, refused by the cap');
});

t.test('10 hosts: ejected the moment the 5th consecutive 5xx arrives', async (t) => {
  const h = harness({ endpoints: 10, settings: envoy });
  h.run(1000, healthy);
  for (let k = 0; k < 4; k++) h.record(0, Outcome.Error5xx);
  t.equal(h.health(0).state, 'healthy');
  h.record(0, Outcome.Error5xx);
  t.equal(h.health(0).state, 'ejected');
  const d = h.decisions('eject')[0]!;
  t.equal(d.reason, 'consecutive_5xx');
  t.equal(d.evidence.backoff, 1);
  t.equal(d.evidence.ejectMs, 30_000);
  for (let k = 0; k < 5; k++) h.record(1, Outcome.Error5xx);
  t.equal(h.health(1).state, 'healthy', 'a second ejection would exceed 10 %');
});

t.test('gateway failures: consecutive_gateway_failure is enforced at 0 %, but they count as 5xx too', async (t) => {
  const h = harness({ endpoints: 10, settings: envoy });
  h.run(1000, healthy);
  for (let k = 0; k < 5; k++) h.record(0, Outcome.Gateway);
  t.equal(h.decisions('eject')[0]?.reason, 'consecutive_5xx');
  const h2 = harness({ endpoints: 10, settings: { ...envoy, envoy: { enforcingConsecutive5xx: 0, enforcingConsecutiveGatewayFailure: 100 } } });
  h2.run(1000, healthy);
  for (let k = 0; k < 5; k++) h2.record(0, Outcome.Gateway);
  t.equal(h2.decisions('eject')[0]?.reason, 'consecutive_gateway_failure');
  const h3 = harness({ endpoints: 10, settings: { ...envoy, envoy: { enforcingConsecutive5xx: 0 } } });
  h3.run(1000, healthy);
  for (let k = 0; k < 20; k++) h3.record(0, Outcome.Gateway);
  t.same(h3.decisions('eject'), [], 'both enforcing 0 %: detected, never ejected');
});

t.test('always_eject_one_host: a small cluster ejects one', async (t) => {
  const h = harness({ endpoints: 5, settings: { ...envoy, envoy: { alwaysEjectOneHost: true } } });
  h.run(1000, healthy);
  for (let k = 0; k < 5; k++) h.record(0, Outcome.Error5xx);
  for (let k = 0; k < 5; k++) h.record(1, Outcome.Error5xx);
  t.same(h.decisions('eject').map((d) => d.target), [h.ids[0]]);
});

t.test('un-ejection on time at an interval tick (no probation), and backoff: 30 s, then 60 s', async (t) => {
  const h = harness({ endpoints: 10, settings: envoy });
  h.run(1000, healthy);
  for (let k = 0; k < 5; k++) h.record(0, Outcome.Error5xx);
  const ejectedAt = h.clock.now();
  h.run(45_000, (i) => (i === 0 ? undefined : healthy()));
  const r = h.decisions('restore')[0]!;
  t.ok(r, 'restored');
  t.equal(r.reason, 'ejection_time_elapsed');
  t.ok(r.at - ejectedAt >= 30_000 && r.at - ejectedAt < 40_000, `after ${r.at - ejectedAt} ms (30 s, at the next 10 s tick)`);
  t.same(h.decisions('probation'), [], 'Envoy has no probation');
  // Fails again at once: backoff 2 → 60 s.
  for (let k = 0; k < 5; k++) h.record(0, Outcome.Error5xx);
  t.equal(h.decisions('eject')[1]!.evidence.backoff, 2);
  t.equal(h.decisions('eject')[1]!.evidence.ejectMs, 60_000);
  const second = h.clock.now();
  h.run(55_000, (i) => (i === 0 ? undefined : healthy()));
  t.equal(h.health(0).state, 'ejected', 'still out after 55 s');
  h.run(15_000, (i) => (i === 0 ? undefined : healthy()));
  t.equal(h.health(0).state, 'healthy');
  t.ok(h.decisions('restore')[1]!.at - second >= 60_000);
  // Healthy intervals decrement the backoff: after 2 clean intervals, the next ejection is 30 s again.
  h.run(25_000, healthy);
  for (let k = 0; k < 5; k++) h.record(0, Outcome.Error5xx);
  t.equal(h.decisions('eject')[2]!.evidence.backoff, 1);
});

t.test('success rate at the interval: 10 hosts, one at 50 % success is ejected (mean − 1.9 σ)', async (t) => {
  const h = harness({ endpoints: 10, settings: envoy });
  // Alternate success and failure on host 0 so that the consecutive counters never reach 5.
  h.run(25_000, (i, tick) => (i === 0 ? { n: 2, outcome: tick % 2 ? Outcome.Error5xx : Outcome.Success } : healthy()));
  const d = h.decisions('eject')[0];
  t.ok(d);
  t.equal(d!.reason, 'success_rate');
  t.ok(Number(d!.evidence.successRate) < Number(d!.evidence.threshold));
});
