// `npm run bench:scenarios`: the fault-scenario catalogue with real backend processes on loopback and
// open-loop load, through meshmedic (policies none, envoy-default, meshmedic), HAProxy and nginx, all
// at once in the same run. Writes bench/results/scenarios.json and the table into bench/README.md.
import { parseArgs } from 'node:util';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { ROOT, nodeEntry, runCommand, spawnTracked, stopAll, tempDir, waitReadyLine, type Spawned } from '../lib/procs.js';
import { HAPROXY_HEALING, NGINX_HEALING, type Timeouts } from '../lib/peers.js';
import { haproxy, meshmedic, nginx, type RunningSut, type SystemUnderTest } from '../lib/systems.js';
import { buildIfStale } from '../lib/build.js';
import type { LoadRecords } from '../lib/loadgen.js';
import { ratio, renderMarkdown, renderText, updateMarkdownFile, writeJson, type Cell } from '../lib/report.js';
import { catalogue, FULL_TIMING, QUICK_TIMING, QUICK_SCENARIOS, RATE, type Scenario } from './catalogue.js';
import { analyzeScenario, type ArrivalLog, type ScenarioMetrics } from './analyze.js';

const USAGE = `usage: npm run bench:scenarios -- [--quick] [--only SCENARIO[,SCENARIO]] [--systems WORD[,WORD]] [--no-build] [--no-write]
  --quick     ${QUICK_SCENARIOS.join(' and ')} only, shorter phases (under a minute); writes nothing unless --write
  --only      run these scenarios (names: ${catalogue(FULL_TIMING).map((s) => s.name).join(', ')})
  --systems   run only systems whose name contains one of these words
  --no-write  print only; do not write bench/results/scenarios.json or bench/README.md
  --render F  run nothing: re-render the tables of a saved result file (e.g. bench/results/scenarios.json) into bench/README.md
  --reanalyze run nothing: recompute every figure of the last run from its raw evidence in bench/results/tmp/
              (after a change to the definitions in analyze.ts), then write results and README as a run would`;

/** Same upstream timeouts for every system: a black-holed request fails after 2 s everywhere. */
const SCENARIO_TIMEOUTS: Timeouts = Object.freeze({ connectMs: 1000, serverMs: 2000, clientMs: 30_000 });
const CLIENT_TIMEOUT_MS = 5000;

const SYSTEMS: SystemUnderTest[] = [
  meshmedic({ name: 'meshmedic (none)', policy: 'none' }),
  meshmedic({ name: 'meshmedic (envoy-default)', policy: 'envoy-default' }),
  meshmedic({ name: 'meshmedic', policy: 'meshmedic' }),
  haproxy({ name: 'haproxy', healing: HAPROXY_HEALING }),
  nginx({ name: 'nginx', workers: 'auto', healing: NGINX_HEALING }),
];

type Outcome = { available: true; metrics: ScenarioMetrics } | { available: false; reason: string };

interface Lane {
  sys: SystemUnderTest;
  backends: { proc: Spawned; port: number; controlPort: number; address: string }[];
  sut?: RunningSut;
  failed?: string;
}

const log = (s: string): void => { process.stderr.write(s); };

async function post(url: string, body: unknown): Promise<void> {
  const r = await request(url, { method: 'POST', body: JSON.stringify(body), headersTimeout: 3000, bodyTimeout: 3000 });
  const text = await r.body.text();
  if (r.statusCode !== 200) throw new Error(`POST ${url}: ${r.statusCode} ${text}`);
}

async function startLane(sys: SystemUnderTest, sc: Scenario, dir: string): Promise<Lane> {
  const lane: Lane = { sys, backends: [] };
  const why = sys.available();
  if (why) { lane.failed = why; return lane; }
  const be = nodeEntry('src/testing/backend-main.ts');
  try {
    lane.backends = await Promise.all(Array.from({ length: sc.endpoints }, async (_, i) => {
      const proc = spawnTracked({
        name: `${sys.name}-backend-${i}`, cmd: be.cmd, logDir: dir, stdinPipe: true,
        args: [...be.args, '--port', '0', '--control-port', '0', '--seed', String(i + 1), '--median-ms', String(sc.baseline.medianMs),
          '--sigma', String(sc.baseline.sigma), '--error-rate', String(sc.baseline.errorRate), '--exit-with-stdin'],
      });
      const r = await waitReadyLine<{ port: number; controlPort: number }>(proc, 20_000);
      return { proc, port: r.port, controlPort: r.controlPort, address: `127.0.0.1:${r.port}` };
    }));
    const ctx = { upstreams: lane.backends.map((b) => ({ host: '127.0.0.1', port: b.port })), dir, timeouts: SCENARIO_TIMEOUTS };
    // Ports are picked free then bound by the system: another lane starting at the same moment may
    // take one in between, so a failed start is tried once more with fresh ports.
    try { lane.sut = await sys.start(ctx); } catch { lane.sut = await sys.start(ctx); }
  } catch (e) {
    lane.failed = `failed to start: ${(e as Error).message.split('\n')[0]}`;
  }
  return lane;
}

async function stopLane(l: Lane): Promise<void> {
  await l.sut?.stop().catch(() => {});
  await Promise.all(l.backends.map((b) => b.proc.stop()));
}

const evidenceFile = (sc: Scenario, quick: boolean): string => path.join(ROOT, 'bench', 'results', 'tmp', `scenario-${quick ? 'quick-' : ''}${sc.name}.json`);

interface Evidence { records: LoadRecords; logs: ArrivalLog[]; ejections: EjectionLike[] | null }
type EjectionLike = { address: string; at: number };

async function runScenario(sc: Scenario, systems: SystemUnderTest[], dir: string, quick: boolean): Promise<Map<string, Outcome>> {
  const out = new Map<string, Outcome>();
  const lanes = await Promise.all(systems.map((s) => startLane(s, sc, dir)));
  try {
    const live = lanes.filter((l) => !l.failed && l.sut);
    for (const l of lanes) if (l.failed) out.set(l.sys.name, { available: false, reason: l.failed });
    if (live.length === 0) return out;

    let startAt = Date.now() + 2500;
    const optsFile = path.join(dir, `load-${sc.name}.json`);
    const outFile = path.join(dir, `records-${sc.name}.json`);
    writeFileSync(optsFile, JSON.stringify({
      targets: live.map((l) => ({ name: l.sys.name, url: l.sut!.url, schedule: sc.schedule })),
      durationMs: sc.durationMs, timeoutMs: CLIENT_TIMEOUT_MS, connections: 512, startAt,
    }));
    const gen = nodeEntry('bench/lib/loadgen-main.ts');
    const genProc = spawnTracked({ name: `loadgen-${sc.name}`, cmd: gen.cmd, args: [...gen.args, optsFile, outFile], logDir: dir });
    // Faults are timed from the load's actual start, which a busy machine may delay past startAt.
    startAt = (await waitReadyLine<{ start: number }>(genProc, 60_000)).start;

    // Faults at their times, on every lane's backends at once.
    const timers: NodeJS.Timeout[] = [];
    const faultErrors: string[] = [];
    for (const step of sc.steps) {
      timers.push(setTimeout(() => {
        for (const l of live) for (const i of step.endpoints) {
          post(`http://127.0.0.1:${l.backends[i].controlPort}/__fault`, step.fault).catch((e: Error) => faultErrors.push(`${l.sys.name}: ${e.message}`));
        }
      }, Math.max(0, startAt + step.atMs - Date.now())));
    }
    // HAProxy keeps no history of server states: sample them while the load runs.
    const sampler = setInterval(() => { for (const l of live) void l.sut!.sample?.(); }, 250);
    const { code } = await genProc.exited;
    clearInterval(sampler);
    for (const t of timers) clearTimeout(t);
    if (faultErrors.length) log(`  fault injection errors: ${faultErrors.slice(0, 3).join('; ')}\n`);
    if (code !== 0 || !existsSync(outFile)) throw new Error(`load generator failed (${code}); see ${genProc.logFile}`);
    const records = JSON.parse(readFileSync(outFile, 'utf8')) as LoadRecords[];

    const evidence: Record<string, Evidence> = {};
    for (const l of live) {
      const rec = records.find((r) => r.name === l.sys.name)!;
      try {
        const logs: ArrivalLog[] = await Promise.all(l.backends.map(async (b) => {
          const r = await request(`http://127.0.0.1:${b.controlPort}/__log?since=${startAt - 1000}`, { headersTimeout: 5000, bodyTimeout: 5000 });
          const j = (await r.body.json()) as { t: number[]; s: number[] };
          return { address: b.address, t: j.t, s: j.s };
        }));
        const ej = l.sut!.ejections ? await l.sut!.ejections().catch(() => undefined) : undefined;
        out.set(l.sys.name, { available: true, metrics: analyzeScenario(sc, rec, logs, ej) });
        evidence[l.sys.name] = { records: rec, logs, ejections: ej ?? null };
      } catch (e) {
        out.set(l.sys.name, { available: false, reason: `measurement failed: ${(e as Error).message}` });
      }
    }
    // The raw evidence behind every figure, for whoever wants to check one (not committed).
    writeJson(evidenceFile(sc, quick), { scenario: sc, startAt, evidence });
    return out;
  } finally {
    await Promise.all(lanes.map(stopLane));
  }
}

const ms = (v: number | null | undefined): Cell => (v === null || v === undefined ? null : Math.round(v));

/** What each scenario does: load, phases, which endpoints and which fault (the POST /__fault bodies). */
function scenarioTable(list: readonly Scenario[]): { columns: string[]; rows: Cell[][]; alignRight: boolean[] } {
  const s = (x: number): string => `${x / 1000}`;
  return {
    alignRight: [false, false, false, false, false, false],
    columns: ['scenario', 'what happens', 'load (rps from s)', 'fault from s to s', 'faulty endpoints (of 5)', 'fault steps'],
    rows: list.map((sc) => [
      sc.name, sc.description,
      sc.schedule.map((r) => `${r.rate}@${s(r.atMs)}`).join(', '),
      sc.steps.length ? `${s(sc.faultStartMs)}–${sc.faultEndMs === null ? 'end' : s(sc.faultEndMs)} (run ${s(sc.durationMs)})` : `none (run ${s(sc.durationMs)})`,
      sc.faulty.length ? sc.faulty.join(', ') : 'none: any ejection is false',
      sc.steps.map((st) => `${s(st.atMs)} s: ${JSON.stringify(st.fault)}`).join('; ') || `baseline: ${JSON.stringify(sc.baseline)}`,
    ]),
  };
}

async function main(): Promise<number> {
  let v: Record<string, string | boolean | undefined>;
  try {
    ({ values: v } = parseArgs({
      options: {
        quick: { type: 'boolean' }, only: { type: 'string' }, systems: { type: 'string' }, 'no-build': { type: 'boolean' },
        'no-write': { type: 'boolean' }, write: { type: 'boolean' }, render: { type: 'string' }, reanalyze: { type: 'boolean' }, help: { type: 'boolean' },
      },
    }));
  } catch (e) { log(`${(e as Error).message}\n${USAGE}\n`); return 2; }
  if (v.help) { process.stdout.write(USAGE + '\n'); return 0; }
  const quick = Boolean(v.quick);
  const timing = quick ? QUICK_TIMING : FULL_TIMING;
  let scenarios = catalogue(timing);
  if (typeof v.only === 'string') {
    const names = v.only.split(',').map((s) => s.trim());
    const unknown = names.filter((n) => !scenarios.some((s) => s.name === n));
    if (unknown.length) { log(`--only: unknown scenario(s) ${unknown.join(', ')}\n${USAGE}\n`); return 2; }
    scenarios = scenarios.filter((s) => names.includes(s.name));
  } else if (quick) scenarios = scenarios.filter((s) => (QUICK_SCENARIOS as readonly string[]).includes(s.name));
  let systems = SYSTEMS;
  if (typeof v.systems === 'string') {
    const words = v.systems.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
    systems = systems.filter((s) => words.some((w) => s.name.toLowerCase().includes(w)));
  }
  const write = quick ? Boolean(v.write) : !v['no-write'];

  let results: { scenario: Scenario; outcomes: Map<string, Outcome>; loadavg: number[] }[] = [];
  const t0 = Date.now();
  let saved: { when: string; command: string; machine: string } | undefined;
  if (typeof v.render === 'string') {
    const j = JSON.parse(readFileSync(v.render, 'utf8')) as { when: string; command: string; machine: string; scenarios: { scenario: Scenario; loadavg: number[]; results: Record<string, Outcome> }[] };
    saved = { when: j.when, command: j.command, machine: j.machine };
    results = j.scenarios.map((r) => ({ scenario: r.scenario, loadavg: r.loadavg, outcomes: new Map(Object.entries(r.results)) }));
    const present = new Set(results.flatMap((r) => [...r.outcomes.keys()]));
    systems = SYSTEMS.filter((s) => present.has(s.name));
  } else if (v.reanalyze) {
    const resultFile = path.join(ROOT, 'bench', 'results', quick ? 'scenarios-quick.json' : 'scenarios.json');
    const prev = existsSync(resultFile) ? JSON.parse(readFileSync(resultFile, 'utf8')) as { when: string; command: string; machine: string; scenarios: { scenario: Scenario; loadavg: number[]; results: Record<string, Outcome> }[] } : undefined;
    for (const sc of scenarios) {
      const f = evidenceFile(sc, quick);
      if (!existsSync(f)) { log(`no evidence for ${sc.name} (${f}): skipped\n`); continue; }
      const ev = JSON.parse(readFileSync(f, 'utf8')) as { startAt: number; evidence: Record<string, Evidence> };
      const old = prev?.scenarios.find((p) => p.scenario.name === sc.name);
      const outcomes = new Map<string, Outcome>();
      for (const sys of SYSTEMS) {
        const e = ev.evidence[sys.name];
        // Runs from before faults were timed from the generator's actual start applied them at
        // startAt + atMs: shift the fault phases by that difference (0 for later runs).
        const shift = Math.min(0, ev.startAt - e?.records.start);
        const scAt: Scenario = shift === 0 ? sc : { ...sc, faultStartMs: sc.faultStartMs + shift, faultEndMs: sc.faultEndMs === null ? null : sc.faultEndMs + shift };
        if (e) outcomes.set(sys.name, { available: true, metrics: analyzeScenario(scAt, e.records, e.logs, e.ejections ?? undefined) });
        else if (old?.results[sys.name]) outcomes.set(sys.name, old.results[sys.name]);
      }
      results.push({ scenario: sc, outcomes, loadavg: old?.loadavg ?? [] });
    }
    if (prev) saved = { when: prev.when, command: prev.command, machine: prev.machine };
    const present = new Set(results.flatMap((r) => [...r.outcomes.keys()]));
    systems = SYSTEMS.filter((s) => present.has(s.name));
  } else {
    await runAll();
  }
  async function runAll(): Promise<void> {
    const peers = await runCommand('bash', [path.join(ROOT, 'scripts', 'ensure-peers.sh')], 600_000);
    if (peers.code !== 0) log(peers.stderr);
    if (!v['no-build']) {
      const err = await buildIfStale(log);
      if (err) log(`bench:scenarios: the build reported errors (meshmedic may be unavailable):\n${err}\n`);
    }

    const tmp = tempDir('mm-bench-scen');
    try {
      for (const sc of scenarios) {
        log(`scenario ${sc.name}: ${sc.description} (${sc.durationMs / 1000} s at ${RATE} rps, ${systems.length} systems at once)\n`);
        const before = os.loadavg()[0];
        const outcomes = await runScenario(sc, systems, tmp.dir, quick);
        const loadavg = [Math.round(before * 10) / 10, Math.round(os.loadavg()[0] * 10) / 10];
        log(`  (load average ${loadavg[0]} → ${loadavg[1]} on ${os.cpus().length} CPUs)\n`);
        for (const [name, o] of outcomes) {
          log(o.available
            ? `  ${name}: failed ${o.metrics.failedPct}%, p99 ${ms(o.metrics.p99)} ms, detect ${o.metrics.detectMs ?? '–'} ms, recover ${o.metrics.recoverMs ?? '–'} ms, false ejections ${o.metrics.falseEjections ?? '–'}\n`
            : `  ${name}: not available: ${o.reason}\n`);
        }
        results.push({ scenario: sc, outcomes, loadavg });
      }
    } finally {
      await stopAll();
      tmp.remove();
    }

}

  const names = systems.map((s) => s.name);
  const detail = {
    alignRight: [false, false, true, true, true, true, true, true, true, true, true, true],
    columns: ['scenario', 'system', 'failed %', 'p99 ms', 'detect ms', 'reqs to detect', 'reported detect ms', 'recover ms', 'false ejections', 'healthy gaps', 'late reqs', 'stall ms'],
    rows: results.flatMap(({ scenario, outcomes }) => names.map((n): Cell[] => {
      const o = outcomes.get(n);
      if (!o || !o.available) return [scenario.name, n, null, null, null, null, null, null, null, null, null, `not available: ${o && !o.available ? o.reason : 'not run'}`];
      const m = o.metrics;
      return [scenario.name, n, m.failedPct, ms(m.p99), m.detectMs, m.detectRequests, m.reportedDetectMs, m.recoverMs, m.falseEjections, m.healthyGaps, m.lateRequests, m.stallMs];
    })),
  };

  // Per system, over the whole suite.
  const totals = new Map<string, { failed: number; requests: number; detect: number[]; recover: number[]; falseEj: number; ran: number; faultRuns: number; recoverable: number }>();
  for (const n of names) totals.set(n, { failed: 0, requests: 0, detect: [], recover: [], falseEj: 0, ran: 0, faultRuns: 0, recoverable: 0 });
  for (const { scenario, outcomes } of results) for (const [n, o] of outcomes) {
    if (!o.available) continue;
    const t = totals.get(n)!;
    t.ran++;
    if (scenario.faulty.length > 0) t.faultRuns++; t.failed += o.metrics.failed; t.requests += o.metrics.requests; t.falseEj += o.metrics.falseEjections ?? 0;
    if (o.metrics.detectMs !== null) t.detect.push(o.metrics.detectMs);
    if (o.metrics.detectMs !== null && scenario.faultEndMs !== null && scenario.faulty.length > 0) t.recoverable++;
    if (o.metrics.recoverMs !== null) t.recover.push(o.metrics.recoverMs);
  }
  const mean = (a: number[]): number | null => (a.length ? Math.round(a.reduce((x, y) => x + y, 0) / a.length) : null);
  const failedPct = (n: string): number | null => { const t = totals.get(n)!; return t.requests ? Math.round((t.failed / t.requests) * 10_000) / 100 : null; };
  const x = (a: number | null, b: number | null): string | null => { const q = ratio(a, b); return q === null ? null : `${q.toFixed(2)}×`; };
  const base = 'meshmedic (envoy-default)';
  const summary = {
    alignRight: [false, true, true, true, true, true, true, true, true],
    columns: ['system', 'scenarios run', 'failed % (suite)', '× envoy-default', 'faults contained', 'mean detect ms (contained)', 'recovered in window', 'mean recover ms', 'false ejections'],
    rows: names.map((n): Cell[] => {
      const t = totals.get(n)!;
      if (t.ran === 0) return [n, 0, null, null, null, null, null, null, null];
      return [n, t.ran, failedPct(n), x(failedPct(n), totals.get(base)?.ran ? failedPct(base) : null), `${t.detect.length}/${t.faultRuns}`, mean(t.detect),
        `${t.recover.length}/${t.recoverable}`, mean(t.recover), t.falseEj];
    }),
  };

  // The targets of the issue, checked from the figures (a missing system makes a check "not checked").
  const verdicts: string[] = [];
  const get = (sc: string, n: string): ScenarioMetrics | undefined => {
    const o = results.find((r) => r.scenario.name === sc)?.outcomes.get(n);
    return o && o.available ? o.metrics : undefined;
  };
  const mm = 'meshmedic';
  if (totals.get(mm)?.ran && totals.get(base)?.ran) {
    const r = ratio(failedPct(mm), failedPct(base));
    verdicts.push(`failed requests, meshmedic vs envoy-default over the suite: ${r === null ? '–' : `${r.toFixed(2)}×`} (target ≤ 0.40)`);
  } else verdicts.push('failed requests vs envoy-default: not checked (a policy did not run)');
  for (const peer of ['haproxy', 'nginx']) {
    const worse = results.filter((r) => { const a = get(r.scenario.name, mm), b = get(r.scenario.name, peer); return a && b && a.failed > b.failed; }).map((r) => r.scenario.name);
    const compared = results.filter((r) => get(r.scenario.name, mm) && get(r.scenario.name, peer)).length;
    verdicts.push(compared ? `scenarios where meshmedic failed more requests than ${peer}: ${worse.length ? worse.join(', ') : 'none'} (of ${compared})` : `meshmedic vs ${peer}: not checked`);
  }
  for (const r of results.filter((r) => r.scenario.hard)) {
    const m = get(r.scenario.name, mm);
    if (m) verdicts.push(`${r.scenario.name}: meshmedic detected after ${m.detectRequests ?? '–'} affected requests / ${m.detectMs ?? '–'} ms (target ≤ 5 requests or ≤ 1000 ms): ${m.detectMs !== null && (m.detectMs <= 1000 || (m.detectRequests ?? 99) <= 5) ? 'met' : 'not met'}`);
  }
  const g = get('gray-3x', mm);
  if (g) verdicts.push(`gray-3x: meshmedic detected after ${g.detectMs ?? '–'} ms (target ≤ 3000 ms): ${g.detectMs !== null && g.detectMs <= 3000 ? 'met' : 'not met'}`);
  const noise = get('noise', mm);
  if (noise) verdicts.push(`noise: meshmedic false ejections ${noise.falseEjections ?? '–'} (target 0)`);
  const disturbed = results.filter((r) => [...r.outcomes.values()].some((o) => o.available && (o.metrics.stallMs > 1000 || o.metrics.lateRequests > 0.01 * o.metrics.requests)));
  if (disturbed.length) verdicts.push(`disturbed runs (a system's endpoints all silent > 1 s, or > 1 % of requests sent late by a starved generator): ${disturbed.map((r) => `${r.scenario.name} (load ${r.loadavg.join('→')})`).join(', ')}; their figures are not trustworthy`);
  // Paper-style ratios, paired: only scenarios where both systems have the figure.
  const paired = (peer: string, f: (m: ScenarioMetrics) => number | null): { a: number; b: number; n: number } => {
    let a = 0, b = 0, n = 0;
    for (const r of results) {
      const ma = get(r.scenario.name, mm), mb = get(r.scenario.name, peer);
      const fa = ma ? f(ma) : null, fb = mb ? f(mb) : null;
      if (fa === null || fb === null) continue;
      a += fa; b += fb; n++;
    }
    return { a, b, n };
  };
  const pr = (p: { a: number; b: number; n: number }): string => (p.n === 0 ? '– (no scenario where both have it)' : p.b === 0 ? `– (${p.a} vs 0 over ${p.n} scenarios)` : `${(p.a / p.b).toFixed(2)}× over ${p.n} scenario${p.n === 1 ? '' : 's'}`);
  for (const peer of ['haproxy', 'nginx', base]) {
    if (!totals.get(mm)?.ran || !totals.get(peer)?.ran) continue;
    verdicts.push(`meshmedic / ${peer}: failed requests ${pr(paired(peer, (m) => m.failed))}, detection time ${pr(paired(peer, (m) => m.detectMs))}, recovery time ${pr(paired(peer, (m) => m.recoverMs))} (the source paper claims 0.75× failures, 0.60× detection, 0.70× recovery)`);
  }

  process.stdout.write(`\n${renderText(detail)}\n\n${renderText(summary)}\n\n${verdicts.map((s) => `- ${s}`).join('\n')}\n`);
  log(`total ${Math.round((Date.now() - t0) / 1000)} s\n`);

  if (saved && v.reanalyze) {
    const resultFile = path.join(ROOT, 'bench', 'results', quick ? 'scenarios-quick.json' : 'scenarios.json');
    writeJson(resultFile, {
      when: saved.when, reanalyzed: new Date().toISOString(), command: saved.command, machine: saved.machine, timing, rate: RATE,
      timeouts: SCENARIO_TIMEOUTS, clientTimeoutMs: CLIENT_TIMEOUT_MS, haproxy: HAPROXY_HEALING, nginx: NGINX_HEALING,
      scenarios: results.map(({ scenario, outcomes, loadavg }) => ({ scenario, loadavg, results: Object.fromEntries(outcomes) })),
      verdicts,
    });
    updateMarkdownFile(path.join(ROOT, 'bench', 'README.md'), 'bench:scenarios', readmeSection(saved.when, saved.command, saved.machine, quick), '## Fault scenarios: latest results');
    log(`recomputed from the evidence: wrote ${path.relative(ROOT, resultFile)} and bench/README.md\n`);
  } else if (saved) {
    updateMarkdownFile(path.join(ROOT, 'bench', 'README.md'), 'bench:scenarios', readmeSection(saved.when, saved.command, saved.machine, saved.command.includes('--quick')), '## Fault scenarios: latest results');
    log(`re-rendered ${v.render} into bench/README.md\n`);
  } else if (write) {
    const when = new Date().toISOString();
    const cmd = `npm run bench:scenarios${quick ? ' -- --quick --write' : ''}`;
    const machine = `${os.cpus().length} × ${os.cpus()[0]?.model.trim() ?? 'cpu'}, Node ${process.version}`;
    writeJson(path.join(ROOT, 'bench', 'results', quick ? 'scenarios-quick.json' : 'scenarios.json'), {
      when, command: cmd, machine, timing, rate: RATE, timeouts: SCENARIO_TIMEOUTS, clientTimeoutMs: CLIENT_TIMEOUT_MS,
      haproxy: HAPROXY_HEALING, nginx: NGINX_HEALING,
      scenarios: results.map(({ scenario, outcomes, loadavg }) => ({ scenario, loadavg, results: Object.fromEntries(outcomes) })),
      verdicts,
    });
    updateMarkdownFile(path.join(ROOT, 'bench', 'README.md'), 'bench:scenarios', readmeSection(when, cmd, machine, quick), '## Fault scenarios: latest results');
    log(`wrote bench/results/${quick ? 'scenarios-quick' : 'scenarios'}.json and bench/README.md\n`);
  }
  return 0;

  function readmeSection(when: string, cmd: string, machine: string, isQuick: boolean): string {
    return [
      `Last run: ${when}, \`${cmd}\`${isQuick ? ' (quick mode: two scenarios, short phases, indicative only)' : ''}, on ${machine}.`,
      '',
      renderMarkdown(summary),
      '',
      verdicts.map((s) => `- ${s}`).join('\n'),
      '',
      '<details><summary>The scenarios of this run</summary>',
      '',
      renderMarkdown(scenarioTable(results.map((r) => r.scenario))),
      '',
      '</details>',
      '',
      '<details><summary>Every scenario × system</summary>',
      '',
      renderMarkdown(detail),
      '',
      '</details>',
    ].join('\n');
  }
}

main().then((code) => process.exit(code), (e: Error) => { log(`bench:scenarios: ${e.stack ?? e.message}\n`); stopAll().finally(() => process.exit(1)); });
