// The committed k8s/ files are exactly the generated ones, every object passes its Kubernetes schema,
// the embedded configs pass meshmedic's own validation, and the sample app injects cleanly.
import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import fjp from 'fast-json-patch';
import { Pod } from 'kubernetes-models/v1/Pod';
import { buildManifests, renderManifests, MESH_YAML, INJECTOR_YAML, XDS_MESH_YAML } from '../../src/k8s/manifests.js';
import { writeManifests } from '../../src/k8s/write-manifests.js';
import { buildDashboard, dashboardMetricNames } from '../../src/k8s/dashboard.js';
import { parseConfigText, validateConfig } from '../../src/config/load.js';
import { validateInjectorConfig, DEFAULT_INJECTOR_CONFIG } from '../../src/k8s/injector-config.js';
import { annotationsToConfigPatch } from '../../src/k8s/annotations.js';
import { planInjection } from '../../src/k8s/inject.js';
import { INJECT_PATH, INJECT_POD_PATH, INJECT_ROUTES } from '../../src/k8s/webhook.js';

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
  const xds = parseConfigText(XDS_MESH_YAML);
  const xdsRes = xds.valid ? validateConfig(xds.result) : xds;
  t.ok(xdsRes.valid, `the Istio xDS server's mesh.yaml is valid: ${xdsRes.valid ? '' : xdsRes.errors.join('; ')}`);
  if (xdsRes.valid) {
    t.equal(xdsRes.result.xds.enabled, true);
    t.equal(xdsRes.result.xds.istio.mcp, true);
  }
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

// What the API server does with a webhook's selectors (matchExpressions over a label map).
function selects(selector: any, labels: Record<string, string>): boolean {
  return (selector?.matchExpressions ?? []).every((e: any) => {
    const has = Object.hasOwn(labels, e.key);
    switch (e.operator) {
      case 'In': return has && e.values.includes(labels[e.key]);
      case 'NotIn': return !has || !e.values.includes(labels[e.key]);
      case 'Exists': return has;
      case 'DoesNotExist': return !has;
      default: throw new Error(`operator ${e.operator}`);
    }
  });
}

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
