// Pure xDS resource builders: a mesh ServiceView in, plain Envoy v3 objects out (snake_case fields, nested
// Any as `{'@type': url, ...}`), so generation is testable without sockets. Serving lives in cache/server.
import type { EndpointView, ServiceView } from '../mesh/state.js';
import { resolvePolicySettings, type PolicySettings } from '../config/sections/healing.js';
import { CLUSTER_TYPE, ENDPOINT_TYPE, HCM_TYPE, LISTENER_TYPE, ROUTE_TYPE, ROUTER_TYPE } from './types.js';

/** Which kind of client a snapshot is for: proxyless gRPC (ApiListener) or Envoy (socket listener). */
export type ClientFlavor = 'grpc' | 'envoy';

/** Envoy outlier_detection settings mirrored into CDS for Envoy clients (Envoy's defaults unless configured). */
export interface OutlierSettings {
  readonly consecutive5xx: number;
  readonly consecutiveGatewayFailure: number;
  readonly consecutiveLocalOriginFailure: number;
  readonly intervalMs: number;
  readonly baseEjectionTimeMs: number;
  readonly maxEjectionTimeMs: number;
  readonly maxEjectionPercent: number;
  readonly enforcingConsecutive5xx: number;
  readonly enforcingConsecutiveGatewayFailure: number;
  readonly enforcingSuccessRate: number;
  readonly successRateMinimumHosts: number;
  readonly successRateRequestVolume: number;
  readonly successRateStdevFactor: number;
  readonly failurePercentageThreshold: number;
  readonly failurePercentageMinimumHosts: number;
  readonly failurePercentageRequestVolume: number;
  readonly enforcingFailurePercentage: number;
  readonly splitExternalLocalOriginErrors: boolean;
  readonly alwaysEjectOneHost: boolean;
}

/** Envoy's defaults (source/common/upstream/outlier_detection_impl.h). */
export const ENVOY_OUTLIER_DEFAULTS: OutlierSettings = Object.freeze({
  consecutive5xx: 5,
  consecutiveGatewayFailure: 5,
  consecutiveLocalOriginFailure: 5,
  intervalMs: 10_000,
  baseEjectionTimeMs: 30_000,
  maxEjectionTimeMs: 300_000,
  maxEjectionPercent: 10,
  enforcingConsecutive5xx: 100,
  enforcingConsecutiveGatewayFailure: 0,
  enforcingSuccessRate: 100,
  successRateMinimumHosts: 5,
  successRateRequestVolume: 100,
  successRateStdevFactor: 1900,
  failurePercentageThreshold: 85,
  failurePercentageMinimumHosts: 5,
  failurePercentageRequestVolume: 50,
  enforcingFailurePercentage: 0,
  splitExternalLocalOriginErrors: false,
  alwaysEjectOneHost: false,
});

/**
 * Envoy outlier settings mirroring a service's healing config (built-in defaults ← mesh-wide ← per-service
 * layers, as the healing engine resolves them). With the `envoy-default` and `none` policies, Envoy runs
 * the `healing.envoy` settings (Envoy's own defaults unless configured). With the `meshmedic` policy,
 * Envoy's consecutive detectors and guards are set to what meshmedic itself enforces, so both layers agree.
 */
export function outlierSettingsFrom(...layers: unknown[]): OutlierSettings {
  const r = resolvePolicySettings(...(layers.filter((l) => l && typeof l === 'object') as PolicySettings[]));
  const out: Record<string, number | boolean> = { ...ENVOY_OUTLIER_DEFAULTS };
  const envoy = r.envoy as unknown as Record<string, number | boolean>;
  for (const key of Object.keys(ENVOY_OUTLIER_DEFAULTS)) {
    const v = envoy[key];
    if (typeof v === typeof out[key]) out[key] = v!;
  }
  if (r.policy === 'meshmedic' || r.policy === 'learned') {
    const on = r.consecutive.enabled ? 100 : 0;
    Object.assign(out, {
      consecutive5xx: r.consecutive.errors5xx,
      enforcingConsecutive5xx: on,
      consecutiveGatewayFailure: r.consecutive.gateway,
      enforcingConsecutiveGatewayFailure: on,
      consecutiveLocalOriginFailure: r.consecutive.localOrigin,
      baseEjectionTimeMs: r.ejection.baseMs,
      maxEjectionTimeMs: r.ejection.maxMs,
      maxEjectionPercent: r.ejection.maxEjectionPct,
      alwaysEjectOneHost: r.ejection.alwaysEjectOne,
    });
  }
  return Object.freeze(out) as unknown as OutlierSettings;
}

export interface BuildOptions {
  readonly flavor: ClientFlavor;
  /** Ejected endpoints are sent as UNHEALTHY (default, keeps localities stable) or left out. */
  readonly ejectedAs: 'unhealthy' | 'remove';
  /** Static weight × health factor × scale = load_balancing_weight; the scale keeps de-weighting visible at weight 1. */
  readonly weightScale: number;
  /**
   * Proxyless gRPC balances round-robin inside a locality and honours only locality weights; giving each
   * endpoint its own sub-locality makes per-endpoint weights (de-weighting, probation) take effect there.
   */
  readonly endpointLocalities: boolean;
  /** Endpoint label that splits a service into weighted subsets (`NAME|value` clusters). */
  readonly subsetLabel: string;
  readonly connectTimeoutMs: number;
  /** Envoy flavor: where the outbound listener binds. */
  readonly envoyListener: { readonly address: string; readonly port: number; readonly name: string };
  readonly outlier: (service: string) => OutlierSettings;
  readonly protocol: (service: string) => 'http1' | 'h2c';
}

export const DEFAULT_BUILD_OPTIONS: BuildOptions = Object.freeze({
  flavor: 'grpc',
  ejectedAs: 'unhealthy',
  weightScale: 100,
  endpointLocalities: true,
  subsetLabel: 'version',
  connectTimeoutMs: 1000,
  envoyListener: Object.freeze({ address: '127.0.0.1', port: 17100, name: 'meshmedic_outbound' }),
  outlier: () => ENVOY_OUTLIER_DEFAULTS,
  protocol: () => 'h2c' as const,
});

export type XdsObject = Record<string, unknown>;

/** Resources of one service, by type URL then name. */
export interface ServiceResources {
  readonly clusters: ReadonlyMap<string, XdsObject>;
  readonly endpoints: ReadonlyMap<string, XdsObject>;
  /** Proxyless flavor only: one ApiListener and one route config per service, all named NAME. */
  readonly listeners: ReadonlyMap<string, XdsObject>;
  readonly routes: ReadonlyMap<string, XdsObject>;
  /** Envoy flavor: this service's virtual host inside the shared outbound route config. */
  readonly virtualHost?: XdsObject;
}

const ADS_SOURCE = Object.freeze({ ads: {}, resource_api_version: 'V3' });

function duration(ms: number): XdsObject {
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}

/** The subsets of a service by label value, in a stable order; empty when fewer than two values exist. */
export function subsetsOf(service: ServiceView, label: string): Map<string, EndpointView[]> {
  const m = new Map<string, EndpointView[]>();
  if (!label) return m;
  for (const e of service.endpoints) {
    const v = e.spec.labels[label];
    if (v === undefined) return new Map(); // a partly labelled service is not split
    let list = m.get(v);
    if (!list) m.set(v, (list = []));
    list.push(e);
  }
  if (m.size < 2) return new Map();
  return new Map([...m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
}

export function subsetClusterName(service: string, value: string): string {
  return `${service}|${value}`;
}

/** The load_balancing_weight an endpoint gets for its health (≥ 1). */
export function effectiveWeight(e: EndpointView, scale: number): number {
  return Math.max(1, Math.round(e.spec.weight * e.health.weightFactor * scale));
}

type HealthStatus = 'HEALTHY' | 'UNHEALTHY' | 'DRAINING';

function statusOf(e: EndpointView, panic: boolean): HealthStatus | undefined {
  switch (e.health.state) {
    case 'healthy':
    case 'degraded':
    case 'probation':
      return 'HEALTHY';
    case 'draining':
      return 'DRAINING';
    case 'ejected':
      // In panic the mesh ignores health (fail open); clients without a panic mode get the same view.
      return panic ? 'HEALTHY' : 'UNHEALTHY';
  }
}

/**
 * ClusterLoadAssignment for a set of endpoints: localities per (priority, locality), priorities renumbered
 * densely from 0, every locality weighted, IP literals and numeric ports only.
 */
export function buildClusterLoadAssignment(clusterName: string, service: ServiceView, endpoints: readonly EndpointView[], opts: BuildOptions): XdsObject {
  const panic = service.plan.panic;
  interface Group { priority: number; locality: { region: string; zone: string; sub_zone: string }; weight: number; lb: XdsObject[] }
  const groups = new Map<string, Group>();
  for (const e of endpoints) {
    const status = statusOf(e, panic);
    if (status === 'UNHEALTHY' && opts.ejectedAs === 'remove') continue;
    const loc = e.spec.locality;
    const hostPort = e.spec.host.includes(':') ? `[${e.spec.host}]:${e.spec.port}` : `${e.spec.host}:${e.spec.port}`;
    const subZone = opts.endpointLocalities ? (loc.subzone ? `${loc.subzone}/${hostPort}` : hostPort) : loc.subzone;
    const key = `${e.spec.priority}\u0000${loc.region}\u0000${loc.zone}\u0000${subZone}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { priority: e.spec.priority, locality: { region: loc.region, zone: loc.zone, sub_zone: subZone }, weight: 0, lb: [] }));
    const w = effectiveWeight(e, opts.weightScale);
    if (status === 'HEALTHY') g.weight += w;
    g.lb.push({
      endpoint: { address: { socket_address: { address: e.spec.host, port_value: e.spec.port } } },
      health_status: status,
      load_balancing_weight: { value: w },
    });
  }
  // Dense priorities: grpc-js-xds NACKs a gap, Envoy would route nothing to it.
  const present = [...new Set([...groups.values()].map((g) => g.priority))].sort((a, b) => a - b);
  const dense = new Map(present.map((p, i) => [p, i]));
  const localities = [...groups.values()]
    .sort((a, b) => a.priority - b.priority || cmp(a.locality.region, b.locality.region) || cmp(a.locality.zone, b.locality.zone) || cmp(a.locality.sub_zone, b.locality.sub_zone))
    .map((g) => ({
      locality: g.locality,
      lb_endpoints: g.lb,
      // A locality with nothing healthy still needs a weight (clients drop unweighted localities).
      load_balancing_weight: { value: Math.max(1, g.weight) },
      priority: dense.get(g.priority)!,
    }));
  return {
    cluster_name: clusterName,
    endpoints: localities,
    policy: { overprovisioning_factor: { value: Math.round(service.routing.overprovisioningFactor * 100) } },
  };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function buildCluster(name: string, service: ServiceView, opts: BuildOptions): XdsObject {
  const c: XdsObject = {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: ADS_SOURCE, service_name: name },
    connect_timeout: duration(opts.connectTimeoutMs),
    lb_policy: 'ROUND_ROBIN',
  };
  if (opts.flavor === 'envoy') {
    // Envoy decides locally too: mirror the service's detection settings so both layers agree.
    c.outlier_detection = outlierDetection(opts.outlier(service.name));
    c.common_lb_config = {
      locality_weighted_lb_config: {},
      healthy_panic_threshold: { value: service.routing.panicThresholdPct },
    };
    if (opts.protocol(service.name) === 'h2c') {
      c.typed_extension_protocol_options = {
        'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
          '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
          explicit_http_config: { http2_protocol_options: {} },
        },
      };
    }
  }
  return c;
}

export function outlierDetection(o: OutlierSettings): XdsObject {
  return {
    consecutive_5xx: { value: o.consecutive5xx },
    consecutive_gateway_failure: { value: o.consecutiveGatewayFailure },
    consecutive_local_origin_failure: { value: o.consecutiveLocalOriginFailure },
    interval: duration(o.intervalMs),
    base_ejection_time: duration(o.baseEjectionTimeMs),
    max_ejection_time: duration(o.maxEjectionTimeMs),
    max_ejection_percent: { value: o.maxEjectionPercent },
    enforcing_consecutive_5xx: { value: o.enforcingConsecutive5xx },
    enforcing_consecutive_gateway_failure: { value: o.enforcingConsecutiveGatewayFailure },
    enforcing_success_rate: { value: o.enforcingSuccessRate },
    success_rate_minimum_hosts: { value: o.successRateMinimumHosts },
    success_rate_request_volume: { value: o.successRateRequestVolume },
    success_rate_stdev_factor: { value: o.successRateStdevFactor },
    failure_percentage_threshold: { value: o.failurePercentageThreshold },
    failure_percentage_minimum_hosts: { value: o.failurePercentageMinimumHosts },
    failure_percentage_request_volume: { value: o.failurePercentageRequestVolume },
    enforcing_failure_percentage: { value: o.enforcingFailurePercentage },
    split_external_local_origin_errors: o.splitExternalLocalOriginErrors,
    always_eject_one_host: { value: o.alwaysEjectOneHost },
  };
}

/**
 * Integer weights summing to exactly `total` (largest remainder), zero shares dropped. When nothing can
 * take traffic the static weights are used instead (fail open).
 */
export function apportion(shares: readonly number[], total = 100, fallback?: readonly number[]): number[] {
  let s = shares;
  let sum = s.reduce((a, b) => a + Math.max(0, b), 0);
  if (!(sum > 0) && fallback) {
    s = fallback;
    sum = s.reduce((a, b) => a + Math.max(0, b), 0);
  }
  if (!(sum > 0)) return shares.map((_, i) => (i === 0 ? total : 0));
  const exact = s.map((x) => (Math.max(0, x) * total) / sum);
  const out = exact.map(Math.floor);
  let left = total - out.reduce((a, b) => a + b, 0);
  const order = exact.map((x, i) => ({ i, r: x - Math.floor(x) })).sort((a, b) => b.r - a.r || a.i - b.i);
  for (let k = 0; left > 0; k = (k + 1) % order.length, left--) out[order[k]!.i]!++;
  return out;
}

/** The route action of a service: one cluster, or weighted subset clusters summing to 100. */
export function routeAction(service: ServiceView, opts: BuildOptions): XdsObject {
  const subsets = subsetsOf(service, opts.subsetLabel);
  if (subsets.size === 0) return { cluster: service.name };
  const names = [...subsets.keys()];
  const live = names.map((v) => subsets.get(v)!.reduce((a, e) => a + (statusOf(e, service.plan.panic) === 'HEALTHY' ? effectiveWeight(e, opts.weightScale) : 0), 0));
  const stat = names.map((v) => subsets.get(v)!.reduce((a, e) => a + e.spec.weight, 0));
  const weights = apportion(live, 100, stat);
  const clusters = names.map((v, i) => ({ name: subsetClusterName(service.name, v), weight: { value: weights[i]! } })).filter((c) => c.weight.value > 0);
  return { weighted_clusters: { clusters } };
}

export function buildVirtualHost(service: ServiceView, domains: readonly string[], opts: BuildOptions): XdsObject {
  return {
    name: service.name,
    domains: [...domains],
    routes: [{ match: { prefix: '' }, route: routeAction(service, opts) }],
  };
}

function routerFilter(): XdsObject {
  return { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER_TYPE } };
}

/** Proxyless gRPC listener: an ApiListener with an HttpConnectionManager that fetches route config NAME over ADS. */
export function buildApiListener(name: string): XdsObject {
  return {
    name,
    api_listener: {
      api_listener: {
        '@type': HCM_TYPE,
        stat_prefix: name,
        rds: { config_source: ADS_SOURCE, route_config_name: name },
        http_filters: [routerFilter()],
      },
    },
  };
}

/** Envoy outbound listener: a socket listener whose HCM routes by Host over the shared route config. */
export function buildEnvoyListener(opts: BuildOptions): XdsObject {
  const l = opts.envoyListener;
  return {
    name: l.name,
    address: { socket_address: { address: l.address, port_value: l.port } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': HCM_TYPE,
              stat_prefix: l.name,
              codec_type: 'AUTO',
              rds: { config_source: ADS_SOURCE, route_config_name: l.name },
              http_filters: [routerFilter()],
            },
          },
        ],
      },
    ],
  };
}

/** All resources of one service for a flavor (pure; the cache memoizes it by service version). */
export function buildServiceResources(service: ServiceView, opts: BuildOptions): ServiceResources {
  const clusters = new Map<string, XdsObject>();
  const endpoints = new Map<string, XdsObject>();
  clusters.set(service.name, buildCluster(service.name, service, opts));
  endpoints.set(service.name, buildClusterLoadAssignment(service.name, service, service.endpoints, opts));
  for (const [value, members] of subsetsOf(service, opts.subsetLabel)) {
    const name = subsetClusterName(service.name, value);
    clusters.set(name, buildCluster(name, service, opts));
    endpoints.set(name, buildClusterLoadAssignment(name, service, members, opts));
  }
  const listeners = new Map<string, XdsObject>();
  const routes = new Map<string, XdsObject>();
  if (opts.flavor === 'grpc') {
    listeners.set(service.name, buildApiListener(service.name));
    routes.set(service.name, { name: service.name, virtual_hosts: [buildVirtualHost(service, ['*'], opts)] });
    return { clusters, endpoints, listeners, routes };
  }
  return { clusters, endpoints, listeners, routes, virtualHost: buildVirtualHost(service, [service.name, `${service.name}:*`], opts) };
}

/** Resources by type URL for a whole mesh snapshot (used by tests and tools; the cache builds incrementally). */
export function buildAll(services: Iterable<ServiceView>, opts: BuildOptions): Map<string, Map<string, XdsObject>> {
  const out = new Map<string, Map<string, XdsObject>>([
    [CLUSTER_TYPE, new Map()],
    [ENDPOINT_TYPE, new Map()],
    [LISTENER_TYPE, new Map()],
    [ROUTE_TYPE, new Map()],
  ]);
  const vhosts: XdsObject[] = [];
  for (const s of services) {
    const r = buildServiceResources(s, opts);
    for (const [n, x] of r.clusters) out.get(CLUSTER_TYPE)!.set(n, x);
    for (const [n, x] of r.endpoints) out.get(ENDPOINT_TYPE)!.set(n, x);
    for (const [n, x] of r.listeners) out.get(LISTENER_TYPE)!.set(n, x);
    for (const [n, x] of r.routes) out.get(ROUTE_TYPE)!.set(n, x);
    if (r.virtualHost) vhosts.push(r.virtualHost);
  }
  if (opts.flavor === 'envoy') {
    out.get(LISTENER_TYPE)!.set(opts.envoyListener.name, buildEnvoyListener(opts));
    out.get(ROUTE_TYPE)!.set(opts.envoyListener.name, { name: opts.envoyListener.name, virtual_hosts: vhosts });
  }
  return out;
}
