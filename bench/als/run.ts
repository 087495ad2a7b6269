// ALS benchmark: how fast `meshmedic control` ingests Envoy access-log batches on one core, whether its
// memory stays flat under a steady stream, how long from the 5th consecutive failure seen in the log to
// the endpoint's last call from real grpc-js-xds clients, and what 10 % sampling does to detection.
// Writes bench/results/als.json and its section of bench/README.md.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { seededRandom } from '../../src/core/random.js';
import { encodeHttpLogs, openAccessLogStream, type HttpLogInput } from '../../src/testing/als-client.js';
import { renderMarkdown, renderText, updateMarkdownFile, writeJson, type Table } from '../lib/report.js';
import { ECHO_PATH, freePort, startEchoBackend } from '../lib/grpc-echo.js';

const HELP = `npm run bench:als [-- --quick] [--only ingest|memory|detect|sampling]

  ingest     entries/s that one control process records, per CPU-second of that process (batches of 100
             entries, as Envoy sends them, over 4 streams), and wall-clock entries/s
  memory     RSS of the control process under a steady stream (10 minutes; --quick: 20 s)
  detect     from the message carrying the 5th consecutive 503 of an endpoint to the last call that real
             grpc-js-xds clients (4, in paced loops) send it: p50/p99 over repeated ejections
  sampling   time to decide a hard (100 % 503) and a partial (30 % 503) failure of 1 of 10 endpoints at
             1,000 req/s, with the log at 100 % and at 10 % sampling
Full run about 13 minutes; --quick about 2.`;

const argv = process.argv.slice(2);
if (argv.includes('--help') || argv.includes('-h')) {
  console.log(HELP);
  process.exit(0);
}
const quick = argv.includes('--quick');
const onlyArg = argv.indexOf('--only');
const only = onlyArg >= 0 ? argv[onlyArg + 1] : undefined;
const want = (s: string) => only === undefined || only === s;
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = path.join(root, 'bin', 'meshmedic.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.timeOrigin + performance.now();
const r1 = (x: number) => Math.round(x * 10) / 10;
function quantile(xs: number[], q: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}


interface Control { child: ChildProcess; xds: string; admin: string; dir: string; stop(): Promise<void> }

/** `meshmedic control` as its own process, with the services given. */
async function startControl(services: { name: string; protocol?: string; endpoints: string[] }[], policy = 'meshmedic'): Promise<Control> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mm-bench-als-'));
  const cfg = path.join(dir, 'control.json');
  writeFileSync(cfg, JSON.stringify({ services: services.map((s) => ({ name: s.name, ...(s.protocol ? { protocol: s.protocol } : {}), endpoints: s.endpoints.map((address) => ({ address })) })), healing: { ejection: { baseMs: 600_000 } } }));
  const [xdsPort, adminPort] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, [BIN, 'control', '--xds', `127.0.0.1:${xdsPort}`, '--admin', `127.0.0.1:${adminPort}`, '--config', cfg, '--policy', policy, '--log-level', 'error'], { stdio: ['ignore', 'ignore', 'inherit'] });
  const kill = () => child.exitCode === null && child.kill('SIGKILL');
  process.once('exit', kill);
  const admin = `127.0.0.1:${adminPort}`;
  for (let i = 0; i < 400; i++) {
    try {
      if ((await fetch(`http://${admin}/readyz`)).ok) break;
    } catch {
      /* not yet */
    }
    await sleep(50);
  }
  return {
    child, xds: `127.0.0.1:${xdsPort}`, admin, dir,
    stop: async () => {
      child.kill('SIGTERM');
      await Promise.race([new Promise((r) => child.once('exit', r)), sleep(3000)]);
      kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** CPU seconds (user + system) and RSS bytes of a process, from /proc. */
function procStats(pid: number): { cpuS: number; rss: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = 100; // USER_HZ on Linux
  const cpuS = (Number(fields[11]) + Number(fields[12])) / ticks;
  const rss = Number(fields[21]) * 4096;
  return { cpuS, rss };
}

async function als(c: Control): Promise<{ recorded: Record<string, number>; dropped: Record<string, number> }> {
  return (await (await fetch(`http://${c.admin}/v1/als`)).json()) as { recorded: Record<string, number>; dropped: Record<string, number> };
}
const total = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

/** 100 endpoints on loopback addresses where nothing listens (no probe or call ever leaves the machine). */
const HOSTS = Array.from({ length: 100 }, (_, i) => `127.0.1.${i + 1}:9`);

function batches(n: number, seed: number): Buffer[] {
  const rnd = seededRandom(seed);
  return Array.from({ length: n }, () => encodeHttpLogs(Array.from({ length: 100 }, (): HttpLogInput => ({
    cluster: 'hello', upstream: HOSTS[Math.floor(rnd() * HOSTS.length)]!, code: rnd() < 0.01 ? 404 : 200, upstreamMs: 2 + rnd() * 20,
  }))));
}

async function pump(c: Control, msgs: Buffer[], streams: number, untilMs: number): Promise<void> {
  await Promise.all(Array.from({ length: streams }, async (_, s) => {
    const st = openAccessLogStream(c.xds);
    let i = s;
    while (now() < untilMs) {
      await st.send(msgs[i++ % msgs.length]!);
      if (i % 20 === 0) await new Promise((r) => setImmediate(r)); // let the status/admin work in
    }
    await st.end();
  }));
}

async function ingest(): Promise<Record<string, number>> {
  const c = await startControl([{ name: 'hello', endpoints: HOSTS }]);
  try {
    const msgs = batches(200, 1);
    await pump(c, msgs, 4, now() + 1000); // warm-up: JIT, channels
    const a0 = total((await als(c)).recorded);
    const p0 = procStats(c.child.pid!);
    const t0 = now();
    await pump(c, msgs, 4, t0 + (quick ? 5000 : 20_000));
    const wallS = (now() - t0) / 1000;
    const a1 = total((await als(c)).recorded);
    const p1 = procStats(c.child.pid!);
    const entries = a1 - a0;
    const cpuS = p1.cpuS - p0.cpuS;
    return { entries, wallS: r1(wallS), cpuS: r1(cpuS), perCpuSecond: Math.round(entries / cpuS), perWallSecond: Math.round(entries / wallS), batchEntries: 100, streams: 4 };
  } finally {
    await c.stop();
  }
}

async function memory(): Promise<Record<string, number>> {
  const c = await startControl([{ name: 'hello', endpoints: HOSTS }]);
  try {
    const msgs = batches(200, 2);
    const durationMs = quick ? 20_000 : 600_000;
    const samples: number[] = [];
    const end = now() + durationMs;
    const sampler = (async () => {
      while (now() < end) {
        samples.push(procStats(c.child.pid!).rss);
        await sleep(1000);
      }
    })();
    // A steady stream at about 20,000 entries/s (what a busy gateway sends), not saturation.
    const st = openAccessLogStream(c.xds);
    let i = 0;
    while (now() < end) {
      const tick = now();
      for (let k = 0; k < 20; k++) await st.send(msgs[i++ % msgs.length]!);
      await sleep(Math.max(0, 100 - (now() - tick)));
    }
    await st.end();
    await sampler;
    const mb = (b: number) => r1(b / 1048576);
    const warm = samples.slice(Math.min(5, samples.length - 1));
    const half = Math.floor(warm.length / 2);
    const firstHalf = Math.max(...warm.slice(0, half));
    const secondHalf = Math.max(...warm.slice(half));
    return { durationS: durationMs / 1000, entries: total((await als(c)).recorded), rssStartMiB: mb(warm[0]!), rssEndMiB: mb(warm[warm.length - 1]!), rssMaxMiB: mb(Math.max(...warm)), maxFirstHalfMiB: mb(firstHalf), maxSecondHalfMiB: mb(secondHalf) };
  } finally {
    await c.stop();
  }
}

async function detect(reps: number): Promise<Record<string, unknown>> {
  const backends = await Promise.all([startEchoBackend(now), startEchoBackend(now), startEchoBackend(now)]);
  const addrs = backends.map((b) => `127.0.0.1:${b.port}`);
  const c = await startControl([{ name: 'hello', protocol: 'h2c', endpoints: addrs }]);
  process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify({
    xds_servers: [{ server_uri: c.xds, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: { id: 'bench-client', cluster: 'bench', locality: { zone: 'z1' } },
  });
  const { register } = await import('@grpc/grpc-js-xds');
  register();
  const clients = Array.from({ length: 4 }, (_, i) => new grpc.Client('xds:///hello', grpc.credentials.createInsecure(), { 'meshmedic.bench.client': i }));
  let running = true;
  const loops = clients.map(async (cl) => {
    while (running) {
      await new Promise<void>((res) => cl.makeUnaryRequest(ECHO_PATH, (x: Buffer) => x, (x: Buffer) => x, Buffer.alloc(0), { deadline: Date.now() + 2000 }, () => res()));
      await sleep(1);
    }
  });
  const stream = openAccessLogStream(c.xds);
  const samples: number[] = [];
  try {
    await stream.send(encodeHttpLogs(addrs.map((a) => ({ cluster: 'hello', upstream: a, code: 200 })), { id: 'bench-envoy' }));
    for (let i = 0; i < 400 && backends.some((b) => b.calls === 0); i++) await sleep(25);
    if (backends.some((b) => b.calls === 0)) throw new Error('the grpc-js-xds clients never reached every backend');
    for (let rep = 0; rep < reps; rep++) {
      const victim = backends[rep % backends.length]!;
      const id = `hello/127.0.0.1:${victim.port}`;
      const c0 = victim.calls;
      for (let i = 0; i < 400 && victim.calls === c0; i++) await sleep(5); // it is taking traffic
      // Four failures, then the message carrying the fifth: t0 is taken just before that message is sent.
      await stream.send(encodeHttpLogs(Array.from({ length: 4 }, () => ({ cluster: 'hello', upstream: addrs[rep % 3]!, code: 503 }))));
      await sleep(20);
      const fifth = encodeHttpLogs([{ cluster: 'hello', upstream: addrs[rep % 3]!, code: 503 }]);
      const t0 = now();
      await stream.send(fifth);
      await sleep(400);
      samples.push(Math.max(0, victim.lastAt - t0));
      const res = await fetch(`http://${c.admin}/v1/endpoints/${encodeURIComponent(id)}/restore`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'bench' }) });
      if (!res.ok) throw new Error(`restore failed: ${res.status} ${await res.text()}`);
      await stream.send(encodeHttpLogs([{ cluster: 'hello', upstream: addrs[rep % 3]!, code: 200 }]));
      await sleep(200);
    }
  } finally {
    running = false;
    await Promise.all(loops);
    for (const cl of clients) cl.close();
    stream.close();
    await c.stop();
    for (const b of backends) b.server.forceShutdown();
  }
  return { reps, samples: samples.map(r1), p50: r1(quantile(samples, 0.5)), p99: r1(quantile(samples, 0.99)), max: r1(Math.max(...samples)) };
}

/**
 * 10 endpoints at 1,000 req/s in all; endpoint 0 fails (every request, or 30 % of them) from t = 2 s.
 * Entries are streamed as Envoy flushes them (every 200 ms), keeping each with probability `rate`.
 * Returns ms from fault start to the first ejection of endpoint 0 in /v1/events (NaN if none in 20 s).
 */
async function samplingRun(rate: number, failFraction: number, seed: number): Promise<number> {
  const hosts = Array.from({ length: 10 }, (_, i) => `127.0.2.${i + 1}:9`);
  const c = await startControl([{ name: 'hello', endpoints: hosts }]);
  const rnd = seededRandom(seed);
  const stream = openAccessLogStream(c.xds);
  try {
    await stream.send(encodeHttpLogs([{ cluster: 'hello', upstream: hosts[1]!, code: 200 }], { id: 'bench-envoy' }));
    // Wall-clock (Date.now) throughout: decision times come from the control process's clock.
    const start = Date.now();
    const faultAt = start + 2000;
    const deadline = faultAt + 20_000;
    let decided = NaN;
    let next = start;
    while (Date.now() < deadline && Number.isNaN(decided)) {
      next += 200;
      const entries: HttpLogInput[] = [];
      const failing = Date.now() >= faultAt;
      for (let k = 0; k < 200; k++) {
        const ep = k % 10;
        const fails = failing && ep === 0 && rnd() < failFraction;
        if (rnd() < rate) entries.push({ cluster: 'hello', upstream: hosts[ep]!, code: fails ? 503 : 200, upstreamMs: 3 + rnd() * 4, sampleRate: rate });
      }
      if (entries.length) await stream.send(encodeHttpLogs(entries));
      if (failing) {
        const ev = (await (await fetch(`http://${c.admin}/v1/events`)).json()) as { events: { action: string; target: string; applied: boolean; at: number }[] };
        const hit = ev.events.find((e) => e.target === `hello/${hosts[0]}` && e.applied && e.action === 'eject');
        if (hit) decided = Math.max(0, hit.at - faultAt);
      }
      await sleep(Math.max(0, next - Date.now()));
    }
    return decided;
  } finally {
    stream.close();
    await c.stop();
  }
}

async function sampling(): Promise<Record<string, unknown>[]> {
  const seeds = quick ? [1] : [1, 2, 3];
  const rows: Record<string, unknown>[] = [];
  for (const [name, frac] of [['hard (100 % 503)', 1], ['partial (30 % 503)', 0.3]] as const) {
    for (const rate of [1, 0.1]) {
      const ms: number[] = [];
      for (const s of seeds) ms.push(await samplingRun(rate, frac, s));
      const ok = ms.filter((x) => !Number.isNaN(x));
      rows.push({ fault: name, sampleRate: rate, seeds: seeds.length, decidedMedianMs: ok.length ? r1(quantile(ok, 0.5)) : null, decidedMaxMs: ok.length ? r1(Math.max(...ok)) : null, undecided: ms.length - ok.length });
    }
  }
  return rows;
}

const result: Record<string, unknown> = { quick, machine: { cpus: os.cpus().length, load: os.loadavg().map(r1) }, at: new Date().toISOString() };
if (want('ingest')) {
  console.error('[als] ingest…');
  result.ingest = await ingest();
}
if (want('memory')) {
  console.error(`[als] memory (${quick ? '20 s' : '10 min'})…`);
  result.memory = await memory();
}
if (want('detect')) {
  console.error('[als] 5th failure → applied at grpc-js-xds clients…');
  result.detect = await detect(quick ? 10 : 40);
}
if (want('sampling')) {
  console.error('[als] sampling…');
  result.sampling = await sampling();
}
result.machine = { ...(result.machine as object), loadAfter: os.loadavg().map(r1) };

const targets = { entriesPerCpuSecond: 100_000, detectP99Ms: 250 };
const ing = result.ingest as Record<string, number> | undefined;
const mem = result.memory as Record<string, number> | undefined;
const det = result.detect as { p50: number; p99: number; max: number; reps: number } | undefined;
const main: Table = {
  columns: ['measure', 'result', 'target', 'met'],
  rows: [
    ...(ing ? [['ingestion, entries per CPU-second of the control process', ing.perCpuSecond, `≥ ${targets.entriesPerCpuSecond}`, ing.perCpuSecond >= targets.entriesPerCpuSecond ? 'yes' : 'no'],
      ['ingestion, entries per wall-clock second (client on the same 2 cores)', ing.perWallSecond, '', '']] as (string | number)[][] : []),
    ...(mem ? [[`RSS over ${mem.durationS} s of a steady stream (MiB: start / end / max of 1st half / max of 2nd half)`, `${mem.rssStartMiB} / ${mem.rssEndMiB} / ${mem.maxFirstHalfMiB} / ${mem.maxSecondHalfMiB}`, 'flat', mem.maxSecondHalfMiB <= mem.maxFirstHalfMiB * 1.05 ? 'yes' : 'no']] : []),
    ...(det ? [[`5th consecutive failure in the log → last call at grpc-js-xds clients, ms (p50 / p99 / max over ${det.reps})`, `${det.p50} / ${det.p99} / ${det.max}`, `p99 ≤ ${targets.detectP99Ms}`, det.p99 <= targets.detectP99Ms ? 'yes' : 'no']] : []),
  ],
};
const samp: Table | undefined = result.sampling ? {
  columns: ['fault (1 of 10 endpoints, 1,000 req/s)', 'log sampled', 'decided, median ms', 'max ms', 'undecided in 20 s'],
  rows: (result.sampling as Record<string, unknown>[]).map((r) => [r.fault as string, `${Number(r.sampleRate) * 100} %`, r.decidedMedianMs as number, r.decidedMaxMs as number, r.undecided as number]),
} : undefined;
console.log(renderText(main));
if (samp) console.log(renderText(samp));
writeJson(path.join(root, 'bench', 'results', `als${quick ? '-quick' : ''}.json`), result);
if (!only) {
  const load = (result.machine as { load: number[]; loadAfter: number[] });
  const md = `\`npm run bench:als${quick ? ' -- --quick' : ''}\`, ${result.at as string}, load average ${load.load[0]} → ${load.loadAfter[0]} on ${os.cpus().length} cores.\n\n${renderMarkdown(main)}\n${samp ? `\n${renderMarkdown(samp)}\n` : ''}`;
  updateMarkdownFile(path.join(root, 'bench', 'README.md'), 'als', md, '## ALS: healing an existing Envoy mesh from its access log');
}
process.exit(0);
