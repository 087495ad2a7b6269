// Data-plane settings: listeners, timeouts, pools, limits.
import { durationMs, hostPortSchema } from './common.js';

export const listenersSchema = {
  outbound: {
    type: 'object',
    additionalProperties: false,
    default: {},
    properties: {
      enabled: { type: 'boolean', default: true },
      listen: { ...hostPortSchema, default: '127.0.0.1:17001' },
      defaultService: {
        type: 'string',
        maxLength: 253,
        default: '',
        description: 'quick mode: send every outbound request to this service whatever its Host ("" = route by Host / request target)',
      },
    },
  },
  inbound: {
    type: 'object',
    additionalProperties: false,
    default: {},
    properties: {
      enabled: { type: 'boolean', default: false },
      listen: { ...hostPortSchema, default: '127.0.0.1:17006' },
      app: { type: 'string', default: 'http://127.0.0.1:8080', description: 'URL of the local application' },
      protocol: { enum: ['http1', 'h2c'], default: 'http1' },
    },
  },
} as const;

export const proxySchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    connectTimeoutMs: durationMs(1000, 1),
    headersTimeoutMs: durationMs(15_000, 1),
    bodyTimeoutMs: durationMs(30_000, 0),
    idleTimeoutMs: durationMs(60_000, 1),
    keepAliveTimeoutMs: durationMs(4_000, 1),
    drainTimeoutMs: durationMs(10_000, 0),
    maxHeaderBytes: { type: 'integer', minimum: 1024, maximum: 1_048_576, default: 16_384 },
    connectionsPerEndpoint: { type: 'integer', minimum: 1, maximum: 100_000, default: 256 },
    retryConnectFailures: { type: 'integer', minimum: 0, maximum: 5, default: 2, description: 'retries on another endpoint when the connection is refused (the request was never sent, so any method is safe)' },
    xForwardedFor: { type: 'boolean', default: true },
    via: { type: 'boolean', default: true },
  },
} as const;

export interface ProxyConfig {
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly drainTimeoutMs: number;
  readonly maxHeaderBytes: number;
  readonly connectionsPerEndpoint: number;
  readonly retryConnectFailures: number;
  readonly xForwardedFor: boolean;
  readonly via: boolean;
}

export interface ListenersConfig {
  readonly outbound: { readonly enabled: boolean; readonly listen: string; readonly defaultService: string };
  readonly inbound: { readonly enabled: boolean; readonly listen: string; readonly app: string; readonly protocol: 'http1' | 'h2c' };
}
