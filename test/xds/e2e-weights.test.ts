// End to end with the real grpc-js-xds client: a de-weighted endpoint (weight decision) gets a matching,
// smaller share of calls; restoring the weight evens the distribution again.
import t from 'tap';
import * as grpc from '@grpc/grpc-js';
import { register } from '@grpc/grpc-js-xds';
import { distribution, setBootstrap, startBackend, startXdsFixture, waitFor } from './helpers.js';

t.test('weights shift the call distribution within tolerance', async (t) => {
  const backends = await Promise.all([startBackend(), startBackend()]);
  const fx = await startXdsFixture({ shift: backends.map((b) => ({ port: b.port })) });
  setBootstrap(fx.address, 'weights-node');
  register();
  const client = new grpc.Client('xds:///shift', grpc.credentials.createInsecure());
  t.teardown(async () => {
    client.close();
    await fx.close();
    await Promise.all(backends.map((b) => b.close()));
  });
  const [a, b] = backends as [typeof backends[0], typeof backends[0]];
  const even = await distribution(client, 200);
  const shareA0 = (even.get(a.port) ?? 0) / 200;
  t.ok(shareA0 > 0.35 && shareA0 < 0.65, `equal weights split about evenly (A got ${(shareA0 * 100).toFixed(0)} %)`);

  // A de-weighted to 0.25: expected share 0.25 / 1.25 = 20 %.
  fx.mesh.apply({ action: 'weight', target: `shift/127.0.0.1:${a.port}`, weight: 0.25, reason: 'latency_peer', source: 'local', at: Date.now(), evidence: {} });
  t.ok(await waitFor(async () => {
    const d = await distribution(client, 100);
    return (d.get(a.port) ?? 0) < 32;
  }, 8000), 'the share of the de-weighted endpoint drops');
  const shifted = await distribution(client, 400);
  const shareA = (shifted.get(a.port) ?? 0) / 400;
  t.ok(shareA > 0.12 && shareA < 0.28, `de-weighted endpoint gets about 20 % (got ${(shareA * 100).toFixed(1)} %)`);
  t.notOk(shifted.get(0), 'no call fails');

  fx.mesh.apply({ action: 'weight', target: `shift/127.0.0.1:${a.port}`, weight: 1, reason: 'recovered', source: 'local', at: Date.now(), evidence: {} });
  t.ok(await waitFor(async () => {
    const d = await distribution(client, 100);
    return (d.get(a.port) ?? 0) > 38;
  }, 8000), 'restored weight evens the split again');
});
