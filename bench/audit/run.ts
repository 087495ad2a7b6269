// `npm run bench:audit`: the audit log's costs. (1) sustained appends with batched fsync, to a real directory;
// (2) inclusion/consistency proof generation, size and verification at 10^6 entries; (3) the proxy's saturation
// throughput and sidecar CPU per request with the audit log on and off (interleaved runs, median of per-pair
// ratios), while operator calls make decisions to log.
// Writes bench/results/audit.json and its table into bench/README.md.
import { parseArgs } from 'node:util';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { systemClock } from '../../src/core/clock.js';
import { AuditLog } from '../../src/audit/log.js';
import { MerkleTree, hashLeaf, verifyConsistency, verifyInclusion } from '../../src/audit/merkle.js';
import { Rng } from '../../src/sim/rng.js';
import { ROOT, nodeEntry, spawnTracked, stopAll, tempDir, waitReadyLine } from '../lib/procs.js';
import { BENCH_TIMEOUTS } from '../lib/peers.js';
import { meshmedic, type RunningSut } from '../lib/systems.js';
import { buildIfStale } from '../lib/build.js';
import { runWrk, wrkAvailable } from '../lib/wrk.js';
import { processCpuSeconds } from '../lib/proc-cpu.js';
import { renderMarkdown, renderText, updateMarkdownFile, writeJson, type Cell } from '../lib/report.js';
import { median } from '../lib/stats.js';

const USAGE = `usage: npm run bench:audit -- [--quick] [--write] [--no-write] [--entries N] [--pairs N] [--no-proxy]
  --quick      short run (about a minute): 300k appends, 2,000 proofs, 2 pairs of 3 s proxy runs
  --entries N  entries appended in the append measurement (default 2,000,000; quick 300,000)
  --pairs N    proxy on/off pairs, run in ABBA order (default 8 of 10 s each, about 4 minutes; quick 2 of 3 s)
  --no-proxy   skip the proxy on/off comparison (it needs wrk and the build)
  --no-write   print only; --write with --quick writes bench/results/audit-quick.json and the README table`;

const SEED = 1206;

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Decision-shaped entries, as the sidecar logs them. */
function entry(n: number): Record<string, unknown> {
  return { kind: 'decision', at: 1_765_000_000_000 + n, seq: n, action: n % 3 ? 'weight' : 'eject', target: `svc/10.0.${(n >> 8) & 255}.${n & 255}:8080`, reason: 'latency_peer', source: 'local', applied: true, evidence: { p99Ms: 120.5, medianMs: 31.2, observers: 3 } };
}

async function appendBench(count: number, fsyncIntervalMs: number): Promise<{ entries: number; fsyncIntervalMs: number; seconds: number; entriesPerSecond: number; appendOnlyPerSecond: number; entriesPerCpuSecond: number; checkpoints: number; bytes: number }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mm-bench-audit-'));
  try {
    let checkpoints = 0;
    const log = AuditLog.open({
      dir, origin: 'meshmedic.io/audit/bench', privateKey: generateKeyPairSync('ed25519').privateKey, clock: systemClock,
      fsyncIntervalMs, checkpointIntervalMs: 1000, retention: { maxSegmentEntries: 10_000_000, maxSegmentAgeMs: 86_400_000, maxSegments: 10 },
      onCheckpoint: () => checkpoints++,
    });
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    let n = 0;
    // Bounded bursts with a turn of the event loop between them, so that the fsync timer runs as in a sidecar.
    await new Promise<void>((resolve) => {
      const step = () => {
        for (let i = 0; i < 2000 && n < count; i++, n++) log.append(entry(n));
        if (n >= count) resolve();
        else setImmediate(step);
      };
      step();
    });
    const tAppended = performance.now();
    await log.close(); // everything written, fsynced and signed
    const seconds = (performance.now() - t0) / 1000;
    // CPU seconds of this process: on a shared machine, entries per CPU-second says what the code costs.
    const cpu = process.cpuUsage(cpu0);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    const bytes = (await import('node:fs')).statSync(path.join(dir, 'seg-000001.log')).size;
    return { entries: count, fsyncIntervalMs, seconds, entriesPerSecond: count / seconds, appendOnlyPerSecond: count / ((tAppended - t0) / 1000), entriesPerCpuSecond: count / cpuSeconds, checkpoints, bytes };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function proofBench(size: number, samples: number): Record<string, number> {
  const tree = new MerkleTree();
  const t0 = performance.now();
  const leaves: Buffer[] = [];
  for (let i = 0; i < size; i++) {
    const payload = Buffer.from(JSON.stringify(entry(i)));
    tree.append(payload);
    if (i % 997 === 0) leaves.push(payload);
  }
  const buildS = (performance.now() - t0) / 1000;
  const root = tree.root(size);
  const rng = new Rng(SEED);
  const gen: number[] = [];
  const ver: number[] = [];
  const cgen: number[] = [];
  const cver: number[] = [];
  let maxBytes = 0;
  let failures = 0;
  for (let s = 0; s < samples; s++) {
    const k = Math.floor(rng.next() * leaves.length);
    const index = k * 997;
    let a = process.hrtime.bigint();
    const proof = tree.inclusionProof(index, size);
    gen.push(Number(process.hrtime.bigint() - a) / 1e6);
    maxBytes = Math.max(maxBytes, proof.length * 32);
    a = process.hrtime.bigint();
    const ok = verifyInclusion(hashLeaf(leaves[k]!), index, size, proof, root);
    ver.push(Number(process.hrtime.bigint() - a) / 1e6);
    if (!ok) failures++;
    const first = 1 + Math.floor(rng.next() * (size - 1));
    a = process.hrtime.bigint();
    const c = tree.consistencyProof(first, size);
    cgen.push(Number(process.hrtime.bigint() - a) / 1e6);
    const firstRoot = tree.root(first);
    a = process.hrtime.bigint();
    if (!verifyConsistency(first, size, firstRoot, root, c)) failures++;
    cver.push(Number(process.hrtime.bigint() - a) / 1e6);
  }
  for (const l of [gen, ver, cgen, cver]) l.sort((x, y) => x - y);
  return {
    size, samples, buildSeconds: buildS, failures, maxProofBytes: maxBytes, boundBytes: 32 * Math.ceil(Math.log2(size)),
    genP50Ms: quantile(gen, 0.5), genP99Ms: quantile(gen, 0.99), genMaxMs: gen[gen.length - 1]!,
    verifyP50Ms: quantile(ver, 0.5), verifyP99Ms: quantile(ver, 0.99), verifyMaxMs: ver[ver.length - 1]!,
    consistencyGenP99Ms: quantile(cgen, 0.99), consistencyVerifyP99Ms: quantile(cver, 0.99),
  };
}

interface LaneRun {
  readonly audit: boolean;
  readonly rps: number;
  readonly requests: number;
  /** Sidecar CPU (user + system, all threads, from /proc) per request over the measured window, µs. */
  readonly cpuUsPerRequest: number;
  readonly operatorCallsAnswered: number;
  readonly errors: number;
  readonly auditEntries: number;
}

interface ProxyComparison {
  readonly pairs: number;
  readonly durationS: number;
  readonly warmupS: number;
  readonly order: string;
  readonly operatorCallsPerSecond: number;
  /** Per pair (adjacent runs, ABBA order): audit on / audit off. */
  readonly ratios: readonly number[];
  readonly ratioMedian: number;
  readonly ratioMin: number;
  readonly ratioMax: number;
  readonly cpuRatios: readonly number[];
  readonly cpuRatioMedian: number;
  readonly medianRps: { readonly on: number; readonly off: number };
  readonly medianCpuUsPerRequest: { readonly on: number; readonly off: number };
  readonly auditEntries: number;
  readonly loadAverage: { readonly start: number; readonly end: number };
  readonly runs: readonly LaneRun[];
}

/**
 * Saturation throughput and sidecar CPU per request with the audit log on and off. A fresh sidecar per run,
 * runs in ABBA order (on, off, off, on, …) so that drift of a shared machine falls on both lanes alike; each
 * adjacent pair gives one ratio, and the median of the ratios is the figure, with their spread.
 */
async function proxyBench(o: { pairs: number; durationS: number; warmupS: number }): Promise<ProxyComparison | { skipped: string }> {
  const missing = wrkAvailable();
  if (missing) return { skipped: missing };
  const err = await buildIfStale((s) => process.stderr.write(s));
  if (err) return { skipped: `build failed: ${err.split('\n')[0]}` };
  const tmp = tempDir('mm-bench-audit-proxy');
  const callsPerSecond = 20;
  const runs: LaneRun[] = [];
  const loadStart = os.loadavg()[0]!;
  try {
    const be = nodeEntry('src/testing/backend-main.ts');
    const backend = spawnTracked({ name: 'backend', cmd: be.cmd, args: [...be.args, '--port', '0', '--control-port', '0', '--body-bytes', '256', '--exit-with-stdin'], logDir: tmp.dir, stdinPipe: true });
    const ready = await waitReadyLine<{ port: number }>(backend);
    // A second endpoint of the service for the operator calls to drain and restore; it serves the same
    // responses, so traffic shifting onto and off it is the same in both lanes.
    const idle = spawnTracked({ name: 'idle', cmd: be.cmd, args: [...be.args, '--port', '0', '--control-port', '0', '--body-bytes', '256', '--exit-with-stdin'], logDir: tmp.dir, stdinPipe: true });
    const idleReady = await waitReadyLine<{ port: number }>(idle);
    const ctx = { upstreams: [{ host: '127.0.0.1', port: ready.port }, { host: '127.0.0.1', port: idleReady.port }], dir: tmp.dir, timeouts: BENCH_TIMEOUTS };
    // Warm the backends first: the first run (audit on, in ABBA order) must not also pay for their cold start.
    for (const port of [ready.port, idleReady.port]) await runWrk(`http://127.0.0.1:${port}/`, { threads: 2, connections: 64, durationS: Math.max(2, o.warmupS) });
    for (let pair = 0; pair < o.pairs; pair++) {
      for (const on of pair % 2 === 0 ? [true, false] : [false, true]) {
        const run = runs.length;
        const auditDir = path.join(tmp.dir, `audit-${run}`);
        const sys = meshmedic({ name: `meshmedic-${run}-audit-${on ? 'on' : 'off'}`, env: on ? { MESHMEDIC_AUDIT__ENABLED: 'true', MESHMEDIC_AUDIT__DIR: auditDir } : {} });
        let sut: RunningSut | undefined;
        try {
          sut = await sys.start(ctx);
          const pid = sut.proc?.child.pid;
          if (pid === undefined) throw new Error('the sidecar has no process id');
          const admin = await adminOf(sut);
          const idleId = encodeURIComponent(`default/127.0.0.1:${idleReady.port}`);
          // Both lanes get the same operator calls; only the audited one logs them (and their decisions).
          let k = 0;
          let answered = 0;
          const driver = setInterval(() => {
            const action = k++ % 2 ? 'restore' : 'drain';
            request(`${admin}/v1/endpoints/${idleId}/${action}`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' }, headersTimeout: 5000, bodyTimeout: 5000 })
              .then((r) => { answered++; return r.body.dump(); }, () => {});
          }, 1000 / callsPerSecond);
          let sat: Awaited<ReturnType<typeof runWrk>>;
          let cpuS: number;
          let calls: number;
          try {
            await runWrk(`${sut.url}/`, { threads: 2, connections: 64, durationS: o.warmupS });
            const cpu0 = processCpuSeconds(pid);
            const calls0 = answered;
            sat = await runWrk(`${sut.url}/`, { threads: 2, connections: 64, durationS: o.durationS });
            cpuS = processCpuSeconds(pid) - cpu0;
            calls = answered - calls0;
          } finally {
            clearInterval(driver);
          }
          let auditEntries = 0;
          if (on) {
            const st = (await (await request(`${admin}/v1/audit/status`)).body.json()) as { appended: number };
            auditEntries = st.appended;
          }
          const r: LaneRun = {
            audit: on, rps: sat.rps, requests: sat.requests, cpuUsPerRequest: (cpuS / sat.requests) * 1e6,
            operatorCallsAnswered: calls, errors: sat.non2xx + sat.socketErrors, auditEntries,
          };
          runs.push(r);
          process.stderr.write(`  pair ${pair + 1}/${o.pairs} audit ${on ? 'on ' : 'off'}: ${Math.round(r.rps)} req/s, ${r.cpuUsPerRequest.toFixed(1)} µs CPU/request, ${calls} operator calls${on ? `, ${auditEntries} entries logged` : ''}\n`);
        } finally {
          await sut?.stop();
        }
      }
    }
  } finally {
    await stopAll();
    tmp.remove();
  }
  const ratios: number[] = [];
  const cpuRatios: number[] = [];
  for (let i = 0; i + 1 < runs.length; i += 2) {
    const [a, b] = [runs[i]!, runs[i + 1]!];
    const [on, off] = a.audit ? [a, b] : [b, a];
    ratios.push(on.rps / off.rps);
    cpuRatios.push(on.cpuUsPerRequest / off.cpuUsPerRequest);
  }
  const lane = (on: boolean) => runs.filter((r) => r.audit === on);
  return {
    pairs: o.pairs, durationS: o.durationS, warmupS: o.warmupS, order: 'ABBA (on, off, off, on, …), a fresh sidecar per run', operatorCallsPerSecond: callsPerSecond,
    ratios, ratioMedian: median(ratios), ratioMin: Math.min(...ratios), ratioMax: Math.max(...ratios),
    cpuRatios, cpuRatioMedian: median(cpuRatios),
    medianRps: { on: median(lane(true).map((r) => r.rps)), off: median(lane(false).map((r) => r.rps)) },
    medianCpuUsPerRequest: { on: median(lane(true).map((r) => r.cpuUsPerRequest)), off: median(lane(false).map((r) => r.cpuUsPerRequest)) },
    auditEntries: lane(true).reduce((a, r) => a + r.auditEntries, 0),
    loadAverage: { start: loadStart, end: os.loadavg()[0]! },
    runs,
  };
}

function proxyRows(p: ProxyComparison | { skipped: string }): Cell[][] {
  if ('skipped' in p) return [['proxy saturation, audit on / off (median of pairs)', null, '≥ 0.97×', 'not run', p.skipped]];
  const errors = p.runs.reduce((a, r) => a + r.errors, 0);
  const calls = Math.min(...p.runs.map((r) => r.operatorCallsAnswered));
  const load = `load average ${p.loadAverage.start.toFixed(2)} at start, ${p.loadAverage.end.toFixed(2)} at end`;
  return [
    ['proxy saturation, audit on / off (median of pairs)', `${p.ratioMedian.toFixed(3)}×`, '≥ 0.97×', p.ratioMedian >= 0.97 ? 'met' : 'missed',
      `pairs ${p.ratios.map((r) => r.toFixed(3)).join(', ')} (spread ${p.ratioMin.toFixed(3)}–${p.ratioMax.toFixed(3)}); median ${Math.round(p.medianRps.on)} vs ${Math.round(p.medianRps.off)} req/s; ${p.pairs} pairs × ${p.durationS} s after ${p.warmupS} s warm-up, ${p.order}; ${p.operatorCallsPerSecond} operator calls/s in both lanes (≥ ${calls} answered per run, ${p.auditEntries} entries logged)${errors ? `; ${errors} failed requests` : ''}; ${load}`],
    ['sidecar CPU per request, audit on / off (median of pairs)', `${p.cpuRatioMedian.toFixed(3)}×`, '—', 'measured',
      `${p.medianCpuUsPerRequest.on.toFixed(1)} vs ${p.medianCpuUsPerRequest.off.toFixed(1)} µs CPU per request (user + system of the sidecar process, /proc); pairs ${p.cpuRatios.map((r) => r.toFixed(3)).join(', ')}`],
  ];
}

/** The admin address of a meshmedic started by bench/lib/systems (its --admin flag). */
async function adminOf(sut: RunningSut): Promise<string> {
  const args = sut.proc?.child.spawnargs;
  const i = args?.indexOf('--admin') ?? -1;
  if (i >= 0 && args) return `http://${args[i + 1]}`;
  throw new Error('cannot find the admin address of the system under test');
}

async function main(): Promise<number> {
  let v: Record<string, string | boolean | undefined>;
  try {
    ({ values: v } = parseArgs({ options: { quick: { type: 'boolean' }, write: { type: 'boolean' }, 'no-write': { type: 'boolean' }, entries: { type: 'string' }, pairs: { type: 'string' }, 'no-proxy': { type: 'boolean' }, help: { type: 'boolean' } } }));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (v.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const quick = Boolean(v.quick);
  const count = Number(v.entries ?? (quick ? 300_000 : 2_000_000));
  if (!Number.isInteger(count) || count < 1000) {
    process.stderr.write(`--entries: expected an integer ≥ 1000\n${USAGE}\n`);
    return 2;
  }
  const pairs = Number(v.pairs ?? (quick ? 2 : 8));
  if (!Number.isInteger(pairs) || pairs < 1 || pairs > 100) {
    process.stderr.write(`--pairs: expected an integer from 1 to 100\n${USAGE}\n`);
    return 2;
  }
  process.stderr.write(`appending ${count} entries (fsync every 100 ms)…\n`);
  const append = await appendBench(count, 100);
  process.stderr.write(`proofs at 10^6 entries…\n`);
  const proofs = proofBench(1_000_000, quick ? 2000 : 20_000);
  process.stderr.write(`proxy with audit on/off…\n`);
  const proxy = v['no-proxy'] ? { skipped: '--no-proxy' } : await proxyBench({ pairs, durationS: quick ? 3 : 10, warmupS: quick ? 1 : 2 });

  const f = (x: number, d = 3) => Number(x.toFixed(d));
  const rows: Cell[][] = [
    ['append, sustained (written + fsynced + signed)', `${Math.round(append.entriesPerSecond).toLocaleString('en-US')} entries/s`, '≥ 50,000 entries/s', append.entriesPerSecond >= 50_000 ? 'met' : 'missed', `${append.entries.toLocaleString('en-US')} entries, fsync every ${append.fsyncIntervalMs} ms, ${append.checkpoints} checkpoints, ${(append.bytes / append.entries).toFixed(0)} B/entry; ${Math.round(append.entriesPerCpuSecond).toLocaleString('en-US')} entries per CPU-second`],
    ['inclusion proof generation at 10^6, p99', `${f(proofs.genP99Ms)} ms`, '≤ 1 ms', proofs.genP99Ms <= 1 ? 'met' : 'missed', `p50 ${f(proofs.genP50Ms)} ms, max ${f(proofs.genMaxMs)} ms over ${proofs.samples} proofs`],
    ['inclusion proof size at 10^6', `${proofs.maxProofBytes} B`, `≤ ${proofs.boundBytes} B (32·⌈log2 n⌉)`, proofs.maxProofBytes <= proofs.boundBytes ? 'met' : 'missed', ''],
    ['inclusion proof verification, p99', `${f(proofs.verifyP99Ms)} ms`, '≤ 1 ms', proofs.verifyP99Ms <= 1 ? 'met' : 'missed', `p50 ${f(proofs.verifyP50Ms)} ms; consistency proofs: generation p99 ${f(proofs.consistencyGenP99Ms)} ms, verification p99 ${f(proofs.consistencyVerifyP99Ms)} ms${proofs.failures ? `; ${proofs.failures} FAILED` : ''}`],
    ...proxyRows(proxy),
  ];
  const table = { columns: ['measure', 'result', 'target', 'verdict', 'conditions'], rows, alignRight: [false, true, false, false, false] };
  process.stdout.write(`\n${renderText(table)}\n`);
  const write = quick ? Boolean(v.write) : !v['no-write'];
  if (write) {
    const when = new Date().toISOString();
    const args = process.argv.slice(2);
    const cmd = `npm run bench:audit${args.length ? ` -- ${args.join(' ')}` : ''}`;
    const machine = `${os.cpus().length} × ${os.cpus()[0]?.model.trim() ?? 'cpu'}, Node ${process.version}, ${os.platform()} ${os.release()}`;
    writeJson(path.join(ROOT, 'bench', 'results', quick ? 'audit-quick.json' : 'audit.json'), { when, command: cmd, machine, quick, seed: SEED, append, proofs, proxy });
    updateMarkdownFile(path.join(ROOT, 'bench', 'README.md'), 'bench:audit', [
      `Last run: ${when}, \`${cmd}\`${quick ? ' (quick mode: indicative only)' : ''}, on ${machine}.`,
      '',
      renderMarkdown(table),
    ].join('\n'), '## Audit log (`npm run bench:audit`)');
    process.stderr.write(`wrote bench/results/${quick ? 'audit-quick' : 'audit'}.json and bench/README.md\n`);
  }
  return 0;
}

main().then((code) => process.exit(code), (e: Error) => {
  process.stderr.write(`bench:audit: ${e.stack ?? e.message}\n`);
  stopAll().finally(() => process.exit(1));
});
