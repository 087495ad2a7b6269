// xDS type URLs (constants and string-literal types in one place) and the resource-type registry order.

export const CLUSTER_TYPE = 'type.googleapis.com/envoy.config.cluster.v3.Cluster' as const;
export const ENDPOINT_TYPE = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment' as const;
export const LISTENER_TYPE = 'type.googleapis.com/envoy.config.listener.v3.Listener' as const;
export const ROUTE_TYPE = 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration' as const;
export const HCM_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager' as const;
export const ROUTER_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' as const;

export type EnvoyTypeUrl = typeof CLUSTER_TYPE | typeof ENDPOINT_TYPE | typeof LISTENER_TYPE | typeof ROUTE_TYPE;

/** Istio config served to istiod over MCP-over-xDS (`configSources: xds://...`). */
export const ISTIO_DESTINATION_RULE = 'networking.istio.io/v1/DestinationRule' as const;
export const ISTIO_VIRTUAL_SERVICE = 'networking.istio.io/v1/VirtualService' as const;
export const MCP_RESOURCE_TYPE = 'type.googleapis.com/istio.mcp.v1alpha1.Resource' as const;

/** ADS push order: clusters before their endpoints, listeners before their routes (make before break). */
export const ADS_ORDER: readonly string[] = Object.freeze([CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE]);

/** Types whose SotW responses carry the full state: a name left out is deleted by the client. */
export function isFullStateType(typeUrl: string): boolean {
  return typeUrl === CLUSTER_TYPE || typeUrl === LISTENER_TYPE || isIstioTypeUrl(typeUrl);
}

/** `networking.istio.io/<version>/<Kind>` (or security./telemetry.) as istiod asks for them. */
export function isIstioTypeUrl(typeUrl: string): boolean {
  return /^[a-z]+\.istio\.io\/v[0-9a-z]+\/[A-Z][A-Za-z]+$/.test(typeUrl);
}

/** Short name for metrics and logs: `Cluster`, `ClusterLoadAssignment`, `DestinationRule`. */
export function shortType(typeUrl: string): string {
  const i = Math.max(typeUrl.lastIndexOf('.'), typeUrl.lastIndexOf('/'));
  return typeUrl.slice(i + 1);
}
