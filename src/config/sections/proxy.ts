// Data-plane settings: listeners, timeouts, pools, limits.
import { durationMs, hostPortSchema } from './common.js';

export const listenersSchema = {
  outbound: {
    type: 'object',
    additionalProperties: false,
    default: {},
    properties: {
      enabled: { type: 'boolean', default: true, description: 'run the outbound listener (the app sends its outbound HTTP and gRPC here)' },
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
      enabled: { type: 'boolean', default: false, description: 'run the inbound listener (peers reach the local app through it)' },
      listen: { ...hostPortSchema, default: '127.0.0.1:17006' },
      app: { type: 'string', default: 'http://127.0.0.1:8080', description: 'URL of the local application' },
      protocol: { enum: ['http1', 'h2c'], default: 'http1', description: 'how the local app speaks: h2c for gRPC apps' },
    },
  },
} as const;

export const proxySchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    connectTimeoutMs: durationMs(1500, 1, 86_400_000, 'upstream TCP connect timeout; exceeded → 503, local-origin failure. Above the kernel\'s first SYN retransmission (1 s), so one lost SYN does not fail a connect'),
    headersTimeoutMs: durationMs(15_000, 1, 86_400_000, 'time for the upstream to send response headers; exceeded → 504'),
    bodyTimeoutMs: durationMs(30_000, 0, 86_400_000, 'longest silence between response body chunks (0 = none); exceeded → the response is cut'),
    idleTimeoutMs: durationMs(60_000, 1, 86_400_000, 'downstream connections idle this long are closed'),
    keepAliveTimeoutMs: durationMs(4_000, 1, 86_400_000, 'idle upstream keep-alive connections are closed after this (below typical server timeouts)'),
    drainTimeoutMs: durationMs(10_000, 0, 86_400_000, 'on SIGTERM, how long in-flight requests may finish before connections are cut'),
    maxHeaderBytes: { type: 'integer', minimum: 1024, maximum: 1_048_576, default: 16_384, description: 'largest request head accepted; larger → 431' },
    connectionsPerEndpoint: { type: 'integer', minimum: 1, maximum: 100_000, default: 256, description: 'upstream keep-alive pool size per endpoint' },
    queueTimeoutMs: durationMs(5_000, 1, 86_400_000, 'longest a request waits for a free upstream connection; exceeded → 503 MM_ERR_UPSTREAM_BUSY (not charged to the endpoint)'),
    uploadConnectionsPercent: { type: 'integer', minimum: 1, maximum: 100, default: 50, description: "at most this share of an endpoint's connections carry request bodies still arriving from clients; more uploads wait, so slow uploads cannot take every connection" },
    requestHeadersTimeoutMs: durationMs(10_000, 1, 86_400_000, 'a request head must be complete this long after its first byte (the first request: after the connection opened); exceeded → 408 and close (slowloris)'),
    requestBodyMinBytesPerSecond: { type: 'integer', minimum: 0, maximum: 1_000_000_000, default: 500, description: 'after proxy.requestBodyGraceMs, a request body must arrive at least this fast on average (time the proxy paused reading is not counted; 0 = no limit); slower → 408 and close' },
    requestBodyGraceMs: durationMs(10_000, 0, 86_400_000, 'time a request body may take before proxy.requestBodyMinBytesPerSecond applies'),
    maxConnections: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 10_000, description: 'downstream connections per listener; beyond, new ones are closed at once and counted (meshmedic_proxy_connections_refused_total). Lowered at start to fit the file-descriptor limit with headroom for the admin listener' },
    retryConnectFailures: { type: 'integer', minimum: 0, maximum: 5, default: 2, description: 'retries on another endpoint when the connection is refused (the request was never sent, so any method is safe)' },
    retries: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'retry policy for requests safe to replay (GET, HEAD, OPTIONS, TRACE, PUT, DELETE without a body), on another endpoint, only while nothing has reached the client',
      properties: {
        attempts: { type: 'integer', minimum: 0, maximum: 5, default: 2, description: 'retries after a reset, malformed response, per-try timeout or retriable status (0 = none; connect failures use proxy.retryConnectFailures)' },
        retryOn: {
          type: 'array',
          items: { type: 'integer', minimum: 500, maximum: 599 },
          uniqueItems: true,
          maxItems: 100,
          default: [500, 502, 503, 504],
          description: 'response statuses that are retried (the response is discarded unless it is the last attempt)',
        },
        perTryTimeoutMs: durationMs(0, 0, 86_400_000, 'response headers must arrive within this per attempt of a replayable request, then the next endpoint is tried (0 = proxy.headersTimeoutMs)'),
        budgetPercent: { type: 'number', minimum: 0, maximum: 100, default: 20, description: 'retry budget per service: retries in the last 10 s may be this percentage of the requests…' },
        budgetMinPerSecond: { type: 'number', minimum: 0, maximum: 100_000, default: 10, description: '…plus this many per second (×10 s); beyond the budget the original failure is returned' },
      },
    },
    balancer: {
      enum: ['p2c-peak-ewma', 'round-robin', 'least-request'],
      default: 'p2c-peak-ewma',
      description: "how an endpoint is chosen: p2c-peak-ewma (two random choices, lower latency × load wins; Linkerd's), round-robin (Envoy's default), least-request (two random choices, fewer in flight wins; Istio's default)",
    },
    xForwardedFor: { type: 'boolean', default: true, description: 'append X-Forwarded-For and set X-Forwarded-Proto' },
    via: { type: 'boolean', default: true, description: 'add a Via header (RFC 9110 §7.6.3)' },
    workers: {
      // One schema for both forms (minimum/maximum bind integers only, pattern strings only), so that a
      // bad value gets one error naming what is expected rather than one per anyOf branch.
      type: ['integer', 'string'],
      minimum: 1,
      maximum: 256,
      pattern: '^auto$',
      default: 1,
      description: 'processes serving the proxy listeners: an integer 1–256 or "auto" (one per available core). One healing engine decides for all of them; 1 = a single process, as before; see docs/proxy.md#workers',
    },
    workerSharing: {
      enum: ['auto', 'reuseport', 'primary-distributes'],
      default: 'auto',
      description: "how workers share a listener port: reuseport (each worker its own socket, the kernel spreads connections; Node 22.12+/23.1+ on Linux), primary-distributes (the primary accepts and hands connections out round-robin), auto (reuseport where this Node offers it)",
    },
    http1Engine: {
      enum: ['auto', 'native', 'portable'],
      default: 'auto',
      description: "HTTP/1 parser: native (Node's own binding, reads sockets directly; fastest, but on Node internals), portable (llhttp in WebAssembly, public APIs only), auto (native if its start-up probe passes, else portable with one warning); see docs/proxy.md",
    },
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
  readonly queueTimeoutMs: number;
  readonly uploadConnectionsPercent: number;
  readonly requestHeadersTimeoutMs: number;
  readonly requestBodyMinBytesPerSecond: number;
  readonly requestBodyGraceMs: number;
  readonly maxConnections: number;
  readonly retryConnectFailures: number;
  readonly retries: RetryConfig;
  readonly balancer: 'p2c-peak-ewma' | 'round-robin' | 'least-request';
  readonly xForwardedFor: boolean;
  readonly via: boolean;
  readonly http1Engine: 'auto' | 'native' | 'portable';
  readonly workers: number | 'auto';
  readonly workerSharing: 'auto' | 'reuseport' | 'primary-distributes';
}

export interface RetryConfig {
  readonly attempts: number;
  readonly retryOn: readonly number[];
  readonly perTryTimeoutMs: number;
  readonly budgetPercent: number;
  readonly budgetMinPerSecond: number;
}

export interface ListenersConfig {
  readonly outbound: { readonly enabled: boolean; readonly listen: string; readonly defaultService: string };
  readonly inbound: { readonly enabled: boolean; readonly listen: string; readonly app: string; readonly protocol: 'http1' | 'h2c' };
}
