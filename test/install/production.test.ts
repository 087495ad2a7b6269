// The production install: `npm pack` carries dist/, and `npm ci --omit=dev` in the unpacked package (no
// TypeScript, no dev dependencies, packages from the local npm cache) gives a working `meshmedic --help`.
import t, { type Test } from 'tap';
import { cpSync, existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// npm ci over ~180 packages takes a minute or more on a busy machine.
t.setTimeout(420_000);

const root = fileURLToPath(new URL('../../', import.meta.url));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** The environment of a user's shell: nothing inherited from the npm that runs these tests. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_(lifecycle|package|command|config_(omit|include|production|ignore_scripts))/i.test(k)) continue;
    env[k] = v;
  }
  return env;
}

function tempDir(t: Test, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('package.json builds on pack and on a development install, never for a dependent', async (t) => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string>; files: string[] };
  t.equal(pkg.scripts.prepack, 'npm run build --silent', 'npm pack/publish build dist/ first');
  t.equal(pkg.scripts.prepare, 'node scripts/prepare.mjs', 'prepare builds only where TypeScript is installed');
  t.notOk(pkg.scripts.postinstall ?? pkg.scripts.install ?? pkg.scripts.preinstall, 'no install hook runs for a dependent');
});

t.test('prepare: without TypeScript it keeps a built dist/ and refuses clearly when there is none', async (t) => {
  const dir = tempDir(t, 'meshmedic-prepare-');
  mkdirSync(join(dir, 'scripts'));
  cpSync(join(root, 'scripts', 'prepare.mjs'), join(dir, 'scripts', 'prepare.mjs'));
  writeFileSync(join(dir, 'package.json'), '{"name":"x","type":"module"}');
  const run = () => spawnSync(process.execPath, [join(dir, 'scripts', 'prepare.mjs')], { cwd: dir, encoding: 'utf8', env: cleanEnv() });
  const missing = run();
  t.equal(missing.status, 1, 'no dist/ and no TypeScript: the install fails');
  t.match(missing.stderr, /dist\/ is missing and TypeScript is not installed/);
  t.match(missing.stderr, /npm pack/);
  mkdirSync(join(dir, 'dist', 'cli'), { recursive: true });
  writeFileSync(join(dir, 'dist', 'cli', 'main.js'), '');
  const built = run();
  t.equal(built.status, 0, built.stderr);
  t.match(built.stdout, /using the dist\/ already built/);
});

t.test('npm pack, then npm ci --omit=dev in a clean directory, then meshmedic --help', async (t) => {
  if (!existsSync(join(root, 'dist', 'cli', 'main.js'))) t.fail('dist/ is not built: run `npm run build` (npm test does) before this test');
  const dir = tempDir(t, 'meshmedic-install-');
  // The pack lifecycle's build (prepack) is the same `tsc` that `npm test` has just run; skip it here.
  const packed = JSON.parse(execFileSync(npm, ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], { cwd: root, encoding: 'utf8', env: cleanEnv() })) as { filename: string; files: { path: string }[] }[];
  const files = packed[0]!.files.map((f) => f.path);
  for (const must of ['bin/meshmedic.js', 'dist/cli/main.js', 'dist/xds/proto.js', 'proto/istio/networking/v1alpha3/destination_rule.proto', 'scripts/prepare.mjs', 'package.json']) {
    t.ok(files.includes(must), `the package contains ${must}`);
  }
  t.notOk(files.some((f) => /^(src|test|bench)\//.test(f) || f.endsWith('.map')), 'no sources, tests, benchmarks or source maps');

  execFileSync('tar', ['-xzf', join(dir, packed[0]!.filename), '-C', dir]);
  const app = join(dir, 'package');
  cpSync(join(root, 'package-lock.json'), join(app, 'package-lock.json'));
  const ci = spawnSync(npm, ['ci', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: app, encoding: 'utf8', env: cleanEnv(), timeout: 300_000 });
  t.equal(ci.status, 0, `npm ci --omit=dev:\n${ci.stdout}\n${ci.stderr}`);
  t.match(ci.stdout + ci.stderr, /production install \(TypeScript not installed\)/, 'prepare ran and kept dist/');
  for (const dev of ['typescript', 'tap', 'tsx']) t.notOk(existsSync(join(app, 'node_modules', dev)), `${dev} (a dev dependency) is not installed`);

  const help = spawnSync(process.execPath, [join(app, 'bin', 'meshmedic.js'), '--help'], { cwd: app, encoding: 'utf8', timeout: 30_000 });
  t.equal(help.status, 0, help.stderr);
  t.match(help.stdout, /Usage: meshmedic <command>/);
  const version = spawnSync(process.execPath, [join(app, 'bin', 'meshmedic.js'), '--version'], { cwd: app, encoding: 'utf8', timeout: 30_000 });
  t.equal(version.status, 0, version.stderr);
});
