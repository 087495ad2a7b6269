// The gossip component in sidecar contexts on loopback: three sidecars form one membership; two carry
// failing traffic to an endpoint, the third (no traffic) ejects it within 3 s; /v1/members and metrics.
import t from 'tap';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Registry } from '../../src/admin/metrics-registry.js';
import { systemClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/log.js';
import { Outcome, endpointId, type EndpointSpec } from '../../src/core/types.js';
import { validateConfig } from '../../src/config/load.js';
import { MeshState } from '../../src/mesh/state.js';
import { StatsTable } from '../../src/stats/window.js';
import type { AdminHandler, AdminRoutes, Component, SidecarContext } from '../../src/runtime/context.js';
import { startGossip, profileFromConfig, type GossipComponent } from '../../src/gossip/component.js';
import { LAN_PROFILE } from '../../src/gossip/profile.js';
import { Keyring } from '../../src/gossip/keyring.js';
import { startHealing } from '../../src/heal/component.js';
import { waitFor } from './udp-helpers.js';

// The contract is 3 s; the waits allow 2 s more because this machine is shared and often overloaded
// (the measured time is printed with every run: typically 0.25–1.2 s).
const CONTRACT_MS = 3000;
const SLACK_MS = 2000;

const BACKENDS = ['127.0.0.11:8080', '127.0.0.12:8080', '127.0.0.13:8080'];

class Routes implements AdminRoutes {
  readonly handlers = new Map<string, AdminHandler>();
  route(method: string, path: string, handler: AdminHandler): void {
    this.handlers.set(`${method} ${path}`, handler);
  }
}

async function sidecar(id: string, join: string[], extra: Record<string, unknown> = {}, withHealing = false) {
  const v = validateConfig({
    node: { id },
    services: [{ name: 's', endpoints: BACKENDS.map((address) => ({ address })) }],
    gossip: {
      enabled: true, listen: '127.0.0.1:0', join, joinRetryMs: 200,
      probeIntervalMs: 200, probeTimeoutMs: 100, gossipIntervalMs: 50, pushPullIntervalMs: 2000,
      health: { intervalMs: 200 },
      ...extra,
    },
  });
  if (!v.valid) throw new Error(v.errors.join('; '));
  const config = v.result;
  const mesh = new MeshState(systemClock);
  const endpoints: EndpointSpec[] = BACKENDS.map((a) => {
    const [host, port] = a.split(':');
    return { id: endpointId('s', host!, Number(port)), service: 's', host: host!, port: Number(port), locality: { region: '', zone: '', subzone: '' }, priority: 0, weight: 1, labels: {} };
  });
  mesh.setServices([{ spec: { name: 's', endpoints } }]);
  const stats = new StatsTable();
  for (const ev of mesh.snapshot().endpoints.values()) stats.ensure(ev.slot);
  const admin = new Routes();
  const metrics = new Registry();
  const components = new Map<string, Component>();
  const ctx: SidecarContext = { config, clock: systemClock, mesh, stats, log: silentLogger, metrics, admin, components };
  const healing = withHealing ? await startHealing(ctx) : undefined;
  if (healing) components.set('healing', healing);
  const comp = (await startGossip(ctx)) as GossipComponent;
  const close = async () => {
    await comp.close(200);
    await healing?.close();
  };
  return { ctx, comp, admin, metrics, mesh, stats, endpoints, close };
}

t.test('profile from config: unset keys take the profile, set keys win', async (t) => {
  const v = validateConfig({ gossip: { probeIntervalMs: 300 } });
  t.ok(v.valid);
  if (!v.valid) return;
  const p = profileFromConfig(v.result.gossip);
  t.equal(p.probeIntervalMs, 300);
  t.equal(p.probeTimeoutMs, LAN_PROFILE.probeTimeoutMs);
  const w = validateConfig({ gossip: { profile: 'wan' } });
  t.ok(w.valid && profileFromConfig(w.result.gossip).probeIntervalMs === 5000);
  const bad = validateConfig({ gossip: { keys: ['nope'], profile: 'moon', maxPacketBytes: 9000 } });
  t.notOk(bad.valid, 'bad keys, profile and packet size are refused');
  if (!bad.valid) t.equal(bad.errors.length >= 3, true, bad.errors.join('\n'));
});

t.test('three sidecars: the one without traffic ejects a backend the other two see failing, within 3 s', async (t) => {
  const key = Keyring.generateKey();
  const s1 = await sidecar('s1', [], { keys: [key] });
  const seed = s1.comp.addresses!.gossip!;
  const s2 = await sidecar('s2', [seed], { keys: [key] });
  const s3 = await sidecar('s3', [seed], { keys: [key] });
  const all = [s1, s2, s3];
  let traffic: NodeJS.Timeout | undefined;
  t.teardown(async () => {
    clearInterval(traffic);
    for (const s of all) await s.comp.close(200);
  });
  t.ok(await waitFor(() => all.every((s) => s.comp.membership.countByState().alive === 3), 10_000) >= 0, 'one membership of three');

  const members = await s3.admin.handlers.get('GET /v1/members')!({ method: 'GET', path: '/v1/members', params: {}, query: new URLSearchParams(), body: undefined });
  const body = members.body as { self: string; members: { id: string; state: string; incarnation: number; address: string; lastChange: string }[] };
  t.equal(body.self, 's3');
  t.same(body.members.map((m) => [m.id, m.state]), [['s1', 'alive'], ['s2', 'alive'], ['s3', 'alive']]);
  t.match(body.members[0]!.address, /^127\.0\.0\.1:\d+$/);
  t.ok(body.members.every((m) => m.incarnation >= 1 && !Number.isNaN(Date.parse(m.lastChange))));

  // s1 and s2 send traffic to all three backends; backend 0 fails hard. s3 sends nothing.
  const failing = s1.endpoints[0]!.id;
  const record = () => {
    const now = Date.now();
    for (const s of [s1, s2]) {
      for (const ev of s.mesh.snapshot().endpoints.values()) {
        const w = s.stats.ensure(ev.slot);
        for (let i = 0; i < 5; i++) w.record(ev.spec.id === failing ? Outcome.LocalOrigin : Outcome.Success, 1500, now);
      }
    }
  };
  const t0 = Date.now();
  traffic = setInterval(record, 50);
  const took = await waitFor(() => s3.mesh.snapshot().endpoints.get(failing)!.health.state !== 'healthy', CONTRACT_MS + SLACK_MS);
  t.ok(took >= 0, `s3 shows the failed backend non-healthy after ${Date.now() - t0} ms`);
  const h = s3.mesh.snapshot().endpoints.get(failing)!.health;
  t.same([h.state, h.source, h.reason], ['ejected', 'peer', 'peer_quorum']);
  for (const ev of s3.mesh.snapshot().endpoints.values()) {
    if (ev.spec.id !== failing) t.equal(ev.health.state, 'healthy', `${ev.spec.id} untouched`);
  }

  // A probe unanswered within its 100 ms timeout makes a member suspect until it refutes; on a starved
  // machine that happens between any two reads (a full run once saw one member suspected here). The gauge
  // is read once all three are alive again: what it must show then is the count by state.
  t.ok(await waitFor(() => s3.comp.membership.countByState().alive === 3, 10_000) >= 0, 's3 sees three alive members');
  const text = await s3.metrics.metrics();
  t.match(text, /meshmedic_gossip_members\{state="alive"\} 3/);
  t.match(text, /meshmedic_gossip_packets_total\{direction="in",result="ok"\} \d+/);
  t.match(text, /meshmedic_gossip_observations_total\{result="accepted"\} \d+/);
  t.match(text, /meshmedic_gossip_peer_decisions_total\{action="eject"\} 1/);
  const verdicts = await s3.admin.handlers.get('GET /v1/gossip/verdicts')!({ method: 'GET', path: '/v1/gossip/verdicts', params: {}, query: new URLSearchParams(), body: undefined });
  t.ok((verdicts.body as { verdicts: { endpoint: string; failing: boolean }[] }).verdicts.some((v) => v.endpoint === failing && v.failing));

  // Graceful leave: closing s2 shows as "left" on the others, not as a failure.
  await s2.comp.close(500);
  t.ok(await waitFor(() => s1.comp.membership.get('s2')?.state === 'left' && s3.comp.membership.get('s2')?.state === 'left', 5000) >= 0, 's2 left gracefully');
});

t.test('a sidecar started before its seed joins once the seed comes up', async (t) => {
  // Reserve a port for the seed by starting and closing a sidecar on port 0, then reuse the number.
  const probe = await sidecar('tmp', []);
  const seedAddr = probe.comp.addresses!.gossip!;
  await probe.comp.close(0);
  const late = await sidecar('late', [seedAddr]);
  t.teardown(() => late.comp.close(0));
  await new Promise((r) => setTimeout(r, 300));
  t.equal(late.comp.membership.liveCount, 1, 'alone while the seed is down');
  let seed: Awaited<ReturnType<typeof sidecar>> | undefined;
  try {
    seed = await sidecar('seed', [], { listen: seedAddr });
  } catch {
    t.comment('the seed port was taken by another process meanwhile: nothing to check');
    return;
  }
  t.teardown(() => seed!.comp.close(0));
  t.ok(await waitFor(() => late.comp.membership.liveCount === 2, 5000) >= 0, 'joined by retrying');
});

t.test('with the healing engine running, peer verdicts go through it and still eject within 3 s', async (t) => {
  const s1 = await sidecar('h1', [], {}, true);
  const seed = s1.comp.addresses!.gossip!;
  const s2 = await sidecar('h2', [seed], {}, true);
  const s3 = await sidecar('h3', [seed], {}, true);
  const all = [s1, s2, s3];
  let traffic: NodeJS.Timeout | undefined;
  t.teardown(async () => {
    clearInterval(traffic);
    for (const s of all) await s.close();
  });
  t.ok(await waitFor(() => all.every((s) => s.comp.membership.countByState().alive === 3), 10_000) >= 0);
  const failing = s1.endpoints[0]!.id;
  traffic = setInterval(() => {
    const now = Date.now();
    for (const s of [s1, s2]) {
      for (const ev of s.mesh.snapshot().endpoints.values()) {
        const w = s.stats.ensure(ev.slot);
        for (let i = 0; i < 5; i++) w.record(ev.spec.id === failing ? Outcome.LocalOrigin : Outcome.Success, 1500, now);
      }
    }
  }, 50);
  const t0 = Date.now();
  const took = await waitFor(() => s3.mesh.snapshot().endpoints.get(failing)!.health.state !== 'healthy', CONTRACT_MS + SLACK_MS);
  t.ok(took >= 0, `h3 shows it non-healthy after ${Date.now() - t0} ms`);
  const h = s3.mesh.snapshot().endpoints.get(failing)!.health;
  t.equal(h.source, 'peer', 'decided on the peer verdict');
  t.equal(h.state, 'ejected');
  t.equal(s1.mesh.snapshot().endpoints.get(failing)!.health.source, 'local', 'the observers ejected it on their own evidence');
});

t.test('one sidecar with traffic + an idle sidecar whose connection probes fail: a quorum of two', async (t) => {
  // The backends' addresses (127.0.0.11-13:8080) have no listener: connects are refused.
  const s1 = await sidecar('p1', []);
  const s2 = await sidecar('p2', [s1.comp.addresses!.gossip!]);
  let traffic: NodeJS.Timeout | undefined;
  t.teardown(async () => {
    clearInterval(traffic);
    for (const s of [s1, s2]) await s.comp.close(200);
  });
  t.ok(await waitFor(() => [s1, s2].every((s) => s.comp.membership.countByState().alive === 2), 10_000) >= 0);
  const failing = s1.endpoints[0]!.id;
  traffic = setInterval(() => {
    const w = s1.stats.ensure(s1.mesh.snapshot().endpoints.get(failing)!.slot);
    for (let i = 0; i < 5; i++) w.record(Outcome.LocalOrigin, 1500, Date.now());
  }, 50);
  const took = await waitFor(() => s2.mesh.snapshot().endpoints.get(failing)!.health.state === 'ejected', CONTRACT_MS + SLACK_MS);
  t.ok(took >= 0, `the idle sidecar corroborated and ejected in ${took} ms`);
  t.ok(s2.comp.healthPlane!.counters.probes >= 1, 'it probed');
  const ev = s2.mesh.eventsSince(0).find((d) => d.action === 'eject')!;
  t.match(String(ev.evidence.badObservers), /p1/);
  t.match(String(ev.evidence.badObservers), /p2/);
});

t.test('start-up errors carry stable codes; an identity file keeps the key across restarts', async (t) => {
  const a = await sidecar('e1', []);
  t.teardown(() => a.comp.close(0));
  await t.rejects(sidecar('e2', [], { listen: a.comp.addresses!.gossip! }), { code: 'MM_ERR_GOSSIP_BIND' }, 'port in use');
  const dir = mkdtempSync(path.join(tmpdir(), 'mm-gossip-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const bad = path.join(dir, 'bad.pem');
  writeFileSync(bad, 'not a key');
  await t.rejects(sidecar('e3', [], { identityKeyFile: bad }), { code: 'MM_ERR_GOSSIP_IDENTITY' }, 'unreadable identity');
  const file = path.join(dir, 'id.pem');
  const first = await sidecar('e4', [], { identityKeyFile: file });
  const key1 = first.comp.membership.publicKeyOf('e4');
  await first.comp.close(0);
  t.equal(statSync(file).mode & 0o777, 0o600, 'written with mode 0600');
  const second = await sidecar('e4', [], { identityKeyFile: file });
  t.teardown(() => second.comp.close(0));
  t.same(second.comp.membership.publicKeyOf('e4'), key1, 'same public key after a restart');
});

t.test('a wildcard listen address without advertise is refused before anything is bound', async (t) => {
  await t.rejects(sidecar('w1', [], { listen: '0.0.0.0:0' }), { code: 'MM_ERR_CONFIG_INVALID', message: /advertise/ });
});
