// Pure resource builders: EDS health mapping, weights, localities and dense priorities, CDS outlier detection,
// weighted routes summing to 100, strict encoding; every proxyless resource is checked with the real
// grpc-js-xds client's own decoders/validators (the ones that decide ACK or NACK).
import t from 'tap';
import { createRequire } from 'node:module';
import { systemClock } from '../../src/core/clock.js';
import { MeshState, type ServiceView } from '../../src/mesh/state.js';
import { apportion, buildAll, buildClusterLoadAssignment, buildCluster, DEFAULT_BUILD_OPTIONS, ENVOY_OUTLIER_DEFAULTS, outlierSettingsFrom, routeAction, type BuildOptions } from '../../src/xds/resources.js';
import { encodeMessage, typeNameOf } from '../../src/xds/proto.js';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../../src/xds/types.js';
import { spec, type EndpointInput } from './helpers.js';

const require = createRequire(import.meta.url);
type Decoder = { get(): { decode(ctx: unknown, r: { type_url: string; value: Uint8Array }): { name: string; value?: unknown; error?: string } } };
const grpcXds = {
  [CLUSTER_TYPE]: (require('@grpc/grpc-js-xds/build/src/xds-resource-type/cluster-resource-type.js') as { ClusterResourceType: Decoder }).ClusterResourceType,
  [ENDPOINT_TYPE]: (require('@grpc/grpc-js-xds/build/src/xds-resource-type/endpoint-resource-type.js') as { EndpointResourceType: Decoder }).EndpointResourceType,
  [LISTENER_TYPE]: (require('@grpc/grpc-js-xds/build/src/xds-resource-type/listener-resource-type.js') as { ListenerResourceType: Decoder }).ListenerResourceType,
  [ROUTE_TYPE]: (require('@grpc/grpc-js-xds/build/src/xds-resource-type/route-config-resource-type.js') as { RouteConfigurationResourceType: Decoder }).RouteConfigurationResourceType,
};
// The router filter registers itself with the client's filter registry on setup (register() does it too).
(require('@grpc/grpc-js-xds/build/src/http-filter/router-filter.js') as { setup(): void }).setup();
const decoderContext = { server: { serverUri: '127.0.0.1:1', channelCreds: [], serverFeatures: ['xds_v3'] }, bootstrap: { certificateProviders: {}, node: { id: 'x' } } };

function serviceOf(name: string, eps: EndpointInput[], mutate?: (m: MeshState) => void, routing?: { panicThresholdPct?: number }): ServiceView {
  const m = new MeshState(systemClock);
  m.setServices([{ spec: { name, endpoints: eps.map((e) => spec(name, e)) }, ...(routing ? { routing } : {}) }]);
  mutate?.(m);
  return m.snapshot().services.get(name)!;
}
const decide = (m: MeshState, action: 'eject' | 'drain' | 'weight' | 'probation', port: number, weight?: number, svc = 's') =>
  m.apply({ action, target: `${svc}/127.0.0.1:${port}`, reason: 't', source: 'local', at: Date.now(), evidence: {}, ...(weight !== undefined ? { weight } : {}) });

type Cla = { endpoints: { priority: number; locality: { sub_zone: string; zone: string }; load_balancing_weight: { value: number }; lb_endpoints: { health_status: string; load_balancing_weight: { value: number }; endpoint: { address: { socket_address: { address: string; port_value: number } } } }[] }[] };
const envoyOpts: BuildOptions = { ...DEFAULT_BUILD_OPTIONS, flavor: 'envoy', endpointLocalities: false };

t.test('EDS maps health: ejected → UNHEALTHY, draining → DRAINING, degraded and probation → lower weights', async (t) => {
  const s = serviceOf('s', [{ port: 1001 }, { port: 1002 }, { port: 1003 }, { port: 1004 }, { port: 1005 }, { port: 1006, weight: 3 }], (m) => {
    decide(m, 'eject', 1001);
    decide(m, 'drain', 1002);
    decide(m, 'weight', 1003, 0.5);
    decide(m, 'probation', 1004, 0.05);
  });
  const cla = buildClusterLoadAssignment('s', s, s.endpoints, envoyOpts) as unknown as Cla;
  const byPort = new Map(cla.endpoints.flatMap((l) => l.lb_endpoints).map((e) => [e.endpoint.address.socket_address.port_value, e]));
  t.equal(byPort.get(1001)!.health_status, 'UNHEALTHY');
  t.equal(byPort.get(1002)!.health_status, 'DRAINING');
  t.equal(byPort.get(1003)!.load_balancing_weight.value, 50, 'degraded at 0.5 → half the weight');
  t.equal(byPort.get(1004)!.load_balancing_weight.value, 5, 'probation → a small weight');
  t.equal(byPort.get(1005)!.load_balancing_weight.value, 100, 'healthy → full weight');
  t.equal(byPort.get(1006)!.load_balancing_weight.value, 300, 'static weight is kept');
  t.equal(cla.endpoints.length, 1, 'envoy flavor: one locality');
  t.equal(cla.endpoints[0]!.load_balancing_weight.value, 50 + 5 + 100 + 300, 'locality weight = sum of serving endpoints');
  const removed = buildClusterLoadAssignment('s', s, s.endpoints, { ...envoyOpts, ejectedAs: 'remove' }) as unknown as Cla;
  t.notOk(removed.endpoints.flatMap((l) => l.lb_endpoints).some((e) => e.endpoint.address.socket_address.port_value === 1001), 'ejectedAs remove leaves the endpoint out');
});

t.test('priorities are renumbered densely; every locality has a weight; proxyless gets a sub-locality per endpoint', async (t) => {
  const s = serviceOf('s', [
    { port: 1001, priority: 2, locality: { region: 'r1', zone: 'a' } },
    { port: 1002, priority: 2, locality: { region: 'r1', zone: 'a' } },
    { port: 1003, priority: 7, locality: { region: 'r2', zone: 'b' } },
  ], (m) => {
    decide(m, 'eject', 1003);
  });
  const grpcCla = buildClusterLoadAssignment('s', s, s.endpoints, DEFAULT_BUILD_OPTIONS) as unknown as Cla;
  t.same([...new Set(grpcCla.endpoints.map((l) => l.priority))], [0, 1], 'priorities 2 and 7 become 0 and 1');
  t.ok(grpcCla.endpoints.every((l) => l.load_balancing_weight.value >= 1), 'every locality is weighted, an all-unhealthy one too');
  t.equal(new Set(grpcCla.endpoints.map((l) => l.locality.sub_zone)).size, 3, 'one sub-locality per endpoint for proxyless clients');
  const removed = buildClusterLoadAssignment('s', s, s.endpoints, { ...DEFAULT_BUILD_OPTIONS, ejectedAs: 'remove' }) as unknown as Cla;
  t.same([...new Set(removed.endpoints.map((l) => l.priority))], [0], 'a priority emptied by removal leaves no gap');
  const v6 = serviceOf('s', [{ port: 1001, host: '::1' }]);
  const cla6 = buildClusterLoadAssignment('s', v6, v6.endpoints, DEFAULT_BUILD_OPTIONS) as unknown as Cla;
  t.equal(cla6.endpoints[0]!.lb_endpoints[0]!.endpoint.address.socket_address.address, '::1', 'IPv6 literal as is');
});

t.test('in panic (too few healthy) health is ignored: fail open', async (t) => {
  const s = serviceOf('s', [{ port: 1001 }, { port: 1002 }, { port: 1003 }], (m) => {
    decide(m, 'eject', 1001);
    decide(m, 'eject', 1002);
  });
  t.ok(s.plan.panic, 'the mesh plan is in panic');
  const cla = buildClusterLoadAssignment('s', s, s.endpoints, envoyOpts) as unknown as Cla;
  t.ok(cla.endpoints.flatMap((l) => l.lb_endpoints).every((e) => e.health_status === 'HEALTHY'), 'every endpoint is offered');
});

t.test('CDS: EDS clusters over ADS; Envoy gets outlier_detection mirroring the healing config', async (t) => {
  const s = serviceOf('s', [{ port: 1001 }], undefined, { panicThresholdPct: 30 });
  const g = buildCluster('s', s, DEFAULT_BUILD_OPTIONS) as Record<string, unknown>;
  t.equal(g.type, 'EDS');
  t.notOk(g.outlier_detection, 'proxyless: meshmedic decides, no second detector in the client');
  const o = outlierSettingsFrom({ envoy: { consecutive5xx: 7 } }, { policy: 'envoy-default', envoy: { consecutive5xx: 3, baseEjectionTimeMs: 10_000, maxEjectionPercent: 50 } });
  t.equal(o.consecutive5xx, 3, 'the per-service layer wins over the mesh-wide one');
  t.equal(o.maxEjectionPercent, 50);
  t.equal(o.intervalMs, ENVOY_OUTLIER_DEFAULTS.intervalMs, 'unset fields keep Envoy’s defaults');
  t.equal(outlierSettingsFrom({ envoy: { consecutive5xx: 7 } }, { policy: 'envoy-default' }).consecutive5xx, 7, 'mesh-wide settings apply when the service sets none');
  const mm = outlierSettingsFrom({ policy: 'meshmedic', consecutive: { errors5xx: 4, gateway: 2 }, ejection: { maxEjectionPct: 30, alwaysEjectOne: true } });
  t.same([mm.consecutive5xx, mm.consecutiveGatewayFailure, mm.enforcingConsecutiveGatewayFailure, mm.maxEjectionPercent, mm.alwaysEjectOneHost], [4, 2, 100, 30, true], 'meshmedic policy: Envoy is set to what meshmedic enforces');
  const e = buildCluster('s', s, { ...envoyOpts, outlier: () => o }) as { outlier_detection: Record<string, { value: number; seconds?: number }>; common_lb_config: { healthy_panic_threshold: { value: number } } };
  t.equal(e.outlier_detection.consecutive_5xx!.value, 3);
  t.equal(e.outlier_detection.base_ejection_time!.seconds, 10);
  t.equal(e.outlier_detection.enforcing_consecutive_gateway_failure!.value, 0, 'gateway failures not enforced, as in Envoy');
  t.equal(e.common_lb_config.healthy_panic_threshold.value, 30, 'panic threshold from the service routing');
  t.doesNotThrow(() => encodeMessage('envoy.config.cluster.v3.Cluster', e as unknown as Record<string, unknown>), 'encodes against Envoy’s Cluster message');
});

t.test('weighted_clusters sum to 100 and follow health; apportion is exact', async (t) => {
  t.same(apportion([1, 1, 1]), [34, 33, 33]);
  t.same(apportion([0, 0], 100, [1, 3]), [25, 75], 'nothing serving → static weights (fail open)');
  t.equal(apportion([0.3, 7, 2.2, 11]).reduce((a, b) => a + b), 100);
  const eps = [{ port: 1001, labels: { version: 'v1' } }, { port: 1002, labels: { version: 'v1' } }, { port: 1003, labels: { version: 'v2' } }];
  const even = routeAction(serviceOf('s', eps), DEFAULT_BUILD_OPTIONS) as { weighted_clusters: { clusters: { name: string; weight: { value: number } }[] } };
  t.same(even.weighted_clusters.clusters.map((c) => [c.name, c.weight.value]), [['s|v1', 67], ['s|v2', 33]]);
  const shifted = routeAction(serviceOf('s', eps, (m) => decide(m, 'weight', 1003, 0.5)), DEFAULT_BUILD_OPTIONS) as typeof even;
  t.same(shifted.weighted_clusters.clusters.map((c) => c.weight.value), [80, 20], 'a degraded subset loses share');
  const gone = routeAction(serviceOf('s', eps, (m) => decide(m, 'eject', 1003)), DEFAULT_BUILD_OPTIONS) as typeof even;
  t.same(gone.weighted_clusters.clusters.map((c) => c.name), ['s|v1'], 'an empty subset is dropped from the route');
  t.same(routeAction(serviceOf('s', [{ port: 1 }]), DEFAULT_BUILD_OPTIONS), { cluster: 's' }, 'no subsets → one cluster');
});

t.test('encoding is strict: a misspelt field is reported with its path', async (t) => {
  t.throws(() => encodeMessage('envoy.config.cluster.v3.Cluster', { name: 'x', conect_timeout: { seconds: 1 } }), /conect_timeout: no such field/);
  t.throws(() => encodeMessage('envoy.config.listener.v3.Listener', { name: 'x', api_listener: { api_listener: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager', rdss: {} } } }), /api_listener\.api_listener\.rdss/);
});

t.test('the real grpc-js-xds decoders accept every proxyless resource (no NACK)', async (t) => {
  const svcs = [
    serviceOf('hello', [{ port: 1001, locality: { zone: 'a' } }, { port: 1002, priority: 4, locality: { zone: 'b' } }], (m) => decide(m, 'eject', 1001, undefined, 'hello')),
    serviceOf('split', [{ port: 2001, labels: { version: 'v1' } }, { port: 2002, labels: { version: 'v2' } }], (m) => decide(m, 'weight', 2002, 0.3, 'split')),
  ];
  const all = buildAll(svcs, DEFAULT_BUILD_OPTIONS);
  let checked = 0;
  for (const [type, byName] of all) {
    for (const [name, obj] of byName) {
      const value = encodeMessage(typeNameOf(type), obj);
      const r = grpcXds[type as keyof typeof grpcXds].get().decode(decoderContext, { type_url: type, value });
      t.notOk(r.error, `${typeNameOf(type)} ${name} is accepted${r.error ? `: ${r.error}` : ''}`);
      checked++;
    }
  }
  t.ok(checked >= 10, `${checked} resources checked`);
});
