// Prometheus metrics of the data plane and the mesh state. Request counts and latency are read from the
// stats windows at scrape time (nothing is observed per request); decisions are counted from mesh events.
// Only endpoints that carried traffic (or left their default health) get series.
import { readdirSync, readFileSync } from 'node:fs';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { collectedMetric, type Metric, type MetricValue, type Registry } from './metrics-registry.js';
import type { Clock } from '../core/clock.js';
import { OUTCOME_COUNT, OUTCOME_NAMES, type EndpointSpec } from '../core/types.js';
import type { MeshState } from '../mesh/state.js';
import { STATUS_CLASSES, type EndpointWindows, type StatsTable } from '../stats/window.js';
import { CumulativeLatency, leLabel } from './latency-buckets.js';
import { LatencySeriesFamily } from './latency-series.js';

export type { MetricValue } from './metrics-registry.js';

export interface CoreMetricsOptions {
  readonly mesh: MeshState;
  readonly stats: StatsTable;
  readonly clock: Clock;
  /** This sidecar's workload (source of outbound calls, destination of inbound ones); '' = unknown. */
  readonly workload: string;
  /** Its namespace, for Istio's *_namespace labels ('' = unknown). */
  readonly namespace?: string;
  /** Also export Istio's standard metric names. */
  readonly istioNames: boolean;
  /** Latency histograms per endpoint instead of per service (19 series per endpoint with traffic). */
  readonly perEndpointLatency?: boolean;
}

/** Response-code class label per STATUS_CLASSES index. */
const CODE_CLASSES: readonly string[] = Object.freeze(['none', '1xx', '2xx', '3xx', '4xx', '5xx']);

/** A metric whose values are computed when Prometheus scrapes. */
export function scrapeMetric(name: string, help: string, type: 'counter' | 'gauge' | 'histogram', collect: () => MetricValue[]): Metric {
  return collectedMetric(name, help, type, collect);
}

/**
 * The `endpoint` label: `service/pod` when discovery knows the pod (stable across a StatefulSet's
 * restarts and readable in every case), else the endpoint id `service/ip:port`.
 */
export function endpointLabel(spec: EndpointSpec): string {
  const pod = spec.labels['k8s.pod'] ?? spec.labels.pod;
  return pod ? `${spec.service}/${pod}` : spec.id;
}

/** The destination workload of an endpoint: its `workload` label when it has one, else its service. */
export function destinationWorkload(spec: EndpointSpec): string {
  return spec.labels.workload ?? spec.labels['k8s.workload'] ?? spec.service;
}

/** Whether an endpoint's windows saw any request since they were created. */
function carriedTraffic(w: EndpointWindows | undefined): w is EndpointWindows {
  if (w === undefined) return false;
  for (let o = 0; o < OUTCOME_COUNT; o++) if (w.lifetime[o]! > 0) return true;
  return false;
}

/** The series names of one histogram (spelled out so that the exported names can be found in the source). */
interface HistogramNames {
  readonly bucket: string;
  readonly sum: string;
  readonly count: string;
}

interface Measured {
  readonly direction: 'outbound' | 'inbound';
  readonly service: string;
  readonly endpoint: string;
  readonly source: string;
  readonly destination: string;
  readonly destinationNamespace: string;
  readonly windows: EndpointWindows;
}

/**
 * Node's process metrics (as `meshmedic_process_*` and `meshmedic_nodejs_*`): CPU, memory, file
 * descriptors, start time, event-loop lag and version — one series each, with the names and help texts
 * Prometheus clients use. (A client library's full default set is ~70 series: per-space heap gauges, GC
 * duration histograms per kind, lag percentiles — most of a sidecar's scrape when it carries a few endpoints.)
 */
export const PROCESS_METRICS: readonly string[] = Object.freeze([
  'process_cpu_user_seconds_total',
  'process_cpu_system_seconds_total',
  'process_cpu_seconds_total',
  'process_start_time_seconds',
  'process_resident_memory_bytes',
  'process_open_fds',
  'process_max_fds',
  'nodejs_eventloop_lag_p99_seconds',
  'nodejs_heap_size_total_bytes',
  'nodejs_heap_size_used_bytes',
  'nodejs_external_memory_bytes',
  'nodejs_version_info',
]);

/** One event-loop delay monitor per process (10 ms resolution), read and reset at each scrape. */
let loopDelay: IntervalHistogram | undefined;

/** The soft limit on open files, from /proc/self/limits (Linux); undefined elsewhere. */
function maxOpenFiles(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const n = Number(line?.split(/  +/)[1]);
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

/** Register the process metrics of PROCESS_METRICS on `registry`. */
export function registerProcessMetrics(registry: Registry): void {
  const one = (name: string, help: string, type: 'counter' | 'gauge', value: () => number, labels: Record<string, string> = {}) =>
    registry.registerMetric(collectedMetric(`meshmedic_${name}`, help, type, () => [{ labels, value: value() }]));
  const startSeconds = Math.round(Date.now() / 1000 - process.uptime());
  one('process_cpu_user_seconds_total', 'Total user CPU time spent in seconds.', 'counter', () => process.cpuUsage().user / 1e6);
  one('process_cpu_system_seconds_total', 'Total system CPU time spent in seconds.', 'counter', () => process.cpuUsage().system / 1e6);
  one('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.', 'counter', () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  });
  one('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.', 'gauge', () => startSeconds);
  one('process_resident_memory_bytes', 'Resident memory size in bytes.', 'gauge', () => process.memoryUsage.rss());
  if (process.platform === 'linux') {
    // The directory listing's own descriptor is not counted.
    one('process_open_fds', 'Number of open file descriptors.', 'gauge', () => readdirSync('/proc/self/fd').length - 1);
    const max = maxOpenFiles();
    if (max !== undefined) one('process_max_fds', 'Maximum number of open file descriptors.', 'gauge', () => max);
  }
  if (loopDelay === undefined) {
    loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
  }
  const delay = loopDelay;
  one('nodejs_eventloop_lag_p99_seconds', 'The 99th percentile of the recorded event loop delays.', 'gauge', () => {
    // Since the previous scrape; 0 before the monitor has a sample.
    const p99 = delay.count > 0 ? delay.percentile(99) / 1e9 : 0;
    delay.reset();
    return p99;
  });
  one('nodejs_heap_size_total_bytes', 'Process heap size from Node.js in bytes.', 'gauge', () => process.memoryUsage().heapTotal);
  one('nodejs_heap_size_used_bytes', 'Process heap size used from Node.js in bytes.', 'gauge', () => process.memoryUsage().heapUsed);
  one('nodejs_external_memory_bytes', 'Node.js external memory size in bytes.', 'gauge', () => process.memoryUsage().external);
  const [major, minor, patch] = process.version.slice(1).split('.');
  one('nodejs_version_info', 'Node.js version info.', 'gauge', () => 1, { version: process.version, major: major!, minor: minor!, patch: patch! });
}

/** Register the core metrics on `registry`. Returns a function that stops them (timer and decision count). */
export function registerCoreMetrics(registry: Registry, o: CoreMetricsOptions): () => void {
  const { mesh, stats, clock } = o;
  const self = o.workload || 'unknown';
  const selfNs = o.namespace || 'unknown';
  const latency = new WeakMap<EndpointWindows, CumulativeLatency>();
  const trackerOf = (w: EndpointWindows) => {
    let c = latency.get(w);
    if (c === undefined) latency.set(w, (c = new CumulativeLatency(w)));
    return c;
  };

  /** Every measured target with traffic: mesh endpoints (outbound) and the local app (inbound). */
  const measured = (): Measured[] => {
    const out: Measured[] = [];
    for (const ev of mesh.snapshot().endpoints.values()) {
      const w = stats.get(ev.slot);
      if (!carriedTraffic(w)) continue;
      out.push({ direction: 'outbound', service: ev.spec.service, endpoint: endpointLabel(ev.spec), source: self, destination: destinationWorkload(ev.spec), destinationNamespace: ev.spec.labels['k8s.namespace'] ?? 'unknown', windows: w });
    }
    const inbound = stats.inbound;
    if (inbound !== undefined && carriedTraffic(inbound.windows)) {
      out.push({ direction: 'inbound', service: self, endpoint: inbound.id, source: 'unknown', destination: self, destinationNamespace: selfNs, windows: inbound.windows });
    }
    return out;
  };

  // Fold complete windows into the cumulative buckets once per window, so none rotates away between
  // two scrapes (Prometheus scrapes every 15–60 s; the ring holds 10 s by default).
  const foldTimer = clock.setInterval(() => {
    const now = clock.now();
    for (const m of measured()) trackerOf(m.windows).fold(now);
  }, stats.opts.windowMs);

  registry.registerMetric(
    scrapeMetric('meshmedic_requests_total', 'Requests by direction, endpoint, outcome class and response-code class (none = no response).', 'counter', () => {
      const out: MetricValue[] = [];
      for (const m of measured()) {
        for (let oc = 0; oc < OUTCOME_COUNT; oc++) {
          for (let c = 0; c < STATUS_CLASSES; c++) {
            const v = m.windows.byCode[oc * STATUS_CLASSES + c]!;
            if (v === 0) continue;
            out.push({ labels: { service: m.service, endpoint: m.endpoint, outcome: OUTCOME_NAMES[oc]!, response_code: CODE_CLASSES[c]!, direction: m.direction, source_workload: m.source, destination_workload: m.destination }, value: v });
          }
        }
      }
      return out;
    }),
  );

  /**
   * Histogram series in seconds (scale 1, with native buckets for the protobuf exposition) or milliseconds
   * (scale 1000, classic buckets only). Measured targets with equal labels share a series.
   */
  const histogram = (names: HistogramNames, scale: number, labelsOf: (m: Measured) => Record<string, string>): (() => MetricValue[]) => {
    const family = new LatencySeriesFamily();
    return () => {
      const out: MetricValue[] = [];
      const samples = family.collect(measured().map((m) => ({ windows: m.windows, tracker: trackerOf(m.windows), labels: labelsOf(m) })), clock.now());
      for (const s of samples) {
        for (let i = 0; i < s.cumulative.length; i++) out.push({ metricName: names.bucket, labels: { ...s.labels, le: leLabel(i, scale) }, value: Math.min(s.cumulative[i]!, s.count) });
        out.push({ metricName: names.bucket, labels: { ...s.labels, le: '+Inf' }, value: s.count });
        out.push({ metricName: names.sum, labels: s.labels, value: s.sumSeconds * scale });
        out.push({ metricName: names.count, labels: s.labels, value: s.count, native: scale === 1 ? s.native : undefined });
      }
      return out;
    };
  };
  // Per service by default: per-endpoint histograms are 19 series each (admin.metrics.perEndpointLatency).
  const latencyLabels = o.perEndpointLatency
    ? (m: Measured) => ({ service: m.service, endpoint: m.endpoint, direction: m.direction, source_workload: m.source, destination_workload: m.destination })
    : (m: Measured) => ({ service: m.service, direction: m.direction, source_workload: m.source, destination_workload: m.destination });
  registry.registerMetric(
    scrapeMetric(
      'meshmedic_request_duration_seconds',
      `Request latency by direction and ${o.perEndpointLatency ? 'endpoint' : 'service'} since start (classic buckets derived from the HDR windows).`,
      'histogram',
      histogram({ bucket: 'meshmedic_request_duration_seconds_bucket', sum: 'meshmedic_request_duration_seconds_sum', count: 'meshmedic_request_duration_seconds_count' }, 1, latencyLabels),
    ),
  );

  if (o.istioNames) registerIstioNames(registry, measured, histogram, selfNs);

  /** Endpoints worth a health series: they carried traffic, or they are not plainly healthy. */
  const watched = () => [...mesh.snapshot().endpoints.values()].filter((ev) => ev.health.state !== 'healthy' || ev.health.weightFactor !== 1 || carriedTraffic(stats.get(ev.slot)));
  registry.registerMetric(
    // One series per endpoint, for its current state only (a 0 for each other state would make it five).
    // A state change ends one series and starts another.
    scrapeMetric('meshmedic_endpoint_health', 'Health state of each endpoint with traffic or not healthy: one series, value 1, labelled with its current state.', 'gauge', () =>
      watched().map((ev) => ({ labels: { service: ev.spec.service, endpoint: endpointLabel(ev.spec), state: ev.health.state }, value: 1 })),
    ),
  );

  registry.registerMetric(
    scrapeMetric('meshmedic_endpoint_weight_factor', 'Share of its static weight each endpoint with traffic or not healthy receives (0 to 1).', 'gauge', () =>
      watched().map((ev) => ({ labels: { service: ev.spec.service, endpoint: endpointLabel(ev.spec) }, value: ev.health.weightFactor })),
    ),
  );

  registry.registerMetric(
    // Like the endpoint series: only services in panic or with an endpoint exported above (a sidecar that
    // knows every service of its namespace would otherwise export one idle 0 per service).
    scrapeMetric('meshmedic_service_panic', 'Whether a service is in panic mode (too few healthy endpoints: health ignored); services in panic or with an endpoint that had traffic or is not healthy.', 'gauge', () => {
      const shown = new Set(watched().map((ev) => ev.spec.service));
      return [...mesh.snapshot().services.values()].filter((s) => s.plan.panic || shown.has(s.name)).map((s) => ({ labels: { service: s.name }, value: s.plan.panic ? 1 : 0 }));
    }),
  );

  const decisions = new Map<string, { labels: Record<string, string>; value: number }>();
  registry.registerMetric(
    scrapeMetric('meshmedic_decisions_total', 'Healing decisions applied, by action, reason and source.', 'counter', () => [...decisions.values()]),
  );
  const unsubscribe = mesh.subscribe((_snap, changes) => {
    for (const c of changes) {
      if (!c.applied) continue;
      const key = `${c.action}\0${c.reason}\0${c.source}`;
      const cur = decisions.get(key);
      if (cur) cur.value++;
      else decisions.set(key, { labels: { action: c.action, reason: c.reason, source: c.source }, value: 1 });
    }
  });
  return () => {
    foldTimer.cancel();
    unsubscribe();
  };
}

/**
 * Istio's standard names, so Kiali and Istio's Grafana dashboards read meshmedic unchanged. Outbound is
 * reported as `reporter="source"`, inbound as `reporter="destination"`. Differences: `response_code` is
 * the class (`2xx`, `5xx`; `0` = no response) rather than the exact code.
 */
function registerIstioNames(
  registry: Registry,
  measured: () => Measured[],
  histogram: (names: HistogramNames, scale: number, labelsOf: (m: Measured) => Record<string, string>) => () => MetricValue[],
  selfNs: string,
): void {
  const labelsOf = (m: Measured): Record<string, string> => ({
    reporter: m.direction === 'outbound' ? 'source' : 'destination',
    source_workload: m.source,
    source_workload_namespace: m.direction === 'outbound' ? selfNs : 'unknown',
    destination_workload: m.destination,
    destination_workload_namespace: m.destinationNamespace,
    destination_service: m.service,
    destination_service_name: m.service,
    destination_service_namespace: m.destinationNamespace,
    request_protocol: 'http',
  });
  registry.registerMetric(
    scrapeMetric('istio_requests_total', 'Requests (Istio standard metric, as reported by meshmedic).', 'counter', () => {
      const out: MetricValue[] = [];
      for (const m of measured()) {
        const base = labelsOf(m);
        for (let c = 0; c < STATUS_CLASSES; c++) {
          let v = 0;
          for (let oc = 0; oc < OUTCOME_COUNT; oc++) v += m.windows.byCode[oc * STATUS_CLASSES + c]!;
          if (v > 0) out.push({ labels: { ...base, response_code: c === 0 ? '0' : CODE_CLASSES[c]! }, value: v });
        }
      }
      return mergeSameSeries(out);
    }),
  );
  registry.registerMetric(
    scrapeMetric('istio_request_duration_milliseconds', 'Request latency in ms (Istio standard metric, as reported by meshmedic).', 'histogram',
      histogram({ bucket: 'istio_request_duration_milliseconds_bucket', sum: 'istio_request_duration_milliseconds_sum', count: 'istio_request_duration_milliseconds_count' }, 1000, labelsOf),
    ),
  );
}

/**
 * Istio's labels name workloads, not endpoints: the endpoints of one service share a label set, and one
 * series each would be duplicates. Their counts add up.
 */
function mergeSameSeries(values: MetricValue[]): MetricValue[] {
  const byKey = new Map<string, MetricValue>();
  for (const v of values) {
    const key = `${v.metricName ?? ''}\0${JSON.stringify(v.labels)}`;
    const cur = byKey.get(key);
    if (cur) cur.value += v.value;
    else byKey.set(key, { ...v });
  }
  return [...byKey.values()];
}
