// The signed health plane: quorum rules, replay and rate protection, signatures, and the end-to-end
// behaviour over gossip (virtual time): one liar cannot eject; three honest observers can, everywhere.
import t from 'tap';
import { VirtualClock } from '../../src/core/clock.js';
import { Outcome, endpointId, type EndpointSpec } from '../../src/core/types.js';
import { MeshState } from '../../src/mesh/state.js';
import { StatsTable } from '../../src/stats/window.js';
import { generateIdentity, ObservationSigner, publicKeyFromRaw, QuorumBoard, verifyObservation } from '../../src/gossip/health.js';
import { HealthPlane, observerKeys } from '../../src/gossip/health-plane.js';
import { decodePacket, encodePacket, type Observation } from '../../src/gossip/codec.js';
import { simCluster } from './sim-cluster.js';

const EP = 'svc/10.1.0.1:80';

function observers(n: number, clock: VirtualClock) {
  return Array.from({ length: n }, (_, i) => {
    const id = generateIdentity();
    return { name: `o${i}`, id, signer: new ObservationSigner(`o${i}`, id, clock), key: publicKeyFromRaw(id.publicKeyRaw)! };
  });
}

t.test('signatures: sign, verify, survive the wire, tampering detected', async (t) => {
  const clock = new VirtualClock();
  const [a, b] = observers(2, clock);
  const o = a!.signer.sign({ endpoint: EP, windowEnd: clock.now(), requests: 100, errorRate: 0.9, p99Us: 5000, ejected: false });
  t.ok(verifyObservation(o, a!.key), 'verifies with the signer key');
  t.notOk(verifyObservation(o, b!.key), 'not with another key');
  const wire = decodePacket(encodePacket([o]))![0] as Observation;
  t.ok(verifyObservation(wire, a!.key), 'verifies after a round trip');
  const forged = Buffer.from(encodePacket([o]));
  const at = forged.indexOf(Buffer.from(EP)) + 4;
  forged[at] = forged[at]! ^ 1;
  const f = decodePacket(forged)?.[0] as Observation | undefined;
  t.ok(f, 'a one-bit change in the endpoint id still decodes');
  t.notOk(verifyObservation(f!, a!.key), 'but no longer verifies');
  const raw = a!.id.publicKeyRaw;
  t.equal(raw.length, 32);
  t.equal(publicKeyFromRaw(new Uint8Array(31)), undefined, 'a wrong-size key is refused');
});

t.test('quorum board: Q distinct observers, no single liar, not outvoted', async (t) => {
  const clock = new VirtualClock();
  const obs = observers(6, clock);
  const keyOf = (n: string) => obs.find((o) => o.name === n)?.key;
  const board = new QuorumBoard(clock);
  const say = (i: number, errorRate: number, requests = 50, ep = EP) =>
    board.offer(obs[i]!.signer.sign({ endpoint: ep, windowEnd: clock.now(), requests, errorRate, p99Us: 1000, ejected: false }), keyOf);

  t.equal(say(0, 1), 'accepted');
  let v = board.verdict(EP);
  t.same([v.failing, v.bad, v.good, v.quorum], [false, 1, 0, 2], 'M = 1: one observer alone never decides (Q ≥ 2)');
  t.equal(say(1, 0), 'accepted');
  t.equal(say(2, 0), 'accepted');
  v = board.verdict(EP);
  t.same([v.failing, v.bad, v.good, v.quorum], [false, 1, 2, 2], 'one liar against two that see it working');
  say(3, 0.8);
  v = board.verdict(EP);
  t.same([v.failing, v.bad, v.good, v.quorum], [false, 2, 2, 2], 'a tie is not a verdict');
  say(4, 0.7);
  v = board.verdict(EP);
  t.same([v.failing, v.bad, v.good, v.quorum], [true, 3, 2, 3], 'three bad of five: Q = min(3, ⌈5/2⌉) reached');
  t.same([...v.badObservers].sort(), ['o0', 'o3', 'o4']);
  // An observer with too little traffic does not count towards M.
  say(5, 1, 2);
  t.equal(board.verdict(EP).observers, 5);
  // Freshness: observations age out.
  clock.advance(board.opts.freshnessMs + 1);
  t.equal(board.verdict(EP).observers, 0);
  t.equal(board.verdicts().length, 0, 'pruned');
});

t.test('quorum board: replay, staleness, future, rate limit, unknown observer, bad signature', async (t) => {
  const clock = new VirtualClock();
  const [a, b] = observers(2, clock);
  const keyOf = (n: string) => (n === 'o0' ? a!.key : undefined);
  const board = new QuorumBoard(clock, { ratePerSecond: 1, burst: 3 });
  const mk = (windowEnd = clock.now()) => a!.signer.sign({ endpoint: EP, windowEnd, requests: 10, errorRate: 1, p99Us: 1, ejected: false });
  const first = mk();
  const second = mk();
  t.equal(board.offer(second, keyOf), 'accepted');
  t.equal(board.offer(second, keyOf), 'replay', 'the same observation twice');
  t.equal(board.offer(first, keyOf), 'replay', 'an older sequence');
  t.equal(board.offer(mk(clock.now() - board.opts.freshnessMs - 1), keyOf), 'stale');
  t.equal(board.offer(mk(clock.now() + board.opts.maxSkewMs + 1), keyOf), 'future');
  t.equal(board.offer({ ...mk(), endpoint: 'svc/other:1' }, keyOf), 'bad_signature', 'fields changed after signing');
  t.equal(board.offer(mk(), keyOf), 'accepted');
  t.equal(board.offer(mk(), keyOf), 'accepted');
  t.equal(board.offer(mk(), keyOf), 'rate_limited', 'burst of 3 used');
  clock.advance(1000);
  t.equal(board.offer(mk(), keyOf), 'accepted', 'one more token a second');
  t.equal(board.offer(b!.signer.sign({ endpoint: EP, windowEnd: clock.now(), requests: 10, errorRate: 1, p99Us: 1, ejected: false }), keyOf), 'unknown_observer');
  t.equal(board.results.accepted, 4);
  t.equal(board.results.replay, 2);
  // A forged observation does not consume the real observer's rate budget.
  const board2 = new QuorumBoard(clock, { ratePerSecond: 1, burst: 1 });
  t.equal(board2.offer({ ...mk(), requests: 99 }, keyOf), 'bad_signature');
  t.equal(board2.offer(mk(), keyOf), 'accepted');
});

// ------------------------------------------------------------------ end to end over simulated gossip

const ENDPOINTS = ['10.1.0.1', '10.1.0.2', '10.1.0.3'].map((h): EndpointSpec => ({
  id: endpointId('svc', h, 80), service: 'svc', host: h, port: 80, locality: { region: '', zone: '', subzone: '' }, priority: 0, weight: 1, labels: {},
}));

function healthCluster(n: number, seed: number) {
  const identities = Array.from({ length: n }, () => generateIdentity());
  const planes: HealthPlane[] = [];
  const c = simCluster({
    n, seed,
    extra: (i) => ({
      publicKey: identities[i]!.publicKeyRaw,
      onObservation: (o) => boards[i]!.offer(o, keys[i]!) === 'accepted',
    }),
  });
  const boards = c.members.map(() => new QuorumBoard(c.clock));
  const keys = c.members.map((x) => observerKeys(x.m, x.m.id));
  const nodes = c.members.map((x, i) => {
    const mesh = new MeshState(c.clock);
    mesh.setServices([{ spec: { name: 'svc', endpoints: ENDPOINTS } }]);
    const stats = new StatsTable({ windowMs: 1000, windows: 10, maxLatencyUs: 60_000_000, significantDigits: 2 });
    for (const ev of mesh.snapshot().endpoints.values()) stats.ensure(ev.slot);
    const plane = new HealthPlane({
      selfId: x.m.id, clock: c.clock, mesh, stats, board: boards[i]!,
      signer: new ObservationSigner(x.m.id, identities[i]!, c.clock),
      acceptOwn: (o) => boards[i]!.accept(o),
      publish: (o) => x.m.publishObservation(o),
      submit: (d) => mesh.apply(d).applied,
      windows: 3, minRequests: 5, holdDownMs: 5000, refreshMs: 2500, redundancy: 5,
    });
    planes.push(plane);
    return { mesh, stats, plane, m: x.m };
  });
  /** traffic[i][e] = error rate node i sees on endpoint e, or undefined for no traffic. */
  let traffic: (number | undefined)[][] = nodes.map(() => ENDPOINTS.map(() => undefined));
  let tick = 0;
  c.clock.setInterval(() => {
    tick++;
    nodes.forEach((node, i) => {
      ENDPOINTS.forEach((spec, e) => {
        const rate = traffic[i]![e];
        if (rate === undefined) return;
        const w = node.stats.ensure(node.mesh.snapshot().endpoints.get(spec.id)!.slot);
        for (let r = 0; r < 5; r++) w.record(((tick * 5 + r) % 100) < rate * 100 ? Outcome.Gateway : Outcome.Success, 2000, c.clock.now());
      });
    });
  }, 100);
  for (const node of nodes) c.clock.setInterval(() => node.plane.tick(), 500);
  return {
    c, nodes,
    setTraffic(tr: (number | undefined)[][]) { traffic = tr; },
    health: (i: number, e: number) => nodes[i]!.mesh.snapshot().endpoints.get(ENDPOINTS[e]!.id)!.health,
  };
}

t.test('three honest observers eject a failed endpoint on a member that sent it no traffic; it comes back after the hold-down', async (t) => {
  const h = healthCluster(5, 31);
  h.c.startAll();
  h.c.joinAll();
  h.c.run(3000);
  // o0..o2 send traffic to all three endpoints; endpoint 0 fails for them. o3, o4 send nothing.
  h.setTraffic([[1, 0, 0], [1, 0, 0], [1, 0, 0], [undefined, undefined, undefined], [undefined, undefined, undefined]]);
  const t0 = h.c.clock.now();
  let ejectedAt = -1;
  for (let i = 0; i < 100 && ejectedAt < 0; i++) {
    h.c.run(100);
    if (h.health(4, 0).state === 'ejected') ejectedAt = h.c.clock.now() - t0;
  }
  t.ok(ejectedAt > 0 && ejectedAt <= 3000, `ejected on the idle member after ${ejectedAt} ms`);
  const hh = h.health(4, 0);
  t.equal(hh.source, 'peer');
  t.equal(hh.reason, 'peer_quorum');
  const ev = h.nodes[4]!.mesh.eventsSince(0).find((d) => d.action === 'eject')!;
  t.ok(Number(ev.evidence.bad) >= 2, `evidence names the observers: ${ev.evidence.badObservers}`);
  t.equal(h.health(3, 0).state, 'ejected', 'and on the other idle member');
  t.equal(h.health(4, 1).state, 'healthy', 'healthy endpoints untouched');
  t.equal(h.health(4, 2).state, 'healthy');
  // The endpoint recovers: observers now see it working; the idle member restores it after the hold-down.
  h.setTraffic([[0, 0, 0], [0, 0, 0], [0, 0, 0], [undefined, undefined, undefined], [undefined, undefined, undefined]]);
  const t1 = h.c.clock.now();
  let restoredAt = -1;
  for (let i = 0; i < 300 && restoredAt < 0; i++) {
    h.c.run(100);
    if (h.health(4, 0).state === 'healthy') restoredAt = h.c.clock.now() - t1;
  }
  t.ok(restoredAt >= 5000, `restored after the 5 s hold-down (${restoredAt} ms)`);
  t.ok(restoredAt < 20_000);
  h.c.shutdown();
});

t.test('one lying observer cannot eject an endpoint that others see working', async (t) => {
  const h = healthCluster(5, 32);
  h.c.startAll();
  h.c.joinAll();
  h.c.run(3000);
  // o0 lies (reports 100 % errors on endpoint 1); o1 and o2 see it working; o4 idle.
  h.setTraffic([[0, 1, 0], [0, 0, 0], [0, 0, 0], [undefined, undefined, undefined], [undefined, undefined, undefined]]);
  h.c.run(20_000);
  for (let i = 1; i < 5; i++) t.equal(h.health(i, 1).state, 'healthy', `o${i} keeps endpoint 1`);
  const v = h.nodes[4]!.plane.verdicts().find((x) => x.endpoint === ENDPOINTS[1]!.id)!;
  t.same([v.failing, v.bad, v.good], [false, 1, 2], 'the board sees one bad, two good');
  // The liar alone, with nobody else sending traffic, still cannot decide.
  h.setTraffic([[0, 1, 0], [undefined, undefined, undefined], [undefined, undefined, undefined], [undefined, undefined, undefined], [undefined, undefined, undefined]]);
  h.c.run(20_000);
  t.equal(h.health(4, 1).state, 'healthy', 'a single observer is never a quorum');
  h.c.shutdown();
});

t.test('Trickle pacing: many observers of one failure publish a few observations, and idle members still eject', async (t) => {
  const n = 12;
  const h = healthCluster(n, 33);
  h.c.startAll();
  h.c.joinAll();
  h.c.run(3000);
  const idle = [undefined, undefined, undefined];
  h.setTraffic(Array.from({ length: n }, (_, i) => (i < 10 ? [1, 0, 0] : idle)));
  h.c.run(20_000);
  t.equal(h.health(10, 0).state, 'ejected', 'idle member 10 ejected it');
  t.equal(h.health(11, 0).state, 'ejected', 'idle member 11 ejected it');
  const published = h.nodes.reduce((s, x) => s + x.plane.counters.published, 0);
  const suppressed = h.nodes.reduce((s, x) => s + x.plane.counters.suppressed, 0);
  const naive = 10 * (20_000 / 500);
  t.ok(published < naive / 4, `published ${published} observations in 20 s (naive: ${naive})`);
  t.ok(suppressed > 0, `${suppressed} suppressed because enough others already said so`);
  h.c.shutdown();
});

t.test('corroboration by connection probes: a sidecar without traffic probes after a peer report', async (t) => {
  const run = (probeFailures: number) => {
    const clock = new VirtualClock();
    const mesh = new MeshState(clock);
    mesh.setServices([{ spec: { name: 'svc', endpoints: ENDPOINTS } }]);
    const stats = new StatsTable();
    const [peer, me] = observers(2, clock);
    const keyOf = (n: string) => (n === 'o0' ? peer!.key : n === 'o1' ? me!.key : undefined);
    const board = new QuorumBoard(clock);
    const published: Observation[] = [];
    const probed: string[] = [];
    const decisions: string[] = [];
    const plane = new HealthPlane({
      selfId: 'o1', clock, mesh, stats, board, signer: me!.signer,
      acceptOwn: (o) => board.accept(o), publish: (o) => published.push(o),
      submit: (d) => { decisions.push(`${d.action} ${d.target}`); return mesh.apply(d).applied; },
      windows: 3, minRequests: 5, holdDownMs: 5000, refreshMs: 2500, redundancy: 5,
      probe: (spec, done) => { probed.push(spec.id); clock.setTimeout(() => done(2, probeFailures), 200); },
      probeEveryMs: 2000,
    });
    plane.tick();
    t.equal(probed.length, 0, 'no report, no probe');
    // A peer with traffic reports endpoint 0 failing.
    t.equal(board.offer(peer!.signer.sign({ endpoint: ENDPOINTS[0]!.id, windowEnd: clock.now(), requests: 40, errorRate: 1, p99Us: 0, ejected: false }), keyOf), 'accepted');
    plane.tick();
    t.same(probed, [ENDPOINTS[0]!.id], 'probes the reported endpoint only');
    clock.advance(500);
    plane.tick();
    clock.advance(500);
    plane.tick();
    t.equal(probed.length, 1, 'at most one probe run per probeEveryMs');
    return { published, decisions, board };
  };
  const failing = run(2);
  t.equal(failing.published.length, 1, 'a failed probe run is published');
  t.equal(failing.published[0]!.flags & 2, 2, 'flagged as probe evidence');
  t.same(failing.decisions, [`eject ${ENDPOINTS[0]!.id}`], 'peer report + own failed probes = quorum of two');
  const working = run(0);
  t.equal(working.published.length, 1, 'a probe run that connected every time is published (it can answer a partition)');
  t.same([working.published[0]!.flags & 2, working.published[0]!.errorRate], [2, 0], 'as probe evidence, nothing failed');
  t.same(working.decisions, [], 'a single report stays a single report');
  const v = working.board.verdict(ENDPOINTS[0]!.id);
  t.same([v.bad, v.good, v.failing, v.probesWorking], [1, 0, false, 1], 'a working probe is no "good" vote against traffic evidence');
});

t.test('probe observations count only as evidence of failure', async (t) => {
  const clock = new VirtualClock();
  const [a] = observers(1, clock);
  const board = new QuorumBoard(clock);
  const o = a!.signer.sign({ endpoint: EP, windowEnd: clock.now(), requests: 2, errorRate: 0, p99Us: 0, ejected: false, probed: true });
  t.notOk(board.isBad(o));
  board.offer(o, () => a!.key);
  t.same([board.verdict(EP).good, board.verdict(EP).observers, board.verdict(EP).probesWorking], [0, 0, 1], 'a working connect is not a "good" vote');
  t.ok(board.isBad({ flags: 2, requests: 2, errorRate: 1, p99Us: 0 }));
  t.notOk(board.isBad({ flags: 2, requests: 1, errorRate: 1, p99Us: 0 }), 'one failed connect is not enough');
});

t.test("can't see ≠ dead: working probes cancel failed probes (a partition), never traffic evidence", async (t) => {
  const verdictOf = (trafficBad: number, probeFailed: number, probeWorked: number) => {
    const clock = new VirtualClock();
    const obs = observers(trafficBad + probeFailed + probeWorked, clock);
    const board = new QuorumBoard(clock);
    obs.forEach((o, i) => {
      const kind = i < trafficBad ? 'traffic' : i < trafficBad + probeFailed ? 'failed' : 'worked';
      const figures = kind === 'traffic'
        ? { requests: 40, errorRate: 1, probed: false }
        : { requests: 3, errorRate: kind === 'failed' ? 1 : 0, probed: true };
      t.equal(board.offer(o.signer.sign({ endpoint: EP, windowEnd: clock.now(), p99Us: 0, ejected: false, ...figures }), () => o.key), 'accepted');
    });
    return board.verdict(EP);
  };
  // The chaos lab's a <-> c partition: one sidecar ejected a3 on its own evidence; c's three sidecars cannot
  // connect to a3; the five sidecars of a and b connect fine.
  const partition = verdictOf(1, 3, 5);
  t.same([partition.bad, partition.failing, partition.probesWorking], [1, false, 5], 'the far side of a partition does not make a quorum');
  t.same(partition.badObservers, ['o0'], 'only the traffic observer is named');
  const crashed = verdictOf(1, 3, 0);
  t.same([crashed.bad, crashed.failing], [4, true], 'a crashed endpoint: every probe fails, the quorum stands');
  const some = verdictOf(1, 3, 1);
  t.same([some.bad, some.failing], [3, true], 'failures beyond the working probes still count');
  const grey = verdictOf(2, 0, 6);
  t.same([grey.bad, grey.failing], [2, true], '5xx seen by traffic: working connects do not outvote it');
});

t.test("can't see ≠ dead, from here: failed probes elsewhere do not eject an endpoint our own traffic finds working", async (t) => {
  // The chaos lab's region outage: a's backends came back, a1's own canaries restored them, and the other
  // sidecars' failed probes from the outage (fresh for freshnessMs) re-ejected all three on a1.
  const run = (o: { mine: 'working' | 'failing' | 'none'; peers: 'probes' | 'traffic' }) => {
    const clock = new VirtualClock();
    const mesh = new MeshState(clock);
    mesh.setServices([{ spec: { name: 'svc', endpoints: ENDPOINTS } }]);
    const stats = new StatsTable();
    const [me, ...peers] = observers(4, clock);
    const keys = new Map([me!, ...peers].map((x) => [x.name, x.key]));
    const board = new QuorumBoard(clock);
    const decisions: string[] = [];
    const plane = new HealthPlane({
      selfId: me!.name, clock, mesh, stats, board, signer: me!.signer,
      acceptOwn: (x) => board.accept(x), publish: () => {},
      submit: (d) => { decisions.push(`${d.action} ${d.reason}`); return mesh.apply(d).applied; },
      windows: 3, minRequests: 5, holdDownMs: 5000, refreshMs: 2500, redundancy: 5,
    });
    const ep = ENDPOINTS[0]!.id;
    const w = stats.ensure(mesh.snapshot().endpoints.get(ep)!.slot);
    if (o.mine !== 'none') for (let i = 0; i < 20; i++) w.record(o.mine === 'working' ? Outcome.Success : Outcome.Gateway, 2000, clock.now());
    for (const p of peers) {
      const figures = o.peers === 'probes' ? { requests: 3, errorRate: 1, probed: true } : { requests: 40, errorRate: 1, probed: false };
      t.equal(board.offer(p.signer.sign({ endpoint: ep, windowEnd: clock.now(), p99Us: 0, ejected: false, ...figures }), (n) => keys.get(n)), 'accepted');
    }
    plane.tick();
    return { decisions, kept: plane.counters.keptByOwnTraffic, verdict: board.verdict(ep) };
  };
  const back = run({ mine: 'working', peers: 'probes' });
  t.same(back.decisions, [], 'three failed probe runs elsewhere, our own traffic answered: kept');
  t.equal(back.kept, 1, 'counted as kept by our own traffic');
  t.same([back.verdict.failing, back.verdict.trafficBad, back.verdict.good], [true, 0, 1], 'the verdict itself still says failing (for sidecars without traffic)');
  t.same(run({ mine: 'none', peers: 'probes' }).decisions, ['eject peer_quorum'], 'without traffic of our own, failed probes are a quorum');
  t.same(run({ mine: 'failing', peers: 'probes' }).decisions, ['eject peer_quorum'], 'our own traffic failing too: ejected');
  t.same(run({ mine: 'working', peers: 'traffic' }).decisions, ['eject peer_quorum'], "others' traffic failing outvotes ours (the quorum rule, unchanged)");
});
