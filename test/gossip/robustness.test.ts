// Robustness on real sockets and in the health plane: random bytes at the UDP and TCP ports, a starved
// event loop feeding Lifeguard, and endpoint ids too long for the wire.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { LoopStarvationWatch } from '../../src/gossip/loop-delay.js';
import { generateIdentity, ObservationSigner, QuorumBoard } from '../../src/gossip/health.js';
import { HealthPlane } from '../../src/gossip/health-plane.js';
import { VirtualClock } from '../../src/core/clock.js';
import { MeshState } from '../../src/mesh/state.js';
import { StatsTable } from '../../src/stats/window.js';
import { Outcome } from '../../src/core/types.js';
import { FAST_PROFILE, joinP, stopAll, udpMember, waitFor } from './udp-helpers.js';
import { NodeTransport } from '../../src/gossip/node-transport.js';
import { Membership } from '../../src/gossip/membership.js';
import { systemClock } from '../../src/core/clock.js';

t.test('random bytes at the UDP and TCP ports change nothing and crash nothing', async (t) => {
  // No probe may fail during the flood for a reason of its own: the burst can overflow a's receive buffer
  // and drop a genuine ack, and a starved machine can hold one past the probe deadline; either makes a
  // member suspect, and its refutation bumps its incarnation (a full run under load saw b at 2). With a
  // probe period longer than the test, a change to the membership can only come from the random bytes.
  const profile = { ...FAST_PROFILE, probeIntervalMs: 120_000 };
  const a = await udpMember('a', { profile });
  const b = await udpMember('b', { profile });
  const c = await udpMember('c', { profile });
  t.teardown(() => stopAll([a, b, c]));
  await joinP(b.m, a.t.local);
  t.ok(await waitFor(() => a.m.countByState().alive === 2 && b.m.countByState().alive === 2, 10_000) >= 0, 'a and b converged');
  const before = JSON.stringify(a.m.list().map((m) => [m.id, m.state, m.incarnation]));
  const udp = createSocket('udp4');
  for (let i = 0; i < 500; i++) udp.send(randomBytes(1 + (i % 1300)), a.t.local.port, '127.0.0.1');
  // TCP: garbage frames, huge length prefixes, truncated frames, and connections left hanging.
  const streams = Array.from({ length: 30 }, (_, i) => new Promise<void>((resolve) => {
    const s = connect(a.t.local.port, '127.0.0.1', () => {
      if (i % 3 === 0) s.write(Buffer.from([0xff, 0xff, 0xff, 0xff]));
      else if (i % 3 === 1) { const len = Buffer.alloc(4); len.writeUInt32BE(100); s.write(Buffer.concat([len, randomBytes(100)])); }
      else s.write(randomBytes(7));
      setTimeout(() => s.destroy(), 100);
    });
    s.on('error', () => {});
    s.on('close', () => resolve());
  }));
  await Promise.all(streams);
  await new Promise((r) => setTimeout(r, 300));
  udp.close();
  t.equal(JSON.stringify(a.m.list().map((m) => [m.id, m.state, m.incarnation])), before, 'membership unchanged');
  t.ok(a.m.counters.droppedMalformed > 0, `malformed datagrams counted (${a.m.counters.droppedMalformed})`);
  t.equal(a.m.counters.handlerErrors, 0, 'no handler error');
  // Still working afterwards: a takes a new member in, and the news reaches b.
  await joinP(c.m, a.t.local);
  t.ok(await waitFor(() => [a, b, c].every((x) => x.m.countByState().alive === 3), 10_000) >= 0, 'a new member joins through a and all three see each other');
});

t.test('a starved event loop is detected (it feeds Lifeguard awareness)', async (t) => {
  const w = new LoopStarvationWatch(150, 10);
  t.teardown(() => w.stop());
  await new Promise((r) => setTimeout(r, 100));
  // A loaded machine may already have starved the loop before this point: count from here on.
  w.check();
  const base = w.starvedChecks;
  const until = Date.now() + 400;
  while (Date.now() < until) { /* block the loop */ }
  // Checked right after the block, without yielding: the block is the lag in progress (at least 390 ms),
  // whatever else the machine does.
  const r = w.check();
  t.ok(r.starved, `starvation seen (worst lag ${r.worstLagMs.toFixed(0)} ms)`);
  t.equal(w.starvedChecks - base, 1, 'one starved check counted');
  const calm = new LoopStarvationWatch(5000, 10);
  await new Promise((r) => setTimeout(r, 100));
  t.notOk(calm.check().starved, 'an idle loop is not starved (generous threshold for a loaded machine)');
  calm.stop();
});

t.test('endpoint ids longer than the wire allows are skipped, the others still published', async (t) => {
  const clock = new VirtualClock();
  const mesh = new MeshState(clock);
  const long = 'x'.repeat(250); // ids over 255 bytes once host and port are added
  const mk = (host: string) => ({ id: `${long}/${host}:80`, service: long, host, port: 80, locality: { region: '', zone: '', subzone: '' }, priority: 0, weight: 1, labels: {} });
  mesh.setServices([
    { spec: { name: long, endpoints: [mk('10.0.0.1')] } },
    { spec: { name: 's', endpoints: [{ ...mk('10.0.0.2'), id: 's/10.0.0.2:80', service: 's' }] } },
  ]);
  const stats = new StatsTable();
  for (const ev of mesh.snapshot().endpoints.values()) {
    const w = stats.ensure(ev.slot);
    for (let i = 0; i < 20; i++) w.record(Outcome.Gateway, 1000, clock.now());
  }
  const id = generateIdentity();
  const board = new QuorumBoard(clock);
  const published: string[] = [];
  const plane = new HealthPlane({
    selfId: 'me', clock, mesh, stats, board, signer: new ObservationSigner('me', id, clock),
    acceptOwn: (o) => board.accept(o), publish: (o) => published.push(o.endpoint), submit: () => false,
    windows: 3, minRequests: 5, holdDownMs: 1000, refreshMs: 1000, redundancy: 5,
  });
  t.doesNotThrow(() => plane.tick());
  t.same(published, ['s/10.0.0.2:80']);
});

t.test('IPv6 loopback: two members on [::1] join and see each other', async (t) => {
  let a: Awaited<ReturnType<typeof bindV6>> | undefined;
  let b: Awaited<ReturnType<typeof bindV6>> | undefined;
  try {
    a = await bindV6('v6a');
    b = await bindV6('v6b');
  } catch (err) {
    t.comment(`no IPv6 loopback here (${(err as NodeJS.ErrnoException).code}): nothing to check`);
    if (a) { a.m.shutdown(); await a.t.close(); }
    return;
  }
  t.teardown(async () => { for (const x of [a!, b!]) { x.m.shutdown(); await x.t.close(); } });
  t.equal(await new Promise<number>((r) => b!.m.join([a!.t.local], r)), 1);
  t.ok(await waitFor(() => a!.m.countByState().alive === 2 && b!.m.countByState().alive === 2, 5000) >= 0);
  t.equal(a.m.get('v6b')?.host, '::1');
});

async function bindV6(id: string) {
  const t = await NodeTransport.bind({ host: '::1', port: 0 });
  const m = new Membership({ id, advertise: t.local, clock: systemClock, transport: t, profile: FAST_PROFILE });
  m.start();
  return { m, t };
}
