// Kubernetes discovery: list+watch Services and EndpointSlices (discovery.k8s.io/v1) and feed the
// mesh state with the same ServiceSpecs a config file would give. Building specs is pure
// (buildServiceSpecs); watching, relisting after 410 Gone and backing off live in startDiscovery, on the
// small API client (api.ts).
import { isIP } from 'node:net';
import { readFileSync } from 'node:fs';
import { MeshmedicError } from '../core/errors.js';
import { createKubeApi, describeFailure, inClusterTarget, listAll, type ApiTarget, type KubeWatchApi, type WatchStream } from './api.js';
import { kubeconfigTarget } from './kubeconfig.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import { silentLogger } from '../core/log.js';
import { endpointId, type Decision, type EndpointSpec, type Locality, type ServiceSpec } from '../core/types.js';
import { ValueSharer } from '../core/share.js';
import type { MeshState, ServiceInput } from '../mesh/state.js';
import { SERVICE_NAME_PATTERN } from '../config/service-name.js';

export const LABEL_SERVICE_NAME = 'kubernetes.io/service-name';
export const LABEL_REGION = 'topology.kubernetes.io/region';
export const LABEL_ZONE = 'topology.kubernetes.io/zone';
export const LABEL_SUBZONE = 'topology.istio.io/subzone';
/** A Service annotated `meshmedic.io/discovery: "false"` is left out of the mesh. */
export const ANNOTATION_DISCOVERY = 'meshmedic.io/discovery';
export const DRAIN_REASON = 'k8s_terminating';

// The subset of the API objects this module reads (fields as in the API's JSON).
type Labels = Record<string, string> | undefined | null;
export interface K8sMeta { name?: string; namespace?: string; labels?: Labels; annotations?: Labels; resourceVersion?: string }
export interface K8sService {
  metadata?: K8sMeta;
  spec?: { type?: string; ports?: { name?: string; port?: number; protocol?: string }[] | null } | null;
}
export interface K8sEndpoint {
  addresses?: string[] | null;
  conditions?: { ready?: boolean | null; serving?: boolean | null; terminating?: boolean | null } | null;
  nodeName?: string | null;
  zone?: string | null;
  deprecatedTopology?: Labels;
  targetRef?: { kind?: string; name?: string; namespace?: string } | null;
}
export interface K8sEndpointSlice {
  metadata?: K8sMeta;
  addressType?: string;
  endpoints?: K8sEndpoint[] | null;
  ports?: { name?: string | null; port?: number | null; protocol?: string | null }[] | null;
}

export interface BuildOptions {
  /** Region for endpoints whose topology does not say (a cluster usually sits in one region). */
  readonly defaultRegion?: string;
}

export interface BuiltServices {
  /** One ServiceSpec per Service port, sorted by name; endpoints sorted by id. */
  readonly specs: ServiceSpec[];
  /** Ids of endpoints that are terminating but still serving: in the mesh, draining. */
  readonly draining: Set<string>;
}

/**
 * Services + EndpointSlices → ServiceSpecs. A single-port Service `reviews` in `shop` becomes
 * `reviews.shop`; each port of a multi-port Service becomes `reviews.shop.<port name>`.
 * Ready endpoints are included; terminating-but-serving ones too, marked draining; others left out.
 */
export function buildServiceSpecs(services: readonly K8sService[], slices: readonly K8sEndpointSlice[], opts: BuildOptions = {}): BuiltServices {
  const byService = new Map<string, K8sEndpointSlice[]>();
  for (const s of slices) {
    const ns = s.metadata?.namespace;
    const svc = s.metadata?.labels?.[LABEL_SERVICE_NAME];
    if (!ns || !svc) continue;
    const key = `${ns}/${svc}`;
    let list = byService.get(key);
    if (!list) byService.set(key, (list = []));
    list.push(s);
  }
  const nameRe = new RegExp(SERVICE_NAME_PATTERN);
  const specs: ServiceSpec[] = [];
  const draining = new Set<string>();
  const sorted = [...services].sort((x, y) => cmp(keyOf(x), keyOf(y)));
  for (const svc of sorted) {
    const ns = svc.metadata?.namespace;
    const name = svc.metadata?.name;
    if (!ns || !name) continue;
    if (svc.spec?.type === 'ExternalName') continue;
    if ((svc.metadata?.annotations?.[ANNOTATION_DISCOVERY] ?? '').toLowerCase() === 'false') continue;
    const ports = (svc.spec?.ports ?? []).filter((p) => (p.protocol ?? 'TCP') === 'TCP' && Number.isInteger(p.port));
    const multi = ports.length > 1;
    const svcSlices = (byService.get(`${ns}/${name}`) ?? []).slice().sort((a, b) => cmp(a.metadata?.name ?? '', b.metadata?.name ?? ''));
    for (const port of ports) {
      const portName = port.name ?? '';
      const specName = multi ? `${name}.${ns}.${portName || String(port.port)}` : `${name}.${ns}`;
      if (!nameRe.test(specName)) continue;
      const endpoints = new Map<string, EndpointSpec>();
      const shared = { labels: undefined as Readonly<Record<string, string>> | undefined };
      for (const slice of svcSlices) {
        if (slice.addressType !== 'IPv4' && slice.addressType !== 'IPv6') continue; // FQDN endpoints are not IPs
        const sp = (slice.ports ?? []).find((p) => (p.name ?? '') === portName && (p.protocol ?? 'TCP') === 'TCP');
        const target = sp?.port;
        if (!sp || typeof target !== 'number' || !Number.isInteger(target) || target < 1 || target > 65535) continue;
        for (const ep of slice.endpoints ?? []) {
          const host = ep.addresses?.[0]; // consumers use the first address only (API contract)
          if (!host || isIP(host) === 0) continue;
          const c = ep.conditions ?? {};
          // Per the API: nil ready/serving mean "ready"/"serving"; nil terminating means false.
          const ready = c.ready !== false;
          const serving = c.serving !== false;
          const terminating = c.terminating === true;
          const drain = !ready && serving && terminating;
          if (!(ready && !terminating) && !drain) continue;
          const id = endpointId(specName, host, target);
          const prev = endpoints.get(id);
          if (prev && !draining.has(id)) continue; // duplicates across slices: a ready copy wins
          if (prev && drain) continue;
          draining.delete(id);
          endpoints.set(id, Object.freeze({
            id,
            service: specName,
            host,
            port: target,
            locality: localityOf(ep, slice, svc, opts),
            priority: 0,
            weight: 1,
            labels: endpointLabels(ns, name, portName || String(port.port), ep, shared),
          }));
          if (drain) draining.add(id);
        }
      }
      specs.push(Object.freeze({ name: specName, endpoints: Object.freeze([...endpoints.values()].sort((a, b) => cmp(a.id, b.id))) }));
    }
  }
  return { specs, draining };
}

/** Code-point order: stable on every machine, unlike localeCompare. */
function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function keyOf(s: K8sService): string {
  return `${s.metadata?.namespace ?? ''}/${s.metadata?.name ?? ''}`;
}

function localityOf(ep: K8sEndpoint, slice: K8sEndpointSlice, svc: K8sService, opts: BuildOptions): Locality {
  const topo = ep.deprecatedTopology;
  const region = (topo?.[LABEL_REGION] ?? slice.metadata?.labels?.[LABEL_REGION] ?? svc.metadata?.labels?.[LABEL_REGION] ?? opts.defaultRegion ?? '').slice(0, 128);
  const zone = (ep.zone ?? topo?.[LABEL_ZONE] ?? '').slice(0, 128);
  const subzone = (topo?.[LABEL_SUBZONE] ?? '').slice(0, 128);
  // Consecutive endpoints (one slice, one zone) mostly repeat the last locality: handed out again without
  // building its sharing key (a few strings per endpoint, the bulk of a 2,000-endpoint list's garbage).
  const last = lastLocality;
  if (last && last.region === region && last.zone === zone && last.subzone === subzone) return last;
  return (lastLocality = LOCALITIES.share({ region, zone, subzone }));
}

let lastLocality: Locality | undefined;

/** Endpoints of a zone share one frozen locality (a cluster has a few; thousands of endpoints repeat them). */
const LOCALITIES = new ValueSharer();

/** An endpoint's labels, frozen; endpoints of one service port without a node or pod name share one object (`shared`). */
function endpointLabels(ns: string, svc: string, port: string, ep: K8sEndpoint, shared: { labels: Readonly<Record<string, string>> | undefined }): Readonly<Record<string, string>> {
  const pod = ep.targetRef?.kind === 'Pod' && ep.targetRef.name ? ep.targetRef.name : undefined;
  if (!ep.nodeName && !pod && shared.labels) return shared.labels;
  const labels: Record<string, string> = { 'k8s.namespace': ns, 'k8s.service': svc, 'k8s.port': port };
  if (ep.nodeName) labels['k8s.node'] = ep.nodeName;
  if (pod) labels['k8s.pod'] = pod;
  Object.freeze(labels);
  if (!ep.nodeName && !pod) shared.labels = labels;
  return labels;
}

/** `o[k]` when it is a string, else undefined. */
function str(o: unknown, k: string): string | undefined {
  const v = o !== null && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined;
  return typeof v === 'string' ? v : undefined;
}

/** The entries of `labels` whose keys are in `keys` (undefined when none is present). */
function pick(labels: unknown, keys: readonly string[]): Record<string, string> | undefined {
  let out: Record<string, string> | undefined;
  for (const k of keys) {
    const v = str(labels, k);
    if (v !== undefined) (out ??= {})[k] = v;
  }
  return out;
}

/** `{ name, namespace }` of an object's metadata, plus the labels and annotations in `labels`/`annotations`. */
function projectMeta(meta: K8sMeta | undefined, labels: readonly string[], annotations: readonly string[] = []): K8sMeta {
  const out: K8sMeta = {};
  const name = str(meta, 'name');
  const namespace = str(meta, 'namespace');
  if (name !== undefined) out.name = name;
  if (namespace !== undefined) out.namespace = namespace;
  const l = pick(meta?.labels, labels);
  if (l) out.labels = l;
  const a = pick(meta?.annotations, annotations);
  if (a) out.annotations = a;
  return out;
}

const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
// Built by assignment, not by spreading conditional parts: a spread object gets a hidden class of its own
// (V8 does not share them), ~90 B more per object.
function portOf(p: unknown): { name?: string; port?: number; protocol?: string } {
  const out: { name?: string; port?: number; protocol?: string } = {};
  const name = str(p, 'name');
  const port = p !== null && typeof p === 'object' ? (p as { port?: unknown }).port : undefined;
  const protocol = str(p, 'protocol');
  if (name !== undefined) out.name = name;
  if (typeof port === 'number') out.port = port;
  if (protocol !== undefined) out.protocol = protocol;
  return out;
}
const TOPOLOGY = [LABEL_REGION, LABEL_ZONE, LABEL_SUBZONE] as const;
/** The frozen conditions objects, one per combination (each of ready/serving/terminating absent, false or true). */
const CONDITIONS: (NonNullable<K8sEndpoint['conditions']> | undefined)[] = [];
const CONDITION_KEYS = ['ready', 'serving', 'terminating'] as const;
function sharedConditions(c: object): NonNullable<K8sEndpoint['conditions']> {
  let code = 0;
  for (const k of CONDITION_KEYS) {
    const v = (c as Record<string, unknown>)[k];
    code = code * 3 + (typeof v === 'boolean' ? (v ? 2 : 1) : 0);
  }
  let shared = CONDITIONS[code];
  if (!shared) {
    const kept: NonNullable<K8sEndpoint['conditions']> = {};
    for (const k of CONDITION_KEYS) {
      const v = (c as Record<string, unknown>)[k];
      if (typeof v === 'boolean') kept[k] = v;
    }
    shared = CONDITIONS[code] = Object.freeze(kept);
  }
  return shared;
}

/**
 * The fields of a Service that buildServiceSpecs reads, and nothing else: discovery keeps every Service
 * of the watched namespaces, and an API object carries much it never reads (managedFields, status,
 * every label and annotation, clusterIPs...). Applied as each list page or watch event is parsed.
 */
export function projectService(o: unknown): K8sService {
  const svc = (o ?? {}) as K8sService;
  const out: K8sService = { metadata: projectMeta(svc.metadata, [LABEL_REGION], [ANNOTATION_DISCOVERY]) };
  const spec = svc.spec;
  if (spec && typeof spec === 'object') {
    const type = str(spec, 'type');
    out.spec = {};
    if (type !== undefined) out.spec.type = type;
    out.spec.ports = asArray(spec.ports).map(portOf);
  }
  return out;
}

/** The fields of an EndpointSlice that buildServiceSpecs reads (see projectService); only an endpoint's first address is used. */
export function projectEndpointSlice(o: unknown): K8sEndpointSlice {
  const slice = (o ?? {}) as K8sEndpointSlice;
  const out: K8sEndpointSlice = { metadata: projectMeta(slice.metadata, [LABEL_SERVICE_NAME, LABEL_REGION]) };
  if (typeof slice.addressType === 'string') out.addressType = slice.addressType;
  out.ports = asArray(slice.ports).map(portOf);
  out.endpoints = asArray(slice.endpoints).map((e): K8sEndpoint => {
    const ep = (e ?? {}) as K8sEndpoint;
    const first = asArray(ep.addresses)[0];
    const c = ep.conditions;
    // A handful of combinations, repeated by every endpoint: shared.
    const conditions = c && typeof c === 'object' ? sharedConditions(c) : undefined;
    const kind = str(ep.targetRef, 'kind');
    const name = str(ep.targetRef, 'name');
    let targetRef: K8sEndpoint['targetRef'];
    if (kind !== undefined || name !== undefined) {
      targetRef = {};
      if (kind !== undefined) targetRef.kind = kind;
      if (name !== undefined) targetRef.name = name;
    }
    // Every field in the literal (absent ones undefined): one hidden class, properties inside the object.
    return { addresses: typeof first === 'string' ? [first] : [], conditions, nodeName: str(ep, 'nodeName'), zone: str(ep, 'zone'), deprecatedTopology: pick(ep.deprecatedTopology, TOPOLOGY), targetRef };
  });
  return out;
}

/**
 * Would applying `next` change anything after `prev`: the same services with the same endpoints (every
 * field of each) and the same draining set? Compared field by field rather than through a serialised
 * copy, which discovery would have to keep (~0.5 MB at 2,000 endpoints).
 */
export function sameBuiltServices(prev: BuiltServices | undefined, next: BuiltServices): boolean {
  if (!prev || prev.specs.length !== next.specs.length || prev.draining.size !== next.draining.size) return false;
  for (const id of next.draining) if (!prev.draining.has(id)) return false;
  for (let i = 0; i < next.specs.length; i++) {
    const a = prev.specs[i]!;
    const b = next.specs[i]!;
    if (a.name !== b.name || a.endpoints.length !== b.endpoints.length) return false;
    for (let j = 0; j < b.endpoints.length; j++) if (!sameEndpoint(a.endpoints[j]!, b.endpoints[j]!)) return false;
  }
  return true;
}

function sameEndpoint(a: EndpointSpec, b: EndpointSpec): boolean {
  return a.id === b.id && a.service === b.service && a.host === b.host && a.port === b.port && a.priority === b.priority && a.weight === b.weight
    && sameRecord(a.locality, b.locality) && sameRecord(a.labels, b.labels);
}

function sameRecord(a: object, b: object): boolean {
  if (a === b) return true;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => (a as Record<string, unknown>)[k] === (b as Record<string, unknown>)[k]);
}

export interface DiscoveryOptions {
  /** A kubeconfig file; else `server` (tests, out-of-cluster); else the in-cluster service account. */
  readonly kubeconfig?: string;
  readonly server?: string;
  readonly token?: string;
  /** CA bundle for an https `server`. */
  readonly caFile?: string;
  /** Namespaces to watch; empty or absent = all (cluster-wide list/watch). */
  readonly namespaces?: readonly string[];
  readonly mesh: MeshState;
  /** Services from the config file, kept alongside the discovered ones. */
  readonly staticServices?: readonly ServiceInput[];
  readonly defaultRegion?: string;
  readonly log?: Logger;
  readonly clock?: Clock;
  /** Coalesce bursts of watch events (ms). */
  readonly debounceMs?: number;
  /** Reconnect backoff after a failed list or watch: initial and cap (ms). */
  readonly backoffMs?: { readonly initial: number; readonly max: number };
  /** Restart every watch this often even if it looks alive (ms; 0 = never): a dead TCP peer sends no FIN. */
  readonly rewatchMs?: number;
}

export interface Discovery {
  /** Resolves after the first complete list of every watched resource has been applied. */
  readonly synced: Promise<void>;
  /** Counters for logs, metrics and tests. */
  stats(): { updates: number; errors: number; restarts: number; relists: number };
  close(): Promise<void>;
}

type K8sObject = { metadata?: K8sMeta };

interface WatchHooks {
  readonly clock: Clock;
  readonly log: Logger;
  readonly backoff: { readonly initial: number; readonly max: number };
  readonly counters: { errors: number; restarts: number; relists: number };
  readonly onChange: () => void;
}

/**
 * One resource kind kept in sync by list + watch. Every run carries a generation number: stopping or
 * restarting bumps it, and anything a stale run still delivers (a late list, a watch that connected
 * after the stop) is dropped and its connection aborted. So close() leaves nothing open.
 */
class ResourceWatch {
  readonly objects = new Map<string, K8sObject>();
  listed = false;
  private resourceVersion = '';
  private gen = 0;
  private controller: WatchStream | undefined;
  private timer: TimerHandle | undefined;
  private backoffMs: number;
  private stopped = false;

  constructor(
    readonly what: string,
    private readonly path: string,
    private readonly api: KubeWatchApi,
    private readonly hooks: WatchHooks,
    /** What of each object is kept (projectService, projectEndpointSlice): applied as it is parsed. */
    private readonly project: (o: unknown) => K8sObject,
  ) {
    this.backoffMs = hooks.backoff.initial;
  }

  start(): void {
    this.stopped = false;
    this.restart(0);
  }

  /** Drop the current watch and start again (keeping the resourceVersion: no relist). */
  restart(delayMs: number): void {
    if (this.stopped) return;
    const gen = ++this.gen;
    this.controller?.abort();
    this.controller = undefined;
    this.timer?.cancel();
    this.timer = delayMs > 0 ? this.hooks.clock.setTimeout(() => void this.run(gen), delayMs) : undefined;
    if (delayMs <= 0) void this.run(gen);
  }

  /** Connected and streaming (not listing, connecting or waiting to retry)? */
  get watching(): boolean {
    return this.controller !== undefined;
  }

  stop(): void {
    this.stopped = true;
    this.gen++;
    this.timer?.cancel();
    this.timer = undefined;
    this.controller?.abort();
    this.controller = undefined;
  }

  /** Every page of the list, and the list's resourceVersion. */
  private async list(): Promise<{ items: K8sObject[]; resourceVersion: string }> {
    const items: K8sObject[] = [];
    const pages = listAll(this.api, this.path, {});
    for (;;) {
      const page = await pages.next();
      if (page.done) return { items, resourceVersion: page.value };
      for (const item of page.value) items.push(this.project(item));
    }
  }

  private async run(gen: number): Promise<void> {
    this.timer = undefined;
    const { clock, log, counters } = this.hooks;
    counters.restarts++;
    const startedAt = clock.now();
    let events = 0;
    try {
      if (!this.resourceVersion) {
        const res = await this.list();
        if (gen !== this.gen) return;
        counters.relists++;
        this.objects.clear();
        for (const item of res.items) this.objects.set(keyOfObject(item), item);
        this.resourceVersion = res.resourceVersion;
        this.listed = true;
        this.hooks.onChange();
      }
      const onEvent = (e: unknown) => {
        if (gen !== this.gen) return;
        events++;
        const { type, object: obj } = (e ?? {}) as { type?: unknown; object?: K8sObject & { code?: number; message?: string } };
        if (type === 'ERROR') {
          // 410 Expired (history compacted): only a fresh list is consistent. The server ends the stream.
          if (obj?.code === 410) this.resourceVersion = '';
          else log.warn('kubernetes watch error event', { what: this.what, code: obj?.code, message: obj?.message });
          return;
        }
        if (!obj?.metadata) return;
        const rv = obj.metadata.resourceVersion;
        if (type === 'ADDED' || type === 'MODIFIED') this.objects.set(keyOfObject(obj), this.project(obj));
        else if (type === 'DELETED') this.objects.delete(keyOfObject(obj));
        else if (type !== 'BOOKMARK') return;
        if (rv) this.resourceVersion = rv;
        if (type !== 'BOOKMARK') this.hooks.onChange();
      };
      const query = new URLSearchParams({ watch: 'true', resourceVersion: this.resourceVersion, allowWatchBookmarks: 'true' });
      const stream = this.api.watch(`${this.path}?${query}`, onEvent);
      this.controller = stream;
      const ended = await stream.done;
      if (gen !== this.gen || ended.kind === 'aborted') return;
      this.controller = undefined;
      if (ended.kind === 'status') {
        if (ended.answer.status === 410) this.resourceVersion = '';
        else throw new MeshmedicError('MM_ERR_K8S_API', `watch ${this.path}: ${describeFailure(ended.answer)}`);
      }
      // A normal end (server timeout, or after a 410 event): go again at once, unless the stream keeps
      // ending immediately with nothing in it (a proxy closing us): then back off.
      const quick = clock.now() - startedAt < 1000 && events === 0 && this.resourceVersion !== '';
      this.restart(quick ? this.nextBackoff(startedAt) : 0);
    } catch (err) {
      if (gen !== this.gen) return;
      this.controller = undefined;
      counters.errors++;
      const delay = this.nextBackoff(startedAt);
      log.warn('kubernetes list/watch failed; retrying', { what: this.what, delayMs: delay, err: describeError(err) });
      this.restart(delay);
    }
  }

  /** Jittered exponential backoff; a run that stayed up for a while starts it over. */
  private nextBackoff(startedAt: number): number {
    const b = this.hooks.backoff;
    if (this.hooks.clock.now() - startedAt > 10_000) this.backoffMs = b.initial;
    const delay = Math.round(this.backoffMs * (0.5 + Math.random() * 0.5));
    this.backoffMs = Math.min(b.max, this.backoffMs * 2);
    return Math.max(1, delay);
  }
}

function keyOfObject(o: K8sObject): string {
  return `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
}

export function startDiscovery(opts: DiscoveryOptions): Discovery {
  const log = opts.log ?? silentLogger;
  const clock = opts.clock ?? systemClock;
  const debounceMs = opts.debounceMs ?? 100;
  const backoff = opts.backoffMs ?? { initial: 500, max: 30_000 };
  const target = apiTarget(opts);
  const api = createKubeApi(target);
  const counters = { updates: 0, errors: 0, restarts: 0, relists: 0 };
  const namespaces = opts.namespaces?.length ? [...opts.namespaces] : [undefined];
  let closed = false;
  let debounce: TimerHandle | undefined;
  let lastBuilt: BuiltServices | undefined;
  let resolveSynced!: () => void;
  const synced = new Promise<void>((r) => (resolveSynced = r));
  let drainedByUs = new Set<string>();
  const hooks: WatchHooks = { clock, log, backoff, counters, onChange: () => schedule() };
  const serviceWatches: ResourceWatch[] = [];
  const sliceWatches: ResourceWatch[] = [];
  for (const ns of namespaces) {
    const where = ns ? `/namespaces/${encodeURIComponent(ns)}` : '';
    const suffix = ns ? ` in ${ns}` : '';
    serviceWatches.push(new ResourceWatch(`services${suffix}`, `/api/v1${where}/services`, api, hooks, projectService));
    sliceWatches.push(new ResourceWatch(`endpointslices${suffix}`, `/apis/discovery.k8s.io/v1${where}/endpointslices`, api, hooks, projectEndpointSlice));
  }
  const watched = [...serviceWatches, ...sliceWatches];

  function schedule(): void {
    if (closed || debounce) return;
    debounce = clock.setTimeout(() => {
      debounce = undefined;
      rebuild();
    }, debounceMs);
  }

  function rebuild(): void {
    if (closed) return;
    if (!watched.every((w) => w.listed)) return; // a partial view would remove live endpoints
    const services = serviceWatches.flatMap((w) => [...w.objects.values()]) as K8sService[];
    const slices = sliceWatches.flatMap((w) => [...w.objects.values()]) as K8sEndpointSlice[];
    const built = buildServiceSpecs(services, slices, { defaultRegion: opts.defaultRegion });
    if (!sameBuiltServices(lastBuilt, built)) {
      lastBuilt = built;
      counters.updates++;
      try {
        opts.mesh.setServices([...(opts.staticServices ?? []), ...built.specs.map((spec) => ({ spec }))]);
        const now = clock.now();
        const decisions: Decision[] = [];
        for (const id of built.draining) {
          if (!drainedByUs.has(id)) decisions.push({ action: 'drain', target: id, reason: DRAIN_REASON, source: 'operator', at: now, evidence: { cause: 'EndpointSlice conditions: serving, terminating, not ready' } });
        }
        const snap = opts.mesh.snapshot();
        for (const id of drainedByUs) {
          const ev = snap.endpoints.get(id);
          if (!built.draining.has(id) && ev && ev.health.state === 'draining' && ev.health.reason === DRAIN_REASON) {
            decisions.push({ action: 'restore', target: id, reason: 'k8s_ready', source: 'operator', at: now, evidence: { cause: 'EndpointSlice conditions: ready' } });
          }
        }
        if (decisions.length) opts.mesh.applyAll(decisions);
        drainedByUs = new Set(built.draining);
        log.info('kubernetes services updated', { services: built.specs.length, endpoints: built.specs.reduce((n, s) => n + s.endpoints.length, 0), draining: built.draining.size });
      } catch (err) {
        log.error('applying discovered services failed', { err });
      }
    }
    resolveSynced();
  }

  const rewatchMs = opts.rewatchMs ?? 300_000;
  const rewatch = rewatchMs > 0 ? clock.setInterval(() => {
    for (const w of watched) if (w.watching) w.restart(0); // a list or a retry in progress is left alone
  }, rewatchMs) : undefined;

  for (const w of watched) w.start();
  log.info('kubernetes discovery started', { namespaces: opts.namespaces?.length ? opts.namespaces : 'all', server: api.server });

  return {
    synced,
    stats: () => ({ ...counters }),
    async close() {
      if (closed) return;
      closed = true;
      debounce?.cancel();
      rewatch?.cancel();
      for (const w of watched) w.stop();
    },
  };
}

/** The API server and credentials: a kubeconfig file, else `server` (+ token, CA), else the pod's service account. */
function apiTarget(opts: DiscoveryOptions): ApiTarget {
  if (opts.kubeconfig) return kubeconfigTarget(opts.kubeconfig);
  if (opts.server) {
    let ca: Buffer | undefined;
    if (opts.caFile) {
      try {
        ca = readFileSync(opts.caFile);
      } catch (err) {
        throw new MeshmedicError('MM_ERR_K8S_CONFIG', `the API server's CA file ${opts.caFile} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
      }
    }
    const token = opts.token;
    return { server: opts.server, ...(token ? { token: () => token } : {}), ...(ca ? { ca } : {}) };
  }
  const inCluster = inClusterTarget();
  if (!inCluster) throw new MeshmedicError('MM_ERR_K8S_CONFIG', 'no API server: not in a pod (KUBERNETES_SERVICE_HOST is unset), and neither a kubeconfig nor a server was given');
  return inCluster;
}

function describeError(err: unknown): string {
  if (err && typeof err === 'object') {
    const e = err as { code?: number | string; message?: string };
    return [e.code, e.message].filter((x) => x !== undefined && x !== '').join(' ');
  }
  return String(err);
}
