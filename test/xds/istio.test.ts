// Istio output: rendered DestinationRule/VirtualService YAML checked against @kubernetes-models/istio
// schemas and typed in TypeScript; failover and weights follow the mesh; MCP-over-xDS serves them to istiod.
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import { DestinationRule, type IDestinationRule } from '@kubernetes-models/istio/networking.istio.io/v1beta1/DestinationRule';
import { VirtualService } from '@kubernetes-models/istio/networking.istio.io/v1beta1/VirtualService';
import { systemClock } from '../../src/core/clock.js';
import { validateConfig } from '../../src/config/load.js';
import { MeshState } from '../../src/mesh/state.js';
import { DEFAULT_ISTIO_OPTIONS, renderIstio } from '../../src/xds/istio.js';
import { decodeMessage } from '../../src/xds/proto.js';
import { adsClient, GRPC_NODE, Scripted, spec, startXdsFixture, type EndpointInput, type SotwResponse } from './helpers.js';
import { MCP_RESOURCE_TYPE } from '../../src/xds/types.js';

function mesh(services: Record<string, EndpointInput[]>): MeshState {
  const m = new MeshState(systemClock);
  m.setServices(Object.entries(services).map(([name, eps]) => ({ spec: { name, endpoints: eps.map((e) => spec(name, e)) } })));
  return m;
}

const WITH_VS = { ...DEFAULT_ISTIO_OPTIONS, virtualServices: true };

const docsOf = (yaml: string) => parseAllDocuments(yaml).map((d) => d.toJSON() as { kind: string; metadata: { name: string }; spec: Record<string, unknown> });

t.test('render istio: valid DestinationRule and VirtualService for every service', async (t) => {
  const m = mesh({
    api: [
      { port: 1001, priority: 0, locality: { region: 'eu-west', zone: 'a' } },
      { port: 1002, priority: 1, locality: { region: 'eu-central', zone: 'b' } },
    ],
    web: [{ port: 2001, locality: { region: 'eu-west', zone: 'a' } }],
  });
  const v = validateConfig({ services: [{ name: 'api', endpoints: [{ address: '127.0.0.1:1001' }], healing: { policy: 'meshmedic' } }], xds: { istio: { virtualServices: true } } });
  t.ok(v.valid);
  const yaml = renderIstio(m.snapshot(), v.valid ? v.result : DEFAULT_ISTIO_OPTIONS);
  const docs = docsOf(yaml);
  t.same(docs.map((d) => `${d.kind}/${d.metadata.name}`), ['DestinationRule/meshmedic-api', 'VirtualService/meshmedic-api', 'DestinationRule/meshmedic-web', 'VirtualService/meshmedic-web']);
  for (const d of docs) {
    t.doesNotThrow(() => (d.kind === 'DestinationRule' ? new DestinationRule(d as never) : new VirtualService(d as never)).validate(), `${d.kind} ${d.metadata.name} passes the schema`);
  }
  const api = docs[0]!.spec as NonNullable<IDestinationRule['spec']>;
  t.same(api.trafficPolicy?.outlierDetection, { consecutive5xxErrors: 5, consecutiveGatewayErrors: 5, interval: '10s', baseEjectionTime: '10s', maxEjectionPercent: 50, minHealthPercent: 50 }, 'outlier detection mirrors the meshmedic policy’s settings');
  t.same(api.trafficPolicy?.loadBalancer?.localityLbSetting, { enabled: true, failover: [{ from: 'eu-west', to: 'eu-central' }] }, 'priorities across regions become failover pairs');
  t.notOk(api.trafficPolicy?.loadBalancer?.simple, 'no load-balancing policy forced over the mesh\'s own');
  const web = docs[2]!.spec as NonNullable<IDestinationRule['spec']>;
  t.same(web.trafficPolicy?.loadBalancer?.localityLbSetting?.failoverPriority, ['topology.kubernetes.io/region', 'topology.kubernetes.io/zone'], 'single priority → failoverPriority labels');
});

t.test('by default only DestinationRules, merge-friendly: no VirtualService, no forced load balancer', async (t) => {
  const m = mesh({ api: [{ port: 1001, labels: { version: 'v1' } }, { port: 1002, labels: { version: 'v2' } }] });
  const v = validateConfig({});
  t.ok(v.valid);
  if (!v.valid) return;
  t.equal(v.result.xds.istio.virtualServices, false, 'virtualServices is off by default');
  const docs = docsOf(renderIstio(m.snapshot(), v.result));
  t.same(docs.map((d) => `${d.kind}/${d.metadata.name}`), ['DestinationRule/meshmedic-api']);
  const lb = (docs[0]!.spec as NonNullable<IDestinationRule['spec']>).trafficPolicy?.loadBalancer;
  t.same(Object.keys(lb ?? {}), ['localityLbSetting'], 'only locality failover: the simple policy stays Istio\'s (or the team\'s)');
  t.doesNotThrow(() => new DestinationRule(docs[0] as never).validate());
});

t.test('VirtualService weights sum to 100 and follow health', async (t) => {
  const m = mesh({ shop: [{ port: 1, labels: { version: 'v1' } }, { port: 2, labels: { version: 'v2' } }, { port: 3, labels: { version: 'v2' } }] });
  const weights = () => {
    const vs = docsOf(renderIstio(m.snapshot(), WITH_VS))[1]!;
    const http = (vs.spec.http as { route: { destination: { subset: string }; weight: number }[] }[])[0]!;
    return Object.fromEntries(http.route.map((r) => [r.destination.subset, r.weight]));
  };
  t.same(weights(), { v1: 33, v2: 67 });
  m.apply({ action: 'eject', target: 'shop/127.0.0.1:2', reason: 't', source: 'local', at: Date.now(), evidence: {} });
  m.apply({ action: 'weight', target: 'shop/127.0.0.1:3', weight: 0.5, reason: 't', source: 'local', at: Date.now(), evidence: {} });
  t.same(weights(), { v1: 67, v2: 33 }, 'an ejected and a degraded v2 endpoint shift traffic to v1');
  const dr = docsOf(renderIstio(m.snapshot(), WITH_VS))[0]!;
  t.same((dr.spec.subsets as { name: string }[]).map((s) => s.name), ['v1', 'v2'], 'subsets by the version label');
  t.equal((dr.metadata as unknown as { annotations: Record<string, string> }).annotations['meshmedic.io/out-of-rotation'], '127.0.0.1:2', 'the ejected endpoint is annotated');
});

t.test('typed models: unknown fields fail to compile', async (t) => {
  // @ts-expect-error — `outlierDetektion` is not a DestinationRule field; this line must not compile.
  const bad: NonNullable<IDestinationRule['spec']>['trafficPolicy'] = { outlierDetektion: {} };
  t.ok(bad, 'the compile-time check above is enforced by tsc (typecheck step)');
});

t.test('MCP over xDS: istiod gets DestinationRules and VirtualServices, and an answer for every type', async (t) => {
  const fx = await startXdsFixture({ api: [{ port: 1001 }, { port: 1002 }] }, { istio: { mcp: true, namespace: 'prod', virtualServices: true } });
  const c = adsClient(fx.address);
  const s = new Scripted<SotwResponse>(c.StreamAggregatedResources());
  t.teardown(async () => {
    s.close();
    c.close();
    await fx.close();
  });
  const istiod = { id: 'istiod-1', cluster: 'Kubernetes', user_agent_name: 'istiod' };
  s.send({ node: istiod, type_url: 'networking.istio.io/v1/DestinationRule' });
  const dr = await s.next();
  t.equal(dr.type_url, 'networking.istio.io/v1/DestinationRule');
  t.equal(dr.resources.length, 1);
  t.equal(dr.resources[0]!.type_url, MCP_RESOURCE_TYPE, 'wrapped in istio.mcp.v1alpha1.Resource');
  type DrBody = { '@type': string; host: string; traffic_policy: { outlier_detection: { consecutive_5xx_errors: { value: number } } } };
  // protobufjs expands a resolvable Any into {'@type', ...fields}: the body decodes as the Istio message.
  const env = decodeMessage('istio.mcp.v1alpha1.Resource', dr.resources[0]!.value) as unknown as { metadata: { name: string }; body: DrBody };
  t.equal(env.metadata.name, 'prod/meshmedic-api', 'metadata name is namespace/name');
  const body = env.body;
  t.equal(body['@type'], 'type.googleapis.com/istio.networking.v1alpha3.DestinationRule', 'the body is an Istio DestinationRule');
  t.equal(body.host, 'api');
  t.equal(body.traffic_policy.outlier_detection.consecutive_5xx_errors.value, 5);
  s.send({ type_url: 'networking.istio.io/v1/DestinationRule', version_info: dr.version_info, response_nonce: dr.nonce });
  s.send({ type_url: 'networking.istio.io/v1alpha3/VirtualService' });
  const vs = await s.next();
  t.equal(vs.resources.length, 1, 'older API versions of the kind are served too');
  s.send({ type_url: 'networking.istio.io/v1alpha3/VirtualService', version_info: vs.version_info, response_nonce: vs.nonce });
  s.send({ type_url: 'networking.istio.io/v1/Gateway' });
  const gw = await s.next();
  t.equal(gw.type_url, 'networking.istio.io/v1/Gateway');
  t.equal(gw.resources.length, 0, 'a kind we do not produce is answered, empty');
  s.send({ type_url: 'networking.istio.io/v1/Gateway', version_info: gw.version_info, response_nonce: gw.nonce });
  fx.mesh.setServices([{ spec: { name: 'api', endpoints: [spec('api', { port: 1001, labels: { version: 'v1' } }), spec('api', { port: 1002, labels: { version: 'v2' } })] } }]);
  const types = [(await s.next()).type_url, (await s.next()).type_url].sort();
  t.same(types, ['networking.istio.io/v1/DestinationRule', 'networking.istio.io/v1alpha3/VirtualService'], 'a mesh change pushes the changed kinds');
});
