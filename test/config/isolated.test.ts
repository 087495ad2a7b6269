// `meshmedic run` validates its configuration in a short-lived child process (load-isolated.ts): the
// answer is the same as validating in-process — valid and frozen, or errors naming the field, the
// environment overrides and --workers applied — from the sources and from the built command.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadRunConfigIsolated } from '../../src/config/load-isolated.js';

const dir = mkdtempSync(join(tmpdir(), 'mm-isolated-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const good = join(dir, 'good.yaml');
writeFileSync(good, 'services:\n  - name: pay\n    endpoints:\n      - address: 127.0.0.1:9000\n');
const twoEndpoints = join(dir, 'two.yaml');
writeFileSync(twoEndpoints, 'services:\n  - name: pay\n    endpoints:\n      - address: 127.0.0.1:9000\n      - address: 127.0.0.1:9001\n');
const bad = join(dir, 'bad.yaml');
writeFileSync(bad, 'proxy:\n  connectTimeoutMs: soon\nservices: []\n');

t.test('a valid file: the validated config, frozen, with environment overrides', async (t) => {
  const r = await loadRunConfigIsolated({ configFile: good, env: { MESHMEDIC_ADMIN__LISTEN: '127.0.0.1:9999' } });
  t.ok(r.config.valid);
  if (!r.config.valid) return;
  t.equal(r.config.result.services[0]!.endpoints[0]!.address, '127.0.0.1:9000');
  t.equal(r.config.result.admin.listen, '127.0.0.1:9999', 'MESHMEDIC_* from the given environment');
  t.equal(r.config.result.outbound.listen, '127.0.0.1:17001', 'defaults filled in');
  t.ok(Object.isFrozen(r.config.result.services[0]!.endpoints[0]), 'deeply frozen');
  const r2 = await loadRunConfigIsolated({ configFile: twoEndpoints, env: {} });
  if (!r2.config.valid) return void t.fail('two endpoints: valid');
  const [one, two] = r2.config.result.services[0]!.endpoints;
  t.equal(one!.locality, two!.locality, 'equal localities of two endpoints: one shared object');
  t.equal(one!.labels, two!.labels, 'empty labels: one shared object');
  t.ok(Object.isFrozen(one!.locality));
  t.same(r.warnings, []);
});

t.test('errors name the field and the source', async (t) => {
  const r = await loadRunConfigIsolated({ configFile: bad, env: {} });
  t.notOk(r.config.valid);
  if (r.config.valid) return;
  t.equal(r.source, bad);
  t.match(r.config.errors.join('\n'), /\/proxy\/connectTimeoutMs: expected integer, got "soon"/);
  const missing = await loadRunConfigIsolated({ configFile: join(dir, 'nope.yaml'), env: {} });
  t.notOk(missing.config.valid);
  if (!missing.config.valid) t.match(missing.config.errors[0], /nope\.yaml: cannot read: ENOENT/);
  const workers = await loadRunConfigIsolated({ configFile: good, workers: 'many', env: {} });
  t.equal(workers.source, '--workers');
  if (!workers.config.valid) t.match(workers.config.errors.join('\n'), /^--workers/m, 'a bad --workers names the flag');
  else t.fail('--workers many accepted');
});

t.test('the built command validates the same way (the compiled child process)', async (t) => {
  const bin = fileURLToPath(new URL('../../bin/meshmedic.js', import.meta.url));
  const ok = spawnSync(process.execPath, [bin, 'run', '--check', '--config', good], { encoding: 'utf8', timeout: 60_000 });
  t.equal(ok.status, 0, `exit 0\n${ok.stderr}`);
  t.equal(JSON.parse(ok.stdout).services[0].name, 'pay', 'the validated config is printed');
  const no = spawnSync(process.execPath, [bin, 'run', '--check', '--config', bad], { encoding: 'utf8', timeout: 60_000 });
  t.equal(no.status, 2, 'a bad config exits 2');
  t.match(no.stderr, /invalid configuration \(.*bad\.yaml\):\n  - \/proxy\/connectTimeoutMs: expected integer, got "soon"/);
});
