// End to end with the real @grpc/grpc-js-xds client: after `mesh.apply(eject)` the ejected endpoint gets no
// further calls, and after restore it gets calls again. One scenario per file: grpc-js-xds registers globally.
import t from 'tap';
import * as grpc from '@grpc/grpc-js';
import { register } from '@grpc/grpc-js-xds';
import { distribution, RESPONSE_GUARD_MS, setBootstrap, startBackend, startXdsFixture, waitFor, callOnce } from './helpers.js';

t.test('ejected endpoint gets no calls after the push; restored endpoint gets calls again', async (t) => {
  const backends = await Promise.all([startBackend(), startBackend(), startBackend()]);
  const fx = await startXdsFixture({ hello: backends.map((b) => ({ port: b.port })) });
  setBootstrap(fx.address);
  register();
  const client = new grpc.Client('xds:///hello', grpc.credentials.createInsecure());
  t.teardown(async () => {
    client.close();
    await fx.close();
    await Promise.all(backends.map((b) => b.close()));
  });

  const before = await distribution(client, 60);
  for (const b of backends) t.ok((before.get(b.port) ?? 0) > 0, `backend ${b.port} is reached before the ejection`);
  t.notOk(before.get(0), 'no call fails before the ejection');

  const victim = backends[0]!;
  const applied = fx.mesh.apply({ action: 'eject', target: `hello/127.0.0.1:${victim.port}`, reason: 'operator', source: 'operator', at: Date.now(), evidence: {} });
  t.ok(applied.applied, 'the ejection is applied to the mesh');
  // Settle: wait until calls stop reaching the victim, then count over a long run.
  t.ok(await waitFor(async () => {
    const c = victim.calls;
    await distribution(client, 10);
    return victim.calls === c;
  }, 5000), 'the client stops calling the ejected endpoint');
  const callsAtEject = victim.calls;
  const after = await distribution(client, 90);
  t.equal(victim.calls, callsAtEject, 'no further call reaches the ejected endpoint');
  t.notOk(after.get(0), 'no call fails after the ejection');
  t.ok((after.get(backends[1]!.port) ?? 0) > 20 && (after.get(backends[2]!.port) ?? 0) > 20, 'the two others share the traffic');

  const metrics = await fx.metrics.metrics();
  t.match(metrics, /meshmedic_xds_streams\{mode="sotw"\} 1/, 'one SotW stream open (the grpc-js-xds client)');
  t.match(metrics, /meshmedic_xds_pushes_total\{type_url="type\.googleapis\.com\/envoy\.config\.endpoint\.v3\.ClusterLoadAssignment",result="ack"\} [2-9]/, 'the client ACKed the endpoint pushes');
  t.notMatch(metrics, /result="nack"/, 'and NACKed nothing');
  const st = (fx.routes.get('GET /v1/xds')!({} as never) as { body: { nodes: Record<string, { types: { typeUrl: string; state: string }[] }[]> } }).body;
  t.same(st.nodes['test-node']![0]!.types.map((x) => x.state), ['ACKED', 'ACKED', 'ACKED', 'ACKED'], 'every type ACKED in the status view');

  fx.mesh.apply({ action: 'restore', target: `hello/127.0.0.1:${victim.port}`, reason: 'operator', source: 'operator', at: Date.now(), evidence: {} });
  t.ok(await waitFor(async () => (await callOnce(client)) === victim.port, RESPONSE_GUARD_MS), 'the restored endpoint gets calls again');
});
