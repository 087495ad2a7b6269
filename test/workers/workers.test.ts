// proxy.workers with real processes: two workers share the listener and both serve; one healing engine
// (a fault is decided once and every worker stops sending to the ejected endpoint); /metrics counts are the
// sum of what the client sent; a killed worker is replaced while the other's in-flight request completes;
// bad settings are named errors.
import { execFileSync, spawnSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { startBackend } from '../../src/testing/backend.js';
import { BIN, startMeshmedic, type Running } from '../helpers/spawn.js';
import { parsePromText } from '../helpers/prom-text.js';
import { request, until } from '../proxy/helpers.js';
import { reusePortAvailable } from '../../src/workers/sharing.js';

const portOf = (hostPort: string): number => Number(hostPort.slice(hostPort.lastIndexOf(':') + 1));

async function scrape(mm: Running): Promise<Map<string, number>> {
  const r = await request(portOf(mm.addresses.admin!), { path: '/metrics' });
  return parsePromText(r.body);
}

/** Sum of the samples of one metric (every label set), optionally only those whose labels contain `having`. */
function total(m: Map<string, number>, name: string, having = ''): number {
  let n = 0;
  for (const [series, v] of m) if ((series === name || series.startsWith(`${name}{`)) && series.includes(having)) n += v;
  return n;
}

/** Poll /metrics until `ok` holds (deltas arrive once per tick); the bound only guards against a hang. */
async function scrapeUntil(mm: Running, ok: (m: Map<string, number>) => boolean, what: string, ms = 20_000): Promise<Map<string, number>> {
  const end = Date.now() + ms;
  for (;;) {
    const m = await scrape(mm);
    if (ok(m)) return m;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last scrape:\n${[...m].filter(([k]) => k.startsWith('meshmedic_proxy_worker') || k.startsWith('meshmedic_requests_total')).map(([k, v]) => `${k} ${v}`).join('\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `n` requests, each on its own connection (so that connections spread over the workers), `parallel` at a time. */
async function send(port: number, n: number, parallel = 8, path = '/'): Promise<number[]> {
  const statuses: number[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < n) {
      next++;
      statuses.push((await request(port, { path })).status);
    }
  }));
  return statuses;
}

/** The worker process (a child of the primary) holding the accepted end of a client connection. */
function ownerOf(primaryPid: number, proxyPort: number, clientPort: number): number | undefined {
  const out = execFileSync('ss', ['-Htnp', 'state', 'established', `( sport = :${proxyPort} and dport = :${clientPort} )`], { encoding: 'utf8' });
  const pid = /pid=(\d+)/.exec(out)?.[1];
  if (pid === undefined) return undefined;
  return workerPids(primaryPid).includes(Number(pid)) ? Number(pid) : undefined;
}

/** The primary's child processes (ps exits 1 when there is none). */
const workerPids = (primaryPid: number): number[] =>
  spawnSync('ps', ['-o', 'pid=', '--ppid', String(primaryPid)], { encoding: 'utf8' }).stdout.split('\n').map((s) => Number(s.trim())).filter(Boolean);

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const SHARING = process.env.MESHMEDIC_TEST_WORKER_SHARING ?? 'auto';

t.test('two workers: both serve, one engine decides once, every worker follows, metrics are the sum', async (t) => {
  const b1 = await startBackend({ port: 0, controlPort: null, id: 'b1' });
  const b2 = await startBackend({ port: 0, controlPort: null, id: 'b2' });
  t.teardown(() => Promise.all([b1.close(), b2.close()]));
  const env = { MESHMEDIC_PROXY__WORKERSHARING: SHARING };
  const mm = await startMeshmedic(t, ['proxy', '--listen', '127.0.0.1:0', '--upstream', `http://127.0.0.1:${b1.port},http://127.0.0.1:${b2.port}`, '--admin', '127.0.0.1:0', '--workers', '2', '--log-level', 'info'], { env });
  const proxy = portOf(mm.addresses.outbound!);
  const pids = workerPids(mm.child.pid!);
  const expected = SHARING !== 'auto' ? SHARING : (await reusePortAvailable()) ? 'reuseport' : 'primary-distributes';
  t.match(mm.stderr(), `"msg":"proxy workers started","workers":2,"sharing":"${expected}"`, `the start-up log says how many workers and how they share the port (${expected} on Node ${process.version})`);

  const sent = 200;
  const statuses = await send(proxy, sent);
  t.same(statuses.filter((s) => s !== 200), [], 'every request answered 200');
  const m = await scrapeUntil(mm, (m) => total(m, 'meshmedic_requests_total') === sent, `meshmedic_requests_total = ${sent}`);
  t.equal(total(m, 'meshmedic_proxy_worker_requests_total'), sent, 'per-worker counters add up to what the client sent');
  const w0 = total(m, 'meshmedic_proxy_worker_requests_total', 'worker="0"');
  const w1 = total(m, 'meshmedic_proxy_worker_requests_total', 'worker="1"');
  t.ok(w0 > 0 && w1 > 0, `both workers served requests (worker 0: ${w0}, worker 1: ${w1})`);
  t.equal(b1.stats().requests + b2.stats().requests, sent, 'the backends saw exactly what was sent');
  t.equal(total(m, 'meshmedic_proxy_workers'), 2, 'meshmedic_proxy_workers says 2 alive');
  t.equal(m.get(`meshmedic_proxy_workers{sharing="${expected}"}`), 2, '…and the sharing mode');

  // A hard fault on b1: the one engine ejects it once, whatever worker saw the failures.
  b1.setFault({ kind: 'errors', status: 500, fraction: 1 });
  const id1 = `default/127.0.0.1:${b1.port}`;
  const admin = portOf(mm.addresses.admin!);
  type Events = { events: { action: string; target: string; applied?: boolean }[] };
  const ejections = async (): Promise<number> => ((JSON.parse((await request(admin, { path: '/v1/events' })).body) as Events).events.filter((e) => e.action === 'eject' && e.target === id1).length);
  const end = Date.now() + 30_000;
  while ((await ejections()) === 0) {
    if (Date.now() > end) throw new Error('b1 never ejected');
    await send(proxy, 10, 2);
  }
  const view = JSON.parse((await request(admin, { path: '/v1/endpoints' })).body) as { version: number; endpoints: { id: string; state: string }[] };
  t.equal(view.endpoints.find((e) => e.id === id1)?.state, 'ejected');
  // Every worker acknowledges the snapshot that ejected b1 before traffic is counted.
  await scrapeUntil(mm, (m) => total(m, 'meshmedic_proxy_worker_mesh_version', 'worker="0"') >= view.version && total(m, 'meshmedic_proxy_worker_mesh_version', 'worker="1"') >= view.version, 'both workers to apply the ejection');
  const before = b1.stats().requests;
  const w0Before = total(await scrape(mm), 'meshmedic_proxy_worker_requests_total', 'worker="0"');
  const after = await send(proxy, 100);
  t.same(after.filter((s) => s !== 200), [], 'after the ejection every request succeeds (b2)');
  t.equal(b1.stats().requests, before, 'no worker sends to the ejected endpoint');
  const m2 = await scrapeUntil(mm, (m) => total(m, 'meshmedic_proxy_worker_requests_total') >= total(m, 'meshmedic_requests_total') && total(m, 'meshmedic_requests_total') >= sent + 100, 'the last deltas');
  const w0After = total(m2, 'meshmedic_proxy_worker_requests_total', 'worker="0"');
  t.ok(w0After > w0Before && total(m2, 'meshmedic_proxy_worker_requests_total') - w0After > w1, 'both workers served after the ejection');
  t.equal(await ejections(), 1, 'the fault was decided once (one eject event)');
  t.equal(total(m2, 'meshmedic_decisions_total', 'action="eject"'), 1, 'meshmedic_decisions_total counts one ejection');

  mm.child.kill('SIGTERM');
  t.equal(await mm.exited, 0, 'exit 0 after draining every worker');
  t.same(pids.filter(alive), [], 'no worker left behind');
});

t.test('kill -9 one worker: it is replaced, the other worker’s in-flight request completes', async (t) => {
  // A backend that holds /hold until the test releases it.
  const held: http.ServerResponse[] = [];
  const slow = http.createServer((req, res) => {
    if (req.url === '/hold') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('started;');
      held.push(res);
    } else res.end('ok');
  });
  await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => { for (const res of held) res.destroy(); slow.closeAllConnections(); slow.close(() => r()); }));
  const port = (slow.address() as AddressInfo).port;
  const mm = await startMeshmedic(t, ['proxy', '--listen', '127.0.0.1:0', '--upstream', `http://127.0.0.1:${port}`, '--admin', '127.0.0.1:0', '--workers', '2', '--log-level', 'info'], { env: { MESHMEDIC_PROXY__WORKERSHARING: SHARING } });
  const proxy = portOf(mm.addresses.outbound!);
  const workers = workerPids(mm.child.pid!);
  t.equal(workers.length, 2, 'two worker processes');

  // The long request: its connection's owner is the worker that must survive.
  let body = '';
  let clientPort = 0;
  const done = new Promise<number>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxy, path: '/hold', agent: false }, (res) => {
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => resolve(res.statusCode!));
      res.on('error', reject);
    });
    req.on('socket', (s) => s.on('connect', () => (clientPort = s.localPort!)));
    req.on('error', reject);
    req.end();
  });
  await until(() => held.length === 1 && body === 'started;', 20_000, 'the long request to be in flight');
  const owner = ownerOf(mm.child.pid!, proxy, clientPort);
  t.ok(owner !== undefined && workers.includes(owner), `the long request is held by worker pid ${owner}`);
  const victim = workers.find((p) => p !== owner)!;
  process.kill(victim, 'SIGKILL');
  await scrapeUntil(mm, (m) => total(m, 'meshmedic_proxy_worker_restarts_total') === 1 && total(m, 'meshmedic_proxy_workers') === 2, 'the killed worker to be replaced');
  await until(() => mm.stderr().includes('"msg":"proxy worker replaced"'), 20_000, 'the replacement to be ready');
  const now = workerPids(mm.child.pid!);
  t.equal(now.length, 2, 'two workers again');
  t.ok(now.includes(owner!) && !now.includes(victim), 'the surviving worker kept running; the killed one is gone');
  held[0]!.end('finished');
  t.equal(await done, 200);
  t.equal(body, 'started;finished', 'the in-flight request on the other worker completed whole');
  const after = await send(proxy, 40, 4);
  t.same(after.filter((s) => s !== 200), [], 'the pair serves again');
  mm.child.kill('SIGTERM');
  t.equal(await mm.exited, 0);
});

t.test('bad workers settings are named errors', async (t) => {
  const upstream = ['proxy', '--listen', '127.0.0.1:0', '--upstream', 'http://127.0.0.1:9'];
  for (const bad of ['0', '-1', 'many', '1.5', '257']) {
    const r = spawnSync(process.execPath, [BIN, ...upstream, '--workers', bad], { encoding: 'utf8' });
    t.equal(r.status, 2, `--workers ${bad}: exit 2`);
    t.match(r.stderr, /--workers/, `--workers ${bad}: the error names the flag`);
  }
  const env = { ...process.env, MESHMEDIC_PROXY__WORKERS: 'none' };
  const e = spawnSync(process.execPath, [BIN, ...upstream], { encoding: 'utf8', env });
  t.equal(e.status, 2, 'MESHMEDIC_PROXY__WORKERS=none: exit 2');
  t.match(e.stderr, /workers/);
  const s = spawnSync(process.execPath, [BIN, ...upstream, '--workers', '2'], { encoding: 'utf8', env: { ...process.env, MESHMEDIC_PROXY__WORKERSHARING: 'sometimes' } });
  t.equal(s.status, 2, 'an unknown workerSharing: exit 2');
  t.match(s.stderr, /workerSharing/);
  // reuseport asked of a Node that cannot: a named error; where it can, it runs in that mode (test above).
  if (!(await reusePortAvailable())) {
    const r = spawnSync(process.execPath, [BIN, ...upstream, '--workers', '2'], { encoding: 'utf8', env: { ...process.env, MESHMEDIC_PROXY__WORKERSHARING: 'reuseport' } });
    t.equal(r.status, 2, `reuseport on Node ${process.version}: exit 2`);
    t.match(r.stderr, /MM_ERR_WORKER_SHARING: proxy\.workerSharing: "reuseport" is not available/);
  }
});
