import t from 'tap';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyEnvOverrides, loadConfigFile, validateConfig } from '../../src/config/load.js';
import { main } from '../../src/cli/main.js';

const dir = mkdtempSync(join(tmpdir(), 'mm-config-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (s: string) => out.push(s), err: (s: string) => err.push(s), env: {} }, out, err };
}

t.test('defaults fill in and the result is deeply frozen', async (t) => {
  const v = validateConfig({ services: [{ name: 'pay', endpoints: [{ address: '127.0.0.1:9000' }] }] });
  t.ok(v.valid);
  if (!v.valid) return;
  t.equal(v.result.admin.listen, '127.0.0.1:17000');
  t.equal(v.result.outbound.listen, '127.0.0.1:17001');
  t.equal(v.result.services[0]!.endpoints[0]!.weight, 1);
  t.ok(Object.isFrozen(v.result.services[0]!.endpoints[0]!.locality));
});

// Each bad config must be rejected, naming the path and the offending value or key.
const bad: [string, unknown, RegExp][] = [
  ['unknown top-level key', { bogus: 1 }, /\/bogus: unknown key/],
  ['unknown nested key', { proxy: { connectTimeout: 5 } }, /\/proxy\/connectTimeout: unknown key \(allowed here: .*connectTimeoutMs/],
  ['wrong type', { proxy: { connectTimeoutMs: 'fast' } }, /\/proxy\/connectTimeoutMs: expected integer, got "fast"/],
  ['out of range', { stats: { windows: 1 } }, /\/stats\/windows: 1 must be >= 2/],
  ['bad enum', { log: { level: 'loud' } }, /\/log\/level: "loud" is not one of/],
  ['bad service name', { services: [{ name: 'Pay Ments', endpoints: [] }] }, /\/services\/0\/name: "Pay Ments" does not match/],
  ['missing endpoints', { services: [{ name: 'a' }] }, /\/services\/0\/endpoints: required key is missing/],
  ['hostname endpoint', { services: [{ name: 'a', endpoints: [{ address: 'db.example:80' }] }] }, /\/services\/0\/endpoints\/0\/address: .*not an IP literal/],
  ['bad port', { services: [{ name: 'a', endpoints: [{ address: '127.0.0.1:99999' }] }] }, /port 99999 is out of range/],
  ['duplicate endpoint', { services: [{ name: 'a', endpoints: [{ address: '127.0.0.1:80' }, { address: '127.0.0.1:80' }] }] }, /duplicate endpoint/],
  ['duplicate service', { services: [{ name: 'a', endpoints: [] }, { name: 'a', endpoints: [] }] }, /\/services\/1\/name: duplicate service name "a"/],
  ['listen clash', { admin: { listen: '127.0.0.1:5000' }, outbound: { listen: '127.0.0.1:5000' } }, /\/outbound\/listen: "127.0.0.1:5000" is already used by \/admin\/listen/],
  ['bad policy', { healing: { policy: 'magic' } }, /\/healing\/policy: "magic" is not one of/],
  ['top level not a mapping', [1, 2], /expected a mapping/],
];
for (const [name, doc, re] of bad) {
  t.test(`rejects: ${name}`, async (t) => {
    const v = validateConfig(doc);
    t.equal(v.valid, false);
    if (!v.valid) t.match(v.errors.join('\n'), re);
  });
}

t.test('collects every error, not just the first', async (t) => {
  const v = validateConfig({ bogus: 1, proxy: { connectTimeoutMs: -1 }, log: { level: 'x' } });
  t.equal(v.valid, false);
  if (!v.valid) t.ok(v.errors.length >= 3, v.errors.join('; '));
});

t.test('YAML syntax errors and unreadable files are clear', async (t) => {
  const v = loadConfigFile(file('broken.yaml', 'services: [\n  - name: a\n'), {});
  t.equal(v.valid, false);
  if (!v.valid) t.match(v.errors[0], /broken\.yaml: /);
  const missing = loadConfigFile(join(dir, 'nope.yaml'), {});
  t.equal(missing.valid, false);
  if (!missing.valid) t.match(missing.errors[0], /nope\.yaml: cannot read: ENOENT/);
  const dup = loadConfigFile(file('dup.yaml', 'admin: {}\nadmin: {}\n'), {});
  t.equal(dup.valid, false, 'duplicate keys rejected');
});

t.test('environment overrides', async (t) => {
  const v = loadConfigFile(undefined, { MESHMEDIC_ADMIN__LISTEN: '127.0.0.1:9100', MESHMEDIC_PROXY__CONNECTTIMEOUTMS: '250', MESHMEDIC_GOSSIP__JOIN: '127.0.0.1:1,127.0.0.1:2', MESHMEDIC_UNRELATED_THING: 'x' });
  t.ok(v.valid);
  if (!v.valid) return;
  t.equal(v.result.admin.listen, '127.0.0.1:9100');
  t.equal(v.result.proxy.connectTimeoutMs, 250);
  t.same(v.result.gossip.join, ['127.0.0.1:1', '127.0.0.1:2']);
  const bad = applyEnvOverrides({}, { MESHMEDIC_PROXY__NOPE: '1' });
  t.equal(bad.valid, false);
  if (!bad.valid) t.match(bad.errors[0], /MESHMEDIC_PROXY__NOPE: no configuration key/);
  const badValue = loadConfigFile(undefined, { MESHMEDIC_PROXY__CONNECTTIMEOUTMS: 'soon' });
  t.equal(badValue.valid, false);
  if (!badValue.valid) t.match(badValue.errors[0], /\/proxy\/connectTimeoutMs \(set by MESHMEDIC_PROXY__CONNECTTIMEOUTMS\): expected integer, got "soon"/);
});

t.test('meshmedic run: bad config exits 2 naming the field', async (t) => {
  const c = capture();
  const code = await main(['run', '--config', file('bad.yaml', 'proxy:\n  connectTimeoutMs: soon\nservices:\n  - name: a\n    endpoints:\n      - address: nothost:1\n')], c.io);
  t.equal(code, 2);
  const text = c.err.join('');
  t.match(text, /\/proxy\/connectTimeoutMs: expected integer, got "soon"/);
  t.match(text, /\/services\/0\/endpoints\/0\/address/);
});

t.test('meshmedic run --check prints the filled-in config', async (t) => {
  const c = capture();
  const code = await main(['run', '--check', '--config', file('ok.yaml', 'services:\n  - name: a\n    endpoints:\n      - address: 127.0.0.1:8080\n')], c.io);
  t.equal(code, 0);
  t.match(JSON.parse(c.out.join('')), { services: [{ name: 'a', protocol: 'http1' }] });
});

t.test('usage errors exit 2', async (t) => {
  for (const argv of [['run'], ['run', '--nope'], ['proxy', '--listen', '127.0.0.1:0'], ['proxy', '--listen', 'x', '--upstream', 'http://h:1'], ['frobnicate'], []]) {
    const c = capture();
    t.equal(await main(argv, c.io), 2, argv.join(' '));
    t.ok(c.err.join('') + c.out.join(''), 'says why');
  }
  const c = capture();
  await main(['proxy', '--listen', '127.0.0.1:0', '--upstream', 'http://db.local:80', '--policy', 'magic'], c.io);
  t.match(c.err.join(''), /--upstream #1: .*not an IP literal/);
  t.match(c.err.join(''), /--policy: "magic" is not one of/);
});

t.test('every command has --help', async (t) => {
  for (const cmd of ['run', 'proxy', 'demo']) {
    const c = capture();
    t.equal(await main([cmd, '--help'], c.io), 0);
    t.match(c.out.join(''), /Usage: meshmedic/);
  }
});
