// /metrics: latency histogram derived from the HDR windows (cumulative, never backwards), inbound and
// outbound with workload labels, Istio names behind a switch, and `promtool check metrics` clean.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { Registry } from '../../src/admin/metrics-registry.js';
import { validateConfig } from '../../src/config/load.js';
import { VirtualClock } from '../../src/core/clock.js';
import { Outcome, endpointId, NO_LOCALITY } from '../../src/core/types.js';
import { MeshState } from '../../src/mesh/state.js';
import { StatsTable, EndpointWindows } from '../../src/stats/window.js';
import { registerCoreMetrics, registerProcessMetrics, endpointLabel, PROCESS_METRICS } from '../../src/admin/metrics.js';
import { silentLogger } from '../../src/core/log.js';
import { startSidecar } from '../../src/runtime/sidecar.js';
import { parsePromText } from '../helpers/prom-text.js';

function setup(opts: { istioNames?: boolean; perEndpointLatency?: boolean } = {}) {
  const clock = new VirtualClock(1_000_000);
  const mesh = new MeshState(clock);
  const ep = (port: number, labels: Record<string, string> = {}) => ({ id: endpointId('pay', '10.0.0.1', port), service: 'pay', host: '10.0.0.1', port, locality: NO_LOCALITY, priority: 0, weight: 1, labels });
  mesh.setServices([{ spec: { name: 'pay', endpoints: [ep(1, { 'k8s.pod': 'pay-0', workload: 'pay-v1' }), ep(2)] } }]);
  const stats = new StatsTable();
  const slots = [...mesh.snapshot().endpoints.values()].map((e) => e.slot);
  for (const s of slots) stats.ensure(s);
  const inbound = new EndpointWindows(stats.opts);
  stats.inbound = { id: 'inbound/127.0.0.1:8080', windows: inbound };
  const registry = new Registry();
  const stop = registerCoreMetrics(registry, { mesh, stats, clock, workload: 'checkout', namespace: 'shop', istioNames: opts.istioNames ?? false, perEndpointLatency: opts.perEndpointLatency ?? true });
  t.teardown(stop);
  return { clock, mesh, stats, registry, w: stats.get(slots[0]!)!, w2: stats.get(slots[1]!)!, slots, inbound };
}

const parse = parsePromText;

const bucket = (s: Map<string, number>, le: string, ep = 'pay/pay-0') =>
  [...s].find(([k]) => k.startsWith('meshmedic_request_duration_seconds_bucket{') && k.includes(`endpoint="${ep}"`) && k.includes(`le="${le}"`))?.[1];

t.test('histogram buckets come from the windows and never go backwards, even when windows rotate away', async (t) => {
  const { clock, registry, w } = setup();
  let prev = new Map<string, number>();
  // 40 s of traffic (4 rings of 10 windows), scraped every 13 s: longer than the ring, so only the fold timer keeps every window.
  for (let s = 0; s < 40; s++) {
    for (let i = 0; i < 10; i++) {
      w.record(Outcome.Success, s % 2 ? 3_000 : 20_000, clock.now(), 200);
      clock.advance(50);
    }
    clock.advance(500);
    if (s % 13 === 12) {
      const cur = parse(await registry.metrics());
      for (const [k, v] of cur) {
        if (!/_bucket|_count|_sum|_total/.test(k)) continue;
        if (prev.has(k)) t.ok(v >= prev.get(k)!, `${k} went from ${prev.get(k)} to ${v}`);
      }
      prev = cur;
    }
  }
  const last = parse(await registry.metrics());
  t.equal(bucket(last, '0.005'), 200, 'every 3 ms request under 5 ms');
  t.equal(bucket(last, '0.025'), 400);
  t.equal(bucket(last, '+Inf'), 400);
  t.equal(bucket(last, '0.0025'), 0);
});

t.test('latency per service by default: endpoints summed, and the sum never goes backwards when one leaves', async (t) => {
  const { clock, mesh, stats, registry, w, w2, slots } = setup({ perEndpointLatency: false });
  for (let i = 0; i < 10; i++) w.record(Outcome.Success, 3_000, clock.now(), 200);
  for (let i = 0; i < 5; i++) w2.record(Outcome.Success, 20_000, clock.now(), 200);
  const first = parse(await registry.metrics());
  const latencyKeys = [...first.keys()].filter((k) => k.startsWith('meshmedic_request_duration_seconds'));
  t.notOk(latencyKeys.some((k) => k.includes('endpoint=')), 'no endpoint label on latency');
  const count = (s: Map<string, number>) => [...s].filter(([k]) => k.startsWith('meshmedic_request_duration_seconds_count{') && k.includes('direction="outbound"')).map(([, v]) => v);
  // The two endpoints have different destination workloads (pay-v1 and the service name): two series.
  t.same(count(first).sort((a, b) => a - b), [5, 10]);
  // The same workload for both: one series with their sum.
  const ep = (port: number) => ({ id: endpointId('pay', '10.0.0.1', port), service: 'pay', host: '10.0.0.1', port, locality: NO_LOCALITY, priority: 0, weight: 1, labels: { workload: 'pay-v1' } });
  mesh.setServices([{ spec: { name: 'pay', endpoints: [ep(1), ep(2)] } }]);
  const merged = parse(await registry.metrics());
  t.same(count(merged), [15], 'one series: 10 + 5');
  const le5ms = (s: Map<string, number>) => [...s].find(([k]) => k.startsWith('meshmedic_request_duration_seconds_bucket{') && k.includes('le="0.005"'))?.[1];
  t.equal(le5ms(merged), 10);
  // Endpoint 2 leaves (a rollout): its counts stay in the series.
  mesh.setServices([{ spec: { name: 'pay', endpoints: [ep(1)] } }]);
  stats.clear(slots[1]!);
  w.record(Outcome.Success, 3_000, clock.now(), 200);
  const after = parse(await registry.metrics());
  t.same(count(after), [16], 'never backwards: 15 + 1');
  t.equal(le5ms(after), 11);
  // Every endpoint gone: the series ends.
  mesh.setServices([{ spec: { name: 'pay', endpoints: [] } }]);
  t.same(count(parse(await registry.metrics())), [], 'no series once no endpoint is left');
});

t.test('health: one series per endpoint, for its current state', async (t) => {
  const { clock, registry, w } = setup();
  w.record(Outcome.Success, 1_000, clock.now(), 200);
  const health = [...parse(await registry.metrics())].filter(([k]) => k.startsWith('meshmedic_endpoint_health{'));
  t.same(health, [['meshmedic_endpoint_health{service="pay",endpoint="pay/pay-0",state="healthy"}', 1]]);
});

t.test('series only for endpoints with traffic; labels; inbound; no NaN', async (t) => {
  const { clock, registry, w, inbound, mesh } = setup();
  const idle = async () => parse(await registry.metrics());
  const before = await idle();
  t.notOk([...before.keys()].some((k) => k.includes('endpoint=')), 'no per-endpoint series before traffic');
  w.record(Outcome.Gateway, 10_000, clock.now(), 503);
  w.record(Outcome.LocalOrigin, 10_000, clock.now());
  inbound.record(Outcome.Success, 1_000, clock.now(), 404);
  const text = await registry.metrics();
  t.notOk(text.includes('NaN'));
  t.match(text, /meshmedic_requests_total\{service="pay",endpoint="pay\/pay-0",outcome="gateway",response_code="5xx",direction="outbound",source_workload="checkout",destination_workload="pay-v1"\} 1/);
  t.match(text, /meshmedic_requests_total\{[^}]*outcome="local_origin",response_code="none"[^}]*\} 1/);
  t.match(text, /meshmedic_requests_total\{service="checkout",endpoint="inbound\/127.0.0.1:8080",outcome="success",response_code="4xx",direction="inbound",source_workload="unknown",destination_workload="checkout"\} 1/);
  t.match(text, /meshmedic_request_duration_seconds_bucket\{[^}]*direction="inbound"[^}]*le="0.001"\} 1/);
  t.notOk(text.includes('10.0.0.1:2'), 'idle endpoint has no series');
  t.equal(endpointLabel(mesh.snapshot().endpoints.get('pay/10.0.0.1:2')!.spec), 'pay/10.0.0.1:2', 'no pod known: the address stays');
  t.notOk(text.includes('istio_'), 'Istio names are off by default');
});

t.test('service panic: series only for services with traffic or in panic', async (t) => {
  const { clock, registry, w } = setup();
  const panic = async () => [...parse(await registry.metrics())].filter(([k]) => k.startsWith('meshmedic_service_panic'));
  t.same(await panic(), [], 'an idle service exports no panic series');
  w.record(Outcome.Success, 1_000, clock.now(), 200);
  t.same(await panic(), [['meshmedic_service_panic{service="pay"}', 0]], 'once an endpoint had traffic');
});

t.test('Istio standard names behind the switch', async (t) => {
  const { clock, registry, w } = setup({ istioNames: true });
  w.record(Outcome.Success, 7_000, clock.now(), 200);
  const text = await registry.metrics();
  t.match(text, /istio_requests_total\{reporter="source",source_workload="checkout",source_workload_namespace="shop",destination_workload="pay-v1",[^}]*destination_service="pay"[^}]*response_code="2xx"\} 1/);
  t.match(text, /istio_request_duration_milliseconds_bucket\{[^}]*le="10"\} 1/);
  t.match(text, /istio_request_duration_milliseconds_bucket\{[^}]*le="5"\} 0/);
  t.match(text, /istio_request_duration_milliseconds_sum\{[^}]*\} 7\n/);
});

async function liveScrape(t: Test, istioNames: boolean): Promise<string> {
  const v = validateConfig({ admin: { listen: '127.0.0.1:0', metrics: { istioNames } }, node: { workload: 'checkout' }, outbound: { enabled: false }, services: [{ name: 'pay', endpoints: [{ address: '127.0.0.1:9001' }] }] });
  if (!v.valid) throw new Error(v.errors.join('\n'));
  const s = await startSidecar(v.result, { log: silentLogger, components: [] });
  t.teardown(() => s.close(0));
  const ev = [...s.context.mesh.snapshot().endpoints.values()][0]!;
  const w = s.context.stats.ensure(ev.slot);
  for (let i = 0; i < 50; i++) w.record(i % 10 ? Outcome.Success : Outcome.Gateway, 1000 + i * 300, Date.now(), i % 10 ? 200 : 503);
  return (await fetch(`http://${s.addresses.admin}/metrics`)).text();
}

function promtool(t: Test, text: string): string | undefined {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (r.error) {
    t.fail('promtool is missing: run scripts/ensure-peers.sh (Debian package "prometheus")');
    return undefined;
  }
  return (r.stdout + r.stderr).trim();
}

t.test('promtool check metrics: no problems on a live sidecar scrape', async (t) => {
  const text = await liveScrape(t, false);
  t.notOk(text.includes('meshmedic_process_process_'), 'no doubled prefix');
  t.match(text, /meshmedic_process_cpu_seconds_total/);
  t.match(text, /meshmedic_request_duration_seconds_bucket/);
  t.equal(promtool(t, text), '', 'no lint problems');
});

t.test('promtool with Istio names: only the unit Istio itself chose is reported', async (t) => {
  const text = await liveScrape(t, true);
  t.match(text, /istio_requests_total/);
  t.equal(promtool(t, text), 'istio_request_duration_milliseconds use base unit "seconds" instead of "milliseconds"');
});

t.test('process metrics: the kept set, one series each, and no gauge named like a counter', async (t) => {
  const registry = new Registry();
  registerProcessMetrics(registry);
  const text = await registry.metrics();
  const names = [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!);
  t.same(names.sort(), PROCESS_METRICS.map((n) => `meshmedic_${n}`).sort(), 'exactly the kept metrics');
  t.equal(parse(text).size, PROCESS_METRICS.length, 'one series each');
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) if (m[2] !== 'counter') t.notOk(m[1]!.endsWith('_total'), `${m[1]} is a ${m[2]}`);
  registry.clear();
});
