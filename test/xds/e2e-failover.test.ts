// End to end with the real grpc-js-xds client: priority failover. Calls go to P0 while it is healthy, to
// P1 once every P0 endpoint is ejected, and back to P0 when it is restored.
import t from 'tap';
import * as grpc from '@grpc/grpc-js';
import { register } from '@grpc/grpc-js-xds';
import { distribution, RESPONSE_GUARD_MS, setBootstrap, startBackend, startXdsFixture, waitFor } from './helpers.js';
import { MeshState } from '../../src/mesh/state.js';
import { systemClock } from '../../src/core/clock.js';
import { spec, unrefLongTimers } from './helpers.js';

// grpc-js-xds's priority balancer keeps a deactivated child for 15 minutes on a timer it does not unref,
// which would hold this test process open long after the test; such long timers are unref'd here.
unrefLongTimers(60_000);

t.test('failover sends calls to the next priority when the first is ejected', async (t) => {
  const [p0a, p0b, p1a, p1b] = await Promise.all([startBackend(), startBackend(), startBackend(), startBackend()]);
  const mesh = new MeshState(systemClock);
  const eps = [
    { port: p0a!.port, priority: 0, locality: { region: 'r1', zone: 'z1' } },
    { port: p0b!.port, priority: 0, locality: { region: 'r1', zone: 'z1' } },
    // Sparse priority numbers on purpose: the server must renumber densely (no gaps).
    { port: p1a!.port, priority: 3, locality: { region: 'r2', zone: 'z9' } },
    { port: p1b!.port, priority: 3, locality: { region: 'r2', zone: 'z9' } },
  ];
  mesh.setServices([{ spec: { name: 'fo', endpoints: eps.map((e) => spec('fo', e)) } }]);
  const fx = await startXdsFixture({ fo: eps }, {}, mesh);
  setBootstrap(fx.address, 'failover-node');
  register();
  const client = new grpc.Client('xds:///fo', grpc.credentials.createInsecure());
  t.teardown(async () => {
    client.close();
    await fx.close();
    await Promise.all([p0a, p0b, p1a, p1b].map((b) => b!.close()));
  });
  const p0 = new Set([p0a!.port, p0b!.port]);
  const p1 = new Set([p1a!.port, p1b!.port]);
  const count = (d: Map<number, number>, s: Set<number>) => [...d].reduce((a, [port, n]) => a + (s.has(port) ? n : 0), 0);

  // The channel's first call also waits for the xDS resources and the connections (over the call's 5 s
  // deadline on a loaded machine: one call lost of 40). Warm-up is not what is asserted: wait for it.
  t.ok(await waitFor(async () => count(await distribution(client, 1), p0) === 1, RESPONSE_GUARD_MS), 'the channel resolved fo and reached priority 0');
  const d0 = await distribution(client, 40);
  t.equal(count(d0, p0), 40, `all calls go to priority 0 while it is healthy: ${JSON.stringify([...d0])} (port 0 = failed call)`);

  fx.mesh.applyAll([p0a!, p0b!].map((b) => ({ action: 'eject' as const, target: `fo/127.0.0.1:${b.port}`, reason: 'zone_outage', source: 'local' as const, at: Date.now(), evidence: {} })));
  t.ok(await waitFor(async () => count(await distribution(client, 10), p1) === 10, RESPONSE_GUARD_MS), 'calls move to priority 1');
  const d1 = await distribution(client, 60);
  t.equal(count(d1, p1), 60, 'every call goes to priority 1 after the failover');
  t.ok((d1.get(p1a!.port) ?? 0) > 10 && (d1.get(p1b!.port) ?? 0) > 10, 'both priority-1 endpoints take traffic');

  fx.mesh.applyAll([p0a!, p0b!].map((b) => ({ action: 'restore' as const, target: `fo/127.0.0.1:${b.port}`, reason: 'recovered', source: 'local' as const, at: Date.now(), evidence: {} })));
  t.ok(await waitFor(async () => count(await distribution(client, 10), p0) === 10, RESPONSE_GUARD_MS), 'calls return to priority 0 after restore');
});
