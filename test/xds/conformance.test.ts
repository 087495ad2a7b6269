// The 15-point xDS server conformance checklist, one subtest per point, with a scripted raw ADS client
// (@grpc/grpc-js on the proto-loader definition of Envoy's protos) against the real server.
import t, { type Test } from 'tap';
import { adsClient, decodeResources, ENVOY_NODE, GRPC_NODE, Scripted, spec, startXdsFixture, type DeltaResponse, type SotwResponse, type XdsFixture } from './helpers.js';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../../src/xds/types.js';
import type { ServiceInput } from '../../src/mesh/state.js';

const A = [{ port: 18001 }, { port: 18002 }];
const B = [{ port: 18003 }];

async function fixture(t: Test): Promise<XdsFixture> {
  const fx = await startXdsFixture({ a: A, b: B });
  t.teardown(() => fx.close());
  return fx;
}

function services(extra: Record<string, { port: number; labels?: Record<string, string> }[]> = {}, routing?: Partial<ServiceInput['routing']>): ServiceInput[] {
  const all = { a: A, b: B, ...extra } as Record<string, { port: number; labels?: Record<string, string> }[]>;
  return Object.entries(all).map(([name, eps]) => ({ spec: { name, endpoints: eps.map((e) => spec(name, e)) }, ...(routing ? { routing } : {}) }));
}

function sotw(t: Test, fx: XdsFixture): Scripted<SotwResponse> {
  const client = adsClient(fx.address);
  const s = new Scripted<SotwResponse>(client.StreamAggregatedResources());
  t.teardown(() => {
    s.close();
    client.close();
  });
  return s;
}

function delta(t: Test, fx: XdsFixture): Scripted<DeltaResponse> {
  const client = adsClient(fx.address);
  const s = new Scripted<DeltaResponse>(client.DeltaAggregatedResources());
  t.teardown(() => {
    s.close();
    client.close();
  });
  return s;
}

const names = (r: SotwResponse) => decodeResources(r).map((x) => (x.name ?? x.cluster_name) as string).sort();
const eject = (fx: XdsFixture, port: number, svc = 'a') => fx.mesh.apply({ action: 'eject', target: `${svc}/127.0.0.1:${port}`, reason: 'test', source: 'operator', at: Date.now(), evidence: {} });
const xdsStatus = (fx: XdsFixture) => (fx.routes.get('GET /v1/xds')!({} as never) as { body: { nodes: Record<string, { types: { typeUrl: string; state: string; nacks: number; error?: string }[] }[]> } }).body;

t.test('1: nonces are unique per stream and type; a SotW request with a stale nonce is ignored', async (t) => {
  const fx = await fixture(t);
  const s = sotw(t, fx);
  s.send({ node: GRPC_NODE, type_url: CLUSTER_TYPE });
  const c = await s.next();
  s.send({ type_url: ENDPOINT_TYPE, resource_names: ['a'] });
  const e1 = await s.next();
  t.not(c.nonce, e1.nonce, 'different types get different nonces');
  s.send({ type_url: ENDPOINT_TYPE, resource_names: ['a'], response_nonce: e1.nonce, version_info: e1.version_info });
  eject(fx, 18001);
  const e2 = await s.next();
  t.not(e2.nonce, e1.nonce, 'each response of a type gets a new nonce');
  s.send({ type_url: ENDPOINT_TYPE, resource_names: ['a', 'b'], response_nonce: e1.nonce, version_info: e1.version_info });
  t.ok(await s.silent(250), 'a request carrying a stale nonce is ignored');
  s.send({ type_url: ENDPOINT_TYPE, resource_names: ['a', 'b'], response_nonce: e2.nonce, version_info: e2.version_info });
  const e3 = await s.next();
  t.same(names(e3), ['b'], 'the same request with the current nonce is honoured (the new name is sent)');
});

t.test('2: Delta subscription changes are honoured even with a stale nonce', async (t) => {
  const fx = await fixture(t);
  const d = delta(t, fx);
  d.send({ node: GRPC_NODE, type_url: ENDPOINT_TYPE, resource_names_subscribe: ['a'] });
  const r1 = await d.next();
  t.same(r1.resources.map((r) => r.name), ['a']);
  d.send({ type_url: ENDPOINT_TYPE, resource_names_subscribe: ['b'], response_nonce: 'stale-nonce' });
  const r2 = await d.next();
  t.same(r2.resources.map((r) => r.name), ['b'], 'the new subscription is answered despite the stale nonce');
});

t.test('3: a NACK is recognised by error_detail, not by comparing versions', async (t) => {
  const fx = await fixture(t);
  const s = sotw(t, fx);
  s.send({ node: GRPC_NODE, type_url: CLUSTER_TYPE });
  const c = await s.next();
  // grpc clients NACK with the version they rejected, i.e. the new one.
  s.send({ type_url: CLUSTER_TYPE, version_info: c.version_info, response_nonce: c.nonce, error_detail: { code: 3, message: 'cluster a: rejected for the test' } });
  await s.silent(100);
  const st = xdsStatus(fx).nodes['raw-node']![0]!.types.find((x) => x.typeUrl === CLUSTER_TYPE)!;
  t.equal(st.state, 'NACKED', 'the status shows the NACK');
  t.match(st.error, /rejected for the test/, 'with the client’s error text');
  const one = (fx.routes.get('GET /v1/xds')!({ query: new URLSearchParams('node=nobody') } as never) as { body: { nodes: object } }).body;
  t.same(one.nodes, {}, '?node= selects one node id');
  const metrics = await fx.metrics.getSingleMetricAsString('meshmedic_xds_pushes_total');
  t.match(metrics, /result="nack"\} 1/, 'the NACK is counted');
});

t.test('4: after a NACK the rejected version is not resent until the config changes', async (t) => {
  const fx = await fixture(t);
  const s = sotw(t, fx);
  s.send({ node: GRPC_NODE, type_url: ENDPOINT_TYPE, resource_names: ['a'] });
  const e = await s.next();
  for (let i = 0; i < 3; i++) s.send({ type_url: ENDPOINT_TYPE, resource_names: ['a'], version_info: '', response_nonce: e.nonce, error_detail: { code: 3, message: 'no' } });
  t.ok(await s.silent(300), 'no resend of the NACKed version (no NACK loop)');
  eject(fx, 18002);
  const e2 = await s.next();
  t.not(e2.version_info, e.version_info, 'a config change is sent with a new version');
});

t.test('5: versions are per type', async (t) => {
  const fx = await fixture(t);
  const s = sotw(t, fx);
  s.send({ node: GRPC_NODE, type_url: CLUSTER_TYPE });
  const c = await s.next();
  s.send({ type_url: CLUSTER_TYPE, version_info: c.version_info, response_nonce: c.nonce });
  s.send({ type_url: ENDPOINT_TYPE, resource_names: ['a'] });
  const e = await s.next();
  s.send({ type_url: ENDPOINT_TYPE, resource_names: ['a'], version_info: e.version_info, response_nonce: e.nonce });
  t.not(c.version_info, e.version_info, 'clusters and endpoints have their own versions');
  eject(fx, 18001);
  const e2 = await s.next();
  t.equal(e2.type_url, ENDPOINT_TYPE, 'an endpoint change bumps only the endpoint type');
  t.ok(await s.silent(200), 'the cluster type is not re-sent');
});

t.test('6: nothing is sent when nothing changed', async (t) => {
  const fx = await fixture(t);
  const s = sotw(t, fx);
  s.send({ node: GRPC_NODE, type_url: CLUSTER_TYPE });
  const c = await s.next();
  s.send({ type_url: CLUSTER_TYPE, version_info: c.version_info, response_nonce: c.nonce });
  s.send({ type_url: ENDPOINT_TYPE, resource_names: ['a', 'b'] });
  const e = await s.next();
  s.send({ type_url: ENDPOINT_TYPE, resource_names: ['a', 'b'], version_info: e.version_info, response_nonce: e.nonce });
  fx.mesh.setServices(services()); // a new mesh snapshot with identical content
  fx.mesh.apply({ action: 'restore', target: 'a/127.0.0.1:18001', reason: 'noop', source: 'operator', at: Date.now(), evidence: {} });
  t.ok(await s.silent(300), 'an identical snapshot produces no response');
  const d = delta(t, fx);
  d.send({ node: GRPC_NODE, type_url: ENDPOINT_TYPE, resource_names_subscribe: ['a'] });
  const r = await d.next();
  d.send({ type_url: ENDPOINT_TYPE, response_nonce: r.nonce });
  eject(fx, 18003, 'b');
  t.ok(await d.silent(300), 'Delta: a change to an unsubscribed resource sends nothing');
});

t.test('7: newly requested names are sent even if unchanged', async (t) => {
  const fx = await fixture(t);
  const s = sotw(t, fx);
  s.send({ node: GRPC_NODE, type_url: ENDPOINT_TYPE, resource_names: ['a'] });
  const e = await s.next();
  s.send({ type_url: ENDPOINT_TYPE, resource_names: ['a', 'b'], version_info: e.version_info, response_nonce: e.nonce });
  const e2 = await s.next();
  t.same(names(e2), ['b'], 'the newly requested name is sent (EDS omits what did not change)');
  t.equal(e2.version_info, e.version_info, 'although nothing changed');
});

t.test('8: requested names that do not exist yet are remembered and pushed when they appear', async (t) => {
  const fx = await fixture(t);
  const s = sotw(t, fx);
  s.send({ node: GRPC_NODE, type_url: ENDPOINT_TYPE, resource_names: ['a', 'c'] });
  const e = await s.next();
  t.same(names(e), ['a'], 'only existing names are sent');
  s.send({ type_url: ENDPOINT_TYPE, resource_names: ['a', 'c'], version_info: e.version_info, response_nonce: e.nonce });
  fx.mesh.setServices(services({ c: [{ port: 18009 }] }));
  const e2 = await s.next();
  t.ok(names(e2).includes('c'), 'the new service is pushed to the waiting subscriber');
});

t.test('9: LDS and CDS are full state: an absent resource is a deleted one', async (t) => {
  const fx = await fixture(t);
  const s = sotw(t, fx);
  s.send({ node: GRPC_NODE, type_url: CLUSTER_TYPE });
  const c = await s.next();
  t.same(names(c), ['a', 'b']);
  s.send({ type_url: CLUSTER_TYPE, version_info: c.version_info, response_nonce: c.nonce });
  s.send({ type_url: LISTENER_TYPE });
  const l = await s.next();
  t.same(names(l), ['a', 'b']);
  s.send({ type_url: LISTENER_TYPE, version_info: l.version_info, response_nonce: l.nonce });
  fx.mesh.setServices(services().filter((x) => x.spec.name === 'a'));
  const c2 = await s.next();
  t.equal(c2.type_url, CLUSTER_TYPE);
  t.same(names(c2), ['a'], 'the cluster response lists every remaining cluster, without b');
  const l2 = await s.next();
  t.equal(l2.type_url, LISTENER_TYPE);
  t.same(names(l2), ['a'], 'the listener response too');
});

t.test('10: legacy wildcard and explicit * behave as specified', async (t) => {
  const fx = await fixture(t);
  const s = sotw(t, fx);
  s.send({ node: GRPC_NODE, type_url: CLUSTER_TYPE });
  t.same(names(await s.next()), ['a', 'b'], 'SotW: a first request without names is a wildcard');
  const s2 = sotw(t, fx);
  s2.send({ node: GRPC_NODE, type_url: LISTENER_TYPE, resource_names: ['a'] });
  const l = await s2.next();
  t.same(names(l), ['a'], 'SotW: named request gets only that name');
  s2.send({ type_url: LISTENER_TYPE, resource_names: ['*', 'a'], version_info: l.version_info, response_nonce: l.nonce });
  t.same(names(await s2.next()), ['a', 'b'], 'SotW: explicit * adds the wildcard');
  const d = delta(t, fx);
  d.send({ node: GRPC_NODE, type_url: CLUSTER_TYPE });
  t.same((await d.next()).resources.map((r) => r.name).sort(), ['a', 'b'], 'Delta: first request without names is a wildcard');
  const d2 = delta(t, fx);
  d2.send({ node: GRPC_NODE, type_url: CLUSTER_TYPE, resource_names_subscribe: ['a'] });
  const r = await d2.next();
  t.same(r.resources.map((x) => x.name), ['a'], 'Delta: a named first request is not a wildcard');
  d2.send({ type_url: CLUSTER_TYPE, resource_names_subscribe: ['*'], response_nonce: r.nonce });
  t.same((await d2.next()).resources.map((x) => x.name), ['b'], 'Delta: subscribing * adds the rest');
});

t.test('11: Delta answers every subscribed name, missing ones in removed_resources; unknown unsubscribes are ignored', async (t) => {
  const fx = await fixture(t);
  const d = delta(t, fx);
  d.send({ node: GRPC_NODE, type_url: ENDPOINT_TYPE, resource_names_subscribe: ['a', 'zz'] });
  const r = await d.next();
  t.same(r.resources.map((x) => x.name), ['a']);
  t.same(r.removed_resources, ['zz'], 'the missing name is answered in removed_resources');
  d.send({ type_url: ENDPOINT_TYPE, resource_names_unsubscribe: ['never-subscribed'], response_nonce: r.nonce });
  t.ok(await d.silent(200), 'an unknown unsubscribe is ignored');
  eject(fx, 18001);
  const r2 = await d.next();
  t.same(r2.resources.map((x) => x.name), ['a'], 'the stream keeps working');
  fx.mesh.setServices(services().filter((x) => x.spec.name === 'b'));
  d.send({ type_url: ENDPOINT_TYPE, response_nonce: r2.nonce });
  const r3 = await d.next();
  t.same(r3.removed_resources, ['a'], 'a deleted resource is reported removed');
});

t.test('12: Delta initial_resource_versions are respected on reconnect', async (t) => {
  const fx = await fixture(t);
  const d = delta(t, fx);
  d.send({ node: GRPC_NODE, type_url: ENDPOINT_TYPE, resource_names_subscribe: ['a', 'b'] });
  const r = await d.next();
  const va = r.resources.find((x) => x.name === 'a')!.version;
  d.close();
  const d2 = delta(t, fx);
  d2.send({ node: GRPC_NODE, type_url: ENDPOINT_TYPE, resource_names_subscribe: ['a', 'b'], initial_resource_versions: { a: va, b: 'outdated' } });
  const r2 = await d2.next();
  t.same(r2.resources.map((x) => x.name), ['b'], 'only the resource whose version differs is sent');
  const d3 = delta(t, fx);
  d3.send({ node: GRPC_NODE, type_url: ENDPOINT_TYPE, initial_resource_versions: { a: va, gone: 'v1' } });
  const r3 = await d3.next();
  t.same(r3.resources.map((x) => x.name), ['b'], 'wildcard reconnect: a is current and not resent');
  t.same(r3.removed_resources, ['gone'], 'a resource the client has that no longer exists is removed');
});

t.test('13: ADS order clusters → endpoints → listeners → routes; endpoints resent after their cluster changes', async (t) => {
  const fx = await fixture(t);
  const s = sotw(t, fx);
  const acked = new Map<string, SotwResponse>();
  const sub = async (type: string, names: string[]) => {
    s.send({ node: ENVOY_NODE, type_url: type, resource_names: names });
    const r = await s.next();
    t.equal(r.type_url, type);
    s.send({ type_url: type, resource_names: names, version_info: r.version_info, response_nonce: r.nonce });
    acked.set(type, r);
  };
  await sub(CLUSTER_TYPE, []);
  await sub(ENDPOINT_TYPE, ['a']);
  await sub(LISTENER_TYPE, []);
  await sub(ROUTE_TYPE, ['meshmedic_outbound']);
  // Change cluster a (panic threshold), endpoints stay the same, and the route (subsets → weighted clusters).
  fx.mesh.setServices(services({ a: [{ port: 18001, labels: { version: 'v1' } }, { port: 18002, labels: { version: 'v2' } }] }, { panicThresholdPct: 30 }));
  const order: string[] = [];
  for (let i = 0; i < 3; i++) order.push((await s.next()).type_url);
  t.same(order, [CLUSTER_TYPE, ENDPOINT_TYPE, ROUTE_TYPE], 'pushed in ADS order; the unchanged listener is not sent');
  t.ok(await s.silent(200), 'nothing else');
});

t.test('14: no duplicate names in a response; every Any has the response type', async (t) => {
  const fx = await fixture(t);
  const s = sotw(t, fx);
  s.send({ node: GRPC_NODE, type_url: ENDPOINT_TYPE, resource_names: ['a', 'a', 'b', 'b'] });
  const e = await s.next();
  t.same(names(e), ['a', 'b'], 'each name once');
  for (const type of [CLUSTER_TYPE, LISTENER_TYPE, ROUTE_TYPE]) {
    s.send({ type_url: type, resource_names: type === ROUTE_TYPE ? ['a', 'b'] : [] });
    const r = await s.next();
    t.ok(r.resources.length > 0 && r.resources.every((x) => x.type_url === type), `every resource in a ${type.split('.').pop()} response is of that type`);
  }
});

t.test('15: node only on the first request; a client may resume on another server', async (t) => {
  const fx = await fixture(t);
  const s = sotw(t, fx);
  s.send({ node: ENVOY_NODE, type_url: CLUSTER_TYPE });
  const c = await s.next();
  s.send({ type_url: LISTENER_TYPE });
  const l = await s.next();
  t.same(names(l), ['meshmedic_outbound'], 'later requests without node keep the first request’s identity (Envoy flavor)');
  // Another server with the same mesh: the client resumes with its version and the old stream's nonce.
  const other = await startXdsFixture({ a: A, b: B });
  t.teardown(() => other.close());
  const s2 = sotw(t, other);
  s2.send({ node: ENVOY_NODE, type_url: CLUSTER_TYPE, version_info: c.version_info, response_nonce: c.nonce });
  const c2 = await s2.next();
  t.same(names(c2), names(c), 'the resumed stream is answered with the same clusters');
  t.equal(c2.version_info, c.version_info, 'content-derived versions agree across servers');
});


t.test('SotW endpoints and routes: a response carries only what changed (omitted = unchanged)', async (t) => {
  const fx = await fixture(t);
  const s = sotw(t, fx);
  s.send({ node: GRPC_NODE, type_url: ENDPOINT_TYPE, resource_names: ['a', 'b'] });
  const e = await s.next();
  t.same(names(e), ['a', 'b']);
  s.send({ type_url: ENDPOINT_TYPE, resource_names: ['a', 'b'], version_info: e.version_info, response_nonce: e.nonce });
  eject(fx, 18003, 'b');
  const e2 = await s.next();
  t.same(names(e2), ['b'], 'only the changed assignment is sent');
  t.not(e2.version_info, e.version_info);
});

t.test('13 (Delta): pushes in ADS order, endpoints resent after their cluster changes', async (t) => {
  const fx = await fixture(t);
  const d = delta(t, fx);
  const sub = async (type: string, names: string[]) => {
    d.send({ node: ENVOY_NODE, type_url: type, resource_names_subscribe: names });
    const r = await d.next();
    t.equal(r.type_url, type);
    d.send({ type_url: type, response_nonce: r.nonce });
  };
  await sub(CLUSTER_TYPE, ['*']);
  await sub(ENDPOINT_TYPE, ['a']);
  await sub(LISTENER_TYPE, ['*']);
  await sub(ROUTE_TYPE, ['meshmedic_outbound']);
  fx.mesh.setServices(services({ a: [{ port: 18001, labels: { version: 'v1' } }, { port: 18002, labels: { version: 'v2' } }] }, { panicThresholdPct: 30 }));
  const got: DeltaResponse[] = [];
  for (let i = 0; i < 3; i++) got.push(await d.next());
  t.same(got.map((r) => r.type_url), [CLUSTER_TYPE, ENDPOINT_TYPE, ROUTE_TYPE], 'clusters, then endpoints, then routes');
  t.same(got[0]!.resources.map((r) => r.name).sort(), ['a', 'a|v1', 'a|v2', 'b'], 'the changed clusters (both got the new panic threshold) and the new subset clusters');
  t.same(got[1]!.resources.map((r) => r.name), ['a'], 'the unchanged assignment of the changed cluster is resent');
  t.ok(await d.silent(200), 'nothing else');
});
