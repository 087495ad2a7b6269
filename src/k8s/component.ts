// The Kubernetes component of a sidecar running in a pod: EndpointSlice discovery into the mesh
// state, and a watch on the pod's annotations (downward API) so that tuning changes are applied or,
// where a component cannot change at run time, reported.
import type { Component, ComponentFactory, SidecarContext } from '../runtime/context.js';
import type { PolicySettings } from '../config/sections/healing.js';
import type { Discovery } from './discovery.js';
import type { AnnotationsWatcher } from './downward.js';
import type { ServiceInput } from '../mesh/state.js';
import type { ReadinessGate } from './readiness-gate.js';
import type { GossipComponent } from '../gossip/component.js';
import type { AnnotationResult } from './annotations.js';
import type { Validated } from '../core/errors.js';
import type { Config } from '../config/types.js';

/** Environment the injector sets in the sidecar (see inject.ts). */
export const ENV_DISCOVERY = 'MESHMEDIC_K8S_DISCOVERY';
export const ENV_NAMESPACES = 'MESHMEDIC_K8S_NAMESPACES';
export const ENV_POD_ANNOTATIONS = 'MESHMEDIC_POD_ANNOTATIONS';
/** `true` or `quorum`: mark ejected pods through their readiness gate (see readiness-gate.ts). */
export const ENV_READINESS_GATE = 'MESHMEDIC_K8S_READINESS_GATE';

export interface KubernetesComponentOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** The downward-API annotations file; default from MESHMEDIC_POD_ANNOTATIONS. */
  readonly annotationsFile?: string;
  /** Overrides for tests (an API server URL instead of the in-cluster one). */
  readonly server?: string;
  readonly pollMs?: number;
}

/** Does this environment ask for the Kubernetes component at all? */
export function kubernetesEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[ENV_DISCOVERY] === 'true' || Boolean(env[ENV_POD_ANNOTATIONS]);
}

/**
 * Namespaces discovery watches: MESHMEDIC_K8S_NAMESPACES (comma-separated) plus the pod's own namespace
 * (POD_NAMESPACE, set by the injector); `*` anywhere in the list means cluster-wide. By default, then, a
 * sidecar knows its own namespace only: at cluster scale a cluster-wide view costs memory in every pod.
 * Empty result = cluster-wide (outside a pod, with no list).
 */
export function discoveryNamespaces(env: NodeJS.ProcessEnv): string[] {
  const listed = (env[ENV_NAMESPACES] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (listed.includes('*')) return [];
  const own = env.POD_NAMESPACE?.trim();
  return [...new Set(own ? [own, ...listed] : listed)];
}

/** A component that can take new healing settings at run time (duck-typed: optional). */
interface Reconfigurable {
  reconfigure?(healing: PolicySettings): void;
}

export function kubernetesComponent(opts: KubernetesComponentOptions = {}): ComponentFactory {
  return async (ctx: SidecarContext): Promise<Component> => {
    const env = opts.env ?? process.env;
    const log = ctx.log.child({ component: 'k8s' });
    let discovery: Discovery | undefined;
    let watcher: AnnotationsWatcher | undefined;
    /** The annotation check in progress, if any (close waits for it). */
    let pending: (() => Promise<void>) | undefined;
    let gate: ReadinessGate | undefined;
    const discoveryOn = env[ENV_DISCOVERY] === 'true' && (Boolean(opts.server) || Boolean(env.KUBERNETES_SERVICE_HOST));
    if (discoveryOn) {
      const namespaces = discoveryNamespaces(env);
      // Loaded only when discovery runs: the Kubernetes client is large and pulls in deprecated modules.
      const { startDiscovery } = await import('./discovery.js');
      discovery = startDiscovery({
        ...(opts.server ? { server: opts.server } : {}),
        namespaces,
        mesh: ctx.mesh,
        staticServices: staticServices(ctx),
        defaultRegion: ctx.config.node.locality.region,
        clock: ctx.clock,
        log,
      });
    } else if (env[ENV_DISCOVERY] === 'true') {
      log.warn('Kubernetes discovery asked for, but not running in a pod (no KUBERNETES_SERVICE_HOST); skipped');
    }
    const gateMode = env[ENV_READINESS_GATE];
    if (gateMode === 'true' || gateMode === 'quorum') {
      // Loaded only when the gate is on: the API client brings node:https (TLS), ~1 MB of RSS.
      const [{ createKubeApi, inClusterTarget }, { startReadinessGate }] = await Promise.all([import('./api.js'), import('./readiness-gate.js')]);
      const target = opts.server ? { server: opts.server } : inClusterTarget(env);
      // Quorum-gated: the gossip health plane's verdicts confirm an ejection before the pod is marked.
      const plane = (ctx.components.get('gossip') as Partial<GossipComponent> | undefined)?.healthPlane;
      if (!target) log.warn('the readiness gate is on, but not running in a pod (no KUBERNETES_SERVICE_HOST); pod conditions are not set');
      else if (gateMode === 'quorum' && !plane) log.warn('the readiness gate waits for the mesh quorum, but gossip (with its health plane) is off; pod conditions are not set');
      else {
        const self = env.POD_NAME && env.POD_NAMESPACE ? { namespace: env.POD_NAMESPACE, pod: env.POD_NAME } : undefined;
        const quorum = gateMode === 'quorum' && plane ? { failing: (endpoint: string) => plane.verdicts().some((v) => v.failing && v.endpoint === endpoint) } : undefined;
        gate = startReadinessGate({ mesh: ctx.mesh, api: createKubeApi(target), log, ...(self ? { self } : {}), ...(quorum ? { quorum } : {}) });
        log.info('readiness gate: ejected pods get meshmedic.io/healthy=False', { self: self ? `${self.namespace}/${self.pod}` : undefined, quorum: Boolean(quorum) });
      }
    }
    const file = opts.annotationsFile ?? env[ENV_POD_ANNOTATIONS];
    if (file) {
      // The annotations are checked against the schema in the configuration process (config/load-isolated.ts),
      // as the start-up config is: the validator (ajv, yaml, the schema) never loads into the sidecar's heap.
      const [{ watchAnnotationsFile }, { checkAnnotationsIsolated }] = await Promise.all([import('./downward.js'), import('../config/load-isolated.js')]);
      let last = '{}'; // the patch of no annotations
      const apply = (res: AnnotationResult, merged: Validated<Config>) => {
        for (const w of res.warnings) log.warn('pod annotation ignored', { warning: w });
        const sig = JSON.stringify(res.patch);
        if (sig === last) return;
        last = sig;
        if (!merged.valid) {
          log.warn('pod annotations give an invalid config; kept the running one', { errors: merged.errors.slice(0, 5) });
          return;
        }
        const healing = ctx.components.get('healing') as (Component & Reconfigurable) | undefined;
        // A config change is an audited event (the audit component, when running, records it).
        (ctx.components.get('audit') as { record?: (e: Record<string, unknown>) => void } | undefined)?.record?.({
          kind: 'config', event: 'annotations_changed', at: ctx.clock.now(), applied: res.applied, warnings: [...res.warnings], live: Boolean(healing?.reconfigure),
        });
        if (healing?.reconfigure) {
          healing.reconfigure(merged.result.healing);
          log.info('healing settings updated from pod annotations', { applied: Object.keys(res.applied) });
        } else {
          log.warn('pod annotations changed; the new settings apply at the next restart', { applied: Object.keys(res.applied) });
        }
      };
      const failed = (err: unknown) => log.warn('pod annotations could not be checked; kept the running config', { err });
      // One check at a time, in the order the changes came (each is a short child process).
      let checking: Promise<void> = Promise.resolve();
      watcher = watchAnnotationsFile(file, (annotations) => {
        checking = checking.then(() => checkAnnotationsIsolated(annotations, ctx.config)).then(({ annotations: res, merged }) => apply(res, merged)).catch(failed);
      }, { log, pollMs: opts.pollMs ?? 5000 });
      // Normally the config loader (loadSidecarConfig) already layered the start-time annotations on the
      // config; if it did not, the running config differs from config + annotations, and they apply now.
      checking = checkAnnotationsIsolated(watcher.current(), ctx.config).then((initial) => {
        if (initial.merged.valid && JSON.stringify(initial.merged.result) === JSON.stringify(ctx.config)) last = JSON.stringify(initial.annotations.patch);
        else apply(initial.annotations, initial.merged);
      }).catch(failed);
      await checking;
      pending = () => checking;
    }
    return {
      name: 'k8s',
      async close() {
        watcher?.close();
        await pending?.();
        await gate?.close();
        await discovery?.close();
      },
    };
  };
}

/** Services the mesh holds before discovery starts: the config file's, kept beside the discovered ones. */
function staticServices(ctx: SidecarContext): ServiceInput[] {
  return [...ctx.mesh.snapshot().services.values()].map((s) => ({ spec: { name: s.name, endpoints: s.endpoints.map((e) => e.spec) }, routing: s.routing }));
}

/** The factory the sidecar uses: settings from the environment the injector set. */
export const startKubernetes: ComponentFactory = (ctx) => kubernetesComponent()(ctx);
