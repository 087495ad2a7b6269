// The metrics registry: the text exposition against hand-written expected text (escaping, NaN and
// infinities, metrics without labels, histograms, scrape-time values), its errors, bound children that
// allocate nothing, and a live sidecar's families identical to those it exposed before (names, types, help).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Counter, Gauge, Histogram, Registry, collectedMetric, formatValue, TEXT_CONTENT_TYPE, type MetricValue } from '../../src/admin/metrics-registry.js';
import { validateConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/core/log.js';
import { Outcome } from '../../src/core/types.js';
import { startSidecar } from '../../src/runtime/sidecar.js';

t.test('counters and gauges: label order as first given, series in creation order, blank line between families', async (t) => {
  const r = new Registry();
  const c = new Counter({ name: 'app_requests_total', help: 'Requests by route and code.', labelNames: ['route', 'code'], registers: [r] });
  const g = new Gauge({ name: 'app_open', help: 'Open things.', registers: [r] });
  c.inc({ route: '/a', code: 200 });
  c.inc({ code: 500, route: '/b' }, 2);
  c.inc({ code: 200, route: '/a' }, 0.5); // same series as the first, whatever the key order
  g.set(3);
  g.dec(1.5);
  t.equal(await r.metrics(), [
    '# HELP app_requests_total Requests by route and code.',
    '# TYPE app_requests_total counter',
    'app_requests_total{route="/a",code="200"} 1.5',
    'app_requests_total{code="500",route="/b"} 2',
    '',
    '# HELP app_open Open things.',
    '# TYPE app_open gauge',
    'app_open 1.5',
    '',
  ].join('\n'));
  t.equal(r.contentType, 'text/plain; version=0.0.4; charset=utf-8');
  t.equal(TEXT_CONTENT_TYPE, r.contentType);
});

t.test('a metric without labels shows 0 before any update; a labelled one shows nothing', async (t) => {
  const r = new Registry();
  new Counter({ name: 'idle_total', help: 'h', registers: [r] });
  new Gauge({ name: 'idle_labelled', help: 'h', labelNames: ['x'], registers: [r] });
  t.equal(await r.metrics(), '# HELP idle_total h\n# TYPE idle_total counter\nidle_total 0\n\n# HELP idle_labelled h\n# TYPE idle_labelled gauge\n');
});

t.test('escaping: backslash and line feed in HELP; backslash, line feed and quote in label values', async (t) => {
  const r = new Registry();
  const g = new Gauge({ name: 'esc', help: 'a \\ backslash,\na new line and "quotes" kept', labelNames: ['v'], registers: [r] });
  g.set({ v: 'C:\\dir\n"quoted"' }, 1);
  g.set({ v: '' }, 2);
  t.equal(await r.metrics(), [
    '# HELP esc a \\\\ backslash,\\na new line and "quotes" kept',
    '# TYPE esc gauge',
    'esc{v="C:\\\\dir\\n\\"quoted\\""} 1',
    'esc{v=""} 2',
    '',
  ].join('\n'));
});

t.test('values: NaN, +Inf, -Inf, exponents and negative zero as the format spells them', async (t) => {
  t.equal(formatValue(NaN), 'NaN');
  t.equal(formatValue(Infinity), '+Inf');
  t.equal(formatValue(-Infinity), '-Inf');
  t.equal(formatValue(1e21), '1e+21');
  t.equal(formatValue(1.5e-7), '1.5e-7');
  t.equal(formatValue(-0), '0');
  t.equal(formatValue(0.1 + 0.2), '0.30000000000000004', 'shortest round-trip form');
  const r = new Registry();
  r.registerMetric(collectedMetric('odd', 'Odd values.', 'gauge', (): MetricValue[] => [
    { labels: { k: 'nan' }, value: NaN },
    { labels: { k: 'inf' }, value: Infinity },
    { labels: { k: 'ninf' }, value: -Infinity },
    { labels: {}, value: 7 },
  ]));
  t.equal(await r.metrics(), '# HELP odd Odd values.\n# TYPE odd gauge\nodd{k="nan"} NaN\nodd{k="inf"} +Inf\nodd{k="ninf"} -Inf\nodd 7\n');
});

t.test('histograms: cumulative buckets with le first, +Inf, _sum and _count; unlabelled one starts at zero', async (t) => {
  const r = new Registry();
  const h = new Histogram({ name: 'rt_seconds', help: 'Response time.', labelNames: ['code'], buckets: [0.1, 0.5, 2], registers: [r] });
  const z = new Histogram({ name: 'empty_seconds', help: 'Nothing yet.', buckets: [1], registers: [r] });
  h.observe({ code: '200' }, 0.1); // on the bound: counted in it (le is "less or equal")
  h.observe({ code: '200' }, 0.3);
  h.observe({ code: '200' }, 9);
  h.labels('500').observe(0.05);
  t.equal(await r.metrics(), [
    '# HELP rt_seconds Response time.',
    '# TYPE rt_seconds histogram',
    'rt_seconds_bucket{le="0.1",code="200"} 1',
    'rt_seconds_bucket{le="0.5",code="200"} 2',
    'rt_seconds_bucket{le="2",code="200"} 2',
    'rt_seconds_bucket{le="+Inf",code="200"} 3',
    'rt_seconds_sum{code="200"} 9.4',
    'rt_seconds_count{code="200"} 3',
    'rt_seconds_bucket{le="0.1",code="500"} 1',
    'rt_seconds_bucket{le="0.5",code="500"} 1',
    'rt_seconds_bucket{le="2",code="500"} 1',
    'rt_seconds_bucket{le="+Inf",code="500"} 1',
    'rt_seconds_sum{code="500"} 0.05',
    'rt_seconds_count{code="500"} 1',
    '',
    '# HELP empty_seconds Nothing yet.',
    '# TYPE empty_seconds histogram',
    'empty_seconds_bucket{le="1"} 0',
    'empty_seconds_bucket{le="+Inf"} 0',
    'empty_seconds_sum 0',
    'empty_seconds_count 0',
    '',
  ].join('\n'));
  z.observe(3);
  t.match(await r.getSingleMetricAsString('empty_seconds'), /empty_seconds_bucket\{le="1"\} 0\nempty_seconds_bucket\{le="\+Inf"\} 1\nempty_seconds_sum 3\nempty_seconds_count 1$/);
});

t.test('collect callbacks set values at each scrape; reset drops series, and bound children find theirs again', async (t) => {
  const r = new Registry();
  let n = 0;
  const c = new Counter({
    name: 'polled_total', help: 'h', labelNames: ['kind'], registers: [r],
    collect() { this.reset(); if (n > 0) this.inc({ kind: 'a' }, n); },
  });
  t.equal(await r.metrics(), '# HELP polled_total h\n# TYPE polled_total counter\n');
  n = 4;
  t.equal(await r.metrics(), '# HELP polled_total h\n# TYPE polled_total counter\npolled_total{kind="a"} 4\n');
  const g = new Gauge({ name: 'bound', help: 'h', labelNames: ['k'], registers: [r] });
  const child = g.labels('x');
  child.set(5);
  g.reset();
  t.same((await r.getSingleMetric('bound')!.get()).values, [], 'reset forgets the series');
  child.inc(2);
  t.same((await r.getSingleMetric('bound')!.get()).values, [{ labels: { k: 'x' }, value: 2 }], 'the child starts a fresh one');
  t.equal(c.type, 'counter');
});

t.test('the registry: one metric per name, remove, JSON for the protobuf exposition', async (t) => {
  const r = new Registry();
  const a = new Counter({ name: 'dup_total', help: 'h', registers: [r] });
  t.doesNotThrow(() => r.registerMetric(a), 'the same metric again is fine');
  t.throws(() => new Counter({ name: 'dup_total', help: 'other', registers: [r] }), /already been registered/);
  r.removeSingleMetric('dup_total');
  t.equal(r.getSingleMetric('dup_total'), undefined);
  new Counter({ name: 'dup_total', help: 'after removal', registers: [r] }).inc(3);
  t.same(await r.getMetricsAsJSON(), [{ name: 'dup_total', help: 'after removal', type: 'counter', values: [{ labels: {}, value: 3 }] }]);
  r.clear();
  t.equal(await r.metrics(), '\n');
  await t.rejects(r.getSingleMetricAsString('nope'), /no metric named nope/);
});

t.test('bad use is refused with the metric named', async (t) => {
  t.throws(() => new Counter({ name: 'bad-name', help: 'h' }), /invalid metric name "bad-name"/);
  t.throws(() => new Counter({ name: 'x', help: '' }), /metric x: help text is required/);
  t.throws(() => new Gauge({ name: 'x', help: 'h', labelNames: ['bad-label'] }), /metric x: invalid label name "bad-label"/);
  t.throws(() => new Gauge({ name: 'x', help: 'h', labelNames: ['__reserved'] }), /invalid label name/);
  t.throws(() => new Histogram({ name: 'x', help: 'h', labelNames: ['le'] }), /"le" is reserved/);
  t.throws(() => new Histogram({ name: 'x', help: 'h', buckets: [1, 1] }), /buckets must be finite and increasing/);
  const c = new Counter({ name: 'c_total', help: 'h', labelNames: ['a'] });
  t.throws(() => c.inc(-1), /metric c_total: a counter cannot decrease/);
  t.throws(() => c.inc({ a: 'x' }, NaN), /metric c_total: value is not a finite number: NaN/);
  t.throws(() => c.inc({ b: 'x' } as never), /metric c_total: label "b" is not one of its labels \(a\)/);
  t.throws(() => c.labels('x', 'y'), /metric c_total: 2 label values given for 1 labels/);
  const g = new Gauge({ name: 'g', help: 'h' });
  t.throws(() => g.set(Infinity), /metric g: value is not a finite number/);
  const h = new Histogram({ name: 'h', help: 'h' });
  t.throws(() => h.observe(NaN), /metric h: value is not a finite number/);
});

t.test('a bound child allocates nothing per update; a label object does (the control)', async (t) => {
  // Measured in a clean child process: the test runner's own instrumentation would dominate here.
  const script = fileURLToPath(new URL('./fixtures/registry-alloc.ts', import.meta.url));
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', script], { encoding: 'utf8', timeout: 120_000 });
  t.equal(r.status, 0, r.stderr);
  type Row = { best: number | null; rounds: (number | 'gc')[] };
  const out = JSON.parse(r.stdout.trim()) as Record<string, Row> & { total: number };
  for (const name of ['boundCounter', 'boundGauge', 'boundHistogram']) {
    const row = out[name]!;
    // Rounds are 1,000,000 updates; the smallest allocation V8 makes (a boxed number) is 12 bytes, so
    // under 2 bytes per update means none per update (what remains is V8's own, now and then).
    t.ok(row.best !== null && row.best < 2, `${name}: ${row.best} bytes/update, the smallest of GC-free rounds ${row.rounds.join(', ')}`);
  }
  const control = out.labelObject!;
  t.ok(control.best === null || control.best > 4, `inc(labelObject) allocates: rounds ${control.rounds.join(', ')} (gc = a collection ran during the round)`);
  t.equal(out.total, 12_600_000, 'every increment counted');
});

t.test('a live sidecar with every component exposes the same families as before (name, type, help)', async (t) => {
  const expected = readFileSync(fileURLToPath(new URL('./fixtures/metric-families.txt', import.meta.url)), 'utf8').split('\n').filter((l) => /^# (HELP|TYPE) /.test(l));
  const dir = mkdtempSync(path.join(tmpdir(), 'meshmedic-families-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const v = validateConfig({
    admin: { listen: '127.0.0.1:0', metrics: { istioNames: true } }, node: { workload: 'checkout' }, outbound: { listen: '127.0.0.1:0' },
    xds: { enabled: true, listen: '127.0.0.1:0' }, gossip: { enabled: true, listen: '127.0.0.1:0' }, audit: { enabled: true, dir }, learning: { federated: { enabled: true } },
    services: [{ name: 'pay', endpoints: [{ address: '127.0.0.1:9001' }] }],
  });
  if (!v.valid) throw new Error(v.errors.join('\n'));
  const s = await startSidecar(v.result, { log: silentLogger });
  t.teardown(() => s.close(0));
  const ev = [...s.context.mesh.snapshot().endpoints.values()][0]!;
  const w = s.context.stats.ensure(ev.slot);
  for (let i = 0; i < 20; i++) w.record(i % 10 ? Outcome.Success : Outcome.Gateway, 1000 + i * 300, Date.now(), i % 10 ? 200 : 503);
  const res = await fetch(`http://${s.addresses.admin}/metrics`);
  t.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  const text = await res.text();
  const got = text.split('\n').filter((l) => /^# (HELP|TYPE) /.test(l));
  const missing = expected.filter((l) => !got.includes(l));
  const added = got.filter((l) => !expected.includes(l));
  t.same(missing, [], 'no family lost or renamed, no help text changed');
  t.same(added, [], 'no family added without updating the fixture (and docs)');
  t.equal(got.length, expected.length);
});
