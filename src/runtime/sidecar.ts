// Composition of a running sidecar: mesh state from config, stats, admin API and metrics, then the
// components the config enables (healing, proxy, xDS, gossip). Also graceful shutdown.
import { Registry } from '../admin/metrics-registry.js';
import { registerCoreRoutes } from '../admin/api.js';
import { registerCoreMetrics, registerProcessMetrics } from '../admin/metrics.js';
import { AdminServer } from '../admin/server.js';
import { registerOperatorRoutes } from '../admin/operator-routes.js';
import { packageVersion } from './version.js';
import { parseHostPort } from '../core/address.js';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { createLogger, type Logger } from '../core/log.js';
import { endpointId, type EndpointSpec } from '../core/types.js';
import type { Config } from '../config/types.js';
import { policySettingsResolver, type ResolvedPolicySettings } from '../config/sections/healing.js';
import { MeshState, type ServiceInput } from '../mesh/state.js';
import { StatsTable } from '../stats/window.js';
import type { Component, ComponentFactory, SidecarContext } from './context.js';
import { startHealing } from '../heal/component.js';
import { registerSingleProcessMetric, startProxy } from '../proxy/component.js';
import { kubernetesEnabled, startKubernetes } from '../k8s/component.js';
import { workerCount } from '../workers/sharing.js';

export interface Sidecar {
  readonly context: SidecarContext;
  readonly components: ReadonlyMap<string, Component>;
  /** Bound addresses by role (admin, outbound, inbound, xds, gossip...). */
  readonly addresses: Readonly<Record<string, string>>;
  close(deadlineMs?: number): Promise<void>;
}

export interface SidecarOptions {
  readonly clock?: Clock;
  readonly log?: Logger;
  /** Override which components start (tests); by default from the config. */
  readonly components?: readonly { name: string; factory: ComponentFactory }[];
}

/** Turn the configured services into mesh service inputs. Addresses were validated with the config. */
export function servicesFromConfig(config: Config): ServiceInput[] {
  return config.services.map((s) => {
    const endpoints: EndpointSpec[] = s.endpoints.map((e) => {
      const hp = parseHostPort(e.address);
      if (typeof hp === 'string') throw new Error(hp); // unreachable after validation
      return { id: endpointId(s.name, hp.host, hp.port), service: s.name, host: hp.host, port: hp.port, locality: e.locality, priority: e.priority, weight: e.weight, labels: e.labels };
    });
    return { spec: { name: s.name, endpoints }, routing: s.routing };
  });
}

/**
 * The components a config enables, in start order (audit, then healing: others may use it). Kubernetes
 * (discovery, live annotation tuning) starts when its environment says the sidecar runs in a pod.
 */
export function defaultComponents(config: Config, env: NodeJS.ProcessEnv = process.env): { name: string; factory: ComponentFactory }[] {
  const list: { name: string; factory: ComponentFactory }[] = [];
  // The audit log first: it sees every decision from the very start.
  if (config.audit?.enabled) list.push({ name: 'audit', factory: async (ctx) => (await import('../audit/component.js')).startAudit(ctx) });
  list.push({ name: 'healing', factory: startHealing });
  // With proxy.workers > 1 the listeners run in worker processes; this one keeps the healing engine.
  if (config.outbound.enabled || config.inbound.enabled) list.push(workerCount(config.proxy.workers) > 1 ? { name: 'workers', factory: async (ctx) => (await import('../workers/primary.js')).startWorkers(ctx) } : { name: 'proxy', factory: startProxy });
  // ALS before xDS: the xDS server carries the access-log service on its port. Both are loaded only when
  // enabled: the gRPC stack costs tens of MB of RSS in a sidecar that serves neither.
  if (config.als.enabled) list.push({ name: 'als', factory: async (ctx) => (await import('../als/component.js')).startAls(ctx) });
  if (config.xds.enabled) list.push({ name: 'xds', factory: async (ctx) => (await import('../xds/component.js')).startXds(ctx) });
  // Gossip and audit too are loaded only when enabled (their modules cost RSS in every idle sidecar).
  if (config.gossip.enabled) list.push({ name: 'gossip', factory: async (ctx) => (await import('../gossip/component.js')).startGossip(ctx) });
  if (config.learning.federated.enabled) list.push({ name: 'federated', factory: async (ctx) => (await import('../learn/federated-gossip.js')).startFederated(ctx) });
  if (kubernetesEnabled(env)) list.push({ name: 'k8s', factory: startKubernetes });
  return list;
}

export async function startSidecar(config: Config, opts: SidecarOptions = {}): Promise<Sidecar> {
  const clock = opts.clock ?? systemClock;
  const log = opts.log ?? createLogger(config.log.level);
  const mesh = new MeshState(clock);
  mesh.setServices(servicesFromConfig(config));
  const stats = new StatsTable({ windowMs: config.stats.windowMs, windows: config.stats.windows, maxLatencyUs: 60_000_000, significantDigits: 2 });
  const registry = new Registry();
  registerProcessMetrics(registry);
  const admin = new AdminServer({ token: config.admin.token, readOnly: config.admin.readOnly, allowedHosts: config.admin.allowedHosts, log: log.child({ component: 'admin' }) });
  const components = new Map<string, Component>();
  let ready = false;
  const ctx: SidecarContext = { config, clock, mesh, stats, log, metrics: registry, admin, components };
  const stopDecisionMetrics = registerCoreMetrics(registry, { mesh, stats, clock, workload: config.node.workload, namespace: process.env.POD_NAMESPACE, istioNames: config.admin.metrics.istioNames, perEndpointLatency: config.admin.metrics.perEndpointLatency });
  registerCoreRoutes(admin, { mesh, stats, clock, registry, ready: () => ready, settingsFor: healingSettingsFor(config, components) });
  const stopOperatorRoutes = registerOperatorRoutes(admin, { config, mesh, stats, clock, log, version: packageVersion(), components: () => [...components.keys()], addresses: () => addresses, ready: () => ready });
  // Timed operator ejections and drains end on their own, whatever policy runs.
  // Idle endpoints' histograms are released here too (stats.sweep walks the table once per window).
  const expiry: TimerHandle = clock.setInterval(() => {
    mesh.expire();
    stats.sweep(clock.now());
  }, Math.max(50, config.stats.tickMs));

  const addresses: Record<string, string> = {};
  const started: Component[] = [];
  const closeAll = async (deadlineMs: number) => {
    ready = false;
    expiry.cancel();
    for (const c of [...started].reverse()) {
      try {
        await c.close(deadlineMs);
      } catch (err) {
        log.warn('component failed to close', { component: c.name, err });
      }
    }
    stopOperatorRoutes();
    await admin.close();
    stopDecisionMetrics();
  };
  try {
    for (const { name, factory } of opts.components ?? defaultComponents(config)) {
      const c = await factory(ctx);
      started.push(c);
      components.set(name, c);
      for (const [role, addr] of Object.entries(c.addresses ?? {})) addresses[role] = addr;
    }
    if (config.admin.enabled) {
      const hp = parseHostPort(config.admin.listen, { allowPortZero: true });
      if (typeof hp === 'string') throw new Error(`admin.listen: ${hp}`);
      addresses.admin = await admin.listen(hp.host, hp.port);
    }
  } catch (err) {
    await closeAll(0);
    throw err;
  }
  ready = true;
  const workers = components.get('workers') as { count?: number; sharing?: string } | undefined;
  if (components.has('proxy')) registerSingleProcessMetric(registry);
  log.info('sidecar started', { addresses, services: config.services.map((s) => s.name), workers: workers?.count ?? 1, sharing: workers?.sharing ?? 'single' });
  let closing: Promise<void> | undefined;
  return {
    context: ctx,
    components,
    addresses,
    close: (deadlineMs = config.proxy.drainTimeoutMs) => (closing ??= closeAll(deadlineMs)),
  };
}

/** Healing settings per service: the running healing component's (they follow reconfiguration), else the config's. */
function healingSettingsFor(config: Config, components: ReadonlyMap<string, Component>): (service: string) => ResolvedPolicySettings {
  const fromConfig = policySettingsResolver(config.healing, new Map(config.services.map((s) => [s.name, s.healing])));
  return (service) => {
    const healing = components.get('healing') as { settingsFor?: (s: string) => ResolvedPolicySettings } | undefined;
    return healing?.settingsFor ? healing.settingsFor(service) : fromConfig(service);
  };
}
