// Prometheus metrics of the data plane and the mesh state. Request counts and latency are read from the
// stats windows at scrape time (nothing is observed per request); decisions are counted from mesh events.
import { Registry, type Metric } from 'prom-client';
import { HEALTH_STATES, OUTCOME_COUNT, OUTCOME_NAMES } from '../core/types.js';
import type { MeshState } from '../mesh/state.js';
import { emptySummary, newHistogram, type StatsTable } from '../stats/window.js';

interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/** A metric whose values are computed when Prometheus scrapes (prom-client's Metric contract). */
function scrapeMetric(name: string, help: string, type: 'counter' | 'gauge' | 'summary', collect: () => MetricValue[]): Metric {
  return {
    name,
    help,
    type,
    aggregator: 'sum',
    get: async () => ({ name, help, type, values: collect(), aggregator: 'sum' }),
    reset: () => {},
  } as unknown as Metric;
}

/** Register the core metrics on `registry`. Returns a function that stops counting decisions. */
export function registerCoreMetrics(registry: Registry, mesh: MeshState, stats: StatsTable, now: () => number): () => void {
  registry.registerMetric(
    scrapeMetric('meshmedic_requests_total', 'Requests forwarded to each endpoint, by outcome class.', 'counter', () => {
      const out: MetricValue[] = [];
      for (const ev of mesh.snapshot().endpoints.values()) {
        const w = stats.get(ev.slot);
        for (let o = 0; o < OUTCOME_COUNT; o++) {
          out.push({ labels: { service: ev.spec.service, endpoint: ev.spec.id, outcome: OUTCOME_NAMES[o]! }, value: w ? w.lifetime[o]! : 0 });
        }
      }
      return out;
    }),
  );

  const summary = emptySummary();
  const scratch = newHistogram(stats.opts);
  registry.registerMetric(
    scrapeMetric(
      'meshmedic_request_duration_seconds',
      `Request latency per endpoint; quantiles over the last ${stats.opts.windows} windows of ${stats.opts.windowMs} ms (HDR), sum and count since start.`,
      'summary',
      () => {
        const out: MetricValue[] = [];
        const t = now();
        for (const ev of mesh.snapshot().endpoints.values()) {
          const w = stats.get(ev.slot);
          const labels = { service: ev.spec.service, endpoint: ev.spec.id };
          if (w) w.summarize(t, stats.opts.windows, summary, scratch);
          const has = w !== undefined && summary.total + summary.counts[4]! > 0;
          for (const [q, v] of [[0.5, summary.p50], [0.9, summary.p90], [0.99, summary.p99]] as const) {
            out.push({ labels: { ...labels, quantile: q }, value: has ? v / 1e6 : Number.NaN });
          }
          out.push({ metricName: 'meshmedic_request_duration_seconds_sum', labels, value: w ? w.latencySumUs / 1e6 : 0 });
          out.push({ metricName: 'meshmedic_request_duration_seconds_count', labels, value: w ? w.latencyCount : 0 });
        }
        return out;
      },
    ),
  );

  registry.registerMetric(
    scrapeMetric('meshmedic_endpoint_health', 'Health state of each endpoint (1 for its current state, 0 otherwise).', 'gauge', () => {
      const out: MetricValue[] = [];
      for (const ev of mesh.snapshot().endpoints.values()) {
        for (const s of HEALTH_STATES) out.push({ labels: { service: ev.spec.service, endpoint: ev.spec.id, state: s }, value: ev.health.state === s ? 1 : 0 });
      }
      return out;
    }),
  );

  registry.registerMetric(
    scrapeMetric('meshmedic_endpoint_weight_factor', 'Share of its static weight each endpoint currently receives (0 to 1).', 'gauge', () =>
      [...mesh.snapshot().endpoints.values()].map((ev) => ({ labels: { service: ev.spec.service, endpoint: ev.spec.id }, value: ev.health.weightFactor })),
    ),
  );

  registry.registerMetric(
    scrapeMetric('meshmedic_service_panic', 'Whether a service is in panic mode (too few healthy endpoints: health ignored).', 'gauge', () =>
      [...mesh.snapshot().services.values()].map((s) => ({ labels: { service: s.name }, value: s.plan.panic ? 1 : 0 })),
    ),
  );

  const decisions = new Map<string, { labels: Record<string, string>; value: number }>();
  registry.registerMetric(
    scrapeMetric('meshmedic_decisions_total', 'Healing decisions applied, by action, reason and source.', 'counter', () => [...decisions.values()]),
  );
  return mesh.subscribe((_snap, changes) => {
    for (const c of changes) {
      if (!c.applied) continue;
      const key = `${c.action}\0${c.reason}\0${c.source}`;
      const cur = decisions.get(key);
      if (cur) cur.value++;
      else decisions.set(key, { labels: { action: c.action, reason: c.reason, source: c.source }, value: 1 });
    }
  });
}
