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

// Table cases hand-computed from Envoy's outlier_detection_impl.cc (≥ 1.28): the consecutive counter
// resets at each detection (ejected or refused), so a streak is detected at 5, 10, 15… errors; a host is
// ejected only if 100 × (active + 1) / hosts ≤ max_ejection_percent, or none is ejected and
// always_eject_one_host is set.
t.test('re-detection every 5 errors: a refused detection resets the counter too (10 hosts)', async (t) => {
  const cases = [
    // errors on host 1 while host 0 is ejected → detections (each refused: 20 % > 10 %)
    { errors: 4, refusals: 0 },
    { errors: 5, refusals: 1 },
    { errors: 9, refusals: 1 },
    { errors: 10, refusals: 2 },
    { errors: 14, refusals: 2 },
    { errors: 15, refusals: 3 },
  ];
  for (const c of cases) {
    const h = harness({ endpoints: 10, settings: envoy });
    h.run(1000, healthy);
    for (let k = 0; k < 5; k++) h.record(0, Outcome.Error5xx);
    t.equal(h.health(0).state, 'ejected', 'host 0 takes the one ejection 10 % allows');
    for (let k = 0; k < c.errors; k++) h.record(1, Outcome.Error5xx);
    t.equal(h.engine.policyOf('svc')!.counters.refusals.max_ejection_pct, c.refusals, `${c.errors} consecutive errors → ${c.refusals} refused detections`);
  }
});

t.test('re-detection after un-ejection: the streak goes on counting from the last detection', async (t) => {
  const h = harness({ endpoints: 10, settings: envoy });
  h.run(1000, healthy);
  for (let k = 0; k < 5; k++) h.record(0, Outcome.Error5xx); // host 0 ejected (30 s)
  for (let k = 0; k < 7; k++) h.record(1, Outcome.Error5xx); // detection at 5 refused; 2 counted since
  h.run(40_000, (i) => (i <= 1 ? undefined : healthy())); // host 0 back at the 40 s tick
  t.equal(h.health(0).state, 'healthy');
  for (let k = 0; k < 2; k++) h.record(1, Outcome.Error5xx);
  t.equal(h.health(1).state, 'healthy', '9 errors: no detection since the refused one at 5');
  h.record(1, Outcome.Error5xx);
  t.equal(h.health(1).state, 'ejected', 'the 10th error is the next detection, now allowed');
});

t.test('max_ejection_percent: 100 × (active + 1) / hosts ≤ max, with fractions kept', async (t) => {
  const cases = [
    { hosts: 9, max: 10, bad: 3, ejected: 0 }, // 11.1 % > 10 %
    { hosts: 10, max: 10, bad: 3, ejected: 1 }, // 10 % ≤ 10 %, then 20 %
    { hosts: 20, max: 10, bad: 4, ejected: 2 }, // 5 %, 10 %, then 15 %
    { hosts: 7, max: 15, bad: 3, ejected: 1 }, // 14.29 %, then 28.57 %
    { hosts: 10, max: 25, bad: 4, ejected: 2 }, // 10, 20, then 30 %
    { hosts: 5, max: 100, bad: 5, ejected: 5 }, // Istio's typical maxEjectionPercent 100: everything may go
  ];
  for (const c of cases) {
    const h = harness({ endpoints: c.hosts, settings: { ...envoy, envoy: { maxEjectionPercent: c.max } } });
    h.run(1000, healthy);
    for (let b = 0; b < c.bad; b++) for (let k = 0; k < 5; k++) h.record(b, Outcome.Error5xx);
    t.equal(h.decisions('eject').length, c.ejected, `${c.hosts} hosts, max ${c.max} %: ${c.ejected} of ${c.bad} bad hosts ejected`);
  }
});

t.test('always_eject_one_host: one ejection whatever the percentage, a second only within it', async (t) => {
  const cases = [
    { hosts: 2, max: 10, bad: 2, ejected: 1 },
    { hosts: 5, max: 10, bad: 3, ejected: 1 },
    { hosts: 5, max: 40, bad: 3, ejected: 2 }, // 20 %, 40 %, then 60 %
  ];
  for (const c of cases) {
    const h = harness({ endpoints: c.hosts, settings: { ...envoy, envoy: { maxEjectionPercent: c.max, alwaysEjectOneHost: true } } });
    h.run(1000, healthy);
    for (let b = 0; b < c.bad; b++) for (let k = 0; k < 5; k++) h.record(b, Outcome.Error5xx);
    t.equal(h.decisions('eject').length, c.ejected, `${c.hosts} hosts, max ${c.max} %, always_eject_one_host: ${c.ejected} ejected`);
  }
});

t.test('backoff (≥ 1.28): decremented only at ticks a full interval after un-ejection', async (t) => {
  // Ticks every 10 s; ejected at ~1 s with backoff 1 (30 s); back at the tick ≥ 31 s; then fails again
  // a given time after being back: before a full interval the backoff is still 1 → 2 (60 s); after one
  // full interval it was decremented to 0 → 1 (30 s).
  for (const c of [{ failAfterMs: 5000, backoff: 2, ejectMs: 60_000 }, { failAfterMs: 15_000, backoff: 1, ejectMs: 30_000 }]) {
    const h = harness({ endpoints: 10, settings: envoy });
    h.run(1000, healthy);
    for (let k = 0; k < 5; k++) h.record(0, Outcome.Error5xx);
    h.run(45_000, (i) => (i === 0 ? undefined : healthy()));
    const back = h.decisions('restore')[0]!.at;
    h.run(back + c.failAfterMs - h.clock.now(), (i) => (i === 0 ? undefined : healthy()));
    for (let k = 0; k < 5; k++) h.record(0, Outcome.Error5xx);
    const second = h.decisions('eject')[1]!;
    t.equal(second.evidence.backoff, c.backoff, `failed again ${c.failAfterMs} ms after un-ejection: backoff ${c.backoff}`);
    t.equal(second.evidence.ejectMs, c.ejectMs);
  }
});
