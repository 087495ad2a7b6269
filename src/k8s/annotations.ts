// Per-pod tuning through `meshmedic.io/*` annotations: one table maps each annotation onto the same
// config schema as the file, so both are validated by validateConfig; bad values become warnings.
import { validateConfig } from '../config/load.js';

export const ANNOTATION_PREFIX = 'meshmedic.io/';

/** How an annotation's string value becomes a config value before the schema checks it. */
export type AnnotationKind = 'string' | 'integer' | 'number' | 'boolean' | 'duration' | 'list' | 'quantity' | 'json' | 'scalar';

export interface AnnotationSpec {
  readonly key: string;
  /** Config path (dotted) for tuning annotations; undefined for annotations read by the injector only. */
  readonly path?: string;
  readonly kind: AnnotationKind;
  readonly description: string;
  readonly example: string;
}

/**
 * Annotations read by the injector (the webhook) when it builds the sidecar. They do not map onto the
 * sidecar's config; their values are checked by the injector.
 */
export const INJECTION_ANNOTATIONS = {
  inject: `${ANNOTATION_PREFIX}inject`,
  status: `${ANNOTATION_PREFIX}status`,
  sidecarMode: `${ANNOTATION_PREFIX}sidecar-mode`,
  cpu: `${ANNOTATION_PREFIX}proxy-cpu`,
  memory: `${ANNOTATION_PREFIX}proxy-memory`,
  cpuLimit: `${ANNOTATION_PREFIX}proxy-cpu-limit`,
  memoryLimit: `${ANNOTATION_PREFIX}proxy-memory-limit`,
  httpProxy: `${ANNOTATION_PREFIX}http-proxy`,
  noProxy: `${ANNOTATION_PREFIX}no-proxy`,
  image: `${ANNOTATION_PREFIX}image`,
  readinessGate: `${ANNOTATION_PREFIX}readiness-gate`,
  readinessGateMode: `${ANNOTATION_PREFIX}readiness-gate-mode`,
} as const;

const a = (key: string, kind: AnnotationKind, description: string, example: string, path?: string): AnnotationSpec =>
  Object.freeze({ key: ANNOTATION_PREFIX + key, kind, description, example, ...(path ? { path } : {}) });

/** Every annotation meshmedic understands. docs/kubernetes.md renders the same table. */
export const ANNOTATIONS: readonly AnnotationSpec[] = Object.freeze([
  // Injection (read by the webhook).
  a('inject', 'boolean', 'opt a pod out ("false"); as an opt-in ("true") deprecated: use the label meshmedic.io/inject: "true"', '"false"'),
  a('status', 'json', 'written by the injector: what it injected (do not set by hand)', '{"version":1,...}'),
  a('sidecar-mode', 'string', 'native (initContainer with restartPolicy Always, Kubernetes ≥ 1.29) or classic (regular container)', 'classic'),
  a('proxy-cpu', 'quantity', "sidecar CPU request", '100m'),
  a('proxy-memory', 'quantity', 'sidecar memory request', '96Mi'),
  a('proxy-cpu-limit', 'quantity', 'sidecar CPU limit (none by default: throttling a proxy adds latency)', '500m'),
  a('proxy-memory-limit', 'quantity', 'sidecar memory limit', '256Mi'),
  a('http-proxy', 'boolean', 'set HTTP_PROXY/http_proxy in the app containers ("false" to leave them alone)', '"false"'),
  a('no-proxy', 'list', 'extra NO_PROXY entries for the app containers, comma-separated', 'metadata.internal,10.0.0.1'),
  a('image', 'string', 'sidecar image override', 'meshmedic/meshmedic:0.1.0'),
  a('readiness-gate', 'boolean', 'add the readiness gate meshmedic.io/healthy: an ejected pod leaves every EndpointSlice (overrides the injector setting readinessGate)', '"true"'),
  a('readiness-gate-mode', 'string', 'who marks an ejected pod: direct (this sidecar\'s applied ejection) or quorum (only once the gossip quorum also holds it failing; needs gossip) (overrides the injector setting readinessGateMode)', 'quorum'),
  // Tuning (read by the sidecar at start and on change; checked by the webhook for warnings).
  a('policy', 'string', 'healing policy: meshmedic, envoy-default or none', 'envoy-default', 'healing.policy'),
  a('consecutive-5xx', 'integer', 'consecutive failures of any kind that eject an endpoint', '5', 'healing.consecutive.errors5xx'),
  a('consecutive-gateway-failure', 'integer', 'consecutive gateway failures (502/503/504, connect errors, timeouts) that eject', '5', 'healing.consecutive.gateway'),
  a('consecutive-local-origin-failure', 'integer', 'consecutive local-origin failures (refused, reset, timeout) that eject', '3', 'healing.consecutive.localOrigin'),
  a('success-rate-min-hosts', 'integer', 'peer success-rate detector: endpoints with enough requests needed to judge', '3', 'healing.peerSuccess.minHosts'),
  a('success-rate-min-requests', 'integer', 'peer success-rate detector: requests an endpoint needs to be judged', '100', 'healing.peerSuccess.minRequests'),
  a('latency-eject-ratio', 'number', 'peer latency detector: eject at this multiple of the peers\' median latency', '2', 'healing.peerLatency.ejectRatio'),
  a('latency-degrade-ratio', 'number', 'peer latency detector: de-weight at this multiple of the peers\' median latency', '1.5', 'healing.peerLatency.degradeRatio'),
  a('latency-min-excess', 'duration', 'peer latency detector: ignore excesses over the median smaller than this', '5ms', 'healing.peerLatency.minExcessMs'),
  a('latency-objective', 'duration', 'p99 above which this sidecar reports an endpoint unhealthy to its peers (0: latency is no criterion)', '250ms', 'gossip.health.p99ThresholdMs'),
  a('base-ejection-time', 'duration', 'ejection time at backoff level 1 (level n ejects for n times this)', '30s', 'healing.ejection.baseMs'),
  a('max-ejection-time', 'duration', 'longest ejection', '5m', 'healing.ejection.maxMs'),
  a('max-ejection-percent', 'number', 'most endpoints of one priority that may be out at once, %', '50', 'healing.ejection.maxEjectionPct'),
  a('always-eject-one', 'boolean', 'allow one ejection per priority even when max-ejection-percent forbids it', '"true"', 'healing.ejection.alwaysEjectOne'),
  a('failover-bypass', 'boolean', 'beyond max-ejection-percent, still eject a hard-failing endpoint when another priority (the failover target) has healthy capacity', '"true"', 'healing.ejection.failoverBypass'),
  a('canary-weight', 'number', 'share of its normal traffic a re-admitted endpoint gets while on probation', '0.05', 'healing.probation.canaryWeight'),
  a('deweight', 'boolean', 'de-weight degrading endpoints (and ramp them back) instead of only ejecting', '"true"', 'healing.deweight.enabled'),
  a('gossip-quorum', 'integer', 'independent peers that must report an endpoint before a mesh-wide ejection (0: automatic)', '2', 'gossip.health.quorum'),
  a('log-level', 'string', 'sidecar log level', 'debug', 'log.level'),
  a('per-endpoint-metrics', 'boolean', 'latency histograms per endpoint instead of per service (19 series per endpoint with traffic)', '"true"', 'admin.metrics.perEndpointLatency'),
  a('audit', 'boolean', 'tamper-evident decision log (signed Merkle log, peers as witnesses) in audit.dir, default /var/lib/meshmedic/audit', '"true"', 'audit.enabled'),
]);

const BY_KEY: ReadonlyMap<string, AnnotationSpec> = new Map(ANNOTATIONS.map((s) => [s.key, s]));

/**
 * Besides the named annotations, any healing setting can be set by its config path:
 * `meshmedic.io/healing.<group>.<key>` (e.g. `meshmedic.io/healing.peerLatency.confirmWindows: "3"`).
 * The schema decides whether the path exists and the value fits.
 */
export const GENERIC_HEALING_PATTERN = /^healing\.[A-Za-z][A-Za-z0-9]{0,40}(\.[A-Za-z][A-Za-z0-9]{0,40})?$/;

export function annotationSpec(key: string): AnnotationSpec | undefined {
  const named = BY_KEY.get(key);
  if (named || !key.startsWith(ANNOTATION_PREFIX)) return named;
  const path = key.slice(ANNOTATION_PREFIX.length);
  if (!GENERIC_HEALING_PATTERN.test(path)) return undefined;
  return { key, path, kind: 'scalar', description: `config key ${path}`, example: '' };
}

export type ConfigPatch = Record<string, unknown>;

export interface AnnotationResult {
  /** Nested object to merge over the sidecar's config (only annotations that validated). */
  readonly patch: ConfigPatch;
  /** One line per rejected or unknown annotation, naming it and why; the default stays for each. */
  readonly warnings: readonly string[];
  /** Annotations applied, by key, with their parsed values. */
  readonly applied: Readonly<Record<string, unknown>>;
}

const MAX_VALUE_CHARS = 4096;
const MAX_ANNOTATIONS = 64;

/**
 * Turn a pod's annotations into a config patch. Pure: the same input gives the same output.
 * Each tuning annotation is parsed by kind, then validated together with those accepted before it
 * (and `base`, the config document it will be merged over), so a value that breaks the schema — or
 * breaks it only in combination — is dropped with a warning and the default stays.
 */
export function annotationsToConfigPatch(annotations: Readonly<Record<string, unknown>> | undefined, base: unknown = {}): AnnotationResult {
  const warnings: string[] = [];
  const applied: Record<string, unknown> = {};
  let patch: ConfigPatch = {};
  if (!annotations || typeof annotations !== 'object') return { patch, warnings, applied };
  let keys = Object.keys(annotations).filter((k) => k.startsWith(ANNOTATION_PREFIX)).sort(tableOrder);
  if (keys.length > MAX_ANNOTATIONS) {
    // Each one costs a schema validation: bound the work a single pod can ask of the webhook.
    warnings.push(`${keys.length} ${ANNOTATION_PREFIX}* annotations: only the first ${MAX_ANNOTATIONS} (in table order) are read`);
    keys = keys.slice(0, MAX_ANNOTATIONS);
  }
  for (const key of keys) {
    const spec = annotationSpec(key);
    const raw = annotations[key];
    if (!spec) {
      warnings.push(`${key}: unknown annotation, ignored${suggest(key)}`);
      continue;
    }
    if (typeof raw !== 'string') {
      warnings.push(`${key}: value must be a string, got ${typeof raw}; default kept`);
      continue;
    }
    if (!spec.path) {
      const err = checkInjectionValue(spec, raw);
      if (err) warnings.push(`${key}: ${err}; default kept`);
      continue;
    }
    const parsed = parseAnnotationValue(spec.kind, raw);
    if (!parsed.ok) {
      warnings.push(`${key}: ${quote(raw)} ${parsed.error}; default kept`);
      continue;
    }
    const candidate = setPath(structuredClone(patch), spec.path, parsed.value);
    const check = validateConfig(mergeConfigPatch(base, candidate));
    if (!check.valid) {
      warnings.push(`${key}: ${quote(raw)} rejected: ${explain(check.errors, spec.path)}; default kept`);
      continue;
    }
    patch = candidate;
    applied[key] = parsed.value;
  }
  return { patch, warnings, applied };
}

/** Deep-merge a patch over a config document (objects merge, everything else replaces). */
export function mergeConfigPatch(base: unknown, patch: ConfigPatch): unknown {
  if (!isPlainObject(base)) return structuredClone(patch);
  const out: Record<string, unknown> = structuredClone(base);
  for (const [k, v] of Object.entries(patch)) {
    out[k] = isPlainObject(v) && isPlainObject(out[k]) ? mergeConfigPatch(out[k], v as ConfigPatch) : structuredClone(v);
  }
  return out;
}

export type ParsedValue = { ok: true; value: unknown } | { ok: false; error: string };

/** Parse an annotation string by kind. Errors read as "<value> <error>". */
export function parseAnnotationValue(kind: AnnotationKind, raw: string): ParsedValue {
  const s = raw.trim();
  if (raw.length > MAX_VALUE_CHARS) return { ok: false, error: `is longer than ${MAX_VALUE_CHARS} characters` };
  switch (kind) {
    case 'string':
      return s ? { ok: true, value: s } : { ok: false, error: 'is empty' };
    case 'integer':
      return /^[+-]?\d{1,15}$/.test(s) ? { ok: true, value: Number(s) } : { ok: false, error: 'is not an integer' };
    case 'number':
      return /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(s) && Number.isFinite(Number(s))
        ? { ok: true, value: Number(s) }
        : { ok: false, error: 'is not a number' };
    case 'boolean': {
      const b = parseBool(s);
      return b === undefined ? { ok: false, error: 'is not "true" or "false"' } : { ok: true, value: b };
    }
    case 'duration': {
      const ms = parseDurationMs(s);
      return ms === undefined ? { ok: false, error: 'is not a duration such as 250ms, 30s, 5m or 1h30m' } : { ok: true, value: ms };
    }
    case 'list': {
      const items = s.split(',').map((x) => x.trim()).filter(Boolean);
      return items.length ? { ok: true, value: items } : { ok: false, error: 'is an empty list' };
    }
    case 'quantity':
      return isQuantity(s) ? { ok: true, value: s } : { ok: false, error: 'is not a Kubernetes quantity such as 100m, 0.5, 64Mi or 1G' };
    case 'scalar':
      if (s === 'true' || s === 'false') return { ok: true, value: s === 'true' };
      if (/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(s) && Number.isFinite(Number(s))) return { ok: true, value: Number(s) };
      return s ? { ok: true, value: s } : { ok: false, error: 'is empty' };
    case 'json':
      try {
        return { ok: true, value: JSON.parse(s) };
      } catch {
        return { ok: false, error: 'is not JSON' };
      }
  }
}

export function parseBool(s: string): boolean | undefined {
  const v = s.trim().toLowerCase();
  if (v === 'true' || v === 'yes' || v === 'on' || v === '1' || v === 'enabled') return true;
  if (v === 'false' || v === 'no' || v === 'off' || v === '0' || v === 'disabled') return false;
  return undefined;
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go-style durations ("250ms", "1.5s", "1h30m") or a bare number of milliseconds, to whole ms. */
export function parseDurationMs(s: string): number | undefined {
  if (/^\d{1,12}$/.test(s)) return Number(s);
  if (!/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(s)) return undefined;
  let total = 0;
  for (const m of s.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
  return Number.isFinite(total) && total <= 8.64e9 ? Math.round(total) : undefined;
}

/** Kubernetes resource.Quantity syntax (decimal SI, binary SI, or decimal exponent). */
const QUANTITY = /^[+]?(\d+(?:\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$/;

export function isQuantity(s: string): boolean {
  return s.length <= 64 && QUANTITY.test(s) && /[1-9]/.test(s);
}

const QUANTITY_UNIT: Readonly<Record<string, number>> = { '': 1, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60, n: 1e-9, u: 1e-6, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };

/** The value of a quantity (`256Mi` → 268435456), or undefined when it is not one. */
export function quantityValue(s: string): number | undefined {
  const m = s.length <= 64 ? QUANTITY.exec(s) : null;
  if (!m) return undefined;
  const unit = m[2] ?? '';
  return /^[eE]/.test(unit) ? Number(`${m[1]}${unit}`) : Number(m[1]) * QUANTITY_UNIT[unit]!;
}

/** The readiness gate's modes (annotation `meshmedic.io/readiness-gate-mode`, injector setting `readinessGateMode`). */
export type ReadinessGateMode = 'direct' | 'quorum';

export function readinessGateModeOf(raw: string): ReadinessGateMode | undefined {
  const v = raw.trim();
  return v === 'direct' || v === 'quorum' ? v : undefined;
}

function checkInjectionValue(spec: AnnotationSpec, raw: string): string | undefined {
  if (spec.key === INJECTION_ANNOTATIONS.status) return undefined; // written by us, read by the injector
  if (spec.key === INJECTION_ANNOTATIONS.sidecarMode) {
    const v = raw.trim();
    return v === 'native' || v === 'classic' ? undefined : `${quote(raw)} is not "native" or "classic"`;
  }
  if (spec.key === INJECTION_ANNOTATIONS.readinessGateMode) {
    return readinessGateModeOf(raw) ? undefined : `${quote(raw)} is not "direct" or "quorum"`;
  }
  if (spec.key === INJECTION_ANNOTATIONS.image) {
    return /^[a-z0-9][a-zA-Z0-9._\-/:@]{0,254}$/.test(raw.trim()) ? undefined : `${quote(raw)} is not an image reference`;
  }
  const parsed = parseAnnotationValue(spec.kind, raw);
  return parsed.ok ? undefined : `${quote(raw)} ${parsed.error}`;
}

function setPath(obj: ConfigPatch, path: string, value: unknown): ConfigPatch {
  const parts = path.split('.');
  let cur: Record<string, unknown> = obj;
  for (let i = 0; i < parts.length - 1; i++) {
    const k = parts[i]!;
    if (!isPlainObject(cur[k])) cur[k] = {};
    cur = cur[k] as Record<string, unknown>;
  }
  cur[parts[parts.length - 1]!] = value;
  return obj;
}

/** Rephrase schema errors for the annotation's author: the annotation names the place, keep the reason. */
function explain(errors: readonly string[], path: string): string {
  const pointer = '/' + path.split('.').join('/');
  const own = errors.filter((e) => e.startsWith(pointer + ':') || e.startsWith(pointer + '/'));
  const chosen = (own.length ? own : errors).slice(0, 3);
  return chosen
    .map((e) => {
      if (/unknown key/.test(e)) return `config key ${path} is not supported by this version of meshmedic`;
      const i = e.indexOf(': ');
      return i >= 0 && e.startsWith('/') ? e.slice(i + 2) : e;
    })
    .join('; ');
}

function tableOrder(x: string, y: string): number {
  const ix = ANNOTATIONS.findIndex((s) => s.key === x);
  const iy = ANNOTATIONS.findIndex((s) => s.key === y);
  if (ix !== iy) return (ix < 0 ? 1e9 : ix) - (iy < 0 ? 1e9 : iy);
  return x < y ? -1 : x > y ? 1 : 0;
}

function suggest(key: string): string {
  const name = key.slice(ANNOTATION_PREFIX.length);
  let best: string | undefined;
  let bestD = 3;
  for (const s of ANNOTATIONS) {
    const d = editDistance(name, s.key.slice(ANNOTATION_PREFIX.length), bestD);
    if (d < bestD) { bestD = d; best = s.key; }
  }
  return best ? ` (did you mean ${best}?)` : '';
}

function editDistance(x: string, y: string, cap: number): number {
  if (Math.abs(x.length - y.length) >= cap || x.length > 64 || y.length > 64) return cap;
  let prev = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const row = [i];
    for (let j = 1; j <= y.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[y.length]!;
}

function quote(s: string): string {
  const q = JSON.stringify(s);
  return q.length > 60 ? `${q.slice(0, 57)}..."` : q;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
