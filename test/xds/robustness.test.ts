// Bad input never crashes the xDS server: malformed bytes, empty or unknown type URLs, a client that NACKs
// everything, huge name lists, too many streams, thousands of streams that connect and vanish.
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { adsClient, GRPC_NODE, RESPONSE_GUARD_MS, Scripted, startXdsFixture, waitFor, type SotwResponse, type XdsFixture } from './helpers.js';
import { CLUSTER_TYPE, ENDPOINT_TYPE } from '../../src/xds/types.js';

const SOTW_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
const DELTA_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources';

async function fixture(t: Test, xds: Record<string, unknown> = {}): Promise<XdsFixture> {
  const fx = await startXdsFixture({ a: [{ port: 18101 }, { port: 18102 }] }, xds);
  t.teardown(() => fx.close());
  return fx;
}

/** A raw bidi stream sending arbitrary bytes. */
function rawStream(client: grpc.Client, path: string) {
  const call = client.makeBidiStreamRequest(path, (x: Buffer) => x, (x: Buffer) => x);
  const done = new Promise<grpc.StatusObject>((res) => call.on('status', res));
  call.on('error', () => {});
  call.on('data', () => {});
  return { call, done };
}

async function stillServes(t: Test, fx: XdsFixture): Promise<void> {
  const c = adsClient(fx.address);
  const s = new Scripted<SotwResponse>(c.StreamAggregatedResources());
  s.send({ node: GRPC_NODE, type_url: CLUSTER_TYPE });
  const r = await s.next();
  t.equal(r.type_url, CLUSTER_TYPE, 'the server still answers a well-formed stream');
  s.close();
  c.close();
}

const streamsGauge = async (fx: XdsFixture) => {
  const m = await fx.metrics.getSingleMetric('meshmedic_xds_streams')!.get();
  return m.values.reduce((a, v) => a + v.value, 0);
};

t.test('malformed bytes and random bytes end the stream with INVALID_ARGUMENT, never a crash', async (t) => {
  const fx = await fixture(t);
  const client = new grpc.Client(fx.address, grpc.credentials.createInsecure());
  t.teardown(() => client.close());
  const bad = rawStream(client, SOTW_PATH);
  bad.call.write(Buffer.from([0x0f])); // field 1 with wire type 7, which does not exist
  const st = await bad.done;
  t.equal(st.code, grpc.status.INVALID_ARGUMENT, 'truncated message → INVALID_ARGUMENT');
  t.match(st.details, /does not decode/, `with a message saying what was wrong (${st.details})`);
  const codes = new Set<number>();
  for (let i = 0; i < 60; i++) {
    const s = rawStream(client, i % 2 ? SOTW_PATH : DELTA_PATH);
    s.call.write(randomBytes(1 + (i * 37) % 300));
    s.call.end();
    codes.add((await s.done).code);
  }
  t.ok([...codes].every((c) => c === grpc.status.OK || c === grpc.status.INVALID_ARGUMENT || c === grpc.status.RESOURCE_EXHAUSTED), `random bytes give clean statuses (${[...codes].join(',')})`);
  await stillServes(t, fx);
});

t.test('empty type URL is refused; an unknown type URL is parked while others are served', async (t) => {
  const fx = await fixture(t);
  const c = adsClient(fx.address);
  t.teardown(() => c.close());
  const s = new Scripted<SotwResponse>(c.StreamAggregatedResources());
  s.send({ node: GRPC_NODE, type_url: '' });
  const st = await s.ended();
  t.equal(st?.code, grpc.status.INVALID_ARGUMENT, 'empty type_url → INVALID_ARGUMENT');
  const p = new Scripted<SotwResponse>(c.StreamAggregatedResources());
  p.send({ node: GRPC_NODE, type_url: 'type.googleapis.com/no.such.Type', resource_names: ['x'] });
  t.ok(await p.silent(200), 'an unknown type gets no answer (parked watch)');
  p.send({ type_url: CLUSTER_TYPE });
  t.equal((await p.next()).type_url, CLUSTER_TYPE, 'the same stream still gets known types');
  p.close();
  const metrics = await fx.metrics.getSingleMetricAsString('meshmedic_xds_refused_requests_total');
  t.match(metrics, /reason="unknown_type"\} 1/, 'the parked request is counted');
});

t.test('a client that NACKs everything causes no NACK loop, even while the mesh changes', async (t) => {
  const fx = await fixture(t);
  const c = adsClient(fx.address);
  t.teardown(() => c.close());
  const s = new Scripted<SotwResponse>(c.StreamAggregatedResources());
  let responses = 0;
  s.call.on('data', (r: SotwResponse) => {
    responses++;
    s.send({ type_url: r.type_url, resource_names: r.type_url === ENDPOINT_TYPE ? ['a'] : [], version_info: r.version_info, response_nonce: r.nonce, error_detail: { code: 3, message: 'I reject everything' } });
  });
  const nacks = async () => (await fx.metrics.getSingleMetric('meshmedic_xds_pushes_total')!.get()).values.filter((v) => v.labels.result === 'nack').reduce((a, v) => a + v.value, 0);
  s.send({ node: GRPC_NODE, type_url: CLUSTER_TYPE });
  s.send({ node: GRPC_NODE, type_url: ENDPOINT_TYPE, resource_names: ['a'] });
  // Wait for both answers and for the server to have recorded both NACKs; only then is silence meaningful.
  t.ok(await waitFor(async () => responses >= 2 && (await nacks()) >= 2, RESPONSE_GUARD_MS), 'both types answered and NACKed');
  const quiet = async (ms: number) => { const b = responses; await new Promise((r) => setTimeout(r, ms)); return responses === b; };
  t.ok(await quiet(300), 'then silence: a NACK does not trigger a resend');
  t.equal(responses, 2, 'without changes: one response per type');
  const changes = 10;
  for (let i = 0; i < changes; i++) {
    const before = responses;
    fx.mesh.apply({ action: i % 2 ? 'restore' : 'eject', target: 'a/127.0.0.1:18101', reason: 'flap', source: 'operator', at: Date.now(), evidence: {} });
    t.ok(await waitFor(() => responses > before, RESPONSE_GUARD_MS), `change ${i + 1} answered`);
  }
  t.ok(await quiet(300), 'then silence again');
  t.ok(responses <= 2 + changes, `with ${changes} changes: at most one response per change (${responses})`);
  s.close();
});

t.test('huge resource-name lists and too many streams get RESOURCE_EXHAUSTED', async (t) => {
  const fx = await fixture(t, { limits: { maxNamesPerRequest: 100, maxStreams: 5 } });
  const c = adsClient(fx.address);
  t.teardown(() => c.close());
  const s = new Scripted<SotwResponse>(c.StreamAggregatedResources());
  s.send({ node: GRPC_NODE, type_url: ENDPOINT_TYPE, resource_names: Array.from({ length: 5000 }, (_, i) => `svc-${i}`) });
  const st = await s.ended();
  t.equal(st?.code, grpc.status.RESOURCE_EXHAUSTED, '5,000 names over a limit of 100 → RESOURCE_EXHAUSTED');
  t.match(st?.details, /maxNamesPerRequest/, 'the message names the limit to raise');
  const open: Scripted<SotwResponse>[] = [];
  for (let i = 0; i < 5; i++) {
    const x = new Scripted<SotwResponse>(c.StreamAggregatedResources());
    x.send({ node: GRPC_NODE, type_url: CLUSTER_TYPE });
    await x.next();
    open.push(x);
  }
  const sixth = new Scripted<SotwResponse>(c.StreamAggregatedResources());
  sixth.send({ node: GRPC_NODE, type_url: CLUSTER_TYPE });
  t.equal((await sixth.ended())?.code, grpc.status.RESOURCE_EXHAUSTED, 'the stream over maxStreams is refused');
  for (const x of open) x.close();
  t.ok(await waitFor(async () => (await streamsGauge(fx)) === 0, RESPONSE_GUARD_MS), 'closed streams are released');
  await stillServes(t, fx);
});

t.test('thousands of streams that connect and vanish leave nothing behind', async (t) => {
  const fx = await fixture(t);
  const clients = Array.from({ length: 4 }, () => adsClient(fx.address));
  t.teardown(() => clients.forEach((c) => c.close()));
  const heapBefore = process.memoryUsage().heapUsed;
  const total = 1000;
  for (let batch = 0; batch < total / 100; batch++) {
    const streams = Array.from({ length: 100 }, (_, i) => {
      const c = clients[i % clients.length]!;
      const s = new Scripted<SotwResponse>(i % 2 ? (c.DeltaAggregatedResources() as never) : c.StreamAggregatedResources());
      s.send(i % 2 ? { node: GRPC_NODE, type_url: CLUSTER_TYPE, resource_names_subscribe: ['a'] } : { node: GRPC_NODE, type_url: CLUSTER_TYPE });
      return s;
    });
    await Promise.all(streams.slice(0, 20).map((s, i) => s.next(10_000).catch((e) => { console.error('stream', i, JSON.stringify(s.status), s.error?.message); throw e; })));
    for (const s of streams) s.close();
  }
  t.ok(await waitFor(async () => (await streamsGauge(fx)) === 0, 10_000, 50), `all ${total} streams are released`);
  const st = fx.routes.get('GET /v1/xds')!({} as never) as { body: { nodes: object; streams: { sotw: number; delta: number } } };
  t.same(st.body.streams, { sotw: 0, delta: 0 }, 'the status shows no stream left');
  const growth = (process.memoryUsage().heapUsed - heapBefore) / 1e6;
  t.ok(growth < 150, `heap growth stays bounded (${growth.toFixed(1)} MB for ${total} streams, client side included)`);
  await stillServes(t, fx);
});

t.test('a flood of streams opened and reset at once costs the flooding connection, not the server', async (t) => {
  const fx = await fixture(t);
  const clients = Array.from({ length: 2 }, () => adsClient(fx.address));
  t.teardown(() => clients.forEach((c) => c.close()));
  // 2 × 1,000 streams opened and cancelled without waiting: Node's HTTP/2 layer may close such a
  // connection (rapid-reset protection); either way every stream is released and others are served.
  for (const c of clients) {
    const streams = Array.from({ length: 1000 }, () => new Scripted<SotwResponse>(c.StreamAggregatedResources()));
    for (const s of streams) s.send({ node: GRPC_NODE, type_url: CLUSTER_TYPE });
    await new Promise((r) => setTimeout(r, 20));
    for (const s of streams) s.close();
  }
  t.ok(await waitFor(async () => (await streamsGauge(fx)) === 0, 15_000, 50), 'every stream is released');
  await stillServes(t, fx);
});
