// Istio output from the mesh snapshot, pure: DestinationRule (outlier detection mirroring the healing
// config, locality failover) and VirtualService (weighted routes across subsets) as typed models and YAML,
// plus the same objects as Istio protobuf messages for the MCP-over-xDS server.
import { DestinationRule, type IDestinationRule } from '@kubernetes-models/istio/networking.istio.io/v1beta1/DestinationRule';
import { VirtualService, type IVirtualService } from '@kubernetes-models/istio/networking.istio.io/v1beta1/VirtualService';
import { stringify } from 'yaml';
import type { MeshSnapshot, ServiceView } from '../mesh/state.js';
import type { Config } from '../config/types.js';
import { apportion, effectiveWeight, ENVOY_OUTLIER_DEFAULTS, outlierSettingsFrom, subsetsOf, type OutlierSettings } from './resources.js';

type DestinationRuleSpec = NonNullable<IDestinationRule['spec']>;
type VirtualServiceSpec = NonNullable<IVirtualService['spec']>;
type LocalityLbSetting = NonNullable<NonNullable<NonNullable<DestinationRuleSpec['trafficPolicy']>['loadBalancer']>['localityLbSetting']>;

export interface IstioOptions {
  readonly namespace: string;
  /** Appended to the service name to form the host (`.default.svc.cluster.local`); empty = short name. */
  readonly hostSuffix: string;
  readonly subsetLabel: string;
  /** Node labels Istio sorts endpoints by when no region-to-region failover can be derived. */
  readonly failoverPriority: readonly string[];
  readonly outlier: (service: string) => OutlierSettings;
  /** Also produce VirtualServices (weighted routes across subsets); off, teams' own are the only ones. */
  readonly virtualServices: boolean;
}

export const DEFAULT_ISTIO_OPTIONS: IstioOptions = Object.freeze({
  namespace: 'default',
  hostSuffix: '',
  subsetLabel: 'version',
  failoverPriority: Object.freeze(['topology.kubernetes.io/region', 'topology.kubernetes.io/zone']),
  outlier: () => ENVOY_OUTLIER_DEFAULTS,
  virtualServices: false,
});

export function istioOptionsFrom(config: Config): IstioOptions {
  const healing = new Map(config.services.map((s) => [s.name, s.healing]));
  const x = config.xds as Partial<{ istio: Partial<IstioOptions>; subsetLabel: string }>;
  return {
    ...DEFAULT_ISTIO_OPTIONS,
    ...(x.istio ?? {}),
    subsetLabel: x.subsetLabel ?? DEFAULT_ISTIO_OPTIONS.subsetLabel,
    outlier: (s) => outlierSettingsFrom(config.healing, healing.get(s)),
  };
}

export interface IstioConfigs {
  readonly destinationRules: DestinationRule[];
  readonly virtualServices: VirtualService[];
}

function secs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

function hostOf(service: string, opts: IstioOptions): string {
  return `${service}${opts.hostSuffix}`;
}

/** Region-level failover pairs from priorities: each P0 region fails over to the next priority's region. */
function localitySetting(service: ServiceView, opts: IstioOptions): LocalityLbSetting {
  const byPriority = new Map<number, Set<string>>();
  for (const e of service.endpoints) {
    let s = byPriority.get(e.spec.priority);
    if (!s) byPriority.set(e.spec.priority, (s = new Set()));
    if (e.spec.locality.region) s.add(e.spec.locality.region);
  }
  const prios = [...byPriority.keys()].sort((a, b) => a - b);
  const failover: { from: string; to: string }[] = [];
  for (let i = 0; i + 1 < prios.length; i++) {
    const next = [...byPriority.get(prios[i + 1]!)!].sort()[0];
    if (!next) continue;
    for (const from of [...byPriority.get(prios[i]!)!].sort()) {
      if (from !== next && !failover.some((f) => f.from === from)) failover.push({ from, to: next });
    }
  }
  // Istio allows one of failover / failoverPriority: explicit region pairs when priorities span regions.
  if (failover.length) return { enabled: true, failover };
  return { enabled: true, failoverPriority: [...opts.failoverPriority] };
}

export function buildDestinationRule(service: ServiceView, opts: IstioOptions): DestinationRule {
  const o = opts.outlier(service.name);
  const subsets = subsetsOf(service, opts.subsetLabel);
  const spec: DestinationRuleSpec = {
    host: hostOf(service.name, opts),
    trafficPolicy: {
      // No `simple` policy: the mesh's own (Istio's LEAST_REQUEST, or what a team's rule sets) stays.
      loadBalancer: { localityLbSetting: localitySetting(service, opts) },
      outlierDetection: {
        consecutive5xxErrors: o.consecutive5xx,
        // Istio turns gateway errors off by default; Envoy's enforcing 0 % means the same.
        ...(o.enforcingConsecutiveGatewayFailure > 0 ? { consecutiveGatewayErrors: o.consecutiveGatewayFailure } : {}),
        ...(o.splitExternalLocalOriginErrors ? { splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: o.consecutiveLocalOriginFailure } : {}),
        interval: secs(o.intervalMs),
        baseEjectionTime: secs(o.baseEjectionTimeMs),
        maxEjectionPercent: o.maxEjectionPercent,
        // Istio's panic threshold; locality failover needs outlier detection present (it is).
        minHealthPercent: Math.round(service.routing.panicThresholdPct),
      },
    },
  };
  if (subsets.size) spec.subsets = [...subsets.keys()].map((v) => ({ name: v, labels: { [opts.subsetLabel]: v } }));
  const ejected = service.endpoints.filter((e) => e.health.state === 'ejected' || e.health.state === 'draining').map((e) => `${e.spec.host}:${e.spec.port}`);
  const dr = new DestinationRule({
    metadata: {
      name: `meshmedic-${service.name}`,
      namespace: opts.namespace,
      labels: { 'app.kubernetes.io/managed-by': 'meshmedic' },
      annotations: { 'meshmedic.io/service-version': String(service.version), ...(ejected.length ? { 'meshmedic.io/out-of-rotation': ejected.join(',') } : {}) },
    },
    spec,
  });
  dr.validate();
  return dr;
}

export function buildVirtualService(service: ServiceView, opts: IstioOptions): VirtualService {
  const host = hostOf(service.name, opts);
  const subsets = subsetsOf(service, opts.subsetLabel);
  let route: NonNullable<NonNullable<VirtualServiceSpec['http']>[number]['route']>;
  if (subsets.size === 0) {
    route = [{ destination: { host }, weight: 100 }];
  } else {
    const values = [...subsets.keys()];
    const routable = (st: string) => st === 'healthy' || st === 'degraded' || st === 'probation';
    const live = values.map((v) => subsets.get(v)!.reduce((a, e) => a + (routable(e.health.state) ? effectiveWeight(e, 100) : 0), 0));
    const stat = values.map((v) => subsets.get(v)!.reduce((a, e) => a + e.spec.weight, 0));
    const w = apportion(live, 100, stat);
    route = values.map((v, i) => ({ destination: { host, subset: v }, weight: w[i]! })).filter((r) => r.weight > 0);
  }
  const vs = new VirtualService({
    metadata: { name: `meshmedic-${service.name}`, namespace: opts.namespace, labels: { 'app.kubernetes.io/managed-by': 'meshmedic' } },
    spec: { hosts: [host], http: [{ name: 'meshmedic', route }] },
  });
  vs.validate();
  return vs;
}

export function buildIstioConfigs(snapshot: MeshSnapshot, opts: IstioOptions = DEFAULT_ISTIO_OPTIONS): IstioConfigs {
  const services = [...snapshot.services.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  return {
    destinationRules: services.map((s) => buildDestinationRule(s, opts)),
    virtualServices: opts.virtualServices ? services.map((s) => buildVirtualService(s, opts)) : [],
  };
}

/** `meshmedic render istio`: every service's DestinationRule (and VirtualService, if asked) as YAML. */
export function renderIstio(snapshot: MeshSnapshot, config: Config | IstioOptions): string {
  const opts = 'services' in config ? istioOptionsFrom(config) : config;
  const { destinationRules, virtualServices } = buildIstioConfigs(snapshot, opts);
  const docs: string[] = [];
  for (let i = 0; i < destinationRules.length; i++) {
    docs.push(stringify(destinationRules[i]!.toJSON()));
    const vs = virtualServices[i];
    if (vs) docs.push(stringify(vs.toJSON()));
  }
  return docs.length ? `---\n${docs.join('---\n')}` : '';
}

// ---- protobuf form for MCP (istio.networking.v1alpha3 messages, snake_case, durations as {seconds,nanos}) ----

function protoDuration(s: string | undefined): Record<string, number> | undefined {
  if (!s) return undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(s);
  if (!m) return undefined;
  const ms = Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  return { seconds: Math.floor(ms / 1000), nanos: Math.round((ms % 1000) * 1e6) };
}

function dropUndefined<T extends Record<string, unknown>>(o: T): T {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
}

export function destinationRuleProto(dr: DestinationRule): Record<string, unknown> {
  const spec = dr.spec ?? {};
  const tp = spec.trafficPolicy ?? {};
  const od = tp.outlierDetection;
  const lb = tp.loadBalancer;
  const loc = lb?.localityLbSetting;
  return dropUndefined({
    host: spec.host,
    traffic_policy: dropUndefined({
      load_balancer: lb
        ? dropUndefined({
            simple: lb.simple,
            locality_lb_setting: loc
              ? dropUndefined({
                  failover: loc.failover?.map((f) => ({ from: f.from, to: f.to })),
                  failover_priority: loc.failoverPriority,
                  enabled: loc.enabled === undefined ? undefined : { value: loc.enabled },
                })
              : undefined,
          })
        : undefined,
      outlier_detection: od
        ? dropUndefined({
            split_external_local_origin_errors: od.splitExternalLocalOriginErrors,
            consecutive_local_origin_failures: od.consecutiveLocalOriginFailures === undefined ? undefined : { value: od.consecutiveLocalOriginFailures },
            consecutive_gateway_errors: od.consecutiveGatewayErrors === undefined ? undefined : { value: od.consecutiveGatewayErrors },
            consecutive_5xx_errors: od.consecutive5xxErrors === undefined ? undefined : { value: od.consecutive5xxErrors },
            interval: protoDuration(od.interval),
            base_ejection_time: protoDuration(od.baseEjectionTime),
            max_ejection_percent: od.maxEjectionPercent,
            min_health_percent: od.minHealthPercent,
          })
        : undefined,
    }),
    subsets: spec.subsets?.map((s) => ({ name: s.name, labels: s.labels ?? {} })),
  });
}

export function virtualServiceProto(vs: VirtualService): Record<string, unknown> {
  const spec = vs.spec ?? {};
  return {
    hosts: spec.hosts ?? [],
    http: (spec.http ?? []).map((h) => ({
      name: h.name ?? '',
      route: (h.route ?? []).map((r) => ({ destination: dropUndefined({ host: r.destination?.host, subset: r.destination?.subset }), weight: r.weight ?? 0 })),
    })),
  };
}
