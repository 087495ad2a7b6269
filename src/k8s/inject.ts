// The injection template and planner: given a pod (as the API server sends it) and the injector's
// settings, decide whether to inject and build the RFC 6902 JSON Patch. Pure: no I/O, no clock.
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IEnvVar } from 'kubernetes-models/v1/EnvVar';
import type { IProbe } from 'kubernetes-models/v1/Probe';
import type { IVolume } from 'kubernetes-models/v1/Volume';
import { INJECTION_ANNOTATIONS, annotationsToConfigPatch, isQuantity, parseBool, quantityValue, readinessGateModeOf } from './annotations.js';
import { DEFAULT_NO_PROXY, type InjectorConfig } from './injector-config.js';
import { ENV_READINESS_GATE, READINESS_CONDITION } from './readiness-gate.js';
import { ENV_V8_FOOTPRINT } from '../runtime/v8-footprint.js';

export type JsonPatchOp = { op: 'add' | 'replace'; path: string; value: unknown };

/** What the status annotation records; a pod carrying it is never injected again. */
export interface InjectionStatus {
  readonly version: 1;
  readonly mode: 'native' | 'classic';
  readonly image: string;
  readonly containers: readonly string[];
  readonly volumes: readonly string[];
  /** App containers that got HTTP_PROXY/NO_PROXY. */
  readonly proxied: readonly string[];
}

export type InjectionPlan =
  | { readonly inject: true; readonly patch: JsonPatchOp[]; readonly status: InjectionStatus; readonly warnings: string[] }
  | { readonly inject: false; readonly reason: string; readonly warnings: string[] };

export interface InjectionRequest {
  /** `request.object`: whatever the API server sent (checked here, never trusted). */
  readonly pod: unknown;
  /** `request.namespace` (a pod being created may have no metadata.namespace yet). */
  readonly namespace: string;
  /** Which webhook entry called, so which opt-in the API server already checked; it is checked again here. */
  readonly optIn: OptInRoute;
}

/**
 * How a pod opted in, one per webhook path: its namespace is labelled `meshmedic.io/inject=true`
 * (the API server checked the label), the pod itself is labelled so (in a namespace without the label),
 * or — the deprecated route, which made the API server call the webhook for every pod of unlabelled
 * namespaces — the pod is annotated `meshmedic.io/inject: "true"`.
 */
export type OptInRoute = 'namespace-label' | 'pod-label' | 'pod-annotation';

/** Values of the `meshmedic.io/inject` label (namespace or pod) that opt in / out; the selectors use the same. */
export const INJECT_LABEL_ON = Object.freeze(['true', 'enabled']);
export const INJECT_LABEL_OFF = Object.freeze(['false', 'disabled']);

/** A pod's own `meshmedic.io/inject` label: true, false, or undefined (absent or neither). */
export function podInjectLabel(labels: Readonly<Record<string, unknown>> | undefined): boolean | undefined {
  const v = labels?.[INJECTION_ANNOTATIONS.inject];
  if (typeof v !== 'string') return undefined;
  if (INJECT_LABEL_ON.includes(v)) return true;
  if (INJECT_LABEL_OFF.includes(v)) return false;
  return undefined;
}

export const PODINFO_VOLUME = 'meshmedic-podinfo';
export const MESH_VOLUME = 'meshmedic-mesh';
export const TMP_VOLUME = 'meshmedic-tmp';
export const GOSSIP_KEYS_VOLUME = 'meshmedic-gossip-keys';
/** Where the gossip keyring Secret is mounted: mesh.yaml's gossip.keysFile points here (the chart's does). */
export const GOSSIP_KEYS_DIR = '/etc/meshmedic/gossip-keys';
export const PODINFO_DIR = '/etc/meshmedic/podinfo';
export const MESH_DIR = '/etc/meshmedic/mesh';
const PROXY_ENV = ['HTTP_PROXY', 'http_proxy', 'NO_PROXY', 'no_proxy'];

/** RFC 6901: `~` → `~0`, then `/` → `~1`. */
export function escapeJsonPointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

export function planInjection(req: InjectionRequest, cfg: InjectorConfig): InjectionPlan {
  const warnings: string[] = [];
  const pod = asObject(req.pod);
  const spec = asObject(pod?.spec);
  const containers = spec?.containers;
  if (!pod || !spec || !Array.isArray(containers) || containers.length === 0 || !containers.every((c) => typeof asObject(c)?.name === 'string')) {
    return { inject: false, reason: 'the object is not a pod with named containers', warnings };
  }
  const metadata = asObject(pod.metadata);
  const rawAnnotations = asObject(metadata?.annotations);
  const annotations: Record<string, string> = {};
  for (const [k, v] of Object.entries(rawAnnotations ?? {})) if (typeof v === 'string') annotations[k] = v;

  if (cfg.excludeNamespaces.includes(req.namespace)) return { inject: false, reason: `namespace ${req.namespace} is excluded`, warnings };
  if (spec.hostNetwork === true) return { inject: false, reason: 'the pod uses hostNetwork (its ports would collide with the node\'s)', warnings };

  const injectRaw = annotations[INJECTION_ANNOTATIONS.inject];
  const annotationOptIn = injectRaw === undefined ? undefined : parseBool(injectRaw);
  if (injectRaw !== undefined && annotationOptIn === undefined) warnings.push(`${INJECTION_ANNOTATIONS.inject}: ${JSON.stringify(injectRaw)} is not "true" or "false"; ignored`);
  const labels = asObject(metadata?.labels);
  const labelRaw = labels?.[INJECTION_ANNOTATIONS.inject];
  const labelOptIn = podInjectLabel(labels);
  if (labelRaw !== undefined && labelOptIn === undefined) warnings.push(`label ${INJECTION_ANNOTATIONS.inject}=${JSON.stringify(labelRaw)} is not one of ${[...INJECT_LABEL_ON, ...INJECT_LABEL_OFF].join(', ')}; ignored`);
  // Defence in depth: the API server's selectors should have kept these pods away; check again.
  if (labelOptIn === false) return { inject: false, reason: `opted out by the label ${INJECTION_ANNOTATIONS.inject}=${String(labelRaw)}`, warnings };
  if (annotationOptIn === false) return { inject: false, reason: `opted out by ${INJECTION_ANNOTATIONS.inject}: "false"`, warnings };
  if (req.optIn === 'pod-label' && labelOptIn !== true) return { inject: false, reason: `not opted in (no label ${INJECTION_ANNOTATIONS.inject}=true on the pod and the namespace is not labelled)`, warnings };
  if (req.optIn === 'pod-annotation' && annotationOptIn !== true && labelOptIn !== true) return { inject: false, reason: `not opted in (no ${INJECTION_ANNOTATIONS.inject}: "true" and the namespace is not labelled)`, warnings };

  if (annotations[INJECTION_ANNOTATIONS.status] !== undefined) return { inject: false, reason: 'already injected (status annotation present)', warnings };
  const initContainers = Array.isArray(spec.initContainers) ? spec.initContainers : undefined;
  const allNames = [...containers, ...(initContainers ?? [])].map((c) => asObject(c)?.name);
  if (allNames.includes(cfg.containerName)) {
    warnings.push(`meshmedic: the pod already has a container named "${cfg.containerName}" but no ${INJECTION_ANNOTATIONS.status} annotation; not injected again`);
    return { inject: false, reason: `a container named ${cfg.containerName} exists`, warnings };
  }
  const volumes = Array.isArray(spec.volumes) ? spec.volumes : undefined;
  const volumeNames = (volumes ?? []).map((v) => asObject(v)?.name);
  for (const v of [PODINFO_VOLUME, MESH_VOLUME, GOSSIP_KEYS_VOLUME]) {
    if (volumeNames.includes(v)) {
      warnings.push(`meshmedic: the pod already has a volume named "${v}"; not injected`);
      return { inject: false, reason: `volume ${v} exists`, warnings };
    }
  }

  // Tuning and injection annotations are checked here so that the author sees problems at deploy time.
  warnings.push(...annotationsToConfigPatch(annotations).warnings);

  const modeAnn = annotations[INJECTION_ANNOTATIONS.sidecarMode]?.trim();
  const mode: 'native' | 'classic' = modeAnn === 'native' || modeAnn === 'classic' ? modeAnn : cfg.mode;
  const imageAnn = annotations[INJECTION_ANNOTATIONS.image]?.trim();
  const image = imageAnn && /^[a-z0-9][a-zA-Z0-9._\-/:@]{0,254}$/.test(imageAnn) ? imageAnn : cfg.image;
  const sidecar = buildSidecar(cfg, mode, image, annotations);
  // The readiness gate: the pod is Ready only while the condition meshmedic.io/healthy is True. Its own
  // sidecar sets it True at start (so a pod is never held back by a gate nobody sets) and sets the
  // condition of the pods it ejects and restores.
  const gateAnn = annotations[INJECTION_ANNOTATIONS.readinessGate];
  const gate = gateAnn !== undefined && parseBool(gateAnn) !== undefined ? parseBool(gateAnn)! : cfg.readinessGate;
  // Quorum mode: the sidecar marks a pod only once the gossip quorum also holds it failing.
  const gateMode = readinessGateModeOf(annotations[INJECTION_ANNOTATIONS.readinessGateMode] ?? '') ?? cfg.readinessGateMode;
  if (gate) sidecar.env = [...(sidecar.env ?? []), { name: ENV_READINESS_GATE, value: gateMode === 'quorum' ? 'quorum' : 'true' }];

  const patch: JsonPatchOp[] = [];
  if (mode === 'native') {
    // First among init containers, so that the sidecar is up before any later init container runs.
    if (initContainers) patch.push({ op: 'add', path: '/spec/initContainers/0', value: sidecar });
    else patch.push({ op: 'add', path: '/spec/initContainers', value: [sidecar] });
  } else {
    patch.push({ op: 'add', path: '/spec/containers/-', value: sidecar });
  }
  if (gate) {
    const gates = Array.isArray(spec.readinessGates) ? spec.readinessGates : undefined;
    const has = (gates ?? []).some((g) => asObject(g)?.conditionType === READINESS_CONDITION);
    if (!has) {
      if (gates) patch.push({ op: 'add', path: '/spec/readinessGates/-', value: { conditionType: READINESS_CONDITION } });
      else patch.push({ op: 'add', path: '/spec/readinessGates', value: [{ conditionType: READINESS_CONDITION }] });
    }
  }
  const newVolumes = buildVolumes(cfg);
  if (volumes) for (const v of newVolumes) patch.push({ op: 'add', path: '/spec/volumes/-', value: v });
  else patch.push({ op: 'add', path: '/spec/volumes', value: newVolumes });

  const proxied: string[] = [];
  const httpProxyAnn = annotations[INJECTION_ANNOTATIONS.httpProxy];
  const setProxy = httpProxyAnn !== undefined && parseBool(httpProxyAnn) !== undefined ? parseBool(httpProxyAnn)! : cfg.setHttpProxy;
  if (setProxy) {
    const env = proxyEnv(cfg, annotations[INJECTION_ANNOTATIONS.noProxy]);
    containers.forEach((c, i) => {
      const container = c as Record<string, unknown>;
      const existing = Array.isArray(container.env) ? (container.env as unknown[]) : undefined;
      const taken = (existing ?? []).map((e) => asObject(e)?.name).filter((n) => typeof n === 'string' && PROXY_ENV.includes(n));
      if (taken.length) {
        warnings.push(`meshmedic: container "${String(container.name)}" sets ${taken.join(', ')} itself; its proxy settings were left alone`);
        return;
      }
      if (existing) for (const e of env) patch.push({ op: 'add', path: `/spec/containers/${i}/env/-`, value: e });
      else patch.push({ op: 'add', path: `/spec/containers/${i}/env`, value: env });
      proxied.push(String(container.name));
    });
  }

  const status: InjectionStatus = {
    version: 1,
    mode,
    image,
    containers: [cfg.containerName],
    volumes: newVolumes.map((v) => v.name),
    proxied,
  };
  const newAnnotations: Record<string, string> = { [INJECTION_ANNOTATIONS.status]: JSON.stringify(status) };
  if (cfg.prometheusAnnotations && annotations['prometheus.io/scrape'] === undefined) {
    newAnnotations['prometheus.io/scrape'] = 'true';
    newAnnotations['prometheus.io/port'] = String(cfg.ports.admin);
    newAnnotations['prometheus.io/path'] = '/metrics';
  }
  if (!metadata) {
    patch.push({ op: 'add', path: '/metadata', value: { annotations: newAnnotations } });
  } else if (!rawAnnotations) {
    patch.push({ op: 'add', path: '/metadata/annotations', value: newAnnotations });
  } else {
    for (const [k, v] of Object.entries(newAnnotations)) patch.push({ op: 'add', path: `/metadata/annotations/${escapeJsonPointer(k)}`, value: v });
  }
  return { inject: true, patch, status, warnings };
}

/** The sidecar container. Typed with the Kubernetes models so that a misspelt field fails to compile. */
export function buildSidecar(cfg: InjectorConfig, mode: 'native' | 'classic', image: string, annotations: Readonly<Record<string, string>> = {}): IContainer {
  const p = cfg.ports;
  const quantity = (key: string, def: string): string => {
    const v = annotations[key]?.trim();
    return v !== undefined && isQuantity(v) ? v : def;
  };
  const requests: Record<string, string> = { cpu: quantity(INJECTION_ANNOTATIONS.cpu, cfg.resources.cpu), memory: quantity(INJECTION_ANNOTATIONS.memory, cfg.resources.memory) };
  const limits: Record<string, string> = {};
  const cpuLimit = quantity(INJECTION_ANNOTATIONS.cpuLimit, cfg.resources.cpuLimit);
  const memoryLimit = quantity(INJECTION_ANNOTATIONS.memoryLimit, cfg.resources.memoryLimit);
  if (cpuLimit) limits.cpu = cpuLimit;
  if (memoryLimit) limits.memory = memoryLimit;
  const fieldEnv = (name: string, fieldPath: string): IEnvVar => ({ name, valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath } } });
  const probe = (path: string, periodSeconds: number, failureThreshold: number): IProbe => ({
    httpGet: { path, port: p.admin, scheme: 'HTTP' },
    periodSeconds,
    timeoutSeconds: 2,
    failureThreshold,
  });
  const container: IContainer = {
    name: cfg.containerName,
    image,
    imagePullPolicy: cfg.imagePullPolicy,
    // A missing mesh.yaml (the ConfigMap is optional) means defaults; MESHMEDIC_POD_ANNOTATIONS layers the
    // pod's meshmedic.io/* annotations on top, at start and on change.
    args: ['run', '--config', `${MESH_DIR}/mesh.yaml`],
    ports: [
      { name: 'mm-admin', containerPort: p.admin, protocol: 'TCP' },
      { name: 'mm-gossip', containerPort: p.gossip, protocol: 'TCP' },
      { name: 'mm-gossip-udp', containerPort: p.gossip, protocol: 'UDP' },
    ],
    env: [
      fieldEnv('POD_NAME', 'metadata.name'),
      fieldEnv('POD_NAMESPACE', 'metadata.namespace'),
      fieldEnv('NODE_NAME', 'spec.nodeName'),
      fieldEnv('POD_IP', 'status.podIP'),
      fieldEnv('SERVICE_ACCOUNT', 'spec.serviceAccountName'),
      // Dependent variables: the kubelet expands $(VAR) from the entries above.
      { name: 'MESHMEDIC_NODE__ID', value: '$(POD_NAMESPACE)/$(POD_NAME)' },
      // Probes come from the kubelet on the pod IP, so the admin port listens on all addresses; without a
      // token of its own it is explicitly read-only (off loopback, a sidecar refuses to start otherwise).
      { name: 'MESHMEDIC_ADMIN__LISTEN', value: cfg.adminBindAddress === '::' ? `[::]:${p.admin}` : `0.0.0.0:${p.admin}` },
      { name: 'MESHMEDIC_ADMIN__READONLY', value: 'true' },
      { name: 'MESHMEDIC_OUTBOUND__LISTEN', value: `127.0.0.1:${p.outbound}` },
      { name: 'MESHMEDIC_POD_ANNOTATIONS', value: `${PODINFO_DIR}/annotations` },
      { name: 'MESHMEDIC_K8S_DISCOVERY', value: 'true' },
      // Gossip (when mesh.yaml enables it) binds every address and tells peers the pod IP.
      { name: 'MESHMEDIC_GOSSIP__LISTEN', value: cfg.adminBindAddress === '::' ? `[::]:${p.gossip}` : `0.0.0.0:${p.gossip}` },
      { name: 'MESHMEDIC_GOSSIP__ADVERTISE', value: cfg.adminBindAddress === '::' ? `[$(POD_IP)]:${p.gossip}` : `$(POD_IP):${p.gossip}` },
      // The heap footprint: the command sizes V8's young generation itself (small while quiet, grown under
      // load: src/runtime/v8-footprint.ts); the injector adds only the old generation's cap for the container.
      { name: ENV_V8_FOOTPRINT, value: cfg.footprint },
      ...(cfg.footprint === 'small' && smallFootprintNodeOptions(memoryLimit) ? [{ name: 'NODE_OPTIONS', value: smallFootprintNodeOptions(memoryLimit) }] : []),
    ],
    resources: { requests, ...(Object.keys(limits).length ? { limits } : {}) },
    securityContext: {
      runAsNonRoot: true,
      runAsUser: cfg.runAsUser,
      runAsGroup: cfg.runAsUser,
      allowPrivilegeEscalation: false,
      privileged: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    startupProbe: probe('/healthz', 1, 30),
    readinessProbe: probe('/readyz', 5, 3),
    livenessProbe: probe('/healthz', 10, 3),
    volumeMounts: [
      { name: PODINFO_VOLUME, mountPath: PODINFO_DIR, readOnly: true },
      { name: MESH_VOLUME, mountPath: MESH_DIR, readOnly: true },
      // The root file system is read-only; this is the one writable place (small, wiped with the pod).
      { name: TMP_VOLUME, mountPath: '/tmp' },
      ...(cfg.gossipKeysSecret ? [{ name: GOSSIP_KEYS_VOLUME, mountPath: GOSSIP_KEYS_DIR, readOnly: true }] : []),
    ],
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
  // Native sidecar (KEP-753): an init container that keeps running, started before and stopped after the app.
  if (mode === 'native') container.restartPolicy = 'Always';
  return container;
}

/**
 * The sidecar's NODE_OPTIONS for footprint `small`: the old generation capped at half the container's memory
 * limit, which also makes V8 size its heap from that figure instead of the node's RAM ('' without a limit).
 * The young generation is left to the command (MESHMEDIC_V8_FOOTPRINT=small): 1 MB semi-spaces while quiet,
 * grown under load and shrunk after by its governor — a `--max-semi-space-size` here would fix it at 1 MB
 * under load too (a scavenge every ~200 proxied requests). Measured by `npm run bench:memory`; see
 * docs/kubernetes.md.
 */
export function smallFootprintNodeOptions(memoryLimit: string | undefined): string {
  const bytes = memoryLimit ? quantityValue(memoryLimit) : undefined;
  return bytes !== undefined && bytes > 0 ? `--max-old-space-size=${Math.max(32, Math.floor(bytes / 2 ** 20 / 2))}` : '';
}

export function buildVolumes(cfg: InjectorConfig): (IVolume & { name: string })[] {
  return [
    {
      name: PODINFO_VOLUME,
      downwardAPI: {
        items: [
          { path: 'annotations', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.annotations' } },
          { path: 'labels', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.labels' } },
        ],
      },
    },
    // Optional: a namespace without the ConfigMap runs the sidecar on defaults plus annotations.
    { name: MESH_VOLUME, configMap: { name: cfg.meshConfigMap, optional: true } },
    { name: TMP_VOLUME, emptyDir: { sizeLimit: '16Mi' } },
    // The gossip keyring, a Secret of the pod's namespace; optional (no Secret: an empty directory, and a
    // mesh.yaml that names it as gossip.keysFile stops the sidecar with an error naming the file).
    ...(cfg.gossipKeysSecret ? [{ name: GOSSIP_KEYS_VOLUME, secret: { secretName: cfg.gossipKeysSecret, optional: true } }] : []),
  ];
}

export function proxyEnv(cfg: InjectorConfig, extraNoProxy: string | undefined): IEnvVar[] {
  const url = `http://127.0.0.1:${cfg.ports.outbound}`;
  const extra = (extraNoProxy ?? '').split(',').map((s) => s.trim()).filter((s) => s && /^[A-Za-z0-9.:*\-/[\]]{1,253}$/.test(s));
  const noProxy = [...new Set([...DEFAULT_NO_PROXY, ...cfg.noProxy, ...extra])].join(',');
  return [
    { name: 'HTTP_PROXY', value: url },
    { name: 'http_proxy', value: url },
    { name: 'NO_PROXY', value: noProxy },
    { name: 'no_proxy', value: noProxy },
  ];
}

function asObject(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

