// xDS benchmark: decision → applied at real grpc-js-xds clients (from mesh.apply(eject) to the last
// request reaching the ejected endpoint), fan-out of one EDS change to 1,000 SotW and 1,000 Delta streams
// with 1,000 endpoints (time until every stream has it, server CPU and RSS), and bytes per change SotW vs
// Delta. Writes bench/results/xds.json and its section of bench/README.md.
import { fork, spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { Registry } from '../../src/admin/metrics-registry.js';
import { systemClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/log.js';
import { endpointId, NO_LOCALITY, type EndpointSpec } from '../../src/core/types.js';
import { validateConfig } from '../../src/config/load.js';
import { MeshState } from '../../src/mesh/state.js';
import type { Component, SidecarContext } from '../../src/runtime/context.js';
import { StatsTable } from '../../src/stats/window.js';
import { startXds } from '../../src/xds/component.js';
import { SnapshotCache } from '../../src/xds/cache.js';
import { XdsGenerator } from '../../src/xds/generator.js';
import { DEFAULT_BUILD_OPTIONS } from '../../src/xds/resources.js';
import { DEFAULT_LIMITS } from '../../src/xds/server.js';
import { SotwStream } from '../../src/xds/streams.js';
import { ENDPOINT_TYPE } from '../../src/xds/types.js';
import { renderMarkdown, renderText, updateMarkdownFile, writeJson, type Table } from '../lib/report.js';
import { ECHO_PATH, freePort, startEchoBackend } from '../lib/grpc-echo.js';

const HELP = `npm run bench:xds [-- --quick]

  applied    decision → applied at real grpc-js-xds clients: from mesh.apply(eject) to the last request
             that reaches the ejected endpoint (p50/p99 over repeated ejections), 4 clients in closed loops
  push       the server's share of that fan-out without transport (rebuild + framed responses)
  fanout     one EDS change (1 of 1,000 endpoints ejected) to 1,000 SotW and 1,000 Delta streams: time until
             every stream received it (p50/p99/max), server CPU time and RSS
  bytes      100 clusters × 10 endpoints, every stream subscribed to all: bytes per stream per change
--quick: fewer repetitions and 200 streams (about a minute).`;

const argv = process.argv.slice(2);
if (argv.includes('--help') || argv.includes('-h')) {
  console.log(HELP);
  process.exit(0);
}
const quick = argv.includes('--quick');
const onlyArg = argv.indexOf('--only');
/** Development aid: run one section (applied|fanout|bytes). */
const only = onlyArg >= 0 ? argv[onlyArg + 1] : undefined;
const want = (s: string) => only === undefined || only === s;
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function quantile(xs: number[], q: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}
const r1 = (x: number) => Math.round(x * 10) / 10;

function endpoint(service: string, port: number, host = '127.0.0.1'): EndpointSpec {
  return { id: endpointId(service, host, port), service, host, port, locality: NO_LOCALITY, priority: 0, weight: 1, labels: {} };
}

async function startServer(mesh: MeshState, xds: Record<string, unknown> = {}): Promise<{ component: Component; address: string; metrics: Registry }> {
  const v = validateConfig({ xds: { enabled: true, listen: '127.0.0.1:0', ...xds } });
  if (!v.valid) throw new Error(v.errors.join('\n'));
  const metrics = new Registry();
  const ctx: SidecarContext = {
    config: v.result,
    clock: systemClock,
    mesh,
    stats: new StatsTable({ windowMs: 1000, windows: 10, maxLatencyUs: 60_000_000, significantDigits: 2 }),
    log: silentLogger,
    metrics,
    admin: { route: () => {} },
    components: new Map(),
  };
  const component = await startXds(ctx);
  return { component, address: component.addresses!.xds!, metrics };
}

// ---- decision → applied ----

// Runs the CLI from source, as `meshmedic proxy ... --xds ... --admin ...` (the acceptance contract).
const RUN_CLI = "const { main } = await import('./src/cli/main.ts'); process.exitCode = await main(process.argv.slice(1));";


/**
 * The sidecar runs as its own process (`meshmedic proxy --xds --admin`); the operator ejects through the
 * admin API; t0 is taken just before the POST. Four grpc-js-xds clients call in paced loops (about
 * 1 call/ms each) so that the last call reaching the ejected endpoint is measured with ~1 ms resolution.
 */
async function decisionToApplied(reps: number): Promise<{ samples: number[]; p50: number; p99: number; max: number; calls: number }> {
  const backends = await Promise.all([startEchoBackend(now), startEchoBackend(now), startEchoBackend(now)]);
  const [listen, xds, admin] = [await freePort(), await freePort(), await freePort()];
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', RUN_CLI, 'proxy', '--listen', `127.0.0.1:${listen}`, '--upstream', backends.map((b) => `http://127.0.0.1:${b.port}`).join(','), '--service', 'hello', '--xds', `127.0.0.1:${xds}`, '--admin', `127.0.0.1:${admin}`, '--protocol', 'h2c', '--policy', 'none', '--log-level', 'error'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  const kill = () => {
    if (child.exitCode === null) child.kill('SIGKILL');
  };
  process.once('exit', kill);
  for (let i = 0; i < 600; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${admin}/readyz`)).ok) break;
    } catch {
      /* not yet */
    }
    await sleep(50);
  }
  process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify({
    xds_servers: [{ server_uri: `127.0.0.1:${xds}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: { id: 'bench-client', cluster: 'bench', locality: { zone: 'z1' } },
  });
  const { register } = await import('@grpc/grpc-js-xds');
  register();
  const clients = Array.from({ length: 4 }, (_, i) => new grpc.Client('xds:///hello', grpc.credentials.createInsecure(), { 'meshmedic.bench.client': i }));
  let running = true;
  const loop = async (c: grpc.Client) => {
    while (running) {
      await new Promise<void>((res) => c.makeUnaryRequest(ECHO_PATH, (x: Buffer) => x, (x: Buffer) => x, Buffer.alloc(0), { deadline: Date.now() + 2000 }, () => res()));
      await sleep(1);
    }
  };
  const loops = clients.map(loop);
  const samples: number[] = [];
  const post = (id: string, action: string) => fetch(`http://127.0.0.1:${admin}/v1/endpoints/${encodeURIComponent(id)}/${action}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'bench' }) });
  try {
    for (let i = 0; i < 400 && backends.some((b) => b.calls === 0); i++) await sleep(25);
    if (backends.some((b) => b.calls === 0)) throw new Error('the grpc-js-xds clients never reached every backend');
    for (let rep = 0; rep < reps; rep++) {
      const victim = backends[rep % backends.length]!;
      const id = `hello/127.0.0.1:${victim.port}`;
      const c0 = victim.calls;
      for (let i = 0; i < 400 && victim.calls === c0; i++) await sleep(5); // it is taking traffic
      const t0 = now();
      const res = await post(id, 'eject');
      if (!res.ok) throw new Error(`eject failed: ${res.status} ${await res.text()}`);
      await sleep(400);
      samples.push(Math.max(0, victim.lastAt - t0));
      await post(id, 'restore');
      await sleep(200);
    }
  } finally {
    running = false;
    await Promise.all(loops);
    for (const c of clients) c.close();
    child.kill('SIGTERM');
    await Promise.race([new Promise((r) => child.once('exit', r)), sleep(3000)]);
    kill();
    for (const b of backends) b.server.forceShutdown();
  }
  return { samples: samples.map(r1), p50: r1(quantile(samples, 0.5)), p99: r1(quantile(samples, 0.99)), max: r1(Math.max(...samples)), calls: backends.reduce((a, b) => a + b.calls, 0) };
}

// ---- fan-out and bytes, with the streams in a child process ----

class Pool {
  private readonly child: ChildProcess;
  private waiters: ((m: Record<string, unknown>) => void)[] = [];
  constructor() {
    this.child = fork(path.join(here, 'stream-pool.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (m: Record<string, unknown>) => this.waiters.shift()?.(m));
  }
  ask<T>(msg: object): Promise<T> {
    return new Promise((res) => {
      this.waiters.push(res as (m: Record<string, unknown>) => void);
      this.child.send(msg);
    });
  }
  async close(): Promise<void> {
    await Promise.race([this.ask({ cmd: 'close' }), sleep(3000)]);
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

interface FanoutResult { mode: 'sotw' | 'delta'; streams: number; endpoints: number; changes: number; received: number; p50Ms: number; p99Ms: number; maxMs: number; cpuMsPerChange: number; rssMB: number; bytesPerStreamPerChange: number }

async function fanout(mode: 'sotw' | 'delta', streams: number, services: number, endpointsPer: number, changes: number, subscribeAll: boolean): Promise<FanoutResult> {
  const mesh = new MeshState(systemClock);
  const names = Array.from({ length: services }, (_, i) => (services === 1 ? 'big' : `svc-${i}`));
  mesh.setServices(names.map((n, s) => ({ spec: { name: n, endpoints: Array.from({ length: endpointsPer }, (_, i) => endpoint(n, 20_000 + ((s * endpointsPer + i) % 40_000), `127.0.${(s >> 8) & 255}.${s & 255 || 1}`)) } })));
  const srv = await startServer(mesh, { limits: { maxStreams: streams + 100 } });
  const pool = new Pool();
  const latencies: number[] = [];
  let cpu = 0;
  let bytes = 0;
  let received = 0;
  try {
    const ready = await pool.ask<{ ready: number; total: number }>({ cmd: 'open', address: srv.address, mode, streams, channels: Math.max(1, Math.ceil(streams / 100)), typeUrl: ENDPOINT_TYPE, names: subscribeAll ? names : [names[0]!] });
    if (ready.ready !== ready.total) throw new Error(`only ${ready.ready} of ${ready.total} ${mode} streams got their first response`);
    await sleep(300);
    for (let c = 0; c < changes; c++) {
      await pool.ask({ cmd: 'mark' });
      const target = mesh.snapshot().services.get(names[0]!)!.endpoints[c % endpointsPer]!.spec.id;
      const cpu0 = process.cpuUsage();
      const t0 = now();
      mesh.apply({ action: 'eject', target, reason: 'bench', source: 'operator', at: Date.now(), evidence: {} });
      const got = await pool.ask<{ at: number[]; bytes: number[] }>({ cmd: 'collect', timeoutMs: 20_000 });
      const d = process.cpuUsage(cpu0);
      cpu += (d.user + d.system) / 1000;
      for (const a of got.at) if (a > 0) { latencies.push(a - t0); received++; }
      bytes += got.bytes.reduce((x, y) => x + y, 0);
      // Restore, and wait until every stream has that push too, so changes never overlap.
      await pool.ask({ cmd: 'mark' });
      mesh.apply({ action: 'restore', target, reason: 'bench', source: 'operator', at: Date.now(), evidence: {} });
      await pool.ask({ cmd: 'collect', timeoutMs: 20_000 });
      await sleep(100);
    }
  } finally {
    await pool.close();
    await srv.component.close(200);
  }
  return {
    mode, streams, endpoints: services * endpointsPer, changes, received,
    p50Ms: r1(quantile(latencies, 0.5)), p99Ms: r1(quantile(latencies, 0.99)), maxMs: r1(Math.max(...latencies)),
    cpuMsPerChange: r1(cpu / changes), rssMB: Math.round(process.memoryUsage().rss / 1e6),
    bytesPerStreamPerChange: Math.round(bytes / changes / streams),
  };
}

/**
 * The server's own share of a fan-out, without transport: rebuild the changed assignment and produce the
 * response for every stream (with the copy grpc-js makes to frame each message), in-process.
 */
function serverPush(streamCount: number, changes: number): { p50Ms: number; p99Ms: number; mbPerChange: number } {
  const mesh = new MeshState(systemClock);
  mesh.setServices([{ spec: { name: 'big', endpoints: Array.from({ length: 1000 }, (_, i) => endpoint('big', 20_000 + i)) } }]);
  const cache = new SnapshotCache();
  const gen = new XdsGenerator(cache, { build: { grpc: DEFAULT_BUILD_OPTIONS, envoy: { ...DEFAULT_BUILD_OPTIONS, flavor: 'envoy' } } });
  gen.update(mesh.snapshot());
  let bytes = 0;
  const transport = {
    write: (f: Buffer) => {
      const framed = Buffer.allocUnsafe(f.length + 5);
      f.copy(framed, 5);
      bytes += framed.length;
      return true;
    },
    onDrain: () => {},
    fail: () => {},
  };
  const env = {
    cache, limits: DEFAULT_LIMITS, controlPlaneId: 'bench', flavorOf: () => 'grpc' as const, activate: (f: 'grpc' | 'envoy') => gen.activate(f),
    hooks: { sent: () => {}, ack: () => {}, nack: () => {}, refused: () => {} }, now: () => Date.now(),
  };
  for (let i = 0; i < streamCount; i++) {
    new SotwStream(env, transport, 'bench').handle({ node: { id: `n${i}`, cluster: '', user_agent_name: 'grpc' }, type_url: ENDPOINT_TYPE, resource_names: ['big'], version_info: '', response_nonce: '' });
  }
  const times: number[] = [];
  const warmup = 3; // JIT and the first large allocations are not part of a steady-state push
  for (let c = 0; c < changes + warmup; c++) {
    mesh.apply({ action: c % 2 ? 'restore' : 'eject', target: 'big/127.0.0.1:20005', reason: 'bench', source: 'operator', at: Date.now(), evidence: {} });
    bytes = 0;
    const t0 = now();
    gen.update(mesh.snapshot());
    if (c >= warmup) times.push(now() - t0);
  }
  return { p50Ms: r1(quantile(times, 0.5)), p99Ms: r1(quantile(times, 0.99)), mbPerChange: r1(bytes / 1e6) };
}

async function main(): Promise<void> {
  const started = new Date().toISOString();
  // Other work on the machine changes these figures a lot: the load average is recorded with them.
  const loadAtStart = os.loadavg().map(r1);
  const reps = quick ? 10 : 100;
  const streams = quick ? 200 : 1000;
  const changes = quick ? 3 : 5;
  console.error(`[xds] decision → applied (${reps} ejections)…`);
  const applied = want('applied') ? await decisionToApplied(reps) : { samples: [], p50: NaN, p99: NaN, max: NaN, calls: 0 };
  const fan: FanoutResult[] = [];
  for (const mode of ['sotw', 'delta'] as const) {
    console.error(`[xds] fan-out ${mode}: ${streams} streams × 1,000 endpoints…`);
    if (want('fanout')) fan.push(await fanout(mode, streams, 1, 1000, changes, false));
  }
  const bytes: FanoutResult[] = [];
  for (const mode of ['sotw', 'delta'] as const) {
    console.error(`[xds] bytes per change ${mode}: 100 clusters × 10 endpoints…`);
    if (want('bytes')) bytes.push(await fanout(mode, 100, 100, 10, changes, true));
  }
  console.error(`[xds] server push without transport: ${streams} streams…`);
  const push = want('push') ? serverPush(streams, quick ? 10 : 30) : { p50Ms: NaN, p99Ms: NaN, mbPerChange: NaN };
  const targets = { appliedP99Ms: 50, fanoutP99Ms: 250 };
  const result = {
    started, quick, machine: { cpus: os.cpus().length, node: process.version, loadAverageAtStart: loadAtStart, loadAverageAtEnd: os.loadavg().map(r1) },
    targets,
    appliedAtClient: applied,
    fanout: fan,
    serverPushWithoutTransport: { streams, ...push },
    bytesPerChange: bytes,
  };
  if (only) {
    console.log(JSON.stringify(result, null, 1));
    process.exit(0);
  }
  writeJson(path.join(root, 'bench', 'results', 'xds.json'), result);
  const t1: Table = {
    columns: ['measure', 'p50 ms', 'p99 ms', 'max ms', 'target p99 ms', 'met'],
    rows: [
      ['decision → applied at grpc-js-xds clients', applied.p50, applied.p99, applied.max, targets.appliedP99Ms, applied.p99 <= targets.appliedP99Ms ? 'yes' : 'no'],
      ...fan.map((f) => [`fan-out ${f.mode === 'sotw' ? 'SotW' : 'Delta'}: ${f.streams} streams × ${f.endpoints} endpoints`, f.p50Ms, f.p99Ms, f.maxMs, targets.fanoutP99Ms, f.p99Ms <= targets.fanoutP99Ms && f.received === f.streams * f.changes ? 'yes' : 'no']),
      [`server share of that fan-out: rebuild + ${streams} framed responses (${push.mbPerChange} MB), no transport`, push.p50Ms, push.p99Ms, null, null, ''],
    ],
  };
  const t2: Table = {
    columns: ['fan-out', 'streams', 'received', 'server CPU ms / change', 'RSS MB', 'bytes / stream / change'],
    rows: [...fan, ...bytes].map((f) => [`${f.mode === 'sotw' ? 'SotW' : 'Delta'} ${f.endpoints === 1000 && f.streams !== 100 ? '1 cluster × 1,000 endpoints' : '100 clusters × 10 endpoints, all subscribed'}`, f.streams, `${f.received}/${f.streams * f.changes}`, f.cpuMsPerChange, f.rssMB, f.bytesPerStreamPerChange]),
  };
  console.log(renderText(t1));
  console.log();
  console.log(renderText(t2));
  const md = [
    `Run ${started}${quick ? ' (--quick)' : ''}, ${result.machine.cpus} CPUs, Node ${process.version}, load average ${loadAtStart[0]} at start and ${result.machine.loadAverageAtEnd[0]} at end (other work shares the machine); server, clients and backends on this machine (loopback).`,
    '',
    renderMarkdown(t1),
    '',
    renderMarkdown(t2),
    '',
    'Decision → applied: from the operator `POST /v1/endpoints/{id}/eject` (sidecar `meshmedic proxy --xds --admin` in its own process) to the last request that reached the ejected endpoint, 4 real grpc-js-xds clients in paced loops (about one call per ms each). Fan-out: time from the change until each stream received its response (raw ADS streams in a child process, ACKing every response); the server’s own share (rebuilding the assignment and producing every stream’s framed response) is shown separately: the rest is HTTP/2 transport and the receiving process. Bytes: one of 100 subscribed assignments changes; SotW endpoint responses carry only changed assignments (omitted = unchanged), Delta likewise, and cluster responses would carry all.',
  ].join('\n');
  updateMarkdownFile(path.join(root, 'bench', 'README.md'), 'bench:xds', md, '## xDS (`npm run bench:xds`)');
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
