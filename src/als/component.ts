// The als component: ingests Envoy's gRPC access-log stream (ALS) as observations of mesh endpoints.
// It carries no server of its own: the xDS component serves it on the xDS port, as Envoy deployments
// usually point both at one control plane.
import { scrapeMetric } from '../admin/metrics.js';
import { OUTCOME_NAMES } from '../core/types.js';
import type { TimerHandle } from '../core/clock.js';
import type { Component, ComponentFactory, GrpcServiceBinding } from '../runtime/context.js';
import { AlsIngestor, DROP_REASONS } from './ingest.js';
import { AlsService } from './service.js';

export interface AlsComponent extends Component {
  readonly ingestor: AlsIngestor;
  readonly service: AlsService;
  /** gRPC services the xDS server should carry. */
  readonly grpcServices: readonly GrpcServiceBinding[];
}

export const startAls: ComponentFactory = async (ctx): Promise<AlsComponent> => {
  // Config validation already refuses als.enabled without xds.enabled (src/config/load.ts).
  const cfg = ctx.config.als;
  const log = ctx.log.child({ component: 'als' });
  const ingestor = new AlsIngestor({ mesh: ctx.mesh, stats: ctx.stats, clock: ctx.clock, config: cfg, locality: ctx.config.node.locality });
  const service = new AlsService({ ingestor, maxStreams: cfg.maxStreams, maxEntriesPerMessage: cfg.maxEntriesPerMessage, log, now: () => ctx.clock.now() });
  const learnTimer: TimerHandle | undefined = cfg.learnEndpoints
    ? ctx.clock.setInterval(() => {
      const n = ingestor.flushLearned();
      if (n > 0) log.info('endpoints learned from the access log', { added: n });
    }, 1000)
    : undefined;

  // Counters live in typed arrays on the ingest path; Prometheus reads them at scrape time.
  ctx.metrics.registerMetric(scrapeMetric('meshmedic_als_entries_total', 'Access-log entries recorded as observations of an endpoint, by outcome', 'counter',
    () => OUTCOME_NAMES.map((outcome, i) => ({ labels: { outcome }, value: ingestor.recorded[i]! }))));
  ctx.metrics.registerMetric(scrapeMetric('meshmedic_als_dropped_total', 'Access-log entries not recorded (malformed: messages), by reason', 'counter',
    () => DROP_REASONS.map((reason, i) => ({ labels: { reason }, value: ingestor.dropped[i]! }))));
  ctx.metrics.registerMetric(scrapeMetric('meshmedic_als_messages_total', 'StreamAccessLogsMessage batches received', 'counter', () => [{ labels: {}, value: service.messages }]));
  ctx.metrics.registerMetric(scrapeMetric('meshmedic_als_streams', 'Open StreamAccessLogs streams', 'gauge', () => [{ labels: {}, value: service.streams.size }]));

  ctx.admin.route('GET', '/v1/als', () => ({
    status: 200,
    body: {
      streams: [...service.streams].map((s) => ({ node: s.node, logName: s.logName, peer: s.peer, startedAt: s.startedAt, lastMessageAt: s.lastMessageAt, messages: s.messages, entries: s.entries })),
      recorded: Object.fromEntries(OUTCOME_NAMES.map((n, i) => [n, ingestor.recorded[i]])),
      dropped: Object.fromEntries(DROP_REASONS.map((r, i) => [r, ingestor.dropped[i]])),
    },
  }));

  return {
    name: 'als',
    ingestor,
    service,
    grpcServices: [service.binding()],
    async close() {
      learnTimer?.cancel();
      ingestor.close();
    },
  };
};
