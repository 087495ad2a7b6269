// `npm run bench:proxy`: the same small backend served direct, through meshmedic, HAProxy and nginx,
// in one run: requests/s at saturation (wrk), CPU per request at saturation (the whole process group, from
// /proc) and p50/p99 at a fixed rate (open-loop), ratios to HAProxy.
// Writes bench/results/proxy.json and the table into bench/README.md.
import { parseArgs } from 'node:util';
import { writeFileSync, existsSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, nodeEntry, runCommand, spawnTracked, stopAll, tempDir, waitReadyLine } from '../lib/procs.js';
import { BENCH_TIMEOUTS } from '../lib/peers.js';
import { direct, haproxy, meshmedic, nginx, type SystemUnderTest, type RunningSut } from '../lib/systems.js';
import { buildIfStale } from '../lib/build.js';
import { groupCpuSeconds } from '../lib/proc-cpu.js';
import { runWrk, wrkAvailable, type WrkResult } from '../lib/wrk.js';
import { summarize, type LoadRecords } from '../lib/loadgen.js';
import { ratio, renderMarkdown, renderText, updateMarkdownFile, writeJson, type Cell } from '../lib/report.js';
import { costVerdict, measurePredictionCost, type PredictionCost } from './prediction-cost.js';

const USAGE = `usage: npm run bench:proxy -- [--quick] [--rounds N] [--duration S] [--connections C] [--rate RPS]
  [--cost-pairs N] [--only NAME[,NAME]] [--no-build] [--no-write]
  --quick        short run (about a minute): 3 s per measurement, one round; writes nothing unless --write
  --rounds N     measure every system N times, interleaved, and keep each one's best (default 2, quick 1)
  --duration S   seconds of saturation load per measurement (default 10)
  --connections  wrk connections at saturation (default 64)
  --rate RPS     the fixed rate for the latency measurement (default 2000, quick 1000)
  --cost-pairs N prediction's cost: 'meshmedic' against 'meshmedic (prediction off)' in N pairs, each of a fresh
                 process per lane, warmed, one saturation burst each (default 12 of 4 s, quick 8 of 2 s; 0: skip;
                 at least 5 for an interval); the median of the pairs' differences, its 90 %+ interval and range
                 are reported
  --only         run only systems whose name contains one of these words (haproxy is always kept as the reference)
  --no-write     print the table only; do not write bench/results/proxy.json or bench/README.md
  --write        with --quick: write bench/results/proxy-quick.json and the README table
  --audit        add a "meshmedic (audit on)" row: the same proxy with its audit log on (npm run bench:audit compares both)`;

interface Row {
  system: string;
  available: boolean;
  reason?: string;
  saturation?: WrkResult;
  /** CPU µs per request during the saturation measurement (user + system, every process of the system). */
  cpuUsPerRequest?: number;
  fixed?: { rate: number; p50: number; p90: number; p99: number; p99Service: number; failed: number; count: number; achievedRps: number };
}

async function main(): Promise<number> {
  let v: Record<string, string | boolean | undefined>;
  try {
    ({ values: v } = parseArgs({
      options: {
        quick: { type: 'boolean' }, rounds: { type: 'string' }, duration: { type: 'string' }, connections: { type: 'string' },
        rate: { type: 'string' }, only: { type: 'string' }, 'no-build': { type: 'boolean' }, 'no-write': { type: 'boolean' }, write: { type: 'boolean' }, help: { type: 'boolean' },
        audit: { type: 'boolean' }, 'cost-pairs': { type: 'string' },
      },
    }));
  } catch (e) { process.stderr.write(`${(e as Error).message}\n${USAGE}\n`); return 2; }
  if (v.help) { process.stdout.write(USAGE + '\n'); return 0; }
  const quick = Boolean(v.quick);
  const durationS = Number(v.duration ?? (quick ? 3 : 10));
  const connections = Number(v.connections ?? 64);
  const rate = Number(v.rate ?? (quick ? 1000 : 2000));
  const rounds = Number(v.rounds ?? (quick ? 1 : 2));
  const warmS = quick ? 1 : 2;
  const costPairs = Number(v['cost-pairs'] ?? (quick ? 8 : 12));
  const costBurstS = quick ? 2 : 4;
  for (const [k, x] of Object.entries({ duration: durationS, connections, rate, rounds })) {
    if (!Number.isFinite(x) || x <= 0) { process.stderr.write(`--${k}: expected a positive number\n${USAGE}\n`); return 2; }
  }
  if (!Number.isInteger(costPairs) || costPairs < 0) { process.stderr.write(`--cost-pairs: expected a whole number ≥ 0\n${USAGE}\n`); return 2; }

  // Peers, then the build (meshmedic runs from dist/); a failure of either is reported, not fatal.
  const peers = await runCommand('bash', [path.join(ROOT, 'scripts', 'ensure-peers.sh')], 600_000);
  if (peers.code !== 0) process.stderr.write(peers.stderr);
  const wrkMissing = wrkAvailable();
  if (wrkMissing) { process.stderr.write(`bench:proxy: ${wrkMissing}\n`); return 1; }
  if (!v['no-build']) {
    const err = await buildIfStale((s) => process.stderr.write(s));
    if (err) process.stderr.write(`bench:proxy: the build reported errors (meshmedic may be unavailable):\n${err}\n`);
  }

  let systems: SystemUnderTest[] = [
    direct(),
    meshmedic(),
    // The same without failure prediction (on by default): what prediction costs per request (issue 10: ≤ 3 %).
    meshmedic({ name: 'meshmedic (prediction off)', env: { MESHMEDIC_HEALING__PREDICTION__ENABLED: 'false' } }),
    // The portable HTTP/1 engine (llhttp in WebAssembly, no Node internals): what runs where the native one cannot.
    meshmedic({ name: 'meshmedic (portable engine)', env: { MESHMEDIC_PROXY__HTTP1ENGINE: 'portable' } }),
    // Every core: two proxy worker processes (one healing engine in the primary) against HAProxy's two threads.
    meshmedic({ name: 'meshmedic (2 workers)', env: { MESHMEDIC_PROXY__WORKERS: '2' } }),
    haproxy(),
    haproxy({ nbthread: 1 }),
    haproxy({ nbthread: 2 }),
    nginx({ workers: 'auto' }),
    nginx({ workers: 1 }),
  ];
  const auditDir = path.join(os.tmpdir(), `mm-bench-proxy-audit-${process.pid}`);
  if (v.audit) systems.splice(2, 0, meshmedic({ name: 'meshmedic (audit on)', env: { MESHMEDIC_AUDIT__ENABLED: 'true', MESHMEDIC_AUDIT__DIR: auditDir } }));
  if (typeof v.only === 'string') {
    const words = v.only.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
    systems = systems.filter((s) => s.name === 'haproxy' || words.some((w) => s.name.toLowerCase().includes(w)));
  }

  const tmp = tempDir('mm-bench-proxy');
  const rows = new Map<string, Row>(systems.map((s) => [s.name, { system: s.name, available: true }]));
  let cost: PredictionCost | undefined;
  try {
    const be = nodeEntry('src/testing/backend-main.ts');
    const backendProc = spawnTracked({
      name: 'backend', cmd: be.cmd, args: [...be.args, '--port', '0', '--control-port', '0', '--body-bytes', '256', '--exit-with-stdin'],
      logDir: tmp.dir, stdinPipe: true,
    });
    const ready = await waitReadyLine<{ port: number }>(backendProc);
    const ctx = { upstreams: [{ host: '127.0.0.1', port: ready.port }], dir: tmp.dir, timeouts: BENCH_TIMEOUTS };
    process.stderr.write(`backend on 127.0.0.1:${ready.port}; ${systems.length} systems, ${rounds} round(s), wrk ${connections} connections ${durationS}s, fixed rate ${rate} rps\n`);

    for (let round = 1; round <= rounds; round++) {
      for (const sys of systems) {
        const row = rows.get(sys.name)!;
        if (!row.available) continue;
        const why = sys.available();
        if (why) { row.available = false; row.reason = why; continue; }
        let sut: RunningSut | undefined;
        try {
          sut = await sys.start(ctx);
          const url = `${sut.url}/`;
          await runWrk(url, { threads: 2, connections, durationS: warmS });
          const pgid = sut.proc?.child.pid;
          const cpu0 = pgid === undefined ? undefined : groupCpuSeconds(pgid);
          const sat = await runWrk(url, { threads: 2, connections, durationS });
          const cpu1 = pgid === undefined ? undefined : groupCpuSeconds(pgid);
          const cpuUs = cpu0 !== undefined && cpu1 !== undefined && sat.requests > 0 ? ((cpu1 - cpu0) * 1e6) / sat.requests : undefined;
          const fixed = await fixedRate(sut.url, rate, durationS, warmS, tmp.dir);
          process.stderr.write(`  round ${round} ${sys.name}: ${Math.round(sat.rps)} req/s${cpuUs === undefined ? '' : `, ${cpuUs.toFixed(1)} µs CPU/request`}, fixed ${rate} rps p99 ${fixed.p99.toFixed(2)} ms\n`);
          // Fast errors are not throughput: a system whose answers are mostly errors gets no figures.
          const errShare = Math.max((sat.non2xx + sat.socketErrors) / Math.max(1, sat.requests), fixed.failed / Math.max(1, fixed.count));
          if (!(errShare <= 0.01)) throw new Error(`${(errShare * 100).toFixed(1)} % of answers were errors (see bench/README.md: every request must succeed)`);
          if (!row.saturation || sat.rps > row.saturation.rps) { row.saturation = sat; row.cpuUsPerRequest = cpuUs; }
          if (!row.fixed || fixed.p99 < row.fixed.p99) row.fixed = fixed;
        } catch (e) {
          row.available = false;
          row.reason = `failed: ${(e as Error).message.split('\n')[0]}`;
          process.stderr.write(`  ${sys.name}: ${row.reason}\n`);
        } finally {
          await sut?.stop();
        }
      }
    }
    // Prediction's cost: a few per cent is below what one round of either lane can tell on a shared machine
    // (single bursts differ by ±10-20 % under load), so it gets its own pairs, each of fresh processes.
    const on = systems.find((s) => s.name === 'meshmedic');
    const off = systems.find((s) => s.name === 'meshmedic (prediction off)');
    if (costPairs > 0 && on && off && rows.get(on.name)!.available && rows.get(off.name)!.available) {
      process.stderr.write(`prediction cost: '${on.name}' vs '${off.name}', ${costPairs} pairs of fresh processes, ${costBurstS}-s bursts\n`);
      try {
        cost = await measurePredictionCost({ on, off, ctx, pairs: costPairs, burstS: costBurstS, warmS, connections, log: (l) => process.stderr.write(l) });
      } catch (e) {
        process.stderr.write(`  prediction cost: failed: ${(e as Error).message.split('\n')[0]}\n`);
      }
    }
  } finally {
    await stopAll();
    tmp.remove();
    if (v.audit) rmSync(auditDir, { recursive: true, force: true });
  }

  const list = [...rows.values()];
  const ref = rows.get('haproxy');
  const d2 = (v: number): string | null => (Number.isFinite(v) ? v.toFixed(2) : null); // latencies: always two decimals
  const x = (a: number | undefined, b: number | undefined): string | null => { const q = ratio(a, b); return q === null ? null : `${q.toFixed(2)}×`; };
  const table = {
    alignRight: [false, true, true, true, true, true, true, true, true, true, true, true],
    columns: ['system', 'req/s (saturation)', '× HAProxy', 'CPU µs/req (sat.)', 'CPU × HAProxy', 'p50 ms (sat.)', 'p99 ms (sat.)', `p50 ms @${rate}/s`, `p99 ms @${rate}/s`, 'p99 × HAProxy', 'p99 service ms', 'errors'],
    rows: list.map((r): Cell[] => r.available && r.saturation && r.fixed
      ? [r.system, Math.round(r.saturation.rps), x(r.saturation.rps, ref?.saturation?.rps), r.cpuUsPerRequest === undefined ? null : r.cpuUsPerRequest.toFixed(1),
        x(r.cpuUsPerRequest, ref?.cpuUsPerRequest), d2(r.saturation.p50), d2(r.saturation.p99), d2(r.fixed.p50), d2(r.fixed.p99),
        x(r.fixed.p99, ref?.fixed?.p99), d2(r.fixed.p99Service), r.saturation.non2xx + r.saturation.socketErrors + r.fixed.failed]
      : [r.system, null, null, null, null, null, null, null, null, null, null, `not available: ${r.reason ?? 'unknown'}`]),
  };
  const cmd = `npm run bench:proxy${quick ? ' -- --quick --write' : ''}`;
  const when = new Date().toISOString();
  const machine = `${os.cpus().length} × ${os.cpus()[0]?.model.trim() ?? 'cpu'}, Node ${process.version}, ${os.platform()} ${os.release()}`;
  process.stdout.write(`\n${renderText(table)}\n\n`);
  const mm = rows.get('meshmedic');
  const verdict = mm?.saturation && ref?.saturation && mm.fixed && ref.fixed
    ? `meshmedic/HAProxy throughput ${x(mm.saturation.rps, ref.saturation.rps)} (target ≥ 0.60×), p99 at ${rate}/s ${x(mm.fixed.p99, ref.fixed.p99)} (target ≤ 2×)`
    : 'meshmedic or HAProxy did not run: no ratio';
  process.stdout.write(`${verdict}\n`);
  const workers = rows.get('meshmedic (2 workers)');
  const threads2 = rows.get('haproxy (nbthread 2)');
  const one = rows.get('haproxy (nbthread 1)');
  const verdicts = [verdict];
  if (mm?.saturation && one?.saturation) verdicts.push(`meshmedic/HAProxy nbthread 1 throughput ${x(mm.saturation.rps, one.saturation.rps)} (target ≥ 0.80×)`);
  if (workers?.saturation && threads2?.saturation) verdicts.push(`meshmedic 2 workers/HAProxy nbthread 2 throughput ${x(workers.saturation.rps, threads2.saturation.rps)} (target ≥ 0.80×)`);
  // CPU per request on equal cores: one meshmedic process against one HAProxy thread, two workers against two.
  if (mm?.cpuUsPerRequest !== undefined && one?.cpuUsPerRequest !== undefined) verdicts.push(`CPU per request meshmedic/HAProxy nbthread 1 ${x(mm.cpuUsPerRequest, one.cpuUsPerRequest)} (target ≤ 1.30×)`);
  if (workers?.cpuUsPerRequest !== undefined && threads2?.cpuUsPerRequest !== undefined) verdicts.push(`CPU per request meshmedic 2 workers/HAProxy nbthread 2 ${x(workers.cpuUsPerRequest, threads2.cpuUsPerRequest)} (target ≤ 1.30×)`);
  if (cost) verdicts.push(costVerdict(cost, 'meshmedic', 'meshmedic (prediction off)'));
  for (const line of verdicts.slice(1)) process.stdout.write(`${line}\n`);
  const portable = rows.get('meshmedic (portable engine)');
  if (portable?.saturation && ref?.saturation) process.stdout.write(`portable engine/HAProxy throughput ${x(portable.saturation.rps, ref.saturation.rps)} (target ≥ 0.60×)\n`);

  const write = quick ? Boolean(v.write) : !v['no-write'];
  if (write) {
    writeJson(path.join(ROOT, 'bench', 'results', quick ? 'proxy-quick.json' : 'proxy.json'), {
      when, command: cmd, machine, quick, rounds, wrk: { threads: 2, connections, durationS, warmS }, fixedRate: { rate, durationS },
      timeouts: BENCH_TIMEOUTS, rows: list, predictionCost: cost ?? null, verdict, verdicts,
    });
    const readme = path.join(ROOT, 'bench', 'README.md');
    updateMarkdownFile(readme, 'bench:proxy', [
      `Last run: ${when}, \`${cmd}\` (${quick ? 'quick mode: short, indicative only' : `${rounds} rounds, best of each`}), on ${machine}.`,
      '',
      renderMarkdown(table),
      '',
      verdicts.join('; ') + '.',
    ].join('\n'), '## Proxy overhead: latest results');
    process.stderr.write(`wrote bench/results/${quick ? 'proxy-quick' : 'proxy'}.json and bench/README.md\n`);
  }
  return 0;
}

/** p50/p99 at a fixed rate with the open-loop generator in its own process; the first warmS seconds are not counted. */
async function fixedRate(url: string, rate: number, durationS: number, warmS: number, dir: string): Promise<NonNullable<Row['fixed']>> {
  const optsFile = path.join(dir, 'loadgen-opts.json');
  const outFile = path.join(dir, 'loadgen-out.json');
  writeFileSync(optsFile, JSON.stringify({
    targets: [{ name: 'sut', url, schedule: [{ atMs: 0, rate }] }],
    durationMs: (durationS + warmS) * 1000, timeoutMs: 5000, connections: 256,
  }));
  const gen = nodeEntry('bench/lib/loadgen-main.ts');
  const p = spawnTracked({ name: 'loadgen', cmd: gen.cmd, args: [...gen.args, optsFile, outFile], logDir: dir });
  const { code } = await p.exited;
  if (code !== 0 || !existsSync(outFile)) throw new Error(`load generator failed (${code}); see ${p.logFile}: ${existsSync(p.logFile) ? readFileSync(p.logFile, 'utf8').slice(-300) : ''}`);
  const [rec] = JSON.parse(readFileSync(outFile, 'utf8')) as LoadRecords[];
  const s = summarize(rec, warmS * 1000);
  return { rate, p50: s.p50, p90: s.p90, p99: s.p99, p99Service: s.p99Service, failed: s.failed, count: s.count, achievedRps: s.achievedRps };
}

main().then((code) => process.exit(code), (e: Error) => { process.stderr.write(`bench:proxy: ${e.stack ?? e.message}\n`); process.exitCode = 1; stopAll().finally(() => process.exit(1)); });
