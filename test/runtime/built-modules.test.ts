// The built modules a sidecar keeps (docs/kubernetes.md, "Memory budget"): V8 keeps every loaded module's
// source text on the heap, so dist/ is emitted without comments (most of them held characters outside
// Latin-1, which made a whole file's source a two-byte string), and the dashboard's files load with the
// first request for them. Runs the built command.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const dist = join(root, 'dist');
const bin = join(root, 'bin', 'meshmedic.js');

function jsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? jsFiles(join(dir, e.name)) : e.name.endsWith('.js') ? [join(dir, e.name)] : []));
}

t.test('dist/ is emitted without comments', async (t) => {
  const config = JSON.parse(readFileSync(join(root, 'tsconfig.json'), 'utf8')) as { compilerOptions: { removeComments?: boolean } };
  t.equal(config.compilerOptions.removeComments, true, 'tsconfig.json: removeComments');
  const files = jsFiles(dist);
  t.ok(files.length > 100, `the build is there (${files.length} modules; run tsc -p tsconfig.json first)`);
  const commented = files.filter((f) => readFileSync(f, 'utf8').split('\n').some((l) => /^\s*(\/\/(?!# sourceMappingURL=)|\/\*)/.test(l)));
  t.same(commented.map((f) => relative(root, f)), [], 'no module of the build has a comment line (rebuild if this lists files)');
});

t.test('a plain run loads the dashboard\'s files only when asked for them', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mm-own-modules-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const loaded = join(dir, 'loaded.txt');
  // A module hook (it runs on its own thread) appends every module URL the sidecar loads to a file.
  const hooks = join(dir, 'hooks.mjs');
  writeFileSync(hooks, `import { appendFileSync } from 'node:fs';\nexport async function load(url, context, next) {\n  appendFileSync(${JSON.stringify(loaded)}, url + '\\n');\n  return next(url, context);\n}\n`);
  const preload = join(dir, 'preload.mjs');
  writeFileSync(preload, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
  const file = join(dir, 'run.json');
  writeFileSync(file, JSON.stringify({ node: { id: 'own-modules' }, admin: { listen: '127.0.0.1:0' }, outbound: { listen: '127.0.0.1:0' }, services: [{ name: 'svc', endpoints: [{ address: '127.0.0.1:9' }] }] }));
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ['MESHMEDIC_K8S_DISCOVERY', 'MESHMEDIC_POD_ANNOTATIONS', 'MESHMEDIC_K8S_READINESS_GATE', 'NODE_OPTIONS']) delete env[k];
  // Through env(1) without NODE_OPTIONS: a test runner that tracks child processes adds its own preload.
  const child = spawn('env', ['-u', 'NODE_OPTIONS', process.execPath, `--import=${preload}`, bin, 'run', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'], env });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  let out = '';
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const admin = await new Promise<string>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const line = out.split('\n').find((l) => l.includes('"meshmedic ready"'));
      if (line) resolve((JSON.parse(line) as { addresses: { admin: string } }).addresses.admin);
    });
    child.once('exit', (code) => reject(new Error(`meshmedic run exited (${code}) before it was ready:\n${out}\n${err}`)));
  });
  const assets = pathToFileURL(join(dist, 'admin', 'ui', 'assets.js')).href;
  const urls = () => (existsSync(loaded) ? readFileSync(loaded, 'utf8').split('\n') : []);
  t.ok(urls().includes(pathToFileURL(join(dist, 'cli', 'main.js')).href), 'the list is written (the CLI module is in it)');
  t.notOk(urls().includes(assets), 'ready: the dashboard\'s files are not loaded');
  const [page, script] = await Promise.all([fetch(`http://${admin}/ui/`), fetch(`http://${admin}/ui/app.js`)]);
  t.equal(page.status, 200, 'the first requests (two at once) are served');
  t.match(page.headers.get('content-type'), /^text\/html/);
  t.equal(script.status, 200);
  t.ok((await script.text()).length > 1000, 'with the file\'s body');
  t.ok(urls().includes(assets), 'loaded by the first request');
  t.equal((await fetch(`http://${admin}/ui/nope.js`)).status, 404, 'an unknown file is still a 404');
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'clean exit');
});
