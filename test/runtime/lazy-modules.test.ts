// What a plain `meshmedic run` loads (docs/kubernetes.md, "Memory budget"): node:http2 only once a client
// speaks HTTP/2 to a listener, node:https (the Kubernetes API client) only in a pod, node:crypto only with a
// learned policy file. Runs the built command.
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../bin/meshmedic.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'mm-lazy-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

// Preloaded into the sidecar: at exit, the built-in modules it loaded (Node's own list) go to a file.
const preload = join(dir, 'modules-at-exit.mjs');
writeFileSync(preload, `import { writeFileSync } from 'node:fs';\nprocess.on('exit', () => writeFileSync(process.env.MODULES_FILE, JSON.stringify(process.moduleLoadList)));\n`);

/** Start `meshmedic run` on `config`; `use(outbound)` runs while it is up; then SIGTERM; the built-ins it loaded. */
async function builtinsLoaded(name: string, config: unknown, use: (outbound: string) => Promise<void>): Promise<string[]> {
  const file = join(dir, `${name}.yaml`);
  const modules = join(dir, `${name}.modules.json`);
  writeFileSync(file, JSON.stringify(config));
  const env: NodeJS.ProcessEnv = { ...process.env, MODULES_FILE: modules };
  for (const k of ['MESHMEDIC_K8S_DISCOVERY', 'MESHMEDIC_POD_ANNOTATIONS', 'MESHMEDIC_K8S_READINESS_GATE', 'NODE_OPTIONS']) delete env[k];
  // Through env(1) without NODE_OPTIONS: a test runner that tracks child processes (tap does) adds its own
  // preload to a node child's NODE_OPTIONS, and that loads node:crypto and node:inspector itself.
  const child = spawn('env', ['-u', 'NODE_OPTIONS', process.execPath, `--import=${preload}`, bin, 'run', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'], env });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const ready = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d: string) => {
      out += d;
      const line = out.split('\n').find((l) => l.includes('"meshmedic ready"'));
      if (line) resolve((JSON.parse(line) as { addresses: { outbound: string } }).addresses.outbound);
    });
    child.once('exit', (code) => reject(new Error(`meshmedic run exited (${code}) before it was ready:\n${out}\n${err}`)));
  });
  try {
    await use(ready);
  } finally {
    child.kill('SIGTERM');
  }
  const code = await exited;
  t.equal(code, 0, `${name}: clean exit`, code === 0 ? {} : { stderr: err });
  return (JSON.parse(readFileSync(modules, 'utf8')) as string[]).filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice('NativeModule '.length));
}

let backend: Server;
let backendPort = 0;
t.before(async () => {
  backend = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  backendPort = (backend.address() as { port: number }).port;
});
t.teardown(() => new Promise<void>((r) => backend.close(() => r())));

const config = () => ({
  node: { id: 'lazy-modules' },
  admin: { listen: '127.0.0.1:0' },
  outbound: { listen: '127.0.0.1:0' },
  services: [{ name: 'hot', endpoints: [{ address: `127.0.0.1:${backendPort}` }] }],
});

t.test('HTTP/1.1 traffic only: neither node:http2 nor node:https is loaded', async (t) => {
  const loaded = await builtinsLoaded('http1', config(), async (outbound) => {
    const [host, port] = [outbound.slice(0, outbound.lastIndexOf(':')), Number(outbound.slice(outbound.lastIndexOf(':') + 1))];
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      request({ host, port, path: '/', headers: { host: 'hot' } }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      }).on('error', reject).end();
    });
    t.equal(status, 200, 'proxied');
    t.equal(body, 'ok');
  });
  t.ok(loaded.includes('http'), 'the list is read (node:http is loaded)');
  t.notOk(loaded.includes('http2'), 'node:http2 not loaded');
  t.notOk(loaded.includes('https'), 'node:https not loaded');
  t.notOk(loaded.includes('crypto'), 'node:crypto not loaded (only a learned policy file needs it)');
});

t.test('the first HTTP/2 client loads node:http2 and is served', async (t) => {
  const loaded = await builtinsLoaded('h2c', config(), async (outbound) => {
    const session = http2.connect(`http://${outbound}`);
    try {
      const status = await new Promise<number>((resolve, reject) => {
        session.once('error', reject);
        const req = session.request({ ':path': '/', ':authority': 'hot' }, { endStream: true });
        req.once('error', reject);
        req.once('response', (h) => resolve(Number(h[':status'])));
        req.resume();
      });
      // The service speaks HTTP/1.1: the h2c forwarding answers (502) rather than hanging up.
      t.ok(status >= 200 && status < 600, `an HTTP/2 answer (${status})`);
    } finally {
      session.close();
    }
  });
  t.ok(loaded.includes('http2'), 'node:http2 loaded with the first HTTP/2 connection');
});
