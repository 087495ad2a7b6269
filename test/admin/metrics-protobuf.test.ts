// /metrics in the protobuf exposition when the scraper asks for it: every family of the text format, the
// latency histogram with its classic buckets and native (sparse) buckets derived from the HDR windows.
// Decoded with protobufjs against the MetricFamily schema written out below (client_model's field numbers).
import t, { type Test } from 'tap';
import protobuf from 'protobufjs';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { parsePromText } from '../helpers/prom-text.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig } from '../../src/config/load.js';
import { Outcome } from '../../src/core/types.js';
import { silentLogger } from '../../src/core/log.js';
import { startSidecar } from '../../src/runtime/sidecar.js';
import { nativeIndex, schemaForHdr, toNativeBuckets, ZERO } from '../../src/admin/native-histogram.js';
import { prefersProtobuf, PROTOBUF_CONTENT_TYPE } from '../../src/admin/protobuf-exposition.js';

const SCHEMA = `
syntax = "proto2";
package io.prometheus.client;
message LabelPair { optional string name = 1; optional string value = 2; }
enum MetricType { COUNTER = 0; GAUGE = 1; SUMMARY = 2; UNTYPED = 3; HISTOGRAM = 4; GAUGE_HISTOGRAM = 5; }
message Gauge { optional double value = 1; }
message Counter { optional double value = 1; }
message Quantile { optional double quantile = 1; optional double value = 2; }
message Summary { optional uint64 sample_count = 1; optional double sample_sum = 2; repeated Quantile quantile = 3; }
message Untyped { optional double value = 1; }
message Bucket { optional uint64 cumulative_count = 1; optional double upper_bound = 2; }
message BucketSpan { optional sint32 offset = 1; optional uint32 length = 2; }
message Histogram {
  optional uint64 sample_count = 1; optional double sample_sum = 2; repeated Bucket bucket = 3;
  optional sint32 schema = 5; optional double zero_threshold = 6; optional uint64 zero_count = 7;
  repeated BucketSpan negative_span = 9; repeated sint64 negative_delta = 10;
  repeated BucketSpan positive_span = 12; repeated sint64 positive_delta = 13;
}
message Metric {
  repeated LabelPair label = 1; optional Gauge gauge = 2; optional Counter counter = 3; optional Summary summary = 4;
  optional Untyped untyped = 5; optional Histogram histogram = 7; optional int64 timestamp_ms = 6;
}
message MetricFamily { optional string name = 1; optional string help = 2; optional MetricType type = 3; repeated Metric metric = 4; }
`;
const MetricFamily = protobuf.parse(SCHEMA, { keepCase: true }).root.lookupType('io.prometheus.client.MetricFamily');

interface DecodedMetric {
  label: { name: string; value: string }[];
  counter?: { value: number };
  gauge?: { value: number };
  histogram?: { sample_count: number; sample_sum: number; bucket: { cumulative_count: number; upper_bound: number }[]; schema?: number; zero_threshold?: number; zero_count?: number; positive_span: { offset?: number; length?: number }[]; positive_delta: number[] };
}
interface DecodedFamily {
  name: string;
  type: number;
  metric: DecodedMetric[];
}

function decodeDelimited(buf: Uint8Array): DecodedFamily[] {
  const reader = protobuf.Reader.create(buf);
  const out: DecodedFamily[] = [];
  while (reader.pos < reader.len) {
    const m = MetricFamily.decodeDelimited(reader);
    out.push(MetricFamily.toObject(m, { longs: Number, enums: Number, defaults: false, arrays: true }) as unknown as DecodedFamily);
  }
  return out;
}

const parseText = parsePromText;
const seriesKey = (name: string, labels: { name: string; value: string }[], extra = '') => `${name}{${[...labels.map((l) => `${l.name}="${l.value}"`), ...(extra ? [extra] : [])].join(',')}}`;

/** Absolute bucket counts from spans and deltas: native index → count. */
function expand(h: NonNullable<DecodedMetric['histogram']>): Map<number, number> {
  const counts = new Map<number, number>();
  let idx = 0;
  let d = 0;
  let c = 0;
  // The first span's offset is its first index; each later one is the gap after the previous span.
  for (const span of h.positive_span) {
    idx += span.offset ?? 0;
    for (let k = 0; k < (span.length ?? 0); k++) {
      c += h.positive_delta[d++]!;
      if (c > 0) counts.set(idx, c);
      idx++;
    }
  }
  return counts;
}

const PROMETHEUS_ACCEPT = 'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.2';

t.test('content negotiation: protobuf only when the scraper prefers it', async (t) => {
  t.ok(prefersProtobuf(PROMETHEUS_ACCEPT), "Prometheus's Accept with native histograms on");
  t.ok(prefersProtobuf(PROTOBUF_CONTENT_TYPE), 'our own content type');
  t.notOk(prefersProtobuf(undefined), 'no Accept: text');
  t.notOk(prefersProtobuf('*/*'), 'anything: text');
  t.notOk(prefersProtobuf('text/plain;version=0.0.4;q=0.9,application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.5'), 'text preferred');
  t.notOk(prefersProtobuf('application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text'), 'the text protobuf encoding is not served');
  t.notOk(prefersProtobuf('application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0'), 'q=0 refuses it');
});

t.test('schema follows the HDR precision; spans bridge short gaps; an empty histogram has a no-op span', async (t) => {
  t.equal(schemaForHdr(128), 6, '2 significant digits: bins ≤ 0.78 % wide, schema 6 buckets 1.09 %');
  t.equal(schemaForHdr(1024), 8, '3 digits would allow more than schema 8: clamped');
  t.equal(schemaForHdr(16), 3, '1 digit: bins ≤ 6.25 %, schema 3 buckets 9.05 %');
  for (const v of [1e-6, 0.0005, 0.003, 1, 1.5, 59.9]) {
    const i = nativeIndex(v, 6);
    t.ok(v > 2 ** ((i - 1) / 64) && v <= 2 ** (i / 64), `${v} in bucket ${i}`);
  }
  t.equal(nativeIndex(1, 6), 0, '1 is the upper bound of bucket 0');
  t.equal(nativeIndex(2, 6), 64);
  const layout = { schema: 6, zeroThresholdUnits: 1, indexOfBin: new Int32Array(0) };
  const b = toNativeBuckets(new Map([[ZERO, 2], [-5, 1], [-3, 4], [10, 3]]), layout, 1e6);
  t.same(b.spans, [[-5, 3], [12, 1]], 'a gap of one bucket is bridged, one of 12 starts a new span');
  t.same(b.deltas, [1, -1, 4, -1], 'deltas: 1, 0, 4, then 3');
  t.equal(b.zeroCount, 2);
  t.equal(b.zeroThreshold, 1e-6);
  t.same(toNativeBuckets(new Map(), layout, 1e6).spans, [[0, 0]]);
});

async function sidecarWithTraffic(t: Test, perEndpointLatency = true) {
  const v = validateConfig({ admin: { listen: '127.0.0.1:0', metrics: { istioNames: true, perEndpointLatency } }, node: { workload: 'checkout' }, outbound: { enabled: false }, services: [{ name: 'pay', endpoints: [{ address: '127.0.0.1:9001' }, { address: '127.0.0.1:9002' }] }] });
  if (!v.valid) throw new Error(v.errors.join('\n'));
  const s = await startSidecar(v.result, { log: silentLogger, components: [] });
  t.teardown(() => s.close(0));
  const [a, b] = [...s.context.mesh.snapshot().endpoints.values()];
  const wa = s.context.stats.ensure(a!.slot);
  const wb = s.context.stats.ensure(b!.slot);
  // Endpoint a: 1000 answers of exactly 3 ms and 10 of 250 ms; b: latencies spread from 0.2 ms to 2 s.
  for (let i = 0; i < 1000; i++) wa.record(Outcome.Success, 3000, Date.now(), 200);
  for (let i = 0; i < 10; i++) wa.record(Outcome.Gateway, 250_000, Date.now(), 503);
  for (let i = 0; i < 500; i++) wb.record(Outcome.Success, Math.round(200 * Math.pow(10_000, i / 499)), Date.now(), 200);
  const url = `http://${s.addresses.admin}/metrics`;
  return { url, ids: [a!.spec.id, b!.spec.id] };
}

t.test('a live scrape in protobuf: the same families and values as the text format, plus native buckets', async (t) => {
  const { url } = await sidecarWithTraffic(t);
  const textRes = await fetch(url);
  t.match(textRes.headers.get('content-type'), /^text\/plain/, 'no Accept: the text format, unchanged');
  const text = await textRes.text();
  const res = await fetch(url, { headers: { accept: PROMETHEUS_ACCEPT } });
  t.equal(res.headers.get('content-type'), PROTOBUF_CONTENT_TYPE);
  const families = decodeDelimited(new Uint8Array(await res.arrayBuffer()));
  const samples = parseText(text);
  const textFamilies = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!] as const);
  t.same(families.map((f) => f.name).sort(), textFamilies.map(([n]) => n).sort(), 'every family of the text format, no other');
  const TYPES: Record<string, number> = { counter: 0, gauge: 1, summary: 2, untyped: 3, histogram: 4 };
  for (const [name, type] of textFamilies) t.equal(families.find((f) => f.name === name)?.type, TYPES[type], `${name} is a ${type}`);

  // Counters and gauges whose values cannot move between the two scrapes match exactly.
  const requests = families.find((f) => f.name === 'meshmedic_requests_total')!;
  t.equal(requests.metric.length, 3, 'success and gateway on one endpoint, success on the other');
  for (const m of requests.metric) t.equal(m.counter?.value, samples.get(seriesKey('meshmedic_requests_total', m.label)), seriesKey('', m.label));
  const health = families.find((f) => f.name === 'meshmedic_endpoint_health')!;
  for (const m of health.metric) t.equal(m.gauge?.value, samples.get(seriesKey('meshmedic_endpoint_health', m.label)));

  const latency = families.find((f) => f.name === 'meshmedic_request_duration_seconds')!;
  t.equal(latency.metric.length, 2);
  for (const m of latency.metric) {
    const h = m.histogram!;
    t.equal(h.sample_count, samples.get(seriesKey('meshmedic_request_duration_seconds_count', m.label)), 'count as in the text format');
    t.ok(Math.abs(h.sample_sum - samples.get(seriesKey('meshmedic_request_duration_seconds_sum', m.label))!) < 1e-9, 'sum as in the text format');
    t.equal(h.bucket.length, 16, 'the classic buckets too (+Inf implied by the count)');
    for (const b of h.bucket) t.equal(b.cumulative_count, samples.get(seriesKey('meshmedic_request_duration_seconds_bucket', m.label, `le="${b.upper_bound}"`)), `classic le=${b.upper_bound}`);
    t.equal(h.schema, 6, 'schema from the windows\' 2 significant digits');
    t.equal(h.zero_threshold, 1e-6, 'zero bucket: what the windows cannot tell from 0 (1 µs)');
    const counts = expand(h);
    let total = h.zero_count ?? 0;
    for (const c of counts.values()) total += c;
    t.equal(total, h.sample_count, 'native buckets and zero bucket hold every observation');
  }
  const a = latency.metric.find((m) => m.label.some((l) => l.name === 'endpoint' && l.value.endsWith(':9001')))!;
  const aCounts = expand(a.histogram!);
  // An HDR bin counts at its lowest value (as for the classic buckets): at most one native bucket lower.
  const at = (count: number) => [...aCounts].find(([, c]) => c === count)?.[0];
  t.ok([0, 1].includes(nativeIndex(0.003, 6) - at(1000)!), 'the 1000 answers of 3 ms in one bucket, at 3 ms');
  t.ok([0, 1].includes(nativeIndex(0.25, 6) - at(10)!), 'the 10 of 250 ms in one bucket, at 250 ms');
  t.equal(aCounts.size, 2, 'and nothing else');

  // Quantiles from the native buckets agree with the spread the data was drawn from, within one bucket.
  const b = latency.metric.find((m) => m.label.some((l) => l.name === 'endpoint' && l.value.endsWith(':9002')))!;
  const bCounts = [...expand(b.histogram!)].sort(([x], [y]) => x - y);
  for (const q of [0.5, 0.9, 0.99]) {
    let acc = 0;
    const rank = q * b.histogram!.sample_count;
    const hit = bCounts.find(([, c]) => (acc += c) >= rank)!;
    const exact = (200 * Math.pow(10_000, (Math.ceil(rank) - 1) / 499)) / 1e6;
    const upper = 2 ** (hit[0] / 64);
    t.ok(exact <= upper * 1.011 && exact > (upper / 2 ** (1 / 64)) * 0.989, `p${q * 100}: ${exact.toFixed(6)} s in native bucket (${(upper / 2 ** (1 / 64)).toFixed(6)}, ${upper.toFixed(6)}]`);
  }

  const sampleLines = text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  t.equal(samples.size, sampleLines.length, 'no series appears twice in the text format');
  const istio = families.find((f) => f.name === 'istio_request_duration_milliseconds')!;
  t.equal(istio.metric.length, 1, "Istio's labels name workloads: the service's two endpoints are one series");
  t.equal(istio.metric[0]!.histogram!.sample_count, 1510, 'holding both endpoints\' requests');
  for (const m of istio.metric) {
    t.equal(m.histogram!.bucket.length, 16, "Istio's millisecond histogram: classic buckets");
    t.equal(m.histogram!.positive_span.length, 0, 'and no native ones (not even the no-op span that marks one)');
  }
});

t.test('per service (the default): one histogram summing both endpoints, native buckets included', async (t) => {
  const { url } = await sidecarWithTraffic(t, false);
  const text = parseText(await (await fetch(url)).text());
  const families = decodeDelimited(new Uint8Array(await (await fetch(url, { headers: { accept: PROMETHEUS_ACCEPT } })).arrayBuffer()));
  const latency = families.find((f) => f.name === 'meshmedic_request_duration_seconds')!;
  t.equal(latency.metric.length, 1, 'one series for the service');
  const m = latency.metric[0]!;
  t.notOk(m.label.some((l) => l.name === 'endpoint'), 'no endpoint label');
  t.equal(m.histogram!.sample_count, 1510, 'both endpoints\' requests');
  t.equal(m.histogram!.sample_count, text.get(seriesKey('meshmedic_request_duration_seconds_count', m.label)), 'count as in the text format');
  for (const b of m.histogram!.bucket) t.equal(b.cumulative_count, text.get(seriesKey('meshmedic_request_duration_seconds_bucket', m.label, `le="${b.upper_bound}"`)), `classic le=${b.upper_bound}`);
  let total = m.histogram!.zero_count ?? 0;
  for (const c of expand(m.histogram!).values()) total += c;
  t.equal(total, 1510, 'native buckets hold every observation of both endpoints');
});

t.test('native counts never go backwards between protobuf scrapes', async (t) => {
  const { url } = await sidecarWithTraffic(t);
  const scrape = async () => {
    const families = decodeDelimited(new Uint8Array(await (await fetch(url, { headers: { accept: PROMETHEUS_ACCEPT } })).arrayBuffer()));
    return families.find((f) => f.name === 'meshmedic_request_duration_seconds')!.metric.map((m) => expand(m.histogram!));
  };
  const before = await scrape();
  const after = await scrape();
  const backwards: string[] = [];
  for (const [i, m] of before.entries()) for (const [k, c] of m) if ((after[i]!.get(k) ?? 0) < c) backwards.push(`series ${i} bucket ${k}: ${c} then ${after[i]!.get(k) ?? 0}`);
  t.ok(before.every((m) => m.size > 0), 'there are native buckets to compare');
  t.same(backwards, [], 'no bucket went backwards');
});

t.test('a real Prometheus with native histograms on negotiates protobuf and stores the native histogram', async (t) => {
  const { url } = await sidecarWithTraffic(t);
  const text = parseText(await (await fetch(url)).text());
  const textOf = (suffix: string) => [...text].find(([k]) => k.startsWith(`meshmedic_request_duration_seconds_${suffix}{`) && k.includes(':9001"'))![1];
  const dir = mkdtempSync(join(tmpdir(), 'meshmedic-prom-'));
  const target = new URL(url).host;
  writeFileSync(join(dir, 'prometheus.yml'), `global: { scrape_interval: 1s, evaluation_interval: 1s }\nscrape_configs:\n  - job_name: sidecar\n    static_configs: [{ targets: ['${target}'] }]\n`);
  const prom = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, '--web.listen-address=127.0.0.1:0', '--enable-feature=native-histograms'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  // Prometheus binds port 0 and logs the port it got (a port freed by the test could be taken meanwhile).
  let port = 0;
  prom.stderr!.setEncoding('utf8').on('data', (d: string) => {
    log = (log + d).slice(-4000);
    port ||= Number(/msg="Listening on" address=127\.0\.0\.1:(\d+)/.exec(log)?.[1] ?? 0);
  });
  const spawnError = new Promise<Error>((r) => prom.once('error', r));
  t.teardown(async () => {
    if (prom.exitCode === null && prom.signalCode === null) {
      const exited = new Promise((r) => prom.once('exit', r));
      prom.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const query = async (q: string): Promise<number | undefined> => {
    if (port === 0) return undefined;
    const r = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`).catch(() => undefined);
    if (!r?.ok) return undefined;
    const body = (await r.json()) as { data: { result: { value: [number, string] }[] } };
    const v = body.data.result[0]?.value[1];
    return v === undefined ? undefined : Number(v);
  };
  // Wait for the first scrape to be queryable (Prometheus starts, scrapes every second); bounded.
  const selector = 'meshmedic_request_duration_seconds{endpoint=~".*:9001"}';
  let count: number | undefined;
  const deadline = Date.now() + 60_000;
  while (count === undefined && Date.now() < deadline) {
    const err = await Promise.race([spawnError, new Promise<undefined>((r) => setTimeout(r, 250))]);
    if (err) throw new Error(`prometheus could not start (${err.message}): run scripts/ensure-peers.sh (Debian package "prometheus")`);
    if (prom.exitCode !== null) break;
    count = await query(`histogram_count(${selector})`);
  }
  t.equal(count, textOf('count'), `histogram_count of the stored native histogram is the text format's _count\n${count === undefined ? log : ''}`);
  const sum = await query(`histogram_sum(${selector})`);
  t.ok(Math.abs(sum! - textOf('sum')) < 1e-6, `histogram_sum ${sum} is the text format's _sum ${textOf('sum')}`);
  const p50 = await query(`histogram_quantile(0.5, ${selector})`);
  t.ok(Math.abs(p50! - 0.003) / 0.003 < 0.02, `native p50 ${p50} s is 3 ms within 2 % (one schema-6 bucket and an HDR bin)`);
});
