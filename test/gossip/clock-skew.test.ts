// Clock skew: signed observations are judged on their observer's own clock, moved onto ours by a
// per-member offset estimated from ping/ack round trips. Injected clocks: one member +30 s, one −30 s.
import t from 'tap';
import { skewedClock, VirtualClock } from '../../src/core/clock.js';
import { decodePacket, encodePacket, MsgType, type Observation } from '../../src/gossip/codec.js';
import { generateIdentity, ObservationSigner, publicKeyFromRaw, QuorumBoard } from '../../src/gossip/health.js';
import { Membership } from '../../src/gossip/membership.js';
import { LAN_PROFILE } from '../../src/gossip/profile.js';
import { seededRandom, SimNetwork } from '../../src/gossip/sim.js';
import { testClockSkewMs } from '../../src/cli/main.js';

const SKEW = 30_000;

t.test('ack time: encoded when present, optional, and refused when not a time', async (t) => {
  t.same(decodePacket(encodePacket([{ type: MsgType.Ack, seq: 9, time: 1_700_000_000_123 }])), [{ type: MsgType.Ack, seq: 9, time: 1_700_000_000_123 }]);
  t.same(decodePacket(encodePacket([{ type: MsgType.Ack, seq: 9 }])), [{ type: MsgType.Ack, seq: 9 }], 'an ack without time (relayed, or from an older member)');
  t.equal(decodePacket(encodePacket([{ type: MsgType.Ack, seq: 9, time: -1 }])), undefined, 'negative time refused');
  t.equal(decodePacket(encodePacket([{ type: MsgType.Ack, seq: 9, time: Number.NaN }])), undefined, 'NaN refused');
});

/** The receiver's clock is right; observers sign on their own (skewed) clocks. */
function boardSetup() {
  const clock = new VirtualClock();
  const ids = { ahead: generateIdentity(), behind: generateIdentity(), right: generateIdentity() };
  const signers = {
    ahead: new ObservationSigner('ahead', ids.ahead, skewedClock(clock, SKEW)),
    behind: new ObservationSigner('behind', ids.behind, skewedClock(clock, -SKEW)),
    right: new ObservationSigner('right', ids.right, clock),
  };
  const offsets: Record<string, number> = { ahead: SKEW, behind: -SKEW, right: 0 };
  const keyOf = (o: string) => publicKeyFromRaw(ids[o as keyof typeof ids].publicKeyRaw);
  // Each observer stamps its window end with its own clock, as the health plane does.
  const observe = (who: keyof typeof signers, endpoint = 'svc/10.0.0.1:80') =>
    signers[who].sign({ endpoint, windowEnd: clock.now() + offsets[who]!, requests: 50, errorRate: 1, p99Us: 1000, ejected: false });
  return { clock, keyOf, observe, offsets, offsetOf: (o: string) => offsets[o] };
}

t.test('observers 30 s ahead and 30 s behind: refused by the absolute rule, accepted on their own clocks', async (t) => {
  const s = boardSetup();
  const old = new QuorumBoard(s.clock);
  t.equal(old.offer(s.observe('ahead'), s.keyOf), 'future', 'without offsets: +30 s is "future"');
  t.equal(old.offer(s.observe('behind'), s.keyOf), 'stale', 'without offsets: −30 s is "stale"');
  const board = new QuorumBoard(s.clock);
  t.equal(board.offer(s.observe('ahead'), s.keyOf, s.offsetOf), 'accepted', '+30 s accepted');
  t.equal(board.offer(s.observe('behind'), s.keyOf, s.offsetOf), 'accepted', '−30 s accepted');
  t.equal(board.offer(s.observe('right'), s.keyOf, s.offsetOf), 'accepted', 'a right clock is unaffected');
  const v = board.verdict('svc/10.0.0.1:80');
  t.equal(v.bad, 3, 'all three count towards the verdict');
  t.ok(v.failing);
  // They age on our clock: all three leave the board together once freshnessMs has passed.
  s.clock.advance(board.opts.freshnessMs - 1);
  t.equal(board.verdict('svc/10.0.0.1:80').bad, 3, 'still fresh just before freshnessMs');
  s.clock.advance(2);
  t.equal(board.verdict('svc/10.0.0.1:80').bad, 0, 'all stale together after freshnessMs (none lingers 30 s, none drops at once)');
});

t.test('old observations of a skewed observer cannot be replayed', async (t) => {
  const s = boardSetup();
  const captured: Record<string, Observation> = { ahead: s.observe('ahead'), behind: s.observe('behind') };
  s.clock.advance(SKEW); // an attacker holds them for 30 s, then replays them to a receiver that never saw them
  const board = new QuorumBoard(s.clock);
  // Refused by the clock: held for a fresh clock sample of its observer, then refused for good.
  t.equal(board.offer(captured.ahead!, s.keyOf, s.offsetOf), 'held', '+30 s observer: refused by the clock, held for a clock sample');
  t.equal(board.offer(captured.behind!, s.keyOf, s.offsetOf), 'held', '−30 s observer: held');
  t.same(board.release('ahead', s.keyOf, s.offsetOf), ['stale'], '+30 s observer: a 30-s-old observation is stale on its clock');
  t.same(board.release('behind', s.keyOf, s.offsetOf), ['stale'], '−30 s observer: stale');
  t.equal(new QuorumBoard(s.clock).offer(captured.ahead!, s.keyOf), 'accepted', '(the absolute rule took the 30-s-old observation of the +30 s host as fresh)');
  // Just inside the window it is fresh, and a second copy is a replay by sequence.
  const fresh = s.observe('behind');
  s.clock.advance(board.opts.freshnessMs - 100);
  t.equal(board.offer(fresh, s.keyOf, s.offsetOf), 'accepted');
  t.equal(board.offer(fresh, s.keyOf, s.offsetOf), 'replay', 'the same observation twice');
  s.clock.advance(200);
  const other = new QuorumBoard(s.clock);
  t.equal(other.offer(fresh, s.keyOf, s.offsetOf), 'held');
  t.same(other.release('behind', s.keyOf, s.offsetOf), ['stale'], 'past freshnessMs on its own clock, even for a receiver that never saw it');
});

t.test('before the offset is known: held, then judged on the observer\'s clock once it is', async (t) => {
  const s = boardSetup();
  const known: Record<string, number> = {};
  const offsetOf = (o: string) => known[o];
  const board = new QuorumBoard(s.clock);
  t.equal(board.offer(s.observe('ahead'), s.keyOf, offsetOf), 'held', '+30 s with no offset yet: held, not refused');
  t.equal(board.offer(s.observe('behind'), s.keyOf, offsetOf), 'held', '−30 s with no offset yet: held');
  t.equal(board.verdict('svc/10.0.0.1:80').bad, 0, 'held observations do not count yet');
  s.clock.advance(50); // one ping/ack later
  known.ahead = SKEW;
  known.behind = -SKEW;
  t.same(board.release('ahead', s.keyOf, offsetOf), ['accepted'], 'released on its clock: accepted');
  t.same(board.release('behind', s.keyOf, offsetOf), ['accepted']);
  t.same(board.release('behind', s.keyOf, offsetOf), [], 'nothing held twice');
  t.equal(board.verdict('svc/10.0.0.1:80').bad, 2);
  t.equal(board.results.held, 2);
  t.equal(board.results.future + board.results.stale, 0, 'nothing refused');
});

t.test('an observer that restarted with another clock: held on the old offset, accepted after a fresh sample', async (t) => {
  const s = boardSetup();
  const known: Record<string, number> = { ahead: 0 }; // sampled before it restarted 30 s fast
  const offsetOf = (o: string) => known[o];
  const board = new QuorumBoard(s.clock);
  t.equal(board.offer(s.observe('ahead'), s.keyOf, offsetOf), 'held', 'future on the old offset: held, not refused');
  s.clock.advance(40);
  known.ahead = SKEW; // the sample it triggered
  t.same(board.release('ahead', s.keyOf, offsetOf), ['accepted']);
  t.equal(board.results.future + board.results.stale, 0);
  // A sample that does not change the offset releases too, and what is still refused is refused once.
  const old = s.observe('ahead');
  s.clock.advance(board.opts.freshnessMs + 1);
  t.equal(board.offer(old, s.keyOf, offsetOf), 'held');
  t.same(board.release('ahead', s.keyOf, offsetOf), ['stale'], 'judged once more, not held twice');
  t.same(board.release('ahead', s.keyOf, offsetOf), []);
});

t.test('holding does not let a replay, a forgery or a silent observer through', async (t) => {
  const s = boardSetup();
  const known: Record<string, number> = {};
  const offsetOf = (o: string) => known[o];
  // A replay: captured from the +30 s observer, replayed 45 s later before the receiver knows its clock
  // (15 s old on our clock: refused by the clock, so held).
  const captured = s.observe('ahead');
  s.clock.advance(SKEW + 15_000);
  const board = new QuorumBoard(s.clock);
  t.equal(board.offer(captured, s.keyOf, offsetOf), 'held', 'refused by the clock with no offset known: held, not accepted');
  known.ahead = SKEW;
  t.same(board.release('ahead', s.keyOf, offsetOf), ['stale'], 'on its own clock it is 45 s old: refused');
  delete known.ahead;
  // A forgery (bad signature) is never held.
  const forged = { ...s.observe('behind'), errorRate: 0 };
  t.equal(board.offer(forged, s.keyOf, offsetOf), 'stale', 'a forged observation is refused, not held');
  // An unknown observer is never held.
  t.equal(board.offer(s.observe('behind'), () => undefined, offsetOf), 'stale', 'no key: refused');
  // An observer that never answers a clock sample: what it sent is refused once the hold expires.
  t.equal(board.offer(s.observe('behind'), s.keyOf, offsetOf), 'held');
  s.clock.advance(5_001);
  known.behind = -SKEW;
  t.same(board.release('behind', s.keyOf, offsetOf), ['stale'], 'held over 5 s: refused for the reason it was held');
  // Bounded: at most 16 held per observer.
  const results = Array.from({ length: 20 }, (_, i) => board.offer(s.observe('right', `svc/10.0.2.${i}:80`), s.keyOf, () => undefined));
  t.ok(results.every((r) => r === 'accepted'), 'a right clock is never held');
  const many = Array.from({ length: 20 }, (_, i) => { s.clock.advance(1); return board.offer(s.observe('ahead', `svc/10.0.1.${i}:80`), s.keyOf, () => undefined); });
  t.equal(many.filter((r) => r === 'held').length, 16, 'at most 16 held per observer');
  t.equal(many.filter((r) => r === 'future').length, 4, 'the rest refused as before');
});

/** Members over the simulated network, each with its own wall clock (`skews[i]` ms off). */
function skewedMesh(skews: readonly number[], seed: number) {
  const clock = new VirtualClock();
  const random = seededRandom(seed);
  const net = new SimNetwork(clock, { random, latencyMs: 2, jitterMs: 4 });
  const boards: QuorumBoard[] = [];
  const members: Membership[] = [];
  const ids = skews.map(() => generateIdentity());
  skews.forEach((skew, i) => {
    const own = skewedClock(clock, skew);
    const addr = { host: `10.0.0.${i + 1}`, port: 7946 };
    const board = new QuorumBoard(own);
    boards.push(board);
    const m: Membership = new Membership({
      id: `n${i}`, advertise: addr, clock: own, transport: net.attach(addr), profile: LAN_PROFILE, random, publicKey: ids[i]!.publicKeyRaw,
      onObservation: (o) => board.offer(o, (id) => { const k = m.publicKeyOf(id); return k ? publicKeyFromRaw(k) : undefined; }, (id) => m.clockOffsetOf(id)) === 'accepted',
    });
    members.push(m);
  });
  for (const m of members) m.start();
  for (const m of members.slice(1)) m.join([{ host: '10.0.0.1', port: 7946 }]);
  const signers = skews.map((skew, i) => new ObservationSigner(`n${i}`, ids[i]!, skewedClock(clock, skew)));
  return { clock, net, members, boards, signers, skews, shutdown: () => { for (const m of members) m.shutdown(); } };
}

t.test('offsets are learned from ping/ack round trips within a second of joining', async (t) => {
  const seed = 11;
  const mesh = skewedMesh([0, SKEW, -SKEW], seed);
  t.teardown(() => mesh.shutdown());
  mesh.clock.advance(1000);
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      const got = mesh.members[i]!.clockOffsetOf(`n${j}`);
      const want = mesh.skews[j]! - mesh.skews[i]!;
      // The estimate is within half a round trip (latency 2-6 ms each way).
      t.ok(got !== undefined && Math.abs(got - want) <= 6, `seed ${seed}: n${i} holds n${j} at ${got} ms (true ${want})`);
    }
  }
  t.ok(mesh.members[0]!.counters.clockSamples > 0, 'samples counted');
});

t.test('observations of members 30 s ahead and behind are accepted everywhere; a replay 30 s later is not', async (t) => {
  const seed = 12;
  const mesh = skewedMesh([0, SKEW, -SKEW], seed);
  t.teardown(() => mesh.shutdown());
  mesh.clock.advance(3000);
  const endpoint = 'svc/10.0.0.9:80';
  const published: Observation[] = [];
  for (let i = 0; i < 3; i++) {
    const own = mesh.clock.now() + mesh.skews[i]!;
    const o = mesh.signers[i]!.sign({ endpoint, windowEnd: own, requests: 40, errorRate: 1, p99Us: 500, ejected: false });
    published.push(o);
    mesh.boards[i]!.accept(o);
    mesh.members[i]!.publishObservation(o);
  }
  mesh.clock.advance(2000);
  for (let i = 0; i < 3; i++) {
    const b = mesh.boards[i]!;
    t.equal(b.verdict(endpoint).bad, 3, `seed ${seed}: n${i} counts all three observers (results ${JSON.stringify(b.results)})`);
    t.equal(b.results.stale + b.results.future, 0, `seed ${seed}: n${i} refused nothing by the clock`);
  }
  // 30 s later someone replays the old packets to every member (the boards forgot them long ago).
  mesh.clock.advance(SKEW);
  const rx = (i: number) => (mesh.members[i] as unknown as { handlePacket(b: Buffer, f: unknown): void });
  for (let i = 0; i < 3; i++) rx(i).handlePacket(encodePacket(published), { host: '10.9.9.9', port: 1 });
  for (let i = 0; i < 3; i++) {
    const b = mesh.boards[i]!;
    t.equal(b.verdict(endpoint).bad, 0, `seed ${seed}: n${i} took none of the replayed observations (results ${JSON.stringify(b.results)})`);
    t.ok(b.results.stale + b.results.held >= 2, `seed ${seed}: n${i} refused the others' replays by the clock (held for a clock sample, which judges them stale)`);
  }
});

t.test('MESHMEDIC_TEST_CLOCK_SKEW_MS: the test-only knob is parsed strictly', async (t) => {
  t.equal(testClockSkewMs({}), 0, 'unset: no skew');
  t.equal(testClockSkewMs({ MESHMEDIC_TEST_CLOCK_SKEW_MS: '30000' }), 30_000);
  t.equal(testClockSkewMs({ MESHMEDIC_TEST_CLOCK_SKEW_MS: ' -30000 ' }), -30_000);
  for (const bad of ['abc', '1.5', '1e9', '30s']) {
    const r = testClockSkewMs({ MESHMEDIC_TEST_CLOCK_SKEW_MS: bad });
    t.ok(typeof r === 'string' && r.includes('MESHMEDIC_TEST_CLOCK_SKEW_MS') && r.includes(JSON.stringify(bad)), `${bad}: ${r}`);
  }
  const c = new VirtualClock(1000);
  t.equal(skewedClock(c, -250).now(), 750, 'skewedClock moves now()');
  let fired = 0;
  skewedClock(c, 5000).setTimeout(() => { fired = c.now(); }, 100);
  c.advance(100);
  t.equal(fired, 1100, 'timers are unchanged');
});
