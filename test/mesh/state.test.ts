import t from 'tap';
import { VirtualClock } from '../../src/core/clock.js';
import { endpointId, type EndpointSpec } from '../../src/core/types.js';
import { MeshState } from '../../src/mesh/state.js';

function ep(service: string, port: number, priority = 0): EndpointSpec {
  return { id: endpointId(service, '127.0.0.1', port), service, host: '127.0.0.1', port, locality: { region: 'r', zone: 'z', subzone: '' }, priority, weight: 1, labels: {} };
}

function mesh() {
  const clock = new VirtualClock(1_000_000);
  const m = new MeshState(clock);
  m.setServices([{ spec: { name: 'a', endpoints: [ep('a', 1), ep('a', 2), ep('a', 3)] } }, { spec: { name: 'b', endpoints: [ep('b', 1, 0), ep('b', 2, 1)] } }]);
  return { clock, m };
}

t.test('snapshots are frozen and replaced on change', async (t) => {
  const { clock, m } = mesh();
  const s1 = m.snapshot();
  t.ok(Object.isFrozen(s1));
  t.ok(Object.isFrozen(s1.services.get('a')!.endpoints[0]!.health));
  const seen: number[] = [];
  m.subscribe((s, ch) => seen.push(s.version, ch.length));
  const r = m.apply({ action: 'eject', target: 'a/127.0.0.1:1', reason: 'test', source: 'operator', at: clock.now(), durationMs: 5000, evidence: {} });
  t.equal(r.applied, true);
  const s2 = m.snapshot();
  t.not(s2, s1);
  t.equal(s1.endpoints.get('a/127.0.0.1:1')!.health.state, 'healthy', 'old snapshot unchanged');
  t.equal(s2.endpoints.get('a/127.0.0.1:1')!.health.state, 'ejected');
  t.equal(s2.endpoints.get('a/127.0.0.1:1')!.health.ejections, 0, 'operator ejections do not count towards automatic backoff');
  m.apply({ action: 'restore', target: 'a/127.0.0.1:1', reason: 'test', source: 'operator', at: clock.now(), evidence: {} });
  m.apply({ action: 'eject', target: 'a/127.0.0.1:1', reason: 'test', source: 'local', at: clock.now(), evidence: {} });
  t.equal(m.snapshot().endpoints.get('a/127.0.0.1:1')!.health.ejections, 1, 'automatic ones do');
  t.equal(s2.services.get('b'), s1.services.get('b'), 'untouched service keeps its view');
  t.same(seen.slice(0, 2), [s2.version, 1]);
});

t.test('unknown targets and no-op decisions are recorded as not applied', async (t) => {
  const { clock, m } = mesh();
  const v = m.snapshot().version;
  t.match(m.apply({ action: 'eject', target: 'nope', reason: 'x', source: 'local', at: clock.now(), evidence: {} }), { applied: false, refused: /unknown endpoint/ });
  t.match(m.apply({ action: 'restore', target: 'a/127.0.0.1:1', reason: 'x', source: 'local', at: clock.now(), evidence: {} }), { applied: false, refused: 'no change' });
  t.equal(m.snapshot().version, v);
  t.equal(m.eventsSince(0).length, 2);
});

t.test('timed ejections expire into restore decisions', async (t) => {
  const { clock, m } = mesh();
  m.apply({ action: 'eject', target: 'a/127.0.0.1:2', reason: 'op', source: 'operator', at: clock.now(), durationMs: 1000, evidence: {} });
  clock.advance(999);
  t.same(m.expire(), []);
  clock.advance(1);
  const r = m.expire();
  t.equal(r.length, 1);
  t.match(r[0], { action: 'restore', reason: 'expired', source: 'operator', applied: true });
  t.equal(m.snapshot().endpoints.get('a/127.0.0.1:2')!.health.state, 'healthy');
});

t.test('priority plan follows health', async (t) => {
  const { clock, m } = mesh();
  t.same(m.snapshot().services.get('b')!.plan.load, [1, 0]);
  m.apply({ action: 'eject', target: 'b/127.0.0.1:1', reason: 'x', source: 'local', at: clock.now(), evidence: {} });
  t.same(m.snapshot().services.get('b')!.plan.load, [0, 1]);
});

t.test('weight, probation and drain states', async (t) => {
  const { clock, m } = mesh();
  const id = 'a/127.0.0.1:3';
  m.apply({ action: 'weight', target: id, weight: 0.25, reason: 'latency', source: 'local', at: clock.now(), evidence: {} });
  t.match(m.snapshot().endpoints.get(id)!.health, { state: 'degraded', weightFactor: 0.25 });
  m.apply({ action: 'weight', target: id, weight: 1, reason: 'ramp', source: 'local', at: clock.now(), evidence: {} });
  t.match(m.snapshot().endpoints.get(id)!.health, { state: 'healthy', weightFactor: 1 });
  m.apply({ action: 'probation', target: id, weight: 0.05, reason: 'canary', source: 'local', at: clock.now(), evidence: {} });
  t.match(m.snapshot().endpoints.get(id)!.health, { state: 'probation', weightFactor: 0.05 });
  m.apply({ action: 'drain', target: id, reason: 'predicted', source: 'predicted', at: clock.now(), evidence: {} });
  t.match(m.snapshot().endpoints.get(id)!.health, { state: 'draining', weightFactor: 0 });
});

t.test('setServices keeps health of remaining endpoints and recycles slots', async (t) => {
  const { clock, m } = mesh();
  m.apply({ action: 'eject', target: 'a/127.0.0.1:1', reason: 'x', source: 'local', at: clock.now(), evidence: {} });
  const slot2 = m.snapshot().endpoints.get('a/127.0.0.1:2')!.slot;
  m.setServices([{ spec: { name: 'a', endpoints: [ep('a', 1), ep('a', 4)] } }]);
  const s = m.snapshot();
  t.equal(s.endpoints.get('a/127.0.0.1:1')!.health.state, 'ejected');
  t.notOk(s.endpoints.has('a/127.0.0.1:2'));
  t.notOk(s.services.has('b'));
  m.setServices([{ spec: { name: 'a', endpoints: [ep('a', 1), ep('a', 4), ep('a', 5)] } }]);
  const slots = [...m.snapshot().endpoints.values()].map((e) => e.slot);
  t.equal(new Set(slots).size, slots.length, 'slots unique');
  t.ok(slots.every((s) => s < m.slotCapacity()));
  t.ok(slot2 >= 0);
});

t.test('a throwing listener does not stop the others', async (t) => {
  const { clock, m } = mesh();
  let called = 0;
  m.subscribe(() => { throw new Error('boom'); });
  m.subscribe(() => { called++; });
  const warn = process.emitWarning;
  process.emitWarning = () => {};
  try {
    m.apply({ action: 'eject', target: 'a/127.0.0.1:1', reason: 'x', source: 'local', at: clock.now(), evidence: {} });
  } finally {
    process.emitWarning = warn;
  }
  t.equal(called, 1);
});
