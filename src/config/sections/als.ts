// Envoy access-log (ALS) ingestion settings. The als module owns this file.
const int = (def: number, min: number, max: number, description: string) => ({ type: 'integer', minimum: min, maximum: max, default: def, description }) as const;

export const alsSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    enabled: { type: 'boolean', default: false, description: 'serve envoy.service.accesslog.v3.AccessLogService on the xDS port and turn every entry into an observation of its upstream endpoint (needs xds.enabled)' },
    clusters: {
      type: 'object',
      additionalProperties: { type: 'string', maxLength: 253 },
      maxProperties: 10_000,
      default: {},
      description: 'upstream_cluster names that differ from a service name, mapped to the service (e.g. "outbound|8080||hello.shop.svc.cluster.local": hello); a service\'s own name and its subset clusters ("name|value") match without an entry',
    },
    learnEndpoints: { type: 'boolean', default: false, description: 'add an upstream host first seen in the log to its (known) service as a new endpoint, instead of counting the entry as dropped' },
    maxLearnedEndpoints: int(1000, 0, 100_000, 'endpoints learned from the log at most, over all services'),
    maxStreams: int(1000, 1, 100_000, 'concurrent StreamAccessLogs streams; more are refused with RESOURCE_EXHAUSTED'),
    maxEntriesPerMessage: int(10_000, 1, 1_000_000, 'log entries read from one StreamAccessLogsMessage; the rest are counted as dropped (batch_too_large)'),
  },
} as const;

export interface AlsConfig {
  readonly enabled: boolean;
  readonly clusters: Readonly<Record<string, string>>;
  readonly learnEndpoints: boolean;
  readonly maxLearnedEndpoints: number;
  readonly maxStreams: number;
  readonly maxEntriesPerMessage: number;
}
