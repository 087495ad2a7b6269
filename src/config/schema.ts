// The configuration schema (JSON Schema, draft 2020-12 subset that Ajv checks), composed from sections.
import { durationMs, hostPortSchema, localitySchema } from './sections/common.js';
import { listenersSchema, proxySchema } from './sections/proxy.js';
import { policySettingsSchema } from './sections/healing.js';
import { adminSchema } from './sections/admin.js';
import { gossipSchema } from './sections/gossip.js';
import { logSchema } from './sections/log.js';
import { xdsSchema } from './sections/xds.js';
import { auditSchema } from './sections/audit.js';
import { alsSchema } from './sections/als.js';
import { learningSchema } from './sections/learning.js';
import { SERVICE_NAME_PATTERN } from './service-name.js';

export { SERVICE_NAME_PATTERN };

export const endpointSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['address'],
  properties: {
    address: { ...hostPortSchema, description: 'IP:PORT of the instance (IPv6 in brackets)' },
    locality: localitySchema,
    priority: { type: 'integer', minimum: 0, maximum: 15, default: 0, description: '0 is preferred; higher priorities take traffic as lower ones lose health (failover)' },
    weight: { type: 'integer', minimum: 1, maximum: 10_000, default: 1, description: 'static load-balancing weight' },
    labels: { type: 'object', additionalProperties: { type: 'string', maxLength: 256 }, maxProperties: 64, default: {}, description: 'free-form labels (e.g. version, used for Istio subsets)' },
  },
} as const;

export const serviceSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'endpoints'],
  properties: {
    name: { type: 'string', pattern: SERVICE_NAME_PATTERN, description: 'a DNS-style service name' },
    protocol: { enum: ['http1', 'h2c'], default: 'http1', description: 'h2c for gRPC upstreams' },
    endpoints: { type: 'array', items: endpointSchema, maxItems: 10_000, description: 'the service\'s instances' },
    routing: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        overprovisioningFactor: { type: 'number', minimum: 1, maximum: 10, default: 1.4, description: 'Envoy overprovisioning: priority 0 sheds traffic once fewer than 1/1.4 = 71.4 % of it is healthy' },
        panicThresholdPct: { type: 'number', minimum: 0, maximum: 100, default: 50, description: 'below this healthy %, health is ignored and traffic spreads over every endpoint (0 disables panic)' },
      },
    },
    healing: policySettingsSchema,
  },
} as const;

export const configSchema = {
  $id: 'https://meshmedic.io/schema/config.json',
  type: 'object',
  additionalProperties: false,
  properties: {
    node: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        id: { type: 'string', maxLength: 253, default: '', description: 'this sidecar\'s id in the mesh (xDS node id, gossip name); generated when empty' },
        cluster: { type: 'string', maxLength: 253, default: 'meshmedic', description: 'the mesh this sidecar belongs to' },
        workload: { type: 'string', maxLength: 253, default: '', description: 'the workload this sidecar serves (a Deployment or StatefulSet name): the source_workload label of outbound metrics and destination_workload of inbound; empty = "unknown"' },
        locality: localitySchema,
      },
    },
    admin: adminSchema,
    ...listenersSchema,
    proxy: proxySchema,
    stats: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        windowMs: durationMs(1000, 100, 60_000, 'width of one measurement window'),
        windows: { type: 'integer', minimum: 2, maximum: 120, default: 10, description: 'windows kept per endpoint (the latency histogram of a window: ~1–2 KB for a typical spread, at most ~5.6 KB, while the endpoint has traffic; released after a whole ring without)' },
        tickMs: durationMs(100, 10, 10_000, 'how often detection and healing run (consecutive failures are also checked at once)'),
      },
    },
    healing: { ...policySettingsSchema, default: {} },
    services: { type: 'array', items: serviceSchema, default: [], maxItems: 10_000, description: 'the services this sidecar routes to (outbound), with their endpoints' },
    xds: xdsSchema,
    als: alsSchema,
    gossip: gossipSchema,
    log: logSchema,
    audit: auditSchema,
    learning: learningSchema,
  },
} as const;
