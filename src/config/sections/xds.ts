// xDS management-server settings. The xDS module owns this file.
import { durationMs, hostPortSchema } from './common.js';

const int = (def: number, min: number, max: number, description?: string) => ({ type: 'integer', minimum: min, maximum: max, default: def, ...(description ? { description } : {}) }) as const;

export const xdsSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    enabled: { type: 'boolean', default: false },
    listen: { ...hostPortSchema, default: '127.0.0.1:17010' },
    controlPlaneId: { type: 'string', maxLength: 253, default: 'meshmedic', description: 'control_plane.identifier in every response' },
    coalesceMs: int(2, 0, 1000, 'mesh changes within this window are pushed together (0 = next tick)'),
    defaultFlavor: { enum: ['grpc', 'envoy'], default: 'grpc', description: 'resources for clients whose user agent names neither gRPC nor Envoy' },
    ejectedAs: { enum: ['unhealthy', 'remove'], default: 'unhealthy', description: 'how ejected endpoints appear in EDS' },
    weightScale: int(100, 1, 10_000, 'load_balancing_weight = static weight × health factor × scale'),
    endpointLocalities: { type: 'boolean', default: true, description: 'proxyless gRPC: one sub-locality per endpoint so per-endpoint weights take effect' },
    subsetLabel: { type: 'string', maxLength: 253, default: 'version', description: 'endpoint label that splits a service into weighted subset clusters (empty = off)' },
    connectTimeoutMs: int(1000, 1, 600_000),
    envoyListener: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        name: { type: 'string', minLength: 1, maxLength: 253, default: 'meshmedic_outbound' },
        address: { ...hostPortSchema, default: '127.0.0.1:17100', description: 'where Envoy clients bind the outbound listener served over LDS' },
      },
    },
    limits: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        maxStreams: int(10_000, 1, 1_000_000),
        maxNamesPerRequest: int(10_000, 1, 1_000_000),
        maxSubscribedNames: int(100_000, 1, 10_000_000),
        maxTypesPerStream: int(32, 1, 1024),
        maxNameLength: int(1024, 16, 65_536),
        maxSubscribedNamesPerStream: int(100_000, 1, 10_000_000, 'most names one stream may hold subscribed over all its types'),
        maxSubscriptionBytesPerStream: int(16 * 1024 * 1024, 65_536, 1024 * 1024 * 1024, 'estimated bytes of subscription state one stream may hold (name length + 160 per name); beyond it the stream ends with RESOURCE_EXHAUSTED'),
        maxRequestBytes: int(4 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
        maxResponseBytes: int(64 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
        firstRequestTimeoutMs: int(30_000, 100, 3_600_000),
      },
    },
    tls: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'serve xDS (and ALS, MCP) over TLS; both files empty = plaintext',
      properties: {
        certFile: { type: 'string', maxLength: 4096, default: '', description: 'PEM certificate chain (a mounted cert-manager Secret: tls.crt); re-read when it changes' },
        keyFile: { type: 'string', maxLength: 4096, default: '', description: 'PEM private key (tls.key)' },
        reloadMs: { ...durationMs(60_000, 1000, 86_400_000), description: 'how often the files are checked for a renewed certificate' },
      },
    },
    istio: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        mcp: { type: 'boolean', default: false, description: 'serve DestinationRules (and VirtualServices, if virtualServices) to istiod (configSources: xds://...)' },
        virtualServices: { type: 'boolean', default: false, description: 'also render and serve a VirtualService per service (weighted routes across subsets); off: only DestinationRules, which merge with the teams\' own rules' },
        namespace: { type: 'string', maxLength: 63, default: 'default' },
        hostSuffix: { type: 'string', maxLength: 253, default: '', description: 'appended to service names to form hosts, e.g. .default.svc.cluster.local' },
        failoverPriority: { type: 'array', items: { type: 'string', maxLength: 253 }, maxItems: 16, default: ['topology.kubernetes.io/region', 'topology.kubernetes.io/zone'] },
      },
    },
  },
} as const;

export interface XdsLimitsConfig {
  readonly maxStreams: number;
  readonly maxNamesPerRequest: number;
  readonly maxSubscribedNames: number;
  readonly maxTypesPerStream: number;
  readonly maxNameLength: number;
  readonly maxSubscribedNamesPerStream: number;
  readonly maxSubscriptionBytesPerStream: number;
  readonly maxRequestBytes: number;
  readonly maxResponseBytes: number;
  readonly firstRequestTimeoutMs: number;
}

export interface XdsConfig {
  readonly enabled: boolean;
  readonly listen: string;
  readonly controlPlaneId: string;
  readonly coalesceMs: number;
  readonly defaultFlavor: 'grpc' | 'envoy';
  readonly ejectedAs: 'unhealthy' | 'remove';
  readonly weightScale: number;
  readonly endpointLocalities: boolean;
  readonly subsetLabel: string;
  readonly connectTimeoutMs: number;
  readonly envoyListener: { readonly name: string; readonly address: string };
  readonly limits: XdsLimitsConfig;
  readonly tls: { readonly certFile: string; readonly keyFile: string; readonly reloadMs: number };
  readonly istio: { readonly mcp: boolean; readonly namespace: string; readonly hostSuffix: string; readonly failoverPriority: readonly string[]; readonly virtualServices: boolean };
}
