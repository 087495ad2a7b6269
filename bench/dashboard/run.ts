/// <reference lib="dom" />
// Cost of the web dashboard: a quick-mode sidecar (its own process) carries 1,000 requests/s to two
// backends; its CPU is read from /proc with no dashboard open, then with 5 dashboards open in headless
// Chromium (each following /v1/stream). Also takes the README's screenshot of the dashboard during the demo.
// Writes bench/results/dashboard.json and its section of bench/README.md.
//   npm run bench:dashboard [-- --quick] [-- --screenshot]
import { readFileSync, mkdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { startBackend } from '../../src/testing/backend.js';
import { freePort, spawnTracked, stopAll, tempDir, waitPort } from '../lib/procs.js';
import { renderMarkdown, renderText, updateMarkdownFile, writeJson, type Table } from '../lib/report.js';
import { launchChromium } from '../../test/helpers/chromium.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const quick = process.argv.includes('--quick');
const screenshotOnly = process.argv.includes('--screenshot');
const PHASE_S = quick ? 8 : 30;
const RPS = 1000;
const DASHBOARDS = 5;

/** CPU seconds (user + system) used so far by a process, from /proc/PID/stat. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const hz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return (Number(f[11]) + Number(f[12])) / hz; // utime, stime (fields 14 and 15)
}

/** Paced open-loop load: RPS requests per second for `seconds`, bounded in count and time. */
async function load(url: string, seconds: number): Promise<{ sent: number; ok: number; failed: number }> {
  const pool = new Pool(url, { connections: 32 });
  const res = { sent: 0, ok: 0, failed: 0 };
  const total = RPS * seconds;
  const start = performance.now();
  const inflight = new Set<Promise<void>>();
  while (res.sent < total && performance.now() - start < seconds * 1000 + 5000) {
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * RPS));
    while (res.sent < due && inflight.size < 500) {
      res.sent++;
      const p: Promise<void> = pool
        .request({ path: '/bench', method: 'GET', headersTimeout: 5000, bodyTimeout: 5000 })
        .then(async (r) => {
          await r.body.dump();
          if (r.statusCode < 500) res.ok++;
          else res.failed++;
        })
        .catch(() => void res.failed++)
        .finally(() => inflight.delete(p));
      inflight.add(p);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  await Promise.all(inflight);
  await pool.close();
  return res;
}

async function measureCost(): Promise<void> {
  const logs = tempDir('meshmedic-bench-dashboard-');
  const b1 = await startBackend({ port: 0, controlPort: null, id: 'b1', medianMs: 1, bodyBytes: 256 });
  const b2 = await startBackend({ port: 0, controlPort: null, id: 'b2', medianMs: 1, bodyBytes: 256 });
  const [listen, admin] = [await freePort(), await freePort()];
  const sidecar = spawnTracked({
    name: 'sidecar',
    cmd: process.execPath,
    args: [path.join(root, 'bin', 'meshmedic.js'), 'proxy', '--listen', `127.0.0.1:${listen}`, '--upstream', `http://127.0.0.1:${b1.port},http://127.0.0.1:${b2.port}`, '--admin', `127.0.0.1:${admin}`, '--log-level', 'warn'],
    logDir: logs.dir,
  });
  const chrome = await launchChromium();
  try {
    await waitPort(admin, '127.0.0.1', 15_000, sidecar);
    const pid = sidecar.child.pid!;
    const phase = async (label: string) => {
      const c0 = cpuSeconds(pid);
      const t0 = performance.now();
      const r = await load(`http://127.0.0.1:${listen}`, PHASE_S);
      const s = (performance.now() - t0) / 1000;
      const cpu = (100 * (cpuSeconds(pid) - c0)) / s;
      process.stdout.write(`${label}: ${r.sent} requests (${r.failed} failed) in ${s.toFixed(1)} s, sidecar CPU ${cpu.toFixed(1)} % of a core\n`);
      return { label, seconds: s, requests: r.sent, failed: r.failed, cpuPct: cpu };
    };
    await load(`http://127.0.0.1:${listen}`, 2); // warm-up
    const none = await phase('no dashboard');
    const pages = [];
    for (let i = 0; i < DASHBOARDS; i++) {
      const page = await chrome.browser.newPage();
      await page.goto(`http://127.0.0.1:${admin}/ui/`, { waitUntil: 'load' });
      await page.waitForFunction(() => document.body.innerText.includes('default/127.0.0.1'), { timeout: 15_000 });
      pages.push(page);
    }
    const open = await phase(`${DASHBOARDS} dashboards open`);
    const status = (await (await fetch(`http://127.0.0.1:${admin}/v1/status`)).json()) as { dashboardClients: number };
    const result = { at: new Date().toISOString(), quick, rps: RPS, phaseS: PHASE_S, dashboards: DASHBOARDS, streamsSeen: status.dashboardClients, phases: [none, open], dashboardCpuPct: open.cpuPct - none.cpuPct, node: process.version };
    writeJson(path.join(root, 'bench', 'results', 'dashboard.json'), result);
    const table: Table = {
      columns: ['phase', 'requests', 'failed', 'seconds', 'sidecar CPU, % of a core'],
      rows: [none, open].map((p) => [p.label, p.requests, p.failed, +p.seconds.toFixed(1), +p.cpuPct.toFixed(1)]),
    };
    process.stdout.write(`\n${renderText(table)}\ndashboards' cost: ${result.dashboardCpuPct.toFixed(1)} % of a core (target ≤ 2 %)\n`);
    const md = `Last run: ${result.at}, \`npm run bench:dashboard${quick ? ' -- --quick' : ''}\`, Node ${process.version}. One quick-mode sidecar in its own process at ${RPS} requests/s to two backends for ${PHASE_S} s per phase; CPU from /proc (user + system) of the sidecar process, which serves the admin API, the stream and the dashboard's files too. The dashboards' cost is the difference between the phases: **${result.dashboardCpuPct.toFixed(1)} % of a core** for ${DASHBOARDS} dashboards (${status.dashboardClients} streams open; target ≤ 2 %).\n\n${renderMarkdown(table)}`;
    updateMarkdownFile(path.join(root, 'bench', 'README.md'), 'bench:dashboard', md, '## Web dashboard cost (`npm run bench:dashboard`)');
  } finally {
    await chrome.close();
    await stopAll();
    await Promise.all([b1.close(), b2.close()]);
    logs.remove();
  }
}

/** The screenshot in the README: the dashboard of the demo's first client during the black-hole fault. */
async function screenshot(): Promise<void> {
  const logs = tempDir('meshmedic-bench-dashboard-demo-');
  const demo = spawnTracked({ name: 'demo', cmd: process.execPath, args: [path.join(root, 'bin', 'meshmedic.js'), 'demo', '--plain', '--duration', '50'], logDir: logs.dir });
  const chrome = await launchChromium();
  try {
    let out = '';
    const url = await new Promise<string>((resolve, reject) => {
      demo.child.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        const m = /dashboard: (http:\S+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      setTimeout(() => reject(new Error('the demo printed no dashboard URL')), 30_000);
    });
    const page = await chrome.browser.newPage();
    await page.setViewport({ width: 1400, height: 900 });
    await page.goto(url, { waitUntil: 'load' });
    // The black-hole starts 40 s in and is detected about a second later: take the picture at 44 s.
    const startedAt = Date.now();
    await new Promise((r) => setTimeout(r, Math.max(0, 44_000 - (Date.now() - startedAt) - 3000)));
    mkdirSync(path.join(root, 'docs', 'img'), { recursive: true });
    await page.screenshot({ path: path.join(root, 'docs', 'img', 'dashboard.png') as `${string}.png` });
    process.stdout.write(`wrote docs/img/dashboard.png from ${url}\n`);
  } finally {
    await chrome.close();
    await stopAll();
    logs.remove();
  }
}

(screenshotOnly ? screenshot() : measureCost()).catch(async (err) => {
  process.stderr.write(`bench:dashboard failed: ${(err as Error).stack}\n`);
  await stopAll();
  process.exit(1);
});
