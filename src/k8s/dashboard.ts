// The Grafana dashboard for meshmedic's Prometheus metrics, built as data so that it is generated
// (k8s/grafana-dashboard.json) and checked like the manifests.

interface Panel {
  title: string;
  type: 'timeseries' | 'stat' | 'state-timeline';
  unit: string;
  description: string;
  targets: { expr: string; legendFormat: string }[];
  w?: number;
}

const PANELS: Panel[] = [
  {
    title: 'Requests per second by service',
    type: 'timeseries',
    unit: 'reqps',
    description: 'Requests forwarded by the sidecars, all outcomes.',
    targets: [{ expr: 'sum by (service) (rate(meshmedic_requests_total{service=~"$service",direction="outbound"}[$__rate_interval]))', legendFormat: '{{service}}' }],
  },
  {
    title: 'Failed requests (%) by service',
    type: 'timeseries',
    unit: 'percent',
    description: '5xx, gateway and local-origin failures over all requests (client cancellations excluded).',
    targets: [{
      expr: '100 * sum by (service) (rate(meshmedic_requests_total{service=~"$service",direction="outbound",outcome=~"5xx|gateway|local_origin"}[$__rate_interval])) / clamp_min(sum by (service) (rate(meshmedic_requests_total{service=~"$service",direction="outbound",outcome!="cancelled"}[$__rate_interval])), 1e-9)',
      legendFormat: '{{service}}',
    }],
  },
  {
    title: 'p99 latency by service',
    type: 'timeseries',
    unit: 's',
    description: 'histogram_quantile over the buckets summed across every sidecar calling the service (outbound view). Per-endpoint histograms are opt-in (meshmedic.io/per-endpoint-metrics).',
    targets: [{ expr: 'histogram_quantile(0.99, sum by (service, le) (rate(meshmedic_request_duration_seconds_bucket{service=~"$service",direction="outbound"}[$__rate_interval])))', legendFormat: '{{service}}' }],
  },
  {
    title: 'p50 latency by service',
    type: 'timeseries',
    unit: 's',
    description: 'Median latency per service, aggregated over every sidecar calling it.',
    targets: [{ expr: 'histogram_quantile(0.5, sum by (service, le) (rate(meshmedic_request_duration_seconds_bucket{service=~"$service",direction="outbound"}[$__rate_interval])))', legendFormat: '{{service}}' }],
  },
  {
    title: 'Endpoints by health state',
    type: 'timeseries',
    unit: 'short',
    description: 'How many endpoints each sidecar sees in each state (healthy, degraded, ejected, probation, draining).',
    targets: [{ expr: 'sum by (state) (max by (service, endpoint, state) (meshmedic_endpoint_health{service=~"$service"}))', legendFormat: '{{state}}' }],
  },
  {
    title: 'Ejected or draining endpoints',
    type: 'state-timeline',
    unit: 'short',
    description: 'Endpoints out of rotation, per endpoint.',
    targets: [{ expr: 'max by (endpoint) (meshmedic_endpoint_health{service=~"$service",state=~"ejected|draining"})', legendFormat: '{{endpoint}}' }],
  },
  {
    title: 'Healing decisions per minute',
    type: 'timeseries',
    unit: 'short',
    description: 'Decisions applied, by action, reason and source (local, peer, predicted, operator).',
    targets: [{ expr: 'sum by (action, reason, source) (increase(meshmedic_decisions_total[1m]))', legendFormat: '{{action}} {{reason}} ({{source}})' }],
  },
  {
    title: 'xDS pushes per second',
    type: 'timeseries',
    unit: 'ops',
    description: 'Responses sent to Envoy, Istio and proxyless gRPC clients, and their ACK/NACK.',
    targets: [{ expr: 'sum by (type_url, result) (rate(meshmedic_xds_pushes_total[$__rate_interval]))', legendFormat: '{{type_url}} {{result}}' }],
  },
  {
    title: 'xDS streams',
    type: 'stat',
    unit: 'short',
    description: 'Open ADS streams.',
    targets: [{ expr: 'sum(meshmedic_xds_streams)', legendFormat: 'streams' }],
    w: 6,
  },
  {
    title: 'Injection webhook answers',
    type: 'timeseries',
    unit: 'ops',
    description: 'AdmissionReviews answered by the injection webhook, by outcome (failed_open should stay at zero).',
    targets: [{ expr: 'sum by (outcome) (rate(meshmedic_webhook_reviews_total[$__rate_interval]))', legendFormat: '{{outcome}}' }],
    w: 24,
  },
  {
    title: 'Gossip members by state',
    type: 'timeseries',
    unit: 'short',
    description: 'SWIM membership as each sidecar sees it (alive, suspect, dead, left).',
    targets: [{ expr: 'avg by (state) (meshmedic_gossip_members)', legendFormat: '{{state}}' }],
    w: 18,
  },
];

/** The dashboard model (Grafana schema version 39). */
export function buildDashboard(): Record<string, unknown> {
  let x = 0;
  let y = 0;
  const panels = PANELS.map((p, i) => {
    const w = p.w ?? 12;
    if (x + w > 24) {
      x = 0;
      y += 8;
    }
    const gridPos = { h: 8, w, x, y };
    x += w;
    return {
      id: i + 1,
      title: p.title,
      description: p.description,
      type: p.type,
      datasource: { type: 'prometheus', uid: '${datasource}' },
      gridPos,
      fieldConfig: { defaults: { unit: p.unit }, overrides: [] },
      options: p.type === 'stat' ? { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false } } : { legend: { displayMode: 'list', placement: 'bottom', showLegend: true } },
      targets: p.targets.map((t, j) => ({ refId: String.fromCharCode(65 + j), expr: t.expr, legendFormat: t.legendFormat, datasource: { type: 'prometheus', uid: '${datasource}' } })),
    };
  });
  return {
    uid: 'meshmedic-overview',
    title: 'meshmedic — mesh health',
    description: 'Traffic, failures, latency and healing decisions of the meshmedic sidecars.',
    tags: ['meshmedic', 'service-mesh'],
    timezone: 'browser',
    schemaVersion: 39,
    version: 1,
    editable: true,
    refresh: '10s',
    time: { from: 'now-1h', to: 'now' },
    templating: {
      list: [
        { name: 'datasource', label: 'Data source', type: 'datasource', query: 'prometheus', current: {}, hide: 0 },
        {
          name: 'service',
          label: 'Service',
          type: 'query',
          datasource: { type: 'prometheus', uid: '${datasource}' },
          query: { query: 'label_values(meshmedic_requests_total, service)', refId: 'service' },
          definition: 'label_values(meshmedic_requests_total, service)',
          includeAll: true,
          multi: true,
          allValue: '.*',
          current: { text: 'All', value: '$__all' },
          refresh: 2,
          hide: 0,
        },
      ],
    },
    annotations: { list: [] },
    panels,
  };
}

/** Every metric name the dashboard queries (the test checks them against the code's metric names). */
export function dashboardMetricNames(): string[] {
  const names = new Set<string>();
  for (const p of PANELS) for (const t of p.targets) for (const m of t.expr.matchAll(/\b(meshmedic_[a-z0-9_]+)/g)) names.add(m[1]!);
  return [...names].sort();
}
