// Settings of the injection webhook (`meshmedic webhook --config FILE`): what sidecar it injects and how.
// Validated once with the same conventions as the mesh config (every error names its path).
import { Ajv, type ErrorObject } from 'ajv';
import type { Validated } from '../core/errors.js';
import { deepFreeze, readConfigDocument } from '../config/load.js';

/** The namespace meshmedic's own webhook and control components run in (never injected). */
export const CONTROL_NAMESPACE = 'meshmedic';

export const DEFAULT_EXCLUDED_NAMESPACES = Object.freeze(['kube-system', 'kube-public', 'kube-node-lease']);

/**
 * NO_PROXY entries always set in app containers: loopback (the app talking to itself or to the
 * sidecar's admin port) and the link-local metadata address. Cluster names (`.svc`, `.cluster.local`)
 * are deliberately NOT excluded: service-to-service HTTP is the traffic the sidecar measures and heals.
 */
export const DEFAULT_NO_PROXY = Object.freeze(['localhost', '127.0.0.1', '::1', '169.254.169.254']);

const quantity = { type: 'string', pattern: '^[+]?(\\d+(\\.\\d*)?|\\.\\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\\d+)?$', description: 'a Kubernetes quantity such as 100m or 64Mi' } as const;
const port = { type: 'integer', minimum: 1, maximum: 65535 } as const;

export const injectorConfigSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    image: { type: 'string', minLength: 1, maxLength: 512, default: 'meshmedic/meshmedic:0.1.0' },
    imagePullPolicy: { enum: ['Always', 'IfNotPresent', 'Never'], default: 'IfNotPresent' },
    mode: { enum: ['native', 'classic'], default: 'native', description: 'native: initContainer with restartPolicy Always (Kubernetes >= 1.29); classic: a regular container' },
    containerName: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$', default: 'meshmedic' },
    ports: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        admin: { ...port, default: 17000 },
        outbound: { ...port, default: 17001 },
        gossip: { ...port, default: 17946 },
      },
    },
    resources: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        cpu: { ...quantity, default: '50m' },
        memory: { ...quantity, default: '160Mi' },
        cpuLimit: { ...quantity, default: '', pattern: '^$|' + quantity.pattern, description: 'empty: no CPU limit' },
        memoryLimit: { ...quantity, default: '256Mi' },
      },
    },
    footprint: { enum: ['small', 'default'], default: 'small', description: 'small: the sidecar gets MESHMEDIC_V8_FOOTPRINT=small (the command keeps V8\'s young generation at 1 MB while quiet, grows it under load and shrinks it after) and NODE_OPTIONS capping its old generation at half the memory limit (≈ −40 MB of RSS, see docs/kubernetes.md); default: MESHMEDIC_V8_FOOTPRINT=default, Node\'s own heap sizing' },
    runAsUser: { type: 'integer', minimum: 1, maximum: 2_147_483_647, default: 65532 },
    adminBindAddress: { enum: ['0.0.0.0', '::'], default: '0.0.0.0', description: 'where the admin port listens (the kubelet probes the pod IP): :: for IPv6-only clusters' },
    noProxy: { type: 'array', items: { type: 'string', minLength: 1, maxLength: 253 }, default: [], maxItems: 256 },
    setHttpProxy: { type: 'boolean', default: true },
    excludeNamespaces: { type: 'array', items: { type: 'string' }, default: [...DEFAULT_EXCLUDED_NAMESPACES] },
    meshConfigMap: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$', default: 'meshmedic-mesh', description: 'ConfigMap (in the pod\'s namespace, optional) holding mesh.yaml' },
    prometheusAnnotations: { type: 'boolean', default: true, description: 'add prometheus.io/* scrape annotations when the pod has none' },
    gossipKeysSecret: { type: 'string', pattern: '^$|^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$', default: 'meshmedic-gossip-keys', description: 'Secret (in the pod\'s namespace, optional) holding the gossip keys, mounted at /etc/meshmedic/gossip-keys; empty: not mounted' },
    readinessGate: { type: 'boolean', default: false, description: 'add the readiness gate meshmedic.io/healthy to every injected pod (the annotation meshmedic.io/readiness-gate overrides it per pod)' },
    readinessGateMode: { enum: ['direct', 'quorum'], default: 'direct', description: 'who marks an ejected pod through the gate: direct: the sidecar whose ejection was applied; quorum: only once the mesh\'s gossip quorum also holds the endpoint failing (needs gossip with its health plane). The annotation meshmedic.io/readiness-gate-mode overrides it per pod' },
  },
} as const;

export interface InjectorConfig {
  readonly image: string;
  readonly imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  readonly mode: 'native' | 'classic';
  readonly containerName: string;
  readonly ports: { readonly admin: number; readonly outbound: number; readonly gossip: number };
  readonly resources: { readonly cpu: string; readonly memory: string; readonly cpuLimit: string; readonly memoryLimit: string };
  readonly footprint: 'small' | 'default';
  readonly runAsUser: number;
  readonly adminBindAddress: '0.0.0.0' | '::';
  readonly noProxy: readonly string[];
  readonly setHttpProxy: boolean;
  readonly excludeNamespaces: readonly string[];
  readonly meshConfigMap: string;
  readonly prometheusAnnotations: boolean;
  readonly gossipKeysSecret: string;
  readonly readinessGate: boolean;
  readonly readinessGateMode: 'direct' | 'quorum';
}

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false });
const check = ajv.compile(injectorConfigSchema);

export function validateInjectorConfig(input: unknown): Validated<InjectorConfig> {
  const value = structuredClone(input ?? {});
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { valid: false, errors: ['/: expected a mapping (object)'] };
  if (!check(value)) {
    return { valid: false, errors: (check.errors ?? []).map(formatError) };
  }
  const cfg = value as unknown as InjectorConfig;
  const errors: string[] = [];
  const p = cfg.ports;
  if (new Set([p.admin, p.outbound, p.gossip]).size !== 3) errors.push(`/ports: admin, outbound and gossip must differ (got ${p.admin}, ${p.outbound}, ${p.gossip})`);
  return errors.length ? { valid: false, errors } : { valid: true, result: deepFreeze(cfg) };
}

export function loadInjectorConfig(file: string | undefined): Validated<InjectorConfig> {
  if (!file) return validateInjectorConfig({});
  const parsed = readConfigDocument(file);
  if (!parsed.valid) return parsed;
  const doc = parsed.result as Record<string, unknown>;
  // The same file may be the ConfigMap's full document with the injector under `injector:`.
  const section = doc && typeof doc === 'object' && !Array.isArray(doc) && 'injector' in doc ? doc.injector : doc;
  const res = validateInjectorConfig(section);
  return res.valid ? res : { valid: false, errors: res.errors.map((e) => `${file}: ${e}`) };
}

export const DEFAULT_INJECTOR_CONFIG: InjectorConfig = (() => {
  const r = validateInjectorConfig({});
  if (!r.valid) throw new Error(`default injector config is invalid: ${r.errors.join('; ')}`);
  return r.result;
})();

function formatError(e: ErrorObject): string {
  const path = e.instancePath || '/';
  if (e.keyword === 'additionalProperties') return `${path === '/' ? '' : path}/${(e.params as { additionalProperty: string }).additionalProperty}: unknown key`;
  return `${path}: ${e.message ?? 'is invalid'}`;
}
