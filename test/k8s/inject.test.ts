// Golden JSON-patch fixtures for every injection case: each review is answered, the patch compared
// with the committed golden file, applied with a real JSON Patch library, and the result checked
// against the Pod schema. Regenerate goldens with UPDATE_GOLDEN=1 (and review the diff).
import t from 'tap';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fjp from 'fast-json-patch';
import { Pod } from 'kubernetes-models/v1/Pod';
import { reviewAdmission } from '../../src/k8s/admission.js';
import { buildSidecar, escapeJsonPointer, planInjection, smallFootprintNodeOptions, type JsonPatchOp, type OptInRoute } from '../../src/k8s/inject.js';
import { quantityValue } from '../../src/k8s/annotations.js';
import { DEFAULT_INJECTOR_CONFIG, validateInjectorConfig } from '../../src/k8s/injector-config.js';
import { ENV_V8_FOOTPRINT, footprintFlags, SMALL_FOOTPRINT_FLAGS } from '../../src/runtime/v8-footprint.js';

const dir = fileURLToPath(new URL('./fixtures/inject/', import.meta.url));
const UPDATE = process.env.UPDATE_GOLDEN === '1';

interface Case {
  name: string;
  /** The webhook entry (path) that calls; default the namespace-label one. */
  optIn?: OptInRoute;
  inject: boolean;
  mode?: 'native' | 'classic';
  reason?: RegExp;
  warnings?: RegExp[];
}

const CASES: Case[] = [
  { name: 'plain-pod', inject: true, mode: 'native' },
  { name: 'existing-init-containers', inject: true, mode: 'native' },
  { name: 'classic', inject: true, mode: 'classic' },
  { name: 'already-injected', inject: false, reason: /already injected/ },
  { name: 'opt-out', inject: false, reason: /opted out/ },
  { name: 'host-network', inject: false, reason: /hostNetwork/ },
  { name: 'generate-name', inject: true, mode: 'native' },
  { name: 'kube-system', inject: false, reason: /excluded/ },
  { name: 'annotated-opt-in', optIn: 'pod-annotation', inject: true, mode: 'native' },
  { name: 'label-opt-in', optIn: 'pod-label', inject: true, mode: 'native' },
  // Defence in depth: the selectors keep a pod labelled "false" away, but if one arrives it is skipped.
  { name: 'label-opt-out', inject: false, reason: /opted out by the label meshmedic\.io\/inject=false/ },
  {
    name: 'bad-annotations',
    inject: true,
    mode: 'native',
    warnings: [
      /meshmedic\.io\/policy: "yolo" rejected: .*one of "meshmedic", "envoy-default", "none"/,
      /meshmedic\.io\/consecutive-5xx: "five" is not an integer/,
      /meshmedic\.io\/proxy-memory: "lots" is not a Kubernetes quantity/,
      /meshmedic\.io\/latency-objectve: unknown annotation.*did you mean meshmedic\.io\/latency-objective/,
      /meshmedic\.io\/sidecar-mode: "sidecar" is not "native" or "classic"/,
      /container "app" sets HTTP_PROXY itself/,
    ],
  },
];

function load(name: string): { review: any; pod: any } {
  const review = JSON.parse(readFileSync(`${dir}${name}.review.json`, 'utf8'));
  return { review, pod: review.request.object };
}

function sidecars(pod: any): any[] {
  const all = [...(pod.spec.initContainers ?? []), ...pod.spec.containers];
  return all.filter((c: any) => c.name === 'meshmedic');
}

for (const c of CASES) {
  t.test(c.name, async (t) => {
    const { review, pod } = load(c.name);
    const res = reviewAdmission(JSON.stringify(review), { config: DEFAULT_INJECTOR_CONFIG, optIn: c.optIn ?? 'namespace-label' });
    t.equal(res.status, 200);
    const body = res.body as any;
    t.equal(body.apiVersion, 'admission.k8s.io/v1');
    t.equal(body.kind, 'AdmissionReview');
    t.equal(body.response.uid, review.request.uid, 'uid echoed');
    t.equal(body.response.allowed, true, 'never denies');
    for (const w of c.warnings ?? []) t.ok((body.response.warnings ?? []).some((x: string) => w.test(x)), `warning ${w}`);
    if (!c.warnings) t.notOk(body.response.warnings, 'no warnings');
    if (!c.inject) {
      t.equal(body.response.patch, undefined, 'no patch');
      t.match(res.reason, c.reason!);
      return;
    }
    t.equal(body.response.patchType, 'JSONPatch');
    const patch: JsonPatchOp[] = JSON.parse(Buffer.from(body.response.patch, 'base64').toString('utf8'));
    const golden = `${dir}${c.name}.patch.json`;
    if (UPDATE) writeFileSync(golden, JSON.stringify(patch, null, 2) + '\n');
    else if (!existsSync(golden)) {
      t.fail(`golden fixture ${golden} is missing: review the patch and write it with UPDATE_GOLDEN=1`);
      return;
    }
    t.same(patch, JSON.parse(readFileSync(golden, 'utf8')), 'patch equals the golden fixture');

    // Apply with a real RFC 6902 implementation; validateOperation checks every path exists as it should.
    const errors = fjp.validate(patch as fjp.Operation[], structuredClone(pod));
    t.equal(errors, undefined, 'patch valid against the document');
    const patched = fjp.applyPatch(structuredClone(pod), patch as fjp.Operation[], true, false).newDocument;
    t.doesNotThrow(() => new Pod(patched).validate(), 'patched pod matches the Pod schema');
    const sc = sidecars(patched);
    t.equal(sc.length, 1, 'exactly one meshmedic container');
    if (c.mode === 'native') {
      t.equal(patched.spec.initContainers[0].name, 'meshmedic', 'first init container');
      t.equal(patched.spec.initContainers[0].restartPolicy, 'Always', 'native sidecar');
      t.notOk(patched.spec.containers.some((x: any) => x.name === 'meshmedic'));
    } else {
      t.equal(patched.spec.containers.at(-1).name, 'meshmedic');
      t.equal(patched.spec.containers.at(-1).restartPolicy, undefined, 'classic container has no restartPolicy');
    }
    const status = JSON.parse(patched.metadata.annotations['meshmedic.io/status']);
    t.equal(status.mode, c.mode);
    // Original content kept.
    t.same(patched.spec.containers[0].ports, pod.spec.containers[0].ports);
    for (const k of Object.keys(pod.metadata.annotations ?? {})) t.equal(patched.metadata.annotations[k], pod.metadata.annotations[k], `annotation ${k} kept`);
    for (const ic of pod.spec.initContainers ?? []) t.ok(patched.spec.initContainers.some((x: any) => x.name === ic.name), `init container ${ic.name} kept`);

    // Idempotent: the patched pod (a re-invocation, or a second webhook call) gets nothing more.
    const again = structuredClone(review);
    again.request.object = patched;
    again.request.uid = 'second-call';
    const res2 = reviewAdmission(JSON.stringify(again), { config: DEFAULT_INJECTOR_CONFIG, optIn: c.optIn ?? 'namespace-label' });
    t.equal((res2.body as any).response.uid, 'second-call');
    t.equal((res2.body as any).response.patch, undefined, 'no second injection');
  });
}

t.test('proxy environment and template details', async (t) => {
  const { review, pod } = load('existing-init-containers');
  const res = reviewAdmission(JSON.stringify(review), { config: DEFAULT_INJECTOR_CONFIG, optIn: 'namespace-label' });
  const patch = JSON.parse(Buffer.from((res.body as any).response.patch, 'base64').toString());
  const patched = fjp.applyPatch(structuredClone(pod), patch).newDocument as any;
  const app = patched.spec.containers[0];
  const env = Object.fromEntries(app.env.map((e: any) => [e.name, e.value]));
  t.equal(env.LOG_LEVEL, 'info', 'existing env kept');
  t.equal(env.HTTP_PROXY, 'http://127.0.0.1:17001');
  t.equal(env.http_proxy, 'http://127.0.0.1:17001');
  t.match(env.NO_PROXY, /(^|,)localhost(,|$)/);
  t.match(env.NO_PROXY, /(^|,)127\.0\.0\.1(,|$)/);
  t.match(env.NO_PROXY, /(^|,)::1(,|$)/);
  t.notMatch(env.NO_PROXY, /\.svc/, 'cluster services go through the sidecar');
  t.equal(patched.spec.containers[1].env.length, 4, 'second app container proxied too');
  t.notOk(patched.spec.initContainers[1].env?.some((e: any) => e.name === 'HTTP_PROXY'), 'init containers left alone');

  const sc = patched.spec.initContainers[0];
  t.same(sc.securityContext.capabilities, { drop: ['ALL'] });
  t.equal(sc.securityContext.runAsNonRoot, true);
  t.equal(sc.securityContext.allowPrivilegeEscalation, false);
  t.equal(sc.securityContext.readOnlyRootFilesystem, true);
  t.equal(sc.readinessProbe.httpGet.path, '/readyz');
  t.equal(sc.readinessProbe.httpGet.port, 17000);
  t.equal(sc.livenessProbe.httpGet.path, '/healthz');
  const fieldRefs = Object.fromEntries(sc.env.filter((e: any) => e.valueFrom).map((e: any) => [e.name, e.valueFrom.fieldRef.fieldPath]));
  t.same(fieldRefs, { POD_NAME: 'metadata.name', POD_NAMESPACE: 'metadata.namespace', NODE_NAME: 'spec.nodeName', POD_IP: 'status.podIP', SERVICE_ACCOUNT: 'spec.serviceAccountName' });
  const podinfo = patched.spec.volumes.find((v: any) => v.name === 'meshmedic-podinfo');
  t.same(podinfo.downwardAPI.items.map((i: any) => i.fieldRef.fieldPath), ['metadata.annotations', 'metadata.labels']);
  t.equal(patched.spec.volumes[0].name, 'kube-api-access-x7k2p', 'existing volume kept first');
  t.equal(patched.metadata.annotations['prometheus.io/port'], '17000');
});

t.test('annotation overrides of resources and classic mode', async (t) => {
  const { review, pod } = load('classic');
  const res = reviewAdmission(JSON.stringify(review), { config: DEFAULT_INJECTOR_CONFIG, optIn: 'namespace-label' });
  const patched = fjp.applyPatch(structuredClone(pod), JSON.parse(Buffer.from((res.body as any).response.patch, 'base64').toString())).newDocument as any;
  const sc = patched.spec.containers.at(-1);
  t.same(sc.resources, { requests: { cpu: '100m', memory: '160Mi' }, limits: { memory: '512Mi' } });
  t.equal(sc.env.find((e: any) => e.name === 'NODE_OPTIONS')?.value, '--max-old-space-size=256', 'old generation capped at half the annotated limit');
});

t.test('footprint: the old generation\'s cap follows the memory limit; the young generation is left to the command', async (t) => {
  t.equal(smallFootprintNodeOptions('256Mi'), '--max-old-space-size=128');
  t.equal(smallFootprintNodeOptions('1Gi'), '--max-old-space-size=512');
  t.equal(smallFootprintNodeOptions('500M'), '--max-old-space-size=238', 'decimal units');
  t.equal(smallFootprintNodeOptions('5e8'), '--max-old-space-size=238', 'exponent form');
  t.equal(smallFootprintNodeOptions('40Mi'), '--max-old-space-size=32', 'never below 32 MB');
  t.equal(smallFootprintNodeOptions(''), '', 'no limit: no old-generation cap');
  t.equal(smallFootprintNodeOptions(undefined), '');
  t.equal(quantityValue('64Mi'), 64 * 2 ** 20);
  t.equal(quantityValue('lots'), undefined);
  const env = (cfg: typeof DEFAULT_INJECTOR_CONFIG) => buildSidecar(cfg, 'native', cfg.image).env ?? [];
  const value = (cfg: typeof DEFAULT_INJECTOR_CONFIG, name: string) => env(cfg).find((e) => e.name === name)?.value;
  t.equal(value(DEFAULT_INJECTOR_CONFIG, 'NODE_OPTIONS'), '--max-old-space-size=128', 'on by default, from the 256Mi default limit');
  t.equal(value(DEFAULT_INJECTOR_CONFIG, ENV_V8_FOOTPRINT), 'small');
  const noLimit = { ...DEFAULT_INJECTOR_CONFIG, resources: { ...DEFAULT_INJECTOR_CONFIG.resources, memoryLimit: '' } };
  t.equal(env(noLimit).find((e) => e.name === 'NODE_OPTIONS'), undefined, 'no memory limit: no NODE_OPTIONS');
  t.equal(value(noLimit, ENV_V8_FOOTPRINT), 'small');
  const plain = validateInjectorConfig({ footprint: 'default' });
  t.ok(plain.valid);
  if (plain.valid) {
    t.equal(env(plain.result).find((e) => e.name === 'NODE_OPTIONS'), undefined, 'footprint default: Node sizes its heap itself');
    t.equal(value(plain.result, ENV_V8_FOOTPRINT), 'default', 'and the command is told so');
  }
  const bad = validateInjectorConfig({ footprint: 'tiny' });
  t.notOk(bad.valid);
  if (!bad.valid) t.match(bad.errors.join('\n'), /\/footprint/, 'the error names the key');
});

t.test('footprint: what the command in the injected sidecar then does with the heap (src/runtime/v8-footprint.ts)', async (t) => {
  const asInjected = (cfg: typeof DEFAULT_INJECTOR_CONFIG): NodeJS.ProcessEnv => Object.fromEntries((buildSidecar(cfg, 'native', cfg.image).env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));
  // small: the command sets the small young generation itself, so its governor may grow it under load.
  t.same(footprintFlags(['run'], asInjected(DEFAULT_INJECTOR_CONFIG), []).flags, [SMALL_FOOTPRINT_FLAGS.young], 'small: young generation by the command, old generation by NODE_OPTIONS');
  const plain = validateInjectorConfig({ footprint: 'default' });
  t.ok(plain.valid);
  if (plain.valid) t.same(footprintFlags(['run'], asInjected(plain.result), []), { flags: [] }, 'default: no flags from the command either');
});

t.test('RFC 6901 escaping', async (t) => {
  t.equal(escapeJsonPointer('meshmedic.io/status'), 'meshmedic.io~1status');
  t.equal(escapeJsonPointer('a~b/c'), 'a~0b~1c');
  t.equal(escapeJsonPointer('~1'), '~01', 'tilde escaped before slash');
  const { pod } = load('existing-init-containers');
  const plan = planInjection({ pod, namespace: 'shop', optIn: 'namespace-label' }, DEFAULT_INJECTOR_CONFIG);
  t.ok(plan.inject);
  if (plan.inject) t.ok(plan.patch.some((op) => op.path === '/metadata/annotations/meshmedic.io~1status'));
});

t.test('each pod route re-checks its own opt-in', async (t) => {
  const plan = (name: string, optIn: OptInRoute, edit?: (pod: any) => void) => {
    const { pod } = load(name);
    edit?.(pod);
    return planInjection({ pod, namespace: 'legacy-apps', optIn }, DEFAULT_INJECTOR_CONFIG);
  };
  const plain = plan('plain-pod', 'pod-label');
  t.equal(plain.inject, false, 'no label: not injected on the pod-label path');
  if (!plain.inject) t.match(plain.reason, /not opted in \(no label meshmedic\.io\/inject=true/);
  t.equal(plan('annotated-opt-in', 'pod-label').inject, false, 'the annotation alone is not the label');
  t.equal(plan('plain-pod', 'pod-annotation').inject, false, 'deprecated path: no annotation, no injection');
  t.equal(plan('label-opt-in', 'pod-annotation').inject, true, 'deprecated path: the label also counts');
  t.equal(plan('label-opt-in', 'pod-label', (p) => { p.metadata.labels['meshmedic.io/inject'] = 'enabled'; }).inject, true, '"enabled" is an opt-in value too');
  const optOutByAnnotation = plan('label-opt-in', 'pod-label', (p) => { p.metadata.annotations = { 'meshmedic.io/inject': 'false' }; });
  t.equal(optOutByAnnotation.inject, false, 'annotation "false" wins over the label');
  const disabled = plan('label-opt-in', 'namespace-label', (p) => { p.metadata.labels['meshmedic.io/inject'] = 'disabled'; });
  t.equal(disabled.inject, false, 'label "disabled" opts out on the namespace path');
  // Bad label values: a clear warning, and no opt-in on the label path.
  for (const bad of ['yes', 'TRUE', '', 1, null]) {
    const res = plan('label-opt-in', 'pod-label', (p) => { p.metadata.labels['meshmedic.io/inject'] = bad; });
    t.equal(res.inject, false, `label value ${JSON.stringify(bad)} does not opt in`);
    if (typeof bad === 'string') t.ok(res.warnings.some((w) => w.includes(`label meshmedic.io/inject=${JSON.stringify(bad)} is not one of true, enabled, false, disabled`)), `warning names ${JSON.stringify(bad)}`);
  }
  const odd = plan('label-opt-in', 'pod-label', (p) => { p.metadata.labels = 'x'; });
  t.equal(odd.inject, false, 'labels that are not a map: no opt-in, no throw');
});

t.test('readiness gate: by injector setting or annotation, never twice', async (t) => {
  const { pod } = load('plain-pod');
  const gates = (p: any, cfg = DEFAULT_INJECTOR_CONFIG) => {
    const plan = planInjection({ pod: p, namespace: 'shop', optIn: 'namespace-label' }, cfg);
    if (!plan.inject) throw new Error(plan.reason);
    const patched = fjp.applyPatch(structuredClone(p), plan.patch as fjp.Operation[]).newDocument as any;
    t.doesNotThrow(() => new Pod(patched).validate(), 'valid pod');
    const sc = [...(patched.spec.initContainers ?? []), ...patched.spec.containers].find((c: any) => c.name === 'meshmedic');
    return { gates: patched.spec.readinessGates, env: sc.env.find((e: any) => e.name === 'MESHMEDIC_K8S_READINESS_GATE')?.value };
  };
  t.same(gates(pod), { gates: undefined, env: undefined }, 'off by default');
  const on = validateInjectorConfig({ readinessGate: true });
  if (!on.valid) throw new Error('config');
  t.same(gates(pod, on.result), { gates: [{ conditionType: 'meshmedic.io/healthy' }], env: 'true' }, 'on by injector setting: the gate, and the sidecar told to set it');
  const annotated = structuredClone(pod);
  annotated.metadata.annotations = { 'meshmedic.io/readiness-gate': 'true' };
  t.same(gates(annotated), { gates: [{ conditionType: 'meshmedic.io/healthy' }], env: 'true' }, 'on by annotation');
  annotated.metadata.annotations = { 'meshmedic.io/readiness-gate': 'false' };
  t.same(gates(annotated, on.result), { gates: undefined, env: undefined }, 'the annotation turns it off for one pod');
  const withGates = structuredClone(pod);
  withGates.spec.readinessGates = [{ conditionType: 'example.com/warm' }];
  t.same(gates(withGates, on.result).gates, [{ conditionType: 'example.com/warm' }, { conditionType: 'meshmedic.io/healthy' }], 'appended to existing gates');
  withGates.spec.readinessGates.push({ conditionType: 'meshmedic.io/healthy' });
  t.equal(gates(withGates, on.result).gates.length, 2, 'not added twice');
  const bad = structuredClone(pod);
  bad.metadata.annotations = { 'meshmedic.io/readiness-gate': 'maybe' };
  const plan = planInjection({ pod: bad, namespace: 'shop', optIn: 'namespace-label' }, DEFAULT_INJECTOR_CONFIG);
  t.ok(plan.warnings.some((w) => /meshmedic\.io\/readiness-gate: "maybe"/.test(w)), 'a bad value is a warning naming it');
});

t.test('readiness gate quorum mode: injector setting and annotation', async (t) => {
  const { pod } = load('plain-pod');
  const gate = (p: any, cfg = DEFAULT_INJECTOR_CONFIG) => {
    const plan = planInjection({ pod: p, namespace: 'shop', optIn: 'namespace-label' }, cfg);
    if (!plan.inject) throw new Error(plan.reason);
    const patched = fjp.applyPatch(structuredClone(p), plan.patch as fjp.Operation[]).newDocument as any;
    t.doesNotThrow(() => new Pod(patched).validate(), 'valid pod');
    const sc = [...(patched.spec.initContainers ?? []), ...patched.spec.containers].find((c: any) => c.name === 'meshmedic');
    return { gates: patched.spec.readinessGates, env: sc.env.find((e: any) => e.name === 'MESHMEDIC_K8S_READINESS_GATE')?.value, warnings: plan.warnings };
  };
  t.equal(DEFAULT_INJECTOR_CONFIG.readinessGateMode, 'direct', 'direct by default');
  const quorum = validateInjectorConfig({ readinessGate: true, readinessGateMode: 'quorum' });
  if (!quorum.valid) throw new Error(quorum.errors.join('; '));
  const q = gate(pod, quorum.result);
  t.same([q.gates, q.env], [[{ conditionType: 'meshmedic.io/healthy' }], 'quorum'], 'injector setting: the gate, the sidecar told to wait for the quorum');
  const modeOnly = validateInjectorConfig({ readinessGateMode: 'quorum' });
  if (!modeOnly.valid) throw new Error(modeOnly.errors.join('; '));
  t.same([gate(pod, modeOnly.result).gates, gate(pod, modeOnly.result).env], [undefined, undefined], 'the mode alone adds no gate');
  const annotated = structuredClone(pod);
  annotated.metadata.annotations = { 'meshmedic.io/readiness-gate': 'true', 'meshmedic.io/readiness-gate-mode': 'quorum' };
  t.equal(gate(annotated).env, 'quorum', 'per pod by annotation');
  annotated.metadata.annotations = { 'meshmedic.io/readiness-gate-mode': 'direct' };
  t.equal(gate(annotated, quorum.result).env, 'true', 'the annotation turns a pod back to direct');
  annotated.metadata.annotations = { 'meshmedic.io/readiness-gate-mode': 'majority' };
  const bad = gate(annotated, quorum.result);
  t.equal(bad.env, 'quorum', 'a bad value keeps the injector setting');
  t.ok(bad.warnings.some((w) => /meshmedic\.io\/readiness-gate-mode: "majority" is not "direct" or "quorum"/.test(w)), 'and is a warning naming it');
  const wrong = validateInjectorConfig({ readinessGateMode: 'sometimes' });
  t.notOk(wrong.valid, 'the injector setting is checked');
  if (!wrong.valid) t.match(wrong.errors.join('\n'), /\/readinessGateMode/, 'the error names it');
});

t.test('injector config selects classic', async (t) => {
  const { pod } = load('plain-pod');
  const classic = validateInjectorConfig({ mode: 'classic', image: 'example/meshmedic:dev' });
  t.ok(classic.valid);
  if (!classic.valid) return;
  const plan = planInjection({ pod, namespace: 'shop', optIn: 'namespace-label' }, classic.result);
  t.ok(plan.inject);
  if (plan.inject) {
    t.equal(plan.patch[0]!.path, '/spec/containers/-');
    t.equal((plan.patch[0]!.value as any).image, 'example/meshmedic:dev');
  }
});

t.test('IPv6-only clusters: the admin port can bind ::', async (t) => {
  const v6 = validateInjectorConfig({ adminBindAddress: '::' });
  t.ok(v6.valid);
  if (!v6.valid) return;
  const { buildSidecar } = await import('../../src/k8s/inject.js');
  const sidecarEnv = buildSidecar(v6.result, 'native', 'x').env!;
  const env = sidecarEnv.find((e) => e.name === 'MESHMEDIC_ADMIN__LISTEN');
  t.equal(env?.value, '[::]:17000');
  const { loadSidecarConfig } = await import('../../src/k8s/podinfo.js');
  const readOnly = sidecarEnv.find((e) => e.name === 'MESHMEDIC_ADMIN__READONLY')?.value;
  t.ok(loadSidecarConfig({ env: { MESHMEDIC_ADMIN__LISTEN: env!.value!, MESHMEDIC_ADMIN__READONLY: readOnly! } }).config.valid, 'the config accepts it (read-only: no admin token in the pod)');
});

t.test('injector config validation names the problem', async (t) => {
  const bad = validateInjectorConfig({ mode: 'sidecar', ports: { admin: 17001, outbound: 17001 }, resources: { cpu: 'lots' }, extra: 1 });
  t.equal(bad.valid, false);
  if (bad.valid) return;
  const text = bad.errors.join('\n');
  t.match(text, /\/mode/);
  t.match(text, /\/resources\/cpu/);
  t.match(text, /\/extra: unknown key/);
  const clash = validateInjectorConfig({ ports: { admin: 17001 } });
  t.equal(clash.valid, false);
});

t.test('random pod shapes never throw', async (t) => {
  const shapes: unknown[] = [null, 1, 'x', [], {}, { spec: null }, { spec: { containers: 'no' } }, { spec: { containers: [{}] } }, { spec: { containers: [{ name: 'a' }], initContainers: 'x', volumes: 3 }, metadata: { annotations: [] } }, { metadata: 'm', spec: { containers: [{ name: 'a', env: 'x' }] } }];
  for (const pod of shapes) {
    t.doesNotThrow(() => planInjection({ pod, namespace: 'ns', optIn: 'namespace-label' }, DEFAULT_INJECTOR_CONFIG));
  }
  // A pod with odd but legal-looking fields still produces a patch that applies.
  const pod = { spec: { containers: [{ name: 'a', env: 'x' }], initContainers: 'x', volumes: 3 }, metadata: 'm' };
  const plan = planInjection({ pod, namespace: 'ns', optIn: 'namespace-label' }, DEFAULT_INJECTOR_CONFIG);
  t.ok(plan.inject);
});

t.test('the environment injected into the sidecar is a valid config environment', async (t) => {
  const { loadSidecarConfig } = await import('../../src/k8s/podinfo.js');
  const { buildSidecar } = await import('../../src/k8s/inject.js');
  const sc = buildSidecar(DEFAULT_INJECTOR_CONFIG, 'native', 'x');
  const fromPod: Record<string, string> = { POD_NAME: 'reviews-1', POD_NAMESPACE: 'shop', NODE_NAME: 'n1', POD_IP: '10.1.0.1', SERVICE_ACCOUNT: 'reviews' };
  const env: Record<string, string> = {};
  for (const e of sc.env ?? []) {
    // The kubelet's $(VAR) expansion of earlier entries.
    env[e.name] = e.valueFrom ? fromPod[e.name]! : (e.value ?? '').replace(/\$\(([A-Z_]+)\)/g, (_m, v: string) => fromPod[v] ?? env[v] ?? '');
  }
  const res = loadSidecarConfig({ configFile: '/nonexistent/mesh.yaml', env });
  t.ok(res.config.valid, res.config.valid ? 'valid' : res.config.errors.join('; '));
  if (res.config.valid) {
    t.equal(res.config.result.node.id, 'shop/reviews-1');
    t.equal(res.config.result.admin.listen, '0.0.0.0:17000');
    t.equal(res.config.result.outbound.listen, '127.0.0.1:17001');
  }
});

t.test('mutated reviews: never a throw, never a denial, every patch applies', async (t) => {
  // Deterministic mutations of a real review: replace or delete random fields with random values.
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const values = () => [null, 0, -1, 1e308, '', 'x', 'meshmedic', true, [], [1, 'a'], {}, { name: 'meshmedic' }, '\u0000', 'a/b~c'][Math.floor(rnd() * 14)];
  const paths: string[][] = [];
  const walk = (o: any, p: string[]) => {
    if (p.length) paths.push(p);
    if (o && typeof o === 'object') for (const k of Object.keys(o)) walk(o[k], [...p, k]);
  };
  const base = load('existing-init-containers').review;
  walk(base.request.object, ['request', 'object']);
  let injected = 0;
  for (let i = 0; i < 400; i++) {
    const rev = structuredClone(base);
    for (let j = 0; j < 1 + Math.floor(rnd() * 3); j++) {
      const p = paths[Math.floor(rnd() * paths.length)]!;
      let o: any = rev;
      for (const k of p.slice(0, -1)) { if (o === null || typeof o !== 'object') break; o = o[k]; }
      if (o === null || typeof o !== 'object') continue;
      if (rnd() < 0.3) delete o[p.at(-1)!];
      else o[p.at(-1)!] = values();
    }
    let res;
    try {
      res = reviewAdmission(JSON.stringify(rev), { config: DEFAULT_INJECTOR_CONFIG, optIn: 'namespace-label' });
    } catch (err) {
      t.fail(`threw on mutation ${i}: ${(err as Error).message}`);
      continue;
    }
    const body = res.body as any;
    if (res.status !== 200) { t.fail(`status ${res.status} for a valid envelope`); continue; }
    if (body.response.allowed !== true) t.fail('denied');
    if (!body.response.patch) continue;
    injected++;
    const patch = JSON.parse(Buffer.from(body.response.patch, 'base64').toString());
    const errors = fjp.validate(patch, structuredClone(rev.request.object));
    if (errors) t.fail(`patch does not apply on mutation ${i}: ${errors.message}`);
  }
  t.ok(injected > 50, `many mutated pods still injected (${injected}/400)`);
});
