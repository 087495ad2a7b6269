// `npm run bench:workers`: what proxy workers cost detection. The same hard fault (one of three endpoints
// answers 500 from a known instant) under steady traffic, through meshmedic with 1 process and with
// 2 workers (deltas shipped once per tick): time from the fault to the ejection decision, per run.
// Writes bench/results/workers-detect.json and its table into bench/README.md.
import path from 'node:path';
import os from 'node:os';
import { Agent, request } from 'undici';
import { ROOT, freePort, spawnTracked, stopAll, tempDir, waitPort } from '../lib/procs.js';
import { buildIfStale } from '../lib/build.js';
import { parseBenchArgs } from '../lib/args.js';
import { renderMarkdown, renderText, updateMarkdownFile, writeJson, type Cell } from '../lib/report.js';
import { startBackend } from '../../src/testing/backend.js';
import { median } from '../lib/stats.js';

const USAGE = `usage: npm run bench:workers -- [--quick] [--runs N] [--rate RPS] [--write]
  --quick     3 runs per mode (about 30 s); writes nothing unless --write
  --runs N    runs per mode (default 10)
  --rate RPS  steady request rate through the proxy (default 300)
`;

interface Run { workers: number; detectMs: number }

async function oneRun(workers: number, rate: number, dir: string): Promise<number> {
  const backends = await Promise.all(['b1', 'b2', 'b3'].map((id) => startBackend({ port: 0, controlPort: null, id, medianMs: 1 })));
  const port = await freePort();
  const adminPort = await freePort();
  const proc = spawnTracked({
    name: `meshmedic-${workers}`, cmd: process.execPath, logDir: dir, stopSignal: 'SIGTERM', graceMs: 3000,
    args: [path.join(ROOT, 'bin', 'meshmedic.js'), 'proxy', '--listen', `127.0.0.1:${port}`, '--admin', `127.0.0.1:${adminPort}`, '--workers', String(workers), '--log-level', 'warn',
      '--upstream', backends.map((b) => `http://127.0.0.1:${b.port}`).join(',')],
  });
  // Several connections, so that both workers carry traffic.
  const agent = new Agent({ connections: 8, pipelining: 1 });
  let stop = false;
  try {
    await waitPort(port, '127.0.0.1', 30_000, proc);
    await waitPort(adminPort, '127.0.0.1', 30_000, proc);
    // Open loop at `rate`, bounded to 30 s.
    const traffic = (async () => {
      const gap = 1000 / rate;
      const end = Date.now() + 30_000;
      let next = performance.now();
      const inflight = new Set<Promise<void>>();
      while (!stop && Date.now() < end) {
        const p = request(`http://127.0.0.1:${port}/`, { dispatcher: agent }).then((r) => r.body.dump(), () => undefined).then(() => { inflight.delete(p); });
        inflight.add(p);
        next += gap;
        const wait = next - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      await Promise.all(inflight);
    })();
    await new Promise((r) => setTimeout(r, 1500)); // warm: every worker has connections and measurements
    const id = `default/127.0.0.1:${backends[0]!.port}`;
    const t0 = Date.now();
    backends[0]!.setFault({ kind: 'errors', status: 500, fraction: 1 });
    let detectedAt: number | undefined;
    while (detectedAt === undefined && Date.now() - t0 < 20_000) {
      const r = await request(`http://127.0.0.1:${adminPort}/v1/events?limit=5000`);
      const body = (await r.body.json()) as { events: { action: string; target: string; at: number }[] };
      detectedAt = body.events.find((e) => e.action === 'eject' && e.target === id)?.at;
      if (detectedAt === undefined) await new Promise((r) => setTimeout(r, 5));
    }
    stop = true;
    await traffic;
    if (detectedAt === undefined) throw new Error(`${workers} worker(s): no ejection within 20 s`);
    return detectedAt - t0;
  } finally {
    stop = true;
    await agent.close();
    await proc.stop();
    await Promise.all(backends.map((b) => b.close()));
  }
}


async function main(): Promise<number> {
  const args = parseBenchArgs(process.argv.slice(2), USAGE, { runs: 'integer', rate: 'integer' });
  if ('exit' in args) return args.exit;
  const runs = args.numbers.runs ?? (args.quick ? 3 : 10);
  const rate = args.numbers.rate ?? 300;
  const err = await buildIfStale((s) => process.stderr.write(s));
  if (err) process.stderr.write(`bench:workers: the build reported errors:\n${err}\n`);
  const tmp = tempDir('mm-bench-workers');
  const results: Run[] = [];
  const started = Date.now();
  try {
    // Interleaved, so that a busy spell of the machine hits both modes alike.
    for (let i = 0; i < runs; i++) {
      for (const workers of [1, 2]) {
        const detectMs = await oneRun(workers, rate, tmp.dir);
        process.stderr.write(`  run ${i + 1} ${workers} worker(s): ejected ${detectMs} ms after the fault\n`);
        results.push({ workers, detectMs });
      }
    }
  } finally {
    await stopAll();
    tmp.remove();
  }
  const load = os.loadavg().map((l) => l.toFixed(1)).join(' ');
  const rows: Cell[][] = [1, 2].map((w) => {
    const xs = results.filter((r) => r.workers === w).map((r) => r.detectMs);
    return [w === 1 ? 'meshmedic (1 process)' : 'meshmedic (2 workers)', xs.length, median(xs), Math.min(...xs), Math.max(...xs)];
  });
  const table = { alignRight: [false, true, true, true, true], columns: ['system', 'runs', 'median ms to eject', 'min ms', 'max ms'], rows };
  const added = (rows[1]![2] as number) - (rows[0]![2] as number);
  const verdict = `2 workers add ${added} ms to the median time from the fault to the ejection (a worker ships failures within 5 ms, everything else every stats.tickMs = 100 ms)`;
  process.stdout.write(`\n${renderText(table)}\n\n${verdict}\n`);
  const write = args.quick ? args.write === true : args.write !== false;
  if (write) {
    const when = new Date().toISOString();
    const cmd = `npm run bench:workers${args.quick ? ' -- --quick --write' : ''}`;
    const machine = `${os.cpus().length} × ${os.cpus()[0]?.model.trim() ?? 'cpu'}, Node ${process.version}, load average at the end ${load}`;
    writeJson(path.join(ROOT, 'bench', 'results', 'workers-detect.json'), { when, command: cmd, machine, rate, runs, results, verdict, seconds: Math.round((Date.now() - started) / 1000) });
    updateMarkdownFile(path.join(ROOT, 'bench', 'README.md'), 'bench:workers', [
      `Last run: ${when}, \`${cmd}\`, ${rate} requests/s over 3 endpoints, on ${machine}.`, '', renderMarkdown(table), '', `${verdict}.`,
    ].join('\n'), '## Workers and detection: latest results');
    process.stderr.write('wrote bench/results/workers-detect.json and bench/README.md\n');
  }
  return 0;
}

main().then((code) => process.exit(code), (e: Error) => { process.stderr.write(`bench:workers: ${e.stack ?? e.message}\n`); stopAll().finally(() => process.exit(1)); });
