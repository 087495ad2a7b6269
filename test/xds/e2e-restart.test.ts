// End to end with the real grpc-js-xds client: the xDS server restarts on the same port with a changed
// mesh; the client reconnects, resyncs and follows the new state (an ejection made while it was away).
import t from 'tap';
import * as grpc from '@grpc/grpc-js';
import { register } from '@grpc/grpc-js-xds';
import { MeshState } from '../../src/mesh/state.js';
import { systemClock } from '../../src/core/clock.js';
import { distribution, setBootstrap, spec, startBackend, startXdsFixture, waitFor } from './helpers.js';

t.test('a server restart: the client reconnects and resyncs', async (t) => {
  const backends = await Promise.all([startBackend(), startBackend(), startBackend()]);
  const eps = backends.map((b) => ({ port: b.port }));
  const fx1 = await startXdsFixture({ rs: eps });
  setBootstrap(fx1.address, 'restart-node');
  register();
  const client = new grpc.Client('xds:///rs', grpc.credentials.createInsecure());
  let fx2: Awaited<ReturnType<typeof startXdsFixture>> | undefined;
  t.teardown(async () => {
    client.close();
    await fx1.close();
    await fx2?.close();
    await Promise.all(backends.map((b) => b.close()));
  });
  const d0 = await distribution(client, 30);
  for (const b of backends) t.ok((d0.get(b.port) ?? 0) > 0, `backend ${b.port} reached before the restart`);
  await fx1.close();

  // A new server process state: same port, the victim ejected while the client was disconnected.
  const mesh = new MeshState(systemClock);
  mesh.setServices([{ spec: { name: 'rs', endpoints: eps.map((e) => spec('rs', e)) } }]);
  const victim = backends[2]!;
  mesh.apply({ action: 'eject', target: `rs/127.0.0.1:${victim.port}`, reason: 'operator', source: 'operator', at: Date.now(), evidence: {} });
  fx2 = await startXdsFixture({ rs: eps }, { listen: `127.0.0.1:${fx1.port}` }, mesh);

  const fx = fx2;
  t.ok(await waitFor(() => (fx.component as unknown as object) !== undefined && Object.keys((fx.routes.get('GET /v1/xds')!({} as never) as { body: { nodes: object } }).body.nodes).length > 0, 15_000, 50), 'the client reconnects to the restarted server');
  t.ok(await waitFor(async () => {
    const c = victim.calls;
    await distribution(client, 10);
    return victim.calls === c;
  }, 10_000), 'the client follows the state of the restarted server');
  const c = victim.calls;
  const d = await distribution(client, 40);
  t.equal(victim.calls, c, 'the endpoint ejected during the outage gets no calls');
  t.notOk(d.get(0), 'no call fails after the resync');
});
