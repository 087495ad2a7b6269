// What discovery keeps of the API's objects (docs/kubernetes.md, "Memory budget"): each Service and
// EndpointSlice projected to the fields the builder reads as it is parsed, the builder's result compared
// field by field instead of through a kept serialised copy, and the discovery module loading neither the
// YAML parser nor the configuration schema unless a kubeconfig file is read.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildServiceSpecs, projectEndpointSlice, projectService, sameBuiltServices, type K8sEndpointSlice, type K8sService } from '../../src/k8s/discovery.js';
import { endpointSlice, service } from './fake-apiserver.js';

const fixture = (name: string) => readFileSync(fileURLToPath(new URL(`./fixtures/discovery/${name}`, import.meta.url)), 'utf8');

/** Service and slice lists covering every branch of the builder (ports, readiness, draining, locality, odd input). */
function lists(): { services: unknown[]; slices: unknown[] } {
  const services: unknown[] = [
    service('shop', 'reviews', [{ name: 'http', port: 9080 }]),
    service('shop', 'multi', [{ name: 'http', port: 80 }, { name: 'grpc', port: 9090 }, { name: 'dns', port: 53, protocol: 'UDP' }]),
    service('shop', 'external', [{ port: 443 }], { spec: { type: 'ExternalName', externalName: 'example.org' } }),
    service('shop', 'hidden', [{ port: 80 }], { metadata: { name: 'hidden', namespace: 'shop', annotations: { 'meshmedic.io/discovery': 'false', other: 'x' } } }),
    service('shop', 'geo', [{ port: 80 }], { metadata: { name: 'geo', namespace: 'shop', labels: { 'topology.kubernetes.io/region': 'svc-region', app: 'geo' } } }),
    {}, { metadata: {} }, { metadata: { name: 'x', namespace: 'y' }, spec: null }, { metadata: { name: 'x', namespace: 'y' }, spec: { ports: [{ port: 'eighty' }] } }, null,
  ];
  const geo = endpointSlice('shop', 'geo', 'a', [{ port: 8080 }], [{ ip: '10.5.0.1' }, { ip: '10.5.0.2', zone: 'z2' }]) as unknown as { endpoints: Record<string, unknown>[] };
  geo.endpoints[0]!.deprecatedTopology = { 'topology.kubernetes.io/region': 'topo-region', 'topology.kubernetes.io/zone': 'topo-zone', 'topology.istio.io/subzone': 'rack-7', other: 'x' };
  const slices: unknown[] = [
    endpointSlice('shop', 'reviews', 'a', [{ name: 'http', port: 8080 }], [
      { ip: '10.1.0.1', zone: 'eu-west-1a', node: 'n1', pod: 'reviews-1' },
      { ip: '10.1.0.2', ready: null, zone: 'eu-west-1b' },
      { ip: '10.1.0.3', ready: false, serving: false },
      { ip: '10.1.0.4', ready: false, serving: true, terminating: true },
      { ip: '10.1.0.5', ready: false, serving: false, terminating: true },
      { ip: 'not-an-ip' },
    ]),
    endpointSlice('shop', 'reviews', 'b', [{ name: 'http', port: 8080 }], [{ ip: '10.1.0.1' }, { ip: '10.1.0.6' }]),
    endpointSlice('shop', 'reviews', 'v6', [{ name: 'http', port: 8080 }], [{ ip: 'fd00::6' }], 'IPv6'),
    endpointSlice('shop', 'reviews', 'fqdn', [{ name: 'http', port: 8080 }], [{ ip: 'reviews.example.org' }], 'FQDN'),
    endpointSlice('shop', 'multi', 'a', [{ name: 'http', port: 8080 }, { name: 'grpc', port: 9091 }], [{ ip: '10.2.0.1' }]),
    endpointSlice('shop', 'hidden', 'a', [{ port: 80 }], [{ ip: '10.4.0.1' }]),
    geo,
    {}, { metadata: { namespace: 'y', labels: { 'kubernetes.io/service-name': 'x' } }, addressType: 'IPv4', endpoints: null, ports: null }, null,
  ];
  return { services, slices };
}

const fullBuild = (services: unknown[], slices: unknown[]) => buildServiceSpecs(services.filter(Boolean) as K8sService[], slices.filter(Boolean) as K8sEndpointSlice[], { defaultRegion: 'eu-west-1' });
const projectedBuild = (services: unknown[], slices: unknown[]) => buildServiceSpecs(services.map(projectService), slices.map(projectEndpointSlice), { defaultRegion: 'eu-west-1' });

t.test('projection: the builder gives the same services from the projected objects as from the full ones', async (t) => {
  const { services, slices } = lists();
  const full = fullBuild(services, slices);
  const projected = projectedBuild(services, slices);
  t.ok(full.specs.length >= 4, `the lists give services (${full.specs.map((s) => s.name).join(', ')})`);
  t.same(projected.specs, full.specs);
  t.same([...projected.draining], [...full.draining]);
  t.ok(sameBuiltServices(full, projected), 'and they compare equal');
  // The API-format fixtures too.
  const fs = JSON.parse(fixture('services.json')).items as unknown[];
  const fe = JSON.parse(fixture('endpointslices.json')).items as unknown[];
  t.same(projectedBuild(fs, fe).specs, fullBuild(fs, fe).specs);
});

t.test('projection: what is dropped, what is shared', async (t) => {
  const svc = projectService({ ...(service('shop', 'geo', [{ name: 'http', port: 80, protocol: 'TCP' }]) as object), status: { loadBalancer: {} } }) as unknown as Record<string, unknown>;
  t.same(Object.keys(svc), ['metadata', 'spec']);
  t.same(svc.metadata, { name: 'geo', namespace: 'shop' }, 'uid, timestamps and labels the builder does not read are dropped');
  t.same((svc.spec as { ports: unknown }).ports, [{ name: 'http', port: 80, protocol: 'TCP' }]);
  t.notOk('clusterIP' in (svc.spec as object));
  const raw = endpointSlice('shop', 'geo', 'a', [{ name: 'http', port: 8080 }], [{ ip: '10.0.0.1', node: 'n1', pod: 'geo-1' }, { ip: '10.0.0.2' }, { ip: '10.0.0.3', ready: false, serving: true, terminating: true }]) as unknown as { endpoints: Record<string, unknown>[] };
  raw.endpoints[0]!.addresses = ['10.0.0.1', '10.0.0.9'];
  const slice = projectEndpointSlice(raw);
  t.same(slice.metadata, { name: 'geo-a', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'geo' } }, 'the managed-by label and the uid are dropped');
  const [a, b, c] = slice.endpoints!;
  t.same(a!.addresses, ['10.0.0.1'], 'only the first address (the one consumers use) is kept');
  t.equal(a!.nodeName, 'n1');
  t.same(a!.targetRef, { kind: 'Pod', name: 'geo-1' });
  t.equal(a!.conditions, b!.conditions, 'equal conditions share one object');
  t.not(a!.conditions, c!.conditions);
  t.same(c!.conditions, { ready: false, serving: true, terminating: true });
  t.ok(Object.isFrozen(a!.conditions));
  t.doesNotThrow(() => projectEndpointSlice({ endpoints: [null, 7, { addresses: 'x', conditions: 'y', targetRef: 3 }] }));
});

t.test('builder: endpoints without a node or pod of their own share their labels; the others have their own', async (t) => {
  const built = buildServiceSpecs([service('shop', 'web', [{ port: 80 }]) as unknown as K8sService], [endpointSlice('shop', 'web', 'a', [{ port: 8080 }], [{ ip: '10.0.0.1' }, { ip: '10.0.0.2' }, { ip: '10.0.0.3', pod: 'web-3' }]) as unknown as K8sEndpointSlice]);
  const [a, b, c] = built.specs[0]!.endpoints;
  t.equal(a!.labels, b!.labels);
  t.same(a!.labels, { 'k8s.namespace': 'shop', 'k8s.service': 'web', 'k8s.port': '80' });
  t.same(c!.labels, { 'k8s.namespace': 'shop', 'k8s.service': 'web', 'k8s.port': '80', 'k8s.pod': 'web-3' });
  t.ok(Object.isFrozen(a!.labels) && Object.isFrozen(c!.labels));
});

t.test('sameBuiltServices: any change of a service, an endpoint field or the draining set is a change', async (t) => {
  const { services, slices } = lists();
  const base = projectedBuild(services, slices);
  t.notOk(sameBuiltServices(undefined, base), 'nothing applied yet');
  t.ok(sameBuiltServices(base, projectedBuild(services, slices)), 'a rebuild of the same lists');
  const variants: [string, (s: { services: unknown[]; slices: unknown[] }) => void][] = [
    ['an endpoint added', (l) => (l.slices[1] as { endpoints: unknown[] }).endpoints.push({ addresses: ['10.1.0.7'], conditions: { ready: true } })],
    ['a pod renamed', (l) => (((l.slices[0] as { endpoints: { targetRef: { name: string } }[] }).endpoints[0]!).targetRef.name = 'reviews-2')],
    ['a zone changed', (l) => ((l.slices[0] as { endpoints: { zone: string }[] }).endpoints[0]!.zone = 'eu-west-1c')],
    ['a target port changed', (l) => ((l.slices[1] as { ports: { port: number }[] }).ports[0]!.port = 8081)],
    ['an endpoint starts draining', (l) => ((l.slices[1] as { endpoints: { conditions: unknown }[] }).endpoints[1]!.conditions = { ready: false, serving: true, terminating: true })],
    ['a service removed', (l) => l.services.splice(0, 1)],
  ];
  for (const [what, change] of variants) {
    const l = lists();
    change(l);
    t.notOk(sameBuiltServices(base, projectedBuild(l.services, l.slices)), what);
  }
});

t.test('the discovery module loads neither the YAML parser nor the config schema until a kubeconfig is read', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mm-disco-mods-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'kubeconfig'), 'apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters: [{name: k, cluster: {server: "https://127.0.0.1:6443"}}]\ncontexts: [{name: c, context: {cluster: k, user: u}}]\nusers: [{name: u, user: {token: t}}]\n');
  const discovery = new URL('../../src/k8s/discovery.ts', import.meta.url).href;
  const kubeconfig = new URL('../../src/k8s/kubeconfig.ts', import.meta.url).href;
  // A child process: this test process has loaded much already. Loaded modules: CommonJS ones are in
  // require.cache (the YAML package's node build is CommonJS); the schema is an ES module, seen by a loader hook.
  const script = `
    import { createRequire, register } from 'node:module';
    const seen = [];
    const { port1, port2 } = new MessageChannel();
    port1.on('message', (u) => seen.push(u)); port1.unref();
    register('data:text/javascript,' + encodeURIComponent('let p; export function initialize(d) { p = d.port; } export async function load(u, c, n) { p.postMessage(u); return n(u, c); }'), { data: { port: port2 }, transferList: [port2] });
    const require = createRequire(import.meta.url);
    const yamlLoaded = () => Object.keys(require.cache).some((f) => f.includes('/node_modules/yaml/'));
    await import(${JSON.stringify(discovery)});
    await new Promise((r) => setTimeout(r, 100));
    const before = { yaml: yamlLoaded(), schema: seen.some((u) => u.includes('/config/schema.')) };
    const { kubeconfigTarget } = await import(${JSON.stringify(kubeconfig)});
    const target = kubeconfigTarget(${JSON.stringify(join(dir, 'kubeconfig'))});
    console.log(JSON.stringify({ before, after: { yaml: yamlLoaded() }, server: target.server }));
  `;
  const file = join(dir, 'check.mjs');
  writeFileSync(file, script);
  const res = spawnSync(process.execPath, ['--import=tsx', file], { encoding: 'utf8', cwd: fileURLToPath(new URL('../..', import.meta.url)), timeout: 60_000 });
  t.equal(res.status, 0, 'the check ran', { stderr: res.stderr });
  const out = JSON.parse(res.stdout.trim().split('\n').pop() ?? '{}') as { before: { yaml: boolean; schema: boolean }; after: { yaml: boolean }; server: string };
  t.same(out.before, { yaml: false, schema: false }, 'after importing discovery: no YAML parser, no config schema');
  t.equal(out.server, 'https://127.0.0.1:6443', 'a kubeconfig file is still read');
  t.equal(out.after.yaml, true, 'the parser loads with it');
});
