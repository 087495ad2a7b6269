// An unrelated client's latency through a sidecar under the edge-security review's attacks (slowloris,
// trickling uploads, an idle-connection flood within the cap) against the same sidecar without them; the
// admin /healthz is probed throughout. Target: attacked p99 ≤ 2 × unattacked p99, /healthz always 200.
// The backend reads each request body before answering, as an upload handler does (so uploads hold upstream
// connections, as in the review). Each part is its own process (backend, the built sidecar with default settings, attacker, load
// generator). Writes bench/results/edge.json and its section of bench/README.md.
// Three rounds (fresh processes each), judged on the median ratio. `--quick`: one round, smaller attacks
// and 6 s phases, nothing written unless --write.
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { summarize, type LoadOptions, type LoadRecords } from '../lib/loadgen.js';
import { ROOT, nodeEntry, spawnTracked, stopAll, tempDir, waitReadyLine, type Spawned } from '../lib/procs.js';
import { renderMarkdown, renderText, replaceSection, type Cell, type Table } from '../lib/report.js';
import { median } from '../lib/stats.js';

const args = new Set(process.argv.slice(2));
const quick = args.has('--quick');
const write = !quick || args.has('--write');
const PHASE_MS = quick ? 6_000 : 20_000;
const RAMP_MS = quick ? 2_000 : 4_000;
const RATE = 200;
const ROUNDS = quick ? 1 : 3;
const ATTACK = quick ? { slowloris: 500, trickle: 330, idle: 1_000 } : { slowloris: 2_000, trickle: 330, idle: 3_000 };
const log = (m: string): void => void process.stderr.write(`[edge] ${m}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function sidecar(backendPort: number, dir: string): Promise<{ proc: Spawned; proxy: string; admin: string }> {
  const proc = spawnTracked({
    name: 'meshmedic', cmd: process.execPath, logDir: dir,
    args: [path.join(ROOT, 'bin', 'meshmedic.js'), 'proxy', '--listen', '127.0.0.1:0', '--upstream', `http://127.0.0.1:${backendPort}`, '--admin', '127.0.0.1:0', '--log-level', 'warn'],
  });
  const addresses = await new Promise<Record<string, string>>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`sidecar not ready (see ${proc.logFile})`)), 30_000);
    proc.child.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      const line = buf.split('\n').find((l) => l.includes('"meshmedic ready"'));
      if (line) {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { addresses: Record<string, string> }).addresses);
      }
    });
  });
  return { proc, proxy: `http://${addresses.outbound}`, admin: `http://${addresses.admin}` };
}

/** Run the load generator for one phase; meanwhile probe /healthz every 250 ms. */
async function phase(name: string, proxy: string, admin: string, dir: string): Promise<{ records: LoadRecords; health: { ok: number; failed: number } }> {
  const opts: LoadOptions = { targets: [{ name, url: proxy, schedule: [{ atMs: 0, rate: RATE }] }], durationMs: PHASE_MS, timeoutMs: 10_000, connections: 16, path: '/client' };
  const optsFile = path.join(dir, `${name}.opts.json`);
  const outFile = path.join(dir, `${name}.out.json`);
  writeFileSync(optsFile, JSON.stringify(opts));
  const gen = nodeEntry('bench/lib/loadgen-main.ts');
  const proc = spawnTracked({ name: `loadgen-${name}`, cmd: gen.cmd, args: [...gen.args, optsFile, outFile], logDir: dir });
  const health = { ok: 0, failed: 0 };
  let done = false;
  const probes = (async () => {
    while (!done) {
      const ok = await request(`${admin}/healthz`, { headersTimeout: 2000, bodyTimeout: 2000 }).then(
        async (r) => { await r.body.dump(); return r.statusCode === 200; },
        () => false,
      );
      if (ok) health.ok++;
      else health.failed++;
      await sleep(250);
    }
  })();
  await proc.exited;
  done = true;
  await probes;
  const records = (JSON.parse(readFileSync(outFile, 'utf8')) as LoadRecords[])[0]!;
  return { records, health };
}

interface Round {
  readonly a: ReturnType<typeof summarize>;
  readonly b: ReturnType<typeof summarize>;
  readonly ratio: number;
  readonly health: { unattacked: { ok: number; failed: number }; attacked: { ok: number; failed: number } };
}

/** One round: a fresh backend and sidecar, a phase without attack, then one under attack. */
async function round(n: number, dir: string): Promise<Round> {
  const be = nodeEntry('src/testing/backend-main.ts');
  const backend = spawnTracked({ name: `backend-${n}`, cmd: be.cmd, logDir: dir, stdinPipe: true, args: [...be.args, '--port', '0', '--control-port', '0', '--read-body', '--exit-with-stdin'] });
  const ready = await waitReadyLine<{ backends?: { port: number }[]; port?: number }>(backend, 30_000);
  const backendPort = ready.backends?.[0]?.port ?? ready.port!;
  const sc = await sidecar(backendPort, dir);
  log(`round ${n}: sidecar ${sc.proxy}, admin ${sc.admin}; ${PHASE_MS / 1000} s phases at ${RATE} req/s`);
  log(`round ${n}, phase 1: no attack`);
  const calm = await phase(`unattacked-${n}`, sc.proxy, sc.admin, dir);
  log(`round ${n}, phase 2: ${ATTACK.slowloris} slowloris, ${ATTACK.trickle} trickling uploads, ${ATTACK.idle} idle connections`);
  const port = Number(sc.proxy.slice(sc.proxy.lastIndexOf(':') + 1));
  const att = nodeEntry('bench/edge/attacker.ts');
  const attacker = spawnTracked({ name: `attacker-${n}`, cmd: att.cmd, logDir: dir, args: [...att.args, String(port), String(ATTACK.slowloris), String(ATTACK.trickle), String(ATTACK.idle), String(RAMP_MS + PHASE_MS + 30_000)] });
  await waitReadyLine(attacker, 60_000);
  await sleep(RAMP_MS);
  const attacked = await phase(`attacked-${n}`, sc.proxy, sc.admin, dir);
  await attacker.stop();
  await sc.proc.stop();
  await backend.stop();
  const a = summarize(calm.records);
  const b = summarize(attacked.records);
  return { a, b, ratio: b.p99 / a.p99, health: { unattacked: calm.health, attacked: attacked.health } };
}

async function main(): Promise<void> {
  const started = Date.now();
  const tmp = tempDir('mm-bench-edge-');
  try {
    const rounds: Round[] = [];
    for (let n = 1; n <= ROUNDS; n++) rounds.push(await round(n, tmp.dir));
    const rows: (readonly Cell[])[] = [];
    rounds.forEach((r, i) => {
      rows.push([`${i + 1}`, 'unattacked', r.a.count, r.a.failed, r.a.p50, r.a.p99, r.a.max, `${r.health.unattacked.ok}/${r.health.unattacked.ok + r.health.unattacked.failed}`, null]);
      rows.push([`${i + 1}`, 'attacked', r.b.count, r.b.failed, r.b.p50, r.b.p99, r.b.max, `${r.health.attacked.ok}/${r.health.attacked.ok + r.health.attacked.failed}`, `${r.ratio.toFixed(2)}×`]);
    });
    const table: Table = { columns: ['round', 'phase', 'requests', 'failed', 'p50 ms', 'p99 ms', 'max ms', '/healthz 200', 'p99 attacked / unattacked'], rows };
    const ratios = rounds.map((r) => r.ratio);
    const ratio = median(ratios);
    const healthFailures = rounds.reduce((n, r) => n + r.health.attacked.failed, 0);
    const wall = Math.round((Date.now() - started) / 1000);
    const verdict = `attacked p99 / unattacked p99, median of ${ROUNDS} round${ROUNDS > 1 ? 's' : ''} = **${ratio.toFixed(2)}** (rounds ${ratios.map((x) => x.toFixed(2)).join(', ')}; target ≤ 2); /healthz failures under attack: ${healthFailures}`;
    process.stdout.write(`${renderText(table)}\n${verdict.replace(/\*\*/g, '')}\n`);
    if (write) {
      writeFileSync(path.join(ROOT, 'bench', 'results', 'edge.json'), JSON.stringify({ at: new Date().toISOString(), node: process.version, quick, wallSeconds: wall, loadAverage: os.loadavg(), attack: ATTACK, rate: RATE, phaseMs: PHASE_MS, rounds, medianRatio: ratio }, null, 2) + '\n');
      const readme = path.join(ROOT, 'bench', 'README.md');
      writeFileSync(readme, replaceSection(readFileSync(readme, 'utf8'), 'bench:edge',
        `Last run: ${new Date().toISOString()}, \`npm run bench:edge${quick ? ' -- --quick' : ''}\`, Node ${process.version}, ${wall} s, 15-minute load average at the end ${os.loadavg()[2].toFixed(2)}. ${ROUNDS} round${ROUNDS > 1 ? 's' : ''}, each with a fresh backend and sidecar: one client at ${RATE} req/s (open loop, latency from the scheduled time) through \`meshmedic proxy\` with default settings, ${PHASE_MS / 1000} s without and ${PHASE_MS / 1000} s with ${ATTACK.slowloris} slowloris connections, ${ATTACK.trickle} uploads announcing 100 MB and sending a byte a second to an endpoint that reads each upload before answering (the review's D3; an endpoint answering on the head would turn the uploads into a reconnect flood), and ${ATTACK.idle} idle connections (cut ones reopened), attacks started ${RAMP_MS / 1000} s before the measured phase. The ratio of two p99s moves with single scheduling hiccups on a 2-core machine, hence the rounds.\n\n${renderMarkdown(table)}\n\n${verdict}.`,
        '## Under attack (`npm run bench:edge`)'));
    }
  } finally {
    await stopAll();
    tmp.remove();
  }
}

main().catch(async (e: Error) => {
  process.stderr.write(`${e.stack ?? e.message}\n`);
  await stopAll();
  process.exit(1);
});
