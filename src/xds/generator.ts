// Turns mesh snapshots into cache contents: builds each service's resources for each active client flavor,
// encodes them once (memoized by the frozen ServiceView, which is replaced on every change of the service)
// and hands the cache full per-type maps. The cache decides what actually changed.
import type { MeshSnapshot, ServiceView } from '../mesh/state.js';
import { encodeResource, type EncodedResource, type SnapshotCache } from './cache.js';
import { buildEnvoyListener, buildServiceResources, type BuildOptions, type ClientFlavor, type XdsObject } from './resources.js';
import { buildDestinationRule, buildVirtualService, destinationRuleProto, virtualServiceProto, type IstioOptions } from './istio.js';
import { CLUSTER_TYPE, ENDPOINT_TYPE, ISTIO_DESTINATION_RULE, ISTIO_VIRTUAL_SERVICE, LISTENER_TYPE, MCP_RESOURCE_TYPE, ROUTE_TYPE } from './types.js';

interface EncodedService {
  readonly clusters: EncodedResource[];
  readonly endpoints: EncodedResource[];
  readonly listeners: EncodedResource[];
  readonly routes: EncodedResource[];
  readonly virtualHost?: XdsObject;
  readonly destinationRule?: EncodedResource;
  readonly virtualService?: EncodedResource;
}

export interface GeneratorOptions {
  readonly build: Readonly<Record<ClientFlavor, BuildOptions>>;
  /** Serve DestinationRule/VirtualService over MCP to istiod (undefined = off). */
  readonly istio?: IstioOptions;
}

/** An Istio config wrapped in the MCP envelope: metadata name `namespace/name`, body the Istio message. */
function encodeMcp(namespace: string, name: string, bodyType: string, body: Record<string, unknown>): EncodedResource {
  const fullName = `${namespace}/${name}`;
  return encodeResource(fullName, MCP_RESOURCE_TYPE, {
    metadata: { name: fullName },
    body: { '@type': `type.googleapis.com/${bodyType}`, ...body },
  });
}

export class XdsGenerator {
  private readonly memo: Record<ClientFlavor, WeakMap<ServiceView, EncodedService>> = { grpc: new WeakMap(), envoy: new WeakMap() };
  private readonly active = new Set<ClientFlavor>();
  private last: MeshSnapshot | undefined;
  /** How many resources were encoded (not served from the memo): for tests and the benchmark. */
  encodedCount = 0;

  constructor(
    private readonly cache: SnapshotCache,
    private readonly opts: GeneratorOptions,
  ) {}

  /** Start building a flavor (on its first stream); builds it now from the last snapshot. */
  activate(flavor: ClientFlavor): void {
    if (this.active.has(flavor)) return;
    this.active.add(flavor);
    if (this.last) this.buildGroup(flavor, this.last);
  }

  isActive(flavor: ClientFlavor): boolean {
    return this.active.has(flavor);
  }

  update(snapshot: MeshSnapshot): void {
    this.last = snapshot;
    for (const f of this.active) this.buildGroup(f, snapshot);
  }

  private encodeService(flavor: ClientFlavor, s: ServiceView): EncodedService {
    let e = this.memo[flavor].get(s);
    if (e) return e;
    const opts = this.opts.build[flavor];
    const r = buildServiceResources(s, opts);
    const enc = (type: string, m: ReadonlyMap<string, XdsObject>) => [...m].map(([n, x]) => {
      this.encodedCount++;
      return encodeResource(n, type, x);
    });
    let destinationRule: EncodedResource | undefined;
    let virtualService: EncodedResource | undefined;
    if (this.opts.istio) {
      // Istio configs do not depend on the flavor: reuse the other flavor's encoding when it has one.
      const other = this.memo[flavor === 'grpc' ? 'envoy' : 'grpc'].get(s);
      if (other?.destinationRule) {
        destinationRule = other.destinationRule;
        virtualService = other.virtualService;
      } else {
        const dr = buildDestinationRule(s, this.opts.istio);
        destinationRule = encodeMcp(this.opts.istio.namespace, dr.metadata!.name!, 'istio.networking.v1alpha3.DestinationRule', destinationRuleProto(dr));
        // VirtualServices only when asked: one per service would collide with the teams' own.
        if (this.opts.istio.virtualServices) {
          const vs = buildVirtualService(s, this.opts.istio);
          virtualService = encodeMcp(this.opts.istio.namespace, vs.metadata!.name!, 'istio.networking.v1alpha3.VirtualService', virtualServiceProto(vs));
        }
      }
    }
    e = {
      clusters: enc(CLUSTER_TYPE, r.clusters),
      endpoints: enc(ENDPOINT_TYPE, r.endpoints),
      listeners: enc(LISTENER_TYPE, r.listeners),
      routes: enc(ROUTE_TYPE, r.routes),
      ...(r.virtualHost ? { virtualHost: r.virtualHost } : {}),
      ...(destinationRule ? { destinationRule, virtualService } : {}),
    };
    this.memo[flavor].set(s, e);
    return e;
  }

  private buildGroup(flavor: ClientFlavor, snapshot: MeshSnapshot): void {
    const byType = new Map<string, Map<string, EncodedResource>>([
      [CLUSTER_TYPE, new Map()],
      [ENDPOINT_TYPE, new Map()],
      [LISTENER_TYPE, new Map()],
      [ROUTE_TYPE, new Map()],
    ]);
    const drs = new Map<string, EncodedResource>();
    const vss = new Map<string, EncodedResource>();
    const vhosts: XdsObject[] = [];
    const names = [...snapshot.services.keys()].sort();
    for (const name of names) {
      const e = this.encodeService(flavor, snapshot.services.get(name)!);
      for (const r of e.clusters) byType.get(CLUSTER_TYPE)!.set(r.name, r);
      for (const r of e.endpoints) byType.get(ENDPOINT_TYPE)!.set(r.name, r);
      for (const r of e.listeners) byType.get(LISTENER_TYPE)!.set(r.name, r);
      for (const r of e.routes) byType.get(ROUTE_TYPE)!.set(r.name, r);
      if (e.virtualHost) vhosts.push(e.virtualHost);
      if (e.destinationRule) drs.set(e.destinationRule.name, e.destinationRule);
      if (e.virtualService) vss.set(e.virtualService.name, e.virtualService);
    }
    if (flavor === 'envoy') {
      const o = this.opts.build.envoy;
      const l = o.envoyListener.name;
      byType.get(LISTENER_TYPE)!.set(l, encodeResource(l, LISTENER_TYPE, buildEnvoyListener(o)));
      byType.get(ROUTE_TYPE)!.set(l, encodeResource(l, ROUTE_TYPE, { name: l, virtual_hosts: vhosts }));
    }
    if (this.opts.istio) {
      byType.set(ISTIO_DESTINATION_RULE, drs);
      byType.set(ISTIO_VIRTUAL_SERVICE, vss);
    }
    this.cache.set(flavor, byType);
  }
}

