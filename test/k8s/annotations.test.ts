// Annotation tuning, table-driven: each annotation maps onto the config schema, bad values warn and
// keep the default; the downward-API file format round-trips; the watcher sees the kubelet's swaps.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, symlinkSync, renameSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig } from '../../src/config/load.js';
import { ANNOTATIONS, annotationsToConfigPatch, mergeConfigPatch, parseAnnotationValue, parseDurationMs, isQuantity } from '../../src/k8s/annotations.js';
import { formatDownwardAnnotations, loadSidecarConfig, parseDownwardAnnotations, quoteGo, unquoteGo, watchAnnotationsFile } from '../../src/k8s/podinfo.js';

/** Is this config path known to the schema in this build? (The healing section grows over time.) */
function schemaKnows(path: string, value: unknown): boolean {
  const patch = {} as Record<string, unknown>;
  let cur = patch;
  const parts = path.split('.');
  parts.slice(0, -1).forEach((p) => (cur = (cur[p] = {}) as Record<string, unknown>));
  cur[parts.at(-1)!] = value;
  const r = validateConfig(patch);
  return r.valid || !r.errors.some((e) => /unknown key/.test(e));
}

t.test('every tuning annotation maps onto a key the config schema has, and its example applies', async (t) => {
  // If this fails after a schema change, update the table in src/k8s/annotations.ts (and the docs).
  for (const spec of ANNOTATIONS.filter((s) => s.path)) {
    const example = spec.example.replace(/^"|"$/g, '');
    const parsed = parseAnnotationValue(spec.kind, example);
    t.ok(parsed.ok, `${spec.key} example parses`);
    if (!parsed.ok) continue;
    t.ok(schemaKnows(spec.path!, parsed.value), `${spec.key}: config path ${spec.path} exists in the schema`);
    const res = annotationsToConfigPatch({ [spec.key]: example });
    t.same(res.warnings, [], `${spec.key} applies`);
    t.same(res.applied[spec.key], parsed.value);
    const merged = validateConfig(mergeConfigPatch({}, res.patch));
    t.ok(merged.valid, `${spec.key}: merged config valid`);
  }
  // The "unsupported" path: a well-formed annotation whose config key does not exist.
  const res = annotationsToConfigPatch({ 'meshmedic.io/healing.ejection.noSuchKey': '1' });
  t.match(res.warnings[0], /healing\.ejection\.noSuchKey: "1" rejected: config key healing\.ejection\.noSuchKey is not supported by this version/);
});

const TABLE: { name: string; annotations: Record<string, string>; patch?: unknown; warn?: RegExp[] }[] = [
  { name: 'valid policy', annotations: { 'meshmedic.io/policy': 'envoy-default' }, patch: { healing: { policy: 'envoy-default' } } },
  { name: 'policy with spaces', annotations: { 'meshmedic.io/policy': '  none ' }, patch: { healing: { policy: 'none' } } },
  { name: 'bad policy', annotations: { 'meshmedic.io/policy': 'yolo' }, patch: {}, warn: [/^meshmedic\.io\/policy: "yolo" rejected: .*"meshmedic", "envoy-default", "none".*default kept$/] },
  { name: 'log level', annotations: { 'meshmedic.io/log-level': 'debug' }, patch: { log: { level: 'debug' } } },
  { name: 'bad log level', annotations: { 'meshmedic.io/log-level': 'loud' }, patch: {}, warn: [/log-level: "loud" rejected/] },
  { name: 'not an integer', annotations: { 'meshmedic.io/consecutive-5xx': '5.5' }, patch: {}, warn: [/consecutive-5xx: "5\.5" is not an integer; default kept/] },
  { name: 'not a duration', annotations: { 'meshmedic.io/base-ejection-time': 'soon' }, patch: {}, warn: [/base-ejection-time: "soon" is not a duration/] },
  { name: 'empty list', annotations: { 'meshmedic.io/no-proxy': ' , ' }, patch: {}, warn: [/no-proxy: " , " is an empty list/] },
  { name: 'consecutive-5xx', annotations: { 'meshmedic.io/consecutive-5xx': '3' }, patch: { healing: { consecutive: { errors5xx: 3 } } } },
  { name: 'consecutive-5xx out of range', annotations: { 'meshmedic.io/consecutive-5xx': '0' }, patch: {}, warn: [/consecutive-5xx: "0" rejected: 0 must be >= 1; default kept/] },
  { name: 'durations in ms', annotations: { 'meshmedic.io/base-ejection-time': '30s', 'meshmedic.io/max-ejection-time': '5m' }, patch: { healing: { ejection: { baseMs: 30_000, maxMs: 300_000 } } } },
  { name: 'percent over 100', annotations: { 'meshmedic.io/max-ejection-percent': '150' }, patch: {}, warn: [/max-ejection-percent: "150" rejected: 150 must be <= 100/] },
  { name: 'boolean', annotations: { 'meshmedic.io/always-eject-one': 'false' }, patch: { healing: { ejection: { alwaysEjectOne: false } } } },
  { name: 'bad boolean', annotations: { 'meshmedic.io/deweight': 'sometimes' }, patch: {}, warn: [/deweight: "sometimes" is not "true" or "false"/] },
  { name: 'gossip quorum', annotations: { 'meshmedic.io/gossip-quorum': '3' }, patch: { gossip: { health: { quorum: 3 } } } },
  { name: 'latency objective', annotations: { 'meshmedic.io/latency-objective': '250ms' }, patch: { gossip: { health: { p99ThresholdMs: 250 } } } },
  { name: 'generic healing path', annotations: { 'meshmedic.io/healing.peerLatency.confirmWindows': '3', 'meshmedic.io/healing.overload.enabled': 'false' }, patch: { healing: { peerLatency: { confirmWindows: 3 }, overload: { enabled: false } } } },
  { name: 'generic healing path unknown', annotations: { 'meshmedic.io/healing.peerLatency.nope': '3' }, patch: {}, warn: [/healing\.peerLatency\.nope: "3" rejected: config key healing\.peerLatency\.nope is not supported/] },
  { name: 'generic healing wrong type', annotations: { 'meshmedic.io/healing.peerLatency.confirmWindows': 'many' }, patch: {}, warn: [/confirmWindows: "many" rejected: expected integer/] },
  { name: 'unknown annotation with suggestion', annotations: { 'meshmedic.io/polcy': 'none' }, patch: {}, warn: [/meshmedic\.io\/polcy: unknown annotation, ignored \(did you mean meshmedic\.io\/policy\?\)/] },
  { name: 'unknown annotation far from any', annotations: { 'meshmedic.io/zzzzzzzzzz': '1' }, patch: {}, warn: [/^meshmedic\.io\/zzzzzzzzzz: unknown annotation, ignored$/] },
  { name: 'other prefixes ignored', annotations: { 'sidecar.istio.io/inject': 'true', 'prometheus.io/scrape': 'true' }, patch: {} },
  { name: 'injection annotations checked', annotations: { 'meshmedic.io/inject': 'maybe', 'meshmedic.io/proxy-cpu': '-1', 'meshmedic.io/proxy-memory': '128Mi' }, patch: {}, warn: [/inject: "maybe" is not "true" or "false"/, /proxy-cpu: "-1" is not a Kubernetes quantity/] },
  { name: 'good and bad together', annotations: { 'meshmedic.io/policy': 'none', 'meshmedic.io/log-level': 'nope' }, patch: { healing: { policy: 'none' } }, warn: [/log-level/] },
  { name: 'huge value', annotations: { 'meshmedic.io/policy': 'x'.repeat(10_000) }, patch: {}, warn: [/longer than 4096/] },
];

for (const row of TABLE) {
  t.test(`annotations: ${row.name}`, async (t) => {
    const res = annotationsToConfigPatch(row.annotations);
    if (row.patch !== undefined) t.same(res.patch, row.patch);
    t.equal(res.warnings.length, row.warn?.length ?? 0, `warnings: ${JSON.stringify(res.warnings)}`);
    for (const w of row.warn ?? []) t.ok(res.warnings.some((x) => w.test(x)), `warning ${w}`);
  });
}

t.test('the number of annotations read is bounded', async (t) => {
  const many: Record<string, string> = { 'meshmedic.io/policy': 'none' };
  for (let i = 0; i < 500; i++) many[`meshmedic.io/healing.g${i}.k`] = '1';
  const started = process.hrtime.bigint();
  const res = annotationsToConfigPatch(many);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  t.same(res.patch, { healing: { policy: 'none' } }, 'the named annotation (first in table order) still applies');
  t.match(res.warnings[0], /501 meshmedic\.io\/\* annotations: only the first 64/);
  t.equal(res.warnings.length, 1 + 63, 'one warning per unknown path read, none for the rest');
  t.ok(ms < 5000, `bounded time (${ms.toFixed(1)} ms)`);
});

t.test('annotations are validated against the base config they merge over', async (t) => {
  // The patch alone is fine, but with this base the merged config is what must validate.
  const res = annotationsToConfigPatch({ 'meshmedic.io/policy': 'none' }, { log: { level: 'warn' } });
  t.same(res.patch, { healing: { policy: 'none' } });
  const bogusBase = annotationsToConfigPatch({ 'meshmedic.io/policy': 'none' }, { admin: { listen: 'nope' } });
  t.match(bogusBase.warnings[0], /policy: "none" rejected/, 'an invalid base rejects instead of pretending');
});

t.test('value parsers', async (t) => {
  const durations: [string, number | undefined][] = [['250ms', 250], ['30s', 30_000], ['1.5s', 1500], ['5m', 300_000], ['1h30m', 5_400_000], ['1000', 1000], ['', undefined], ['5 s', undefined], ['-1s', undefined], ['1d', undefined], ['s', undefined]];
  for (const [s, ms] of durations) t.equal(parseDurationMs(s), ms, `duration ${JSON.stringify(s)}`);
  for (const q of ['100m', '0.5', '64Mi', '1G', '1e3', '2Gi']) t.ok(isQuantity(q), `quantity ${q}`);
  for (const q of ['', 'lots', '-1', '1 Gi', '0', 'Mi', '1.2.3']) t.notOk(isQuantity(q), `not quantity ${q}`);
  t.same(parseAnnotationValue('boolean', 'TRUE'), { ok: true, value: true });
  t.same(parseAnnotationValue('number', '1e400'), { ok: false, error: 'is not a number' });
  t.same(parseAnnotationValue('list', 'a, b,,c'), { ok: true, value: ['a', 'b', 'c'] });
});

t.test('downward-API format: Go quoting round-trips', async (t) => {
  const cases: Record<string, string> = {
    'meshmedic.io/policy': 'none',
    'kubectl.kubernetes.io/last-applied-configuration': '{"apiVersion":"v1","kind":"Pod","metadata":{"annotations":{}}}\n',
    'example.com/tabs': 'a\tb\\c"d',
    'example.com/unicode': 'zürich ✓ 𝄞',
    'example.com/control': '\u0000\u0007\u001b\u007f\u0085',
    'example.com/empty': '',
  };
  const text = formatDownwardAnnotations(cases);
  t.equal(text.split('\n').length, Object.keys(cases).length, 'one line per annotation');
  t.notOk(text.endsWith('\n'), 'kubelet trims the final newline');
  const parsed = parseDownwardAnnotations(text);
  t.same(parsed.errors, []);
  t.same(parsed.annotations, cases);
  // What the kubelet writes (Go's %q), byte for byte.
  t.equal(quoteGo('a"b\\c\nd\u0001é'), '"a\\"b\\\\c\\nd\\x01é"');
  t.equal(unquoteGo('"\\u00e9\\U0001F600\\x41\\101\\a"'), 'é😀AA\u0007');
  t.equal(unquoteGo('"\\xc3\\xa9"'), 'é', 'raw bytes form UTF-8');
});

t.test('downward-API format: bad lines reported, good lines kept', async (t) => {
  const text = ['good="yes"', 'noequals', 'unquoted=value', 'badescape="\\q"', 'inner="a"b"', 'open="abc', 'x/y="ok\\n"', ''].join('\n');
  const parsed = parseDownwardAnnotations(text);
  t.same(parsed.annotations, { good: 'yes', 'x/y': 'ok\n' });
  t.equal(parsed.errors.length, 5);
  t.match(parsed.errors.join('\n'), /line 2: expected key="value"/);
  t.match(parsed.errors.join('\n'), /unknown escape \\q/);
  // Random bytes: never throws.
  for (let i = 0; i < 200; i++) {
    const junk = Buffer.from(Array.from({ length: 64 }, (_, j) => (i * 31 + j * 17) % 256)).toString('latin1');
    t.doesNotThrow(() => parseDownwardAnnotations(junk + '\nk="' + junk + '"'));
  }
});

t.test('sidecar config: file, env, annotations; missing file means defaults', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mm-podinfo-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const ann = join(dir, 'annotations');
  writeFileSync(ann, formatDownwardAnnotations({ 'meshmedic.io/policy': 'envoy-default', 'meshmedic.io/log-level': 'shout' }));
  const none = loadSidecarConfig({ configFile: join(dir, 'missing.yaml'), annotationsFile: ann, env: {} });
  t.ok(none.config.valid);
  if (none.config.valid) {
    t.equal(none.config.result.healing.policy, 'envoy-default');
    t.equal(none.config.result.log.level, 'info', 'bad annotation kept the default');
  }
  t.match(none.warnings.join('\n'), /log-level: "shout" rejected/);
  writeFileSync(join(dir, 'mesh.yaml'), 'log:\n  level: warn\nhealing:\n  policy: none\n');
  const withFile = loadSidecarConfig({ configFile: join(dir, 'mesh.yaml'), annotationsFile: ann, env: { MESHMEDIC_ADMIN__LISTEN: '0.0.0.0:17000', MESHMEDIC_ADMIN__READONLY: 'true' } });
  t.ok(withFile.config.valid);
  if (withFile.config.valid) {
    t.equal(withFile.config.result.log.level, 'warn', 'file value kept when the annotation is bad');
    t.equal(withFile.config.result.healing.policy, 'envoy-default', 'annotation overrides the file');
    t.equal(withFile.config.result.admin.listen, '0.0.0.0:17000', 'env applied');
  }
  writeFileSync(join(dir, 'broken.yaml'), 'log: [\n');
  const broken = loadSidecarConfig({ configFile: join(dir, 'broken.yaml'), annotationsFile: ann, env: {} });
  t.equal(broken.config.valid, false, 'a broken file is an error, not silently defaults');
});

t.test('watcher follows the kubelet\'s atomic symlink swap', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mm-watch-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // The kubelet's layout: ..<timestamp>/annotations, ..data -> ..<timestamp>, annotations -> ..data/annotations
  const writeVersion = (n: number, content: Record<string, string>) => {
    mkdirSync(join(dir, `..v${n}`));
    writeFileSync(join(dir, `..v${n}`, 'annotations'), formatDownwardAnnotations(content));
    symlinkSync(`..v${n}`, join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  };
  writeVersion(1, { 'meshmedic.io/policy': 'none' });
  symlinkSync('..data/annotations', join(dir, 'annotations'));
  const seen: Record<string, string>[] = [];
  const w = watchAnnotationsFile(join(dir, 'annotations'), (a) => seen.push(a), { pollMs: 100 });
  t.teardown(() => w.close());
  t.same(w.current(), { 'meshmedic.io/policy': 'none' });
  writeVersion(2, { 'meshmedic.io/policy': 'envoy-default' });
  const deadline = Date.now() + 10_000;
  while (seen.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  t.same(seen.at(-1), { 'meshmedic.io/policy': 'envoy-default' });
  t.same(w.current(), { 'meshmedic.io/policy': 'envoy-default' });
  const count = seen.length;
  await new Promise((r) => setTimeout(r, 300));
  t.equal(seen.length, count, 'no callback without a change');
});

t.test('a downward-API file as the kubelet writes it', async (t) => {
  const text = readFileSync(fileURLToPath(new URL('./fixtures/podinfo/annotations', import.meta.url)), 'utf8');
  const parsed = parseDownwardAnnotations(text);
  t.same(parsed.errors, []);
  t.equal(Object.keys(parsed.annotations).length, 9);
  t.equal(JSON.parse(parsed.annotations['meshmedic.io/status']!).mode, 'native', 'escaped quotes undone');
  t.equal(formatDownwardAnnotations(parsed.annotations), text, 'our formatter writes the same bytes');
  const res = annotationsToConfigPatch(parsed.annotations);
  t.same(res.warnings, []);
  t.same(res.patch, { healing: { consecutive: { errors5xx: 3 } }, gossip: { health: { p99ThresholdMs: 250 } } });
});
