// Memory budget of a sidecar at cluster scale: RSS of `meshmedic run` knowing 2,000 endpoints with traffic
// to 10 of them (after 10 s of load, then idle) — from its config file (as a user starts it, without the
// V8 heap flags the command sets itself, and with the injector's NODE_OPTIONS), and as in a pod, discovered from a
// local HTTPS server answering the Kubernetes API's list+watch, without and with the pod's annotations file — RSS of an idle one-endpoint sidecar, and
// the bytes one active or one known-but-idle endpoint costs in the stats tables. Writes
// bench/results/memory.json and its section of bench/README.md. `--quick`: 3 s of load, no writing unless --write.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, request, Agent, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { renderMarkdown, renderText, replaceSection, type Table } from '../lib/report.js';
import { EndpointWindows, StatsTable, DEFAULT_WINDOWS, newHistogram } from '../../src/stats/window.js';
import { Outcome } from '../../src/core/types.js';
import { smallFootprintNodeOptions } from '../../src/k8s/inject.js';
import { makeSelfSignedCert } from '../../test/helpers/openssl.js';
import { endpointSlice, service } from '../../test/k8s/fake-apiserver.js';
import { formatDownwardAnnotations } from '../../src/k8s/downward.js';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = new Set(process.argv.slice(2));
const quick = args.has('--quick');
const write = !quick || args.has('--write');
const LOAD_MS = quick ? 3_000 : 10_000;
const SETTLE_MS = quick ? 3_000 : 5_000; // the young generation shrinks ~1–1.5 s after the load ends
const KNOWN = 2_000;
const HOT = 10;
const MAX_REQUESTS = 200_000; // every load loop bounded in count and time
/** NODE_OPTIONS and MESHMEDIC_V8_FOOTPRINT of an injected sidecar with the injector's defaults (footprint small, 256Mi limit). */
const INJECTED_NODE_OPTIONS = smallFootprintNodeOptions('256Mi');
const INJECTED_ENV = { MESHMEDIC_V8_FOOTPRINT: 'small' };
const log = (m: string) => process.stderr.write(`[memory] ${m}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rssKb(pid: number): { rss: number; hwm: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const get = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN);
  return { rss: get('VmRSS'), hwm: get('VmHWM') };
}

async function backends(n: number): Promise<{ ports: number[]; close(): Promise<void> }> {
  const servers: Server[] = [];
  const body = Buffer.alloc(256, 'x');
  for (let i = 0; i < n; i++) {
    const s = createServer((_req, res) => res.writeHead(200, { 'content-length': body.length }).end(body));
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    servers.push(s);
  }
  return {
    ports: servers.map((s) => (s.address() as { port: number }).port),
    close: async () => { for (const s of servers) { s.closeAllConnections(); await new Promise((r) => s.close(r)); } },
  };
}

async function startSidecar(config: unknown, dir: string, name: string, nodeOptions = '', env: Record<string, string> = {}): Promise<{ child: ChildProcess; outbound: string; admin: string; stop(): Promise<void> }> {
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(file, stringify(config));
  const child = spawn(process.execPath, [path.join(root, 'bin', 'meshmedic.js'), 'run', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: nodeOptions, ...env } });
  const exited = new Promise((r) => child.once('exit', r));
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.resume();
  const started = Date.now();
  for (;;) {
    const line = out.split('\n').find((l) => l.includes('"meshmedic ready"'));
    if (line) return {
      child,
      outbound: (JSON.parse(line) as { addresses: { outbound: string } }).addresses.outbound,
      admin: (JSON.parse(line) as { addresses: { admin: string } }).addresses.admin,
      stop: async () => { child.kill('SIGKILL'); await exited; },
    };
    if (child.exitCode !== null || Date.now() - started > 30_000) { child.kill('SIGKILL'); throw new Error(`sidecar did not start:\n${out}`); }
    await sleep(50);
  }
}

const baseConfig = (services: unknown[]) => ({
  node: { id: 'bench-memory' },
  admin: { listen: '127.0.0.1:0' },
  outbound: { listen: '127.0.0.1:0' },
  services,
});

/**
 * A local HTTPS server answering the Kubernetes API's namespaced list and watch of Services and
 * EndpointSlices: `services` Services of 10 endpoints each (addresses in 127.0.0.0/8 nothing listens on).
 * Watches stay open with no events. `watches` counts the open ones (2 = both lists done).
 */
async function fakeKubernetesApi(dir: string, namespace: string, services: number): Promise<{ port: number; ca: string; watches(): number; close(): Promise<void> }> {
  const { cert, key } = makeSelfSignedCert(dir, 'apiserver', 'kubernetes', 'IP:127.0.0.1');
  const svcs: unknown[] = [];
  const slices: unknown[] = [];
  for (let i = 0; i < services; i++) {
    svcs.push(service(namespace, `idle-${i}`, [{ port: 80 }]));
    slices.push(endpointSlice(namespace, `idle-${i}`, 'a', [{ port: 20_000 }], Array.from({ length: 10 }, (_, j) => ({ ip: `127.${2 + (i >> 8)}.${i & 255}.${1 + j}` }))));
  }
  const open = new Set<ServerResponse>();
  const server = createHttpsServer({ cert: readFileSync(cert), key: readFileSync(key) }, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://x');
    const kind = url.pathname === `/api/v1/namespaces/${namespace}/services` ? svcs : url.pathname === `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices` ? slices : undefined;
    if (kind === undefined) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"kind":"Status","code":404}');
    res.writeHead(200, { 'content-type': 'application/json' });
    if (url.searchParams.get('watch') !== 'true') return void res.end(JSON.stringify({ metadata: { resourceVersion: '1' }, items: kind }));
    res.flushHeaders();
    open.add(res);
    res.on('close', () => open.delete(res));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    ca: cert,
    watches: () => open.size,
    close: async () => { for (const r of open) r.destroy(); server.closeAllConnections(); await new Promise((r) => server.close(r)); },
  };
}

/** Series in one scrape of the admin /metrics (text exposition: every line that is not a comment). */
async function seriesCount(admin: string): Promise<number> {
  const res = await fetch(`http://${admin}/metrics`);
  if (!res.ok) throw new Error(`GET /metrics: ${res.status}`);
  return (await res.text()).split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
}

/** Keep `concurrency` requests in flight to the hot service for `ms` (at most MAX_REQUESTS). */
async function load(outbound: string, ms: number, concurrency = 8): Promise<{ sent: number; failed: number }> {
  const [host, port] = [outbound.slice(0, outbound.lastIndexOf(':')), Number(outbound.slice(outbound.lastIndexOf(':') + 1))];
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const until = Date.now() + ms;
  let sent = 0;
  let failed = 0;
  const worker = async () => {
    while (Date.now() < until && sent < MAX_REQUESTS) {
      sent++;
      const ok = await new Promise<boolean>((resolve) => {
        const req = request({ host, port, agent, path: '/', headers: { host: 'hot' } }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode === 200)); });
        req.on('error', () => resolve(false));
        req.end();
      });
      if (!ok) failed++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  agent.destroy();
  return { sent, failed };
}

/**
 * Bytes one endpoint's stats cost, measured in this process: heap + array buffers over `n` of them.
 * `active`: 50 requests in each window of the ring, latencies spread over 200 µs–40 ms; `everyBin`: the
 * bound, one request in every histogram bin of every window (latencies spread over 1 µs–60 s each second).
 */
function bytesPerEndpoint(active: boolean, n = 500, everyBin = false): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc (npm run bench:memory does)');
  const used = () => { gc(); gc(); const m = process.memoryUsage(); return m.heapUsed + m.arrayBuffers; };
  const bins = newHistogram(DEFAULT_WINDOWS);
  const before = used();
  const table = new StatsTable(DEFAULT_WINDOWS);
  for (let s = 0; s < n; s++) {
    const w = table.ensure(s);
    if (active) for (let e = 0; e < DEFAULT_WINDOWS.windows; e++) for (let i = 0; i < 50; i++) w.recordEpoch(Outcome.Success, 200 + ((s * 31 + i * 797) % 40_000), 1_000 + e);
    if (everyBin) for (let e = 0; e < DEFAULT_WINDOWS.windows; e++) for (let i = 0; i < bins.countsArrayLength; i++) w.recordEpoch(Outcome.Success, bins.valueFromIndex(i), 1_000 + e);
  }
  const after = used();
  if (table.get(n - 1) === undefined) throw new Error('unreachable');
  return Math.round((after - before) / n);
}

const started = Date.now();
const dir = mkdtempSync(path.join(tmpdir(), 'meshmedic-memory-'));
const results: Record<string, number | string> = {};
try {
  // 1. One endpoint, no traffic: as `meshmedic run` starts by default, then with the V8 heap flags the
  //    injector gives a sidecar (footprint small, see docs/kubernetes.md).
  for (const [key, nodeOptions] of [['', ''], ['Injected', INJECTED_NODE_OPTIONS]] as const) {
    const b = await backends(1);
    const s = await startSidecar(baseConfig([{ name: 'hot', endpoints: [{ address: `127.0.0.1:${b.ports[0]}` }] }]), dir, `one${key}`, nodeOptions, nodeOptions ? INJECTED_ENV : {});
    await sleep(SETTLE_MS);
    const m = rssKb(s.child.pid!);
    results[`oneEndpointIdle${key}RssMB`] = +(m.rss / 1024).toFixed(1);
    log(`one endpoint, idle${nodeOptions ? `, NODE_OPTIONS=${nodeOptions}` : ''}: RSS ${results[`oneEndpointIdle${key}RssMB`]} MB`);
    await s.stop();
    await b.close();
  }
  // 2. 2,000 known endpoints, traffic to 10: as a user starts it (the command sets its own V8 heap flags),
  //    without those (MESHMEDIC_V8_FOOTPRINT=default: V8's own sizing), and with the injector's NODE_OPTIONS.
  for (const [key, nodeOptions, env] of [['', '', {}], ['V8Default', '', { MESHMEDIC_V8_FOOTPRINT: 'default' }], ['Injected', INJECTED_NODE_OPTIONS, INJECTED_ENV]] as const) {
    const b = await backends(HOT);
    const services: unknown[] = [{ name: 'hot', endpoints: b.ports.map((p) => ({ address: `127.0.0.1:${p}` })) }];
    // Idle endpoints: addresses in 127.0.0.0/8 that nothing listens on and no request is sent to.
    for (let i = 0; services.length * 10 < KNOWN; i++) {
      services.push({ name: `idle-${i}`, endpoints: Array.from({ length: 10 }, (_, j) => ({ address: `127.0.${1 + (i >> 8)}.${i & 255}:${20_000 + j}` })) });
    }
    const s = await startSidecar(baseConfig(services), dir, `known2000${key}`, nodeOptions, env);
    await sleep(1_000);
    const before = rssKb(s.child.pid!);
    const l = await load(s.outbound, LOAD_MS);
    const afterLoad = rssKb(s.child.pid!);
    await sleep(SETTLE_MS);
    const idle = rssKb(s.child.pid!);
    const series = await seriesCount(s.admin);
    Object.assign(results, {
      knownEndpoints: KNOWN, activeEndpoints: HOT, loadSeconds: LOAD_MS / 1000, [`requests${key}`]: l.sent, [`failedRequests${key}`]: l.failed,
      [`knownIdleRssBeforeLoad${key}MB`]: +(before.rss / 1024).toFixed(1),
      [`knownRssAfterLoad${key}MB`]: +(afterLoad.rss / 1024).toFixed(1),
      [`knownRssIdleAfterLoad${key}MB`]: +(idle.rss / 1024).toFixed(1),
      [`knownPeakRss${key}MB`]: +(idle.hwm / 1024).toFixed(1),
      [`series${key}`]: series,
    });
    log(`2,000 known, 10 active${nodeOptions ? `, NODE_OPTIONS=${nodeOptions}` : ''}${key === 'V8Default' ? ', MESHMEDIC_V8_FOOTPRINT=default' : ''}: before ${(before.rss / 1024).toFixed(1)} MB, after ${LOAD_MS / 1000} s load ${(afterLoad.rss / 1024).toFixed(1)} MB (${l.sent} requests, ${l.failed} failed), idle ${(idle.rss / 1024).toFixed(1)} MB, peak ${(idle.hwm / 1024).toFixed(1)} MB, ${series} series`);
    await s.stop();
    await b.close();
    if (l.failed > l.sent * 0.01) throw new Error(`${l.failed} of ${l.sent} requests failed`);
  }
  // 3. As in a pod: the hot service from the config file, the 2,000 others discovered through the
  //    Kubernetes API (list+watch over HTTPS, the in-cluster target), with the injector's flags; then the
  //    same with the pod's annotations file (downward API), which the injector always mounts: the sidecar
  //    watches it for live tuning.
  const annotationsFile = path.join(dir, 'annotations');
  writeFileSync(annotationsFile, formatDownwardAnnotations({ 'meshmedic.io/consecutive-5xx': '7', 'meshmedic.io/log-level': 'info' }));
  for (const [key, podEnv] of [['', {}], ['Annotated', { MESHMEDIC_POD_ANNOTATIONS: annotationsFile }]] as const) {
    const ns = 'bench';
    const api = await fakeKubernetesApi(dir, ns, KNOWN / 10 - 1);
    const b = await backends(HOT);
    try {
      const s = await startSidecar(baseConfig([{ name: 'hot', endpoints: b.ports.map((p) => ({ address: `127.0.0.1:${p}` })) }]), dir, `pod${key}`, INJECTED_NODE_OPTIONS, {
        ...INJECTED_ENV, MESHMEDIC_K8S_DISCOVERY: 'true', KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(api.port), POD_NAMESPACE: ns, NODE_EXTRA_CA_CERTS: api.ca, ...podEnv,
      });
      try {
        for (const until = Date.now() + 30_000; api.watches() < 2; await sleep(50)) if (Date.now() > until) throw new Error('discovery did not list and watch within 30 s');
        await sleep(1_000); // discovery applies the lists after a short debounce
        const before = rssKb(s.child.pid!);
        const l = await load(s.outbound, LOAD_MS);
        await sleep(SETTLE_MS);
        const idle = rssKb(s.child.pid!);
        const series = await seriesCount(s.admin);
        Object.assign(results, {
          [`pod${key}Requests`]: l.sent,
          [`pod${key}RssBeforeLoadMB`]: +(before.rss / 1024).toFixed(1),
          [`pod${key}RssIdleAfterLoadMB`]: +(idle.rss / 1024).toFixed(1),
          [`pod${key}PeakRssMB`]: +(idle.hwm / 1024).toFixed(1),
          [`pod${key}Series`]: series,
        });
        log(`as in a pod${key ? ', with the pod annotations file' : ''} (2,000 endpoints discovered, NODE_OPTIONS=${INJECTED_NODE_OPTIONS}): before ${results[`pod${key}RssBeforeLoadMB`]} MB, idle after ${LOAD_MS / 1000} s load ${results[`pod${key}RssIdleAfterLoadMB`]} MB (${l.sent} requests, ${l.failed} failed), peak ${results[`pod${key}PeakRssMB`]} MB, ${series} series`);
        if (l.failed > l.sent * 0.01) throw new Error(`${l.failed} of ${l.sent} requests failed`);
      } finally {
        await s.stop();
      }
    } finally {
      await b.close();
      await api.close();
    }
  }
  // 4. Bytes per endpoint in the stats tables.
  results.statsBytesPerActiveEndpoint = bytesPerEndpoint(true);
  results.statsBytesPerKnownIdleEndpoint = bytesPerEndpoint(false, 5_000); // ~150 bytes each: many, for a figure above the noise
  results.statsBytesPerActiveEndpointEveryBin = bytesPerEndpoint(false, 100, true);
  results.hdrBytesPerActiveEndpoint = (() => { const w = new EndpointWindows(DEFAULT_WINDOWS); for (let e = 0; e < DEFAULT_WINDOWS.windows; e++) w.recordEpoch(Outcome.Success, 500, e); return w.memoryBytes(); })();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const table: Table = {
  columns: ['measure', 'value', 'target'],
  rows: [
    ['RSS, 1 endpoint, idle (MB)', results.oneEndpointIdleRssMB, '–'],
    [`as injected (NODE_OPTIONS=${INJECTED_NODE_OPTIONS}): RSS, 1 endpoint, idle (MB)`, results.oneEndpointIdleInjectedRssMB, '–'],
    ['RSS, 2,000 known endpoints, before traffic (MB)', results.knownIdleRssBeforeLoadMB, '–'],
    [`RSS, 2,000 known, 10 active, at the end of ${LOAD_MS / 1000} s of load (MB; the young generation grows only when its scavenges are costly, see docs/kubernetes.md)`, results.knownRssAfterLoadMB, '–'],
    [`RSS, same, ${SETTLE_MS / 1000} s idle after the load (MB)`, results.knownRssIdleAfterLoadMB, '≤ 64'],
    ['peak RSS of that run (MB)', results.knownPeakRssMB, '–'],
    ['requests in the load (8 in flight)', results.requests, '–'],
    ['series in one scrape of /metrics after the load', results.series, '≤ 120'],
    ['V8\'s own heap sizing (MESHMEDIC_V8_FOOTPRINT=default): RSS after the load (MB)', results.knownRssAfterLoadV8DefaultMB, '–'],
    ['V8\'s own heap sizing: RSS idle after the load (MB)', results.knownRssIdleAfterLoadV8DefaultMB, '–'],
    ['as injected: RSS, 2,000 known, before traffic (MB)', results.knownIdleRssBeforeLoadInjectedMB, '–'],
    ['as injected: RSS at the end of the load (MB)', results.knownRssAfterLoadInjectedMB, '–'],
    ['as injected: RSS idle after the load (MB)', results.knownRssIdleAfterLoadInjectedMB, '≤ 64'],
    ['as injected: peak RSS of that run (MB)', results.knownPeakRssInjectedMB, '–'],
    ['as injected: requests in the load', results.requestsInjected, '–'],
    ['as in a pod (injected flags, 1,990 endpoints discovered over the API): RSS before traffic (MB)', results.podRssBeforeLoadMB, '–'],
    ['as in a pod: RSS idle after the load (MB)', results.podRssIdleAfterLoadMB, '≤ 64'],
    ['as in a pod: peak RSS of that run (MB)', results.podPeakRssMB, '–'],
    ['as in a pod: series in one scrape after the load', results.podSeries, '≤ 120'],
    ['as in a pod, with the pod annotations file (live tuning, as injected): RSS before traffic (MB)', results.podAnnotatedRssBeforeLoadMB, '–'],
    ['as in a pod, with the annotations file: RSS idle after the load (MB)', results.podAnnotatedRssIdleAfterLoadMB, '≤ 64'],
    ['as in a pod, with the annotations file: peak RSS of that run (MB)', results.podAnnotatedPeakRssMB, '–'],
    ['stats bytes per active endpoint (all windows used, 50 latencies each over 200 µs–40 ms)', results.statsBytesPerActiveEndpoint, '≤ 40,960'],
    ['stats bytes per active endpoint, bound (every histogram bin of every window used)', results.statsBytesPerActiveEndpointEveryBin, '≤ 40,960'],
    ['stats bytes per known, idle endpoint', results.statsBytesPerKnownIdleEndpoint, '–'],
  ],
  alignRight: [false, true, true],
};
process.stdout.write(`${renderText(table)}\n`);
const wall = Math.round((Date.now() - started) / 1000);
if (write) {
  const out = path.join(root, 'bench', 'results', quick ? 'memory-quick.json' : 'memory.json');
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ at: new Date().toISOString(), node: process.version, quick, wallSeconds: wall, ...results }, null, 2) + '\n');
  const readme = path.join(root, 'bench', 'README.md');
  writeFileSync(readme, replaceSection(readFileSync(readme, 'utf8'), 'bench:memory',
    `Last run: ${new Date().toISOString()}, \`npm run bench:memory${quick ? ' -- --quick' : ''}\`, Node ${process.version}, ${wall} s. RSS from /proc/PID/status of \`meshmedic run --config F\` (the built CLI); 2,000 endpoints = 200 services × 10, of which one service's 10 get HTTP/1.1 traffic; bytes per endpoint are heap + array buffers over 500 endpoints, GC forced.\n\n${renderMarkdown(table)}`,
    '## Memory budget (`npm run bench:memory`)'));
  log(`wrote ${path.relative(root, out)} and bench/README.md`);
}
log(`done in ${wall} s`);
