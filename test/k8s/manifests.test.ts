// The committed k8s/ files are exactly the generated ones, every object passes its Kubernetes schema,
// the embedded configs pass meshmedic's own validation, and the sample app injects cleanly.
import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import fjp from 'fast-json-patch';
import { Pod } from 'kubernetes-models/v1/Pod';
import { buildManifests, renderManifests, MESH_YAML, INJECTOR_YAML, XDS_MESH_YAML, GOSSIP_SECRET, GOSSIP_SERVICE, XDS_ADDRESS } from '../../src/k8s/manifests.js';
import { controlConfig } from '../../src/cli/control.js';
import { parseSeed } from '../../src/gossip/seeds.js';
import { GOSSIP_KEYS_DIR } from '../../src/k8s/inject.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeManifests } from '../../src/k8s/write-manifests.js';
import { buildDashboard, dashboardMetricNames } from '../../src/k8s/dashboard.js';
import { parseConfigText, validateConfig } from '../../src/config/load.js';
import { validateInjectorConfig, DEFAULT_INJECTOR_CONFIG } from '../../src/k8s/injector-config.js';
import { annotationsToConfigPatch } from '../../src/k8s/annotations.js';
import { planInjection } from '../../src/k8s/inject.js';
import { INJECT_PATH, INJECT_POD_PATH, INJECT_ROUTES } from '../../src/k8s/webhook.js';
import { selects } from './label-selector.js';

const k8sDir = fileURLToPath(new URL('../../k8s/', import.meta.url));
const srcDir = fileURLToPath(new URL('../../src/', import.meta.url));

t.test('committed manifests equal the generated output', async (t) => {
  t.same(writeManifests(k8sDir, true), [], 'run `npm run k8s:manifests` after changing src/k8s/manifests.ts');
});

t.test('every object validates against its schema and round-trips through YAML', async (t) => {
  for (const m of buildManifests()) {
    for (const o of m.objects) t.doesNotThrow(() => o.validate(), `${m.file}: ${(o.toJSON() as any).kind} ${(o.toJSON() as any).metadata?.name}`);
    const docs = parseAllDocuments(readFileSync(`${k8sDir}${m.file}`, 'utf8')).map((d) => d.toJS());
    t.same(docs, m.objects.map((o) => JSON.parse(JSON.stringify(o))), `${m.file} parses back to the same objects`);
  }
});

const all = () => buildManifests().flatMap((m) => m.objects.map((o) => JSON.parse(JSON.stringify(o)) as any));
const find = (kind: string, name: string) => all().find((o) => o.kind === kind && o.metadata.name === name);

t.test('embedded configs pass meshmedic\'s own validation', async (t) => {
  const mesh = parseConfigText(MESH_YAML);
  t.ok(mesh.valid);
  const meshRes = mesh.valid ? validateConfig(mesh.result) : mesh;
  t.ok(meshRes.valid, `mesh.yaml valid: ${meshRes.valid ? '' : meshRes.errors.join('; ')}`);
  const inj = parseConfigText(INJECTOR_YAML);
  t.ok(inj.valid);
  const injRes = inj.valid ? validateInjectorConfig((inj.result as any).injector) : inj;
  t.ok(injRes.valid, 'injector.yaml valid');
  t.equal(find('ConfigMap', 'meshmedic-mesh').data['mesh.yaml'], MESH_YAML);
  t.equal(find('ConfigMap', 'meshmedic-xds').data['mesh.yaml'], XDS_MESH_YAML);
});

// The environment the kubelet gives a container: $(VAR) expanded from the entries before it.
function containerEnv(c: any, fields: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = { ...fields };
  for (const e of c.env) if (e.value !== undefined) env[e.name] = e.value.replace(/\$\((\w+)\)/g, (_: string, v: string) => env[v] ?? '');
  return env;
}

t.test('the xDS/control server: meshmedic control accepts its config, two replicas, encrypted gossip seed', async (t) => {
  const dep = find('Deployment', 'meshmedic-xds');
  t.equal(dep.spec.replicas, 2);
  t.ok(dep.spec.template.spec.affinity.podAntiAffinity, 'spread over nodes');
  const pdb = find('PodDisruptionBudget', 'meshmedic-xds');
  t.same(pdb.spec.selector.matchLabels, dep.spec.selector.matchLabels);
  const c = dep.spec.template.spec.containers[0];
  t.equal(c.args[0], 'control');
  const flag = (f: string) => c.args[c.args.indexOf(f) + 1];
  const dir = mkdtempSync(join(tmpdir(), 'meshmedic-manifests-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'mesh.yaml'), XDS_MESH_YAML);
  const cfg = controlConfig({ xds: flag('--xds'), admin: flag('--admin'), config: join(dir, 'mesh.yaml') }, containerEnv(c, { POD_NAME: 'meshmedic-xds-0', POD_IP: '10.1.2.3' }));
  t.ok(cfg.valid, `valid: ${cfg.valid ? '' : cfg.errors.join('; ')}`);
  if (cfg.valid) {
    t.equal(cfg.result.xds.istio.mcp, true);
    t.equal(cfg.result.xds.istio.virtualServices, false, 'DestinationRules only');
    t.equal(cfg.result.gossip.enabled, true);
    t.equal(cfg.result.gossip.advertise, '10.1.2.3:17946', 'peers reach it on the pod IP');
    t.equal(cfg.result.gossip.keysFile, GOSSIP_KEYS_DIR, 'encrypted');
    t.equal(cfg.result.admin.readOnly, true);
    const mount = c.volumeMounts.find((m: any) => m.name === 'xds-tls').mountPath;
    t.same([cfg.result.xds.tls.certFile, cfg.result.xds.tls.keyFile], [`${mount}/tls.crt`, `${mount}/tls.key`], 'xDS over TLS from the mounted Secret');
  }
  const cert = find('Certificate', 'meshmedic-xds');
  t.equal(dep.spec.template.spec.volumes.find((v: any) => v.name === 'xds-tls').secret.secretName, cert.spec.secretName, 'the Certificate\'s Secret is mounted');
  t.ok(cert.spec.dnsNames.includes('meshmedic-xds.meshmedic.svc'), 'the certificate names the xDS Service');
  t.ok(find('Issuer', cert.spec.issuerRef.name), 'issued by the Issuer of 20-certificate.yaml');
  const keys = dep.spec.template.spec.volumes.find((v: any) => v.name === 'gossip-keys');
  t.same(keys.secret, { secretName: GOSSIP_SECRET }, 'the keyring Secret, not optional: no key, no start (never gossip in the clear)');
  t.equal(c.volumeMounts.find((m: any) => m.name === 'gossip-keys').mountPath, GOSSIP_KEYS_DIR);
  const svc = find('Service', 'meshmedic-xds');
  t.equal(`meshmedic-xds.meshmedic.svc:${svc.spec.ports[0].port}`, XDS_ADDRESS);
});

t.test('gossip: the sample namespace joins the headless seed Service, encrypted', async (t) => {
  const mesh = validateConfig(parseConfigText(MESH_YAML).valid ? (parseConfigText(MESH_YAML) as any).result : {});
  t.ok(mesh.valid);
  if (!mesh.valid) return;
  t.equal(mesh.result.gossip.enabled, true, 'gossip on in the shipped mesh config');
  t.equal(mesh.result.gossip.keysFile, GOSSIP_KEYS_DIR, 'encryption on: the keyring the injector mounts');
  t.equal(DEFAULT_INJECTOR_CONFIG.gossipKeysSecret, GOSSIP_SECRET, 'the injector mounts the Secret the docs create');
  const seed = parseSeed(mesh.result.gossip.join[0]!);
  t.equal(typeof seed === 'object' && seed.kind, 'srv');
  const headless = find('Service', GOSSIP_SERVICE);
  t.equal(mesh.result.gossip.join[0], `dns+srv://_gossip._udp.${GOSSIP_SERVICE}.${headless.metadata.namespace}.svc.cluster.local`, 'the SRV name of the headless Service');
  t.equal(headless.spec.clusterIP, 'None');
  t.ok(headless.spec.ports.some((p: any) => p.name === 'gossip' && p.protocol === 'UDP'), '_gossip._udp');
  const dep = find('Deployment', 'meshmedic-xds');
  t.same(headless.spec.selector, dep.spec.selector.matchLabels, 'the seeds are the control pods');
  const portNames = dep.spec.template.spec.containers[0].ports.map((p: any) => p.name);
  for (const p of headless.spec.ports) t.ok(portNames.includes(p.targetPort), `${p.targetPort} is a container port`);
  const doc = readFileSync(fileURLToPath(new URL('../../docs/kubernetes.md', import.meta.url)), 'utf8');
  for (const ns of ['meshmedic', 'shop']) t.match(doc, new RegExp(`-n ${ns} create secret generic ${GOSSIP_SECRET}`), `docs create the keyring in ${ns}`);
});

t.test('the NetworkPolicy of the xDS/control server admits only the mesh', async (t) => {
  const np = find('NetworkPolicy', 'meshmedic-xds');
  const dep = find('Deployment', 'meshmedic-xds');
  t.same(np.spec.podSelector.matchLabels, dep.spec.selector.matchLabels);
  const rule = np.spec.ingress[0];
  t.same(rule.ports.map((p: any) => `${p.port}/${p.protocol}`), ['17010/TCP', '17946/UDP', '17946/TCP']);
  const admitted = (nsLabels: Record<string, string>, podLabels: Record<string, string>) =>
    rule.from.some((f: any) => (f.namespaceSelector ? selects(f.namespaceSelector, nsLabels) : nsLabels['kubernetes.io/metadata.name'] === 'meshmedic') && (f.podSelector ? selects({ matchExpressions: f.podSelector.matchExpressions ?? Object.entries(f.podSelector.matchLabels ?? {}).map(([key, v]) => ({ key, operator: 'In', values: [v] })) }, podLabels) : true));
  t.ok(admitted({ 'kubernetes.io/metadata.name': 'shop', 'meshmedic.io/inject': 'enabled' }, {}), 'the sample namespace');
  t.ok(admitted({ 'kubernetes.io/metadata.name': 'x' }, { 'meshmedic.io/inject': 'true' }), 'a pod opted in by label');
  t.ok(admitted({ 'kubernetes.io/metadata.name': 'istio-system' }, {}), 'istiod');
  t.ok(admitted({ 'kubernetes.io/metadata.name': 'meshmedic' }, dep.spec.template.metadata.labels), 'the other replicas');
  t.notOk(admitted({ 'kubernetes.io/metadata.name': 'x' }, { app: 'y' }), 'nothing else');
});

t.test('webhook registration: fail open, v1 only, re-invocation, the server\'s paths', async (t) => {
  const mwc = find('MutatingWebhookConfiguration', 'meshmedic-injector');
  t.equal(mwc.metadata.annotations['cert-manager.io/inject-ca-from'], 'meshmedic/meshmedic-webhook');
  t.same(mwc.webhooks.map((w: any) => w.clientConfig.service.path), [INJECT_PATH, INJECT_POD_PATH]);
  for (const w of mwc.webhooks) t.ok(INJECT_ROUTES.has(w.clientConfig.service.path), `${w.name}: the server serves its path`);
  for (const w of mwc.webhooks) {
    t.equal(w.failurePolicy, 'Ignore');
    t.equal(w.sideEffects, 'None');
    t.same(w.admissionReviewVersions, ['v1']);
    t.equal(w.reinvocationPolicy, 'IfNeeded');
    t.ok(w.timeoutSeconds >= 1 && w.timeoutSeconds <= 10);
    const excl = w.namespaceSelector.matchExpressions.find((e: any) => e.key === 'kubernetes.io/metadata.name');
    for (const ns of ['kube-system', 'kube-public', 'kube-node-lease', 'meshmedic']) t.ok(excl.values.includes(ns), `${w.name} excludes ${ns}`);
    t.same(w.rules, [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }]);
  }
  const cert = find('Certificate', 'meshmedic-webhook');
  t.ok(cert.spec.dnsNames.includes('meshmedic-webhook.meshmedic.svc'), 'certificate names the Service');
  const dep = find('Deployment', 'meshmedic-webhook');
  t.equal(dep.spec.template.spec.volumes.find((v: any) => v.name === 'tls').secret.secretName, cert.spec.secretName);
  t.equal(dep.spec.template.metadata.labels['meshmedic.io/inject'], 'false', 'the webhook never injects itself');
});


t.test('opt-in by label: which entry the API server calls for which pod', async (t) => {
  const mwc = find('MutatingWebhookConfiguration', 'meshmedic-injector');
  const called = (nsLabels: Record<string, string>, podLabels: Record<string, string>, ns = 'apps') =>
    mwc.webhooks.filter((w: any) => selects(w.namespaceSelector, { 'kubernetes.io/metadata.name': ns, ...nsLabels }) && selects(w.objectSelector, podLabels)).map((w: any) => w.clientConfig.service.path);
  t.same(called({}, {}), [], 'unlabelled namespace, unlabelled pod: the webhook is not called at all');
  t.same(called({}, { app: 'x' }), [], 'other labels: not called');
  t.same(called({}, { 'meshmedic.io/inject': 'true' }), [INJECT_POD_PATH], 'pod label opts in');
  t.same(called({}, { 'meshmedic.io/inject': 'enabled' }), [INJECT_POD_PATH]);
  t.same(called({}, { 'meshmedic.io/inject': 'false' }), []);
  t.same(called({ 'meshmedic.io/inject': 'true' }, {}), [INJECT_PATH], 'namespace label opts every pod in');
  t.same(called({ 'meshmedic.io/inject': 'enabled' }, { 'meshmedic.io/inject': 'true' }), [INJECT_PATH], 'never both entries for one pod');
  t.same(called({ 'meshmedic.io/inject': 'true' }, { 'meshmedic.io/inject': 'false' }), [], 'pod label "false" opts out');
  t.same(called({ 'meshmedic.io/inject': 'true' }, { 'meshmedic.io/inject': 'disabled' }), []);
  t.same(called({ 'meshmedic.io/inject': 'false' }, { 'meshmedic.io/inject': 'true' }), [], 'namespace label "false" opts the whole namespace out');
  for (const ns of ['kube-system', 'meshmedic']) t.same(called({}, { 'meshmedic.io/inject': 'true' }, ns), [], `${ns} is never injected`);
});

t.test('RBAC is minimal: discovery reads, the webhook lists and reports', async (t) => {
  const roles = all().filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role');
  t.same(roles.map((r) => r.metadata.name).sort(), ['meshmedic-discovery', 'meshmedic-readiness-gate', 'meshmedic-webhook']);
  t.same(roles.find((r) => r.metadata.name === 'meshmedic-readiness-gate').rules, [{ apiGroups: [''], resources: ['pods/status'], verbs: ['patch'] }], 'the gate: patch pod status, nothing else');
  const discovery = roles.find((r) => r.metadata.name === 'meshmedic-discovery');
  const resources = new Set<string>();
  for (const r of discovery.rules) {
    t.same(r.verbs, ['get', 'list', 'watch']);
    for (const res of r.resources) resources.add(res);
  }
  t.same([...resources].sort(), ['endpointslices', 'services'], 'exactly what discovery reads');
  const webhook = roles.find((r) => r.metadata.name === 'meshmedic-webhook');
  const grants = webhook.rules.flatMap((r: any) => r.resources.flatMap((res: string) => r.verbs.map((v: string) => `${r.apiGroups.join(',')}/${res}:${v}`))).sort();
  t.same(grants, ['/events:create', '/namespaces:list', '/pods:list'], 'the webhook: list pods and namespaces, create events, nothing else');
  const webhookBindings = all().filter((o) => (o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding') && o.subjects.some((s: any) => s.name === 'meshmedic-webhook'));
  t.same(webhookBindings.map((b) => b.roleRef.name), ['meshmedic-webhook'], 'bound to its own role only');
  const dep = find('Deployment', 'meshmedic-webhook');
  const args: string[] = dep.spec.template.spec.containers[0].args;
  t.equal(args[args.indexOf('--missing-sidecar-interval') + 1], '60s', 'the scan runs in the webhook');
  t.notOk(dep.spec.template.spec.automountServiceAccountToken === false, 'its token is mounted');
  const sample = all().find((o) => o.kind === 'RoleBinding' && o.metadata.namespace === 'shop');
  t.same(sample?.subjects, [{ kind: 'ServiceAccount', name: 'reviews', namespace: 'shop' }], 'the sample binds discovery for its own service account, in its namespace only');
});

t.test('the sample application: annotations valid, injects cleanly', async (t) => {
  const dep = find('Deployment', 'reviews-v1');
  const template = dep.spec.template;
  t.same(annotationsToConfigPatch(template.metadata.annotations).warnings, [], 'sample annotations are all valid');
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { ...template.metadata, generateName: 'reviews-v1-5c7d9b-' }, spec: template.spec };
  const plan = planInjection({ pod, namespace: 'shop', optIn: 'namespace-label' }, DEFAULT_INJECTOR_CONFIG);
  t.ok(plan.inject);
  if (!plan.inject) return;
  const patched = fjp.applyPatch(structuredClone(pod), plan.patch as fjp.Operation[]).newDocument;
  t.doesNotThrow(() => new Pod(patched as any).validate());
  t.equal((patched as any).spec.initContainers[0].resources.limits.memory, '192Mi', 'annotation sets the sidecar memory limit');
  t.equal(find('Namespace', 'shop').metadata.labels['meshmedic.io/inject'], 'enabled');
});

function sourceText(dir: string): string {
  let out = '';
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) out += sourceText(`${dir}${e.name}/`);
    // The dashboard and manifests only query names: they do not count as exporting them.
    else if (e.name.endsWith('.ts') && e.name !== 'dashboard.ts' && e.name !== 'manifests.ts') out += readFileSync(`${dir}${e.name}`, 'utf8');
  }
  return out;
}

t.test('the dashboard queries metrics the code exports', async (t) => {
  const names = dashboardMetricNames();
  t.ok(names.length >= 6);
  const text = sourceText(srcDir);
  for (const n of names) t.ok(text.includes(`'${n}'`) || text.includes(`"${n}"`), `${n} is exported by src/`);
  const json = JSON.parse(renderManifests().get('grafana-dashboard.json')!);
  t.same(json, buildDashboard());
  const ids = json.panels.map((p: any) => p.id);
  t.equal(new Set(ids).size, ids.length, 'panel ids unique');
  for (const p of json.panels) t.ok(p.gridPos.x + p.gridPos.w <= 24, `${p.title} fits the grid`);
});

t.test('docs/kubernetes.md documents every annotation and every webhook error code', async (t) => {
  const { ANNOTATIONS } = await import('../../src/k8s/annotations.js');
  const doc = readFileSync(fileURLToPath(new URL('../../docs/kubernetes.md', import.meta.url)), 'utf8');
  for (const a of ANNOTATIONS) {
    t.ok(doc.includes(`| \`${a.key}\` |`), `${a.key} in the table`);
    if (a.path) t.ok(doc.includes(`\`${a.path}\``), `${a.key} → ${a.path} documented`);
  }
  const codes = new Set<string>();
  for (const f of ['admission.ts', 'webhook.ts']) for (const m of readFileSync(`${srcDir}k8s/${f}`, 'utf8').matchAll(/MM_ERR_[A-Z_]+/g)) codes.add(m[0]);
  for (const c of codes) if (c !== 'MM_ERR_INTERNAL' && c !== 'MM_ERR_USAGE' && c !== 'MM_ERR_ADDRESS') t.ok(doc.includes(c), `${c} documented`);
  for (const m of buildManifests()) t.ok(doc.includes(m.file), `${m.file} described`);
});

t.test('kubectl kustomize renders the core install', async (t) => {
  let out: string;
  try {
    execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore', timeout: 30_000 });
  } catch {
    t.fail('kubectl is not installed (scripts/ensure-peers.sh installs it)');
    return;
  }
  out = execFileSync('kubectl', ['kustomize', k8sDir], { encoding: 'utf8', timeout: 60_000 });
  const kinds = parseAllDocuments(out).map((d) => (d.toJS() as any)?.kind).filter(Boolean).sort();
  t.same(kinds, ['Certificate', 'ClusterRole', 'ClusterRole', 'ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'ConfigMap', 'Deployment', 'Issuer', 'MutatingWebhookConfiguration', 'Namespace', 'PodDisruptionBudget', 'Service', 'ServiceAccount']);
});
