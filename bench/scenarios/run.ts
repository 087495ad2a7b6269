// `npm run bench:scenarios`: the scenario catalogue (src/sim/scenarios.ts) live — real backend processes
// on loopback, open-loop load — through every lane (meshmedic, Envoy-faithful policies, HAProxy, nginx)
// at once, for several seeds. Writes bench/results/scenarios.json and its tables into bench/README.md.
import { parseArgs } from 'node:util';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { ROOT, nodeEntry, runCommand, spawnTracked, stopAll, tempDir, waitReadyLine, type Spawned } from '../lib/procs.js';
import { HAPROXY_HEALING, HAPROXY_TUNED, HAPROXY_TUNED_NO_RETRIES, NGINX_HEALING, NGINX_TUNED, NGINX_TUNED_NO_RETRIES, type Timeouts } from '../lib/peers.js';
import { haproxy, meshmedic, nginx, type RunningSut, type SystemUnderTest } from '../lib/systems.js';
import { buildIfStale } from '../lib/build.js';
import { LOAD_SEQ_HEADER } from '../../src/testing/backend.js';
import type { LoadRecords } from '../lib/loadgen.js';
import { renderMarkdown, renderText, updateMarkdownFile, writeJson, type Cell, type Table } from '../lib/report.js';
import { SCENARIOS, faultsOf, type ScenarioSpec } from '../../src/sim/scenarios.js';
import { MAX_OFFERED_RPS, backendModels, laneBatches, liveScenario, peakRate, type LiveScenario as Scenario } from './live.js';
import { MAX_LATE_MS, analyzeScenario, type ArrivalLog } from './analyze.js';
import { detailTable, summaryTable, verdicts, type Outcome, type RunRecord } from './summary.js';

/** --quick: one hard fault, one gray fault and one held-out scenario, one seed. */
const QUICK_SCENARIOS = ['crash-10', 'gray-3x-5', 'gray-1.8x-10'] as const;

const USAGE = `usage: npm run bench:scenarios -- [--quick] [--only SCENARIO[,SCENARIO]] [--set tuning|held-out] [--seeds N]
                                  [--seed K[,K]] [--systems WORD[,WORD]] [--no-build] [--no-write] [--render FILE]
  --quick     ${QUICK_SCENARIOS.join(', ')} only, one seed (about 2 minutes); writes nothing unless --write
  --only      run these scenarios (names: ${SCENARIOS.map((s) => s.name).join(', ')})
  --set       run only the tuning or the held-out scenarios
  --seeds     seeds per scenario × system (default 3; quick 1): seeds 1..N
  --seed      run only these seeds (e.g. --seed 2 or --seed 2,3), instead of 1..N
  --systems   run only systems whose name contains one of these words
  --no-write  print only; do not write bench/results/scenarios.json or bench/README.md
  --render F  run nothing: re-render the tables of a saved result file (e.g. bench/results/scenarios.json) into bench/README.md`;

/** Same upstream timeouts for every system: the scenario's request timeout (a black-holed request fails after it everywhere). */
const timeoutsOf = (spec: ScenarioSpec): Timeouts => Object.freeze({ connectMs: spec.requestTimeoutMs, serverMs: spec.requestTimeoutMs, clientMs: 30_000 });
const CLIENT_TIMEOUT_MS = 5000;

/** meshmedic's config, overridden through its documented environment variables. */
const NO_RETRIES = { MESHMEDIC_PROXY__RETRYCONNECTFAILURES: '0', MESHMEDIC_PROXY__RETRIES__ATTEMPTS: '0' };
/** Envoy's data plane as far as meshmedic's can be it: round-robin, no retries, no active probes. */
const ENVOY_DATA_PLANE = { ...NO_RETRIES, MESHMEDIC_PROXY__BALANCER: 'round-robin', MESHMEDIC_HEALING__PROBE__ENABLED: 'false' };
/** Istio: LEAST_REQUEST, outlier detection from a typical DestinationRule, its default retry policy. */
const ISTIO = {
  MESHMEDIC_PROXY__BALANCER: 'least-request', MESHMEDIC_HEALING__PROBE__ENABLED: 'false',
  MESHMEDIC_HEALING__ENVOY__MAXEJECTIONPERCENT: '100', MESHMEDIC_HEALING__ENVOY__ENFORCINGSUCCESSRATE: '0',
  MESHMEDIC_PROXY__RETRYCONNECTFAILURES: '2', MESHMEDIC_PROXY__RETRIES__ATTEMPTS: '2', MESHMEDIC_PROXY__RETRIES__RETRYON: '[503]',
};

const SYSTEMS: SystemUnderTest[] = [
  meshmedic({ name: 'meshmedic', policy: 'meshmedic' }),
  meshmedic({ name: 'meshmedic (retries off)', policy: 'meshmedic', env: NO_RETRIES }),
  meshmedic({ name: 'envoy (defaults)', policy: 'envoy-default', env: ENVOY_DATA_PLANE }),
  meshmedic({ name: 'envoy (always_eject_one_host)', policy: 'envoy-default', env: { ...ENVOY_DATA_PLANE, MESHMEDIC_HEALING__ENVOY__ALWAYSEJECTONEHOST: 'true' } }),
  meshmedic({ name: 'istio (typical DestinationRule)', policy: 'envoy-default', env: ISTIO }),
  meshmedic({ name: 'istio (retries off)', policy: 'envoy-default', env: { ...ISTIO, ...NO_RETRIES } }),
  haproxy({ name: 'haproxy (as shipped)', healing: HAPROXY_HEALING }),
  haproxy({ name: 'haproxy (tuned)', healing: HAPROXY_TUNED }),
  haproxy({ name: 'haproxy (tuned, retries off)', healing: HAPROXY_TUNED_NO_RETRIES }),
  nginx({ name: 'nginx (as shipped)', workers: 'auto', healing: NGINX_HEALING }),
  nginx({ name: 'nginx (tuned)', workers: 'auto', healing: NGINX_TUNED }),
  nginx({ name: 'nginx (tuned, retries off)', workers: 'auto', healing: NGINX_TUNED_NO_RETRIES }),
];

/** The lanes the targets are judged against. */
const MM = 'meshmedic';
const MM_NO_RETRIES = 'meshmedic (retries off)';
/** Expert-configured peers: the failed-requests target is ≤ 0.5× the best of these. */
const TUNED_PEERS = ['haproxy (tuned)', 'nginx (tuned)', 'istio (typical DestinationRule)', 'envoy (always_eject_one_host)'];
const NO_RETRY_LANES = ['meshmedic (retries off)', 'envoy (defaults)', 'envoy (always_eject_one_host)', 'istio (retries off)', 'haproxy (tuned, retries off)', 'nginx (tuned, retries off)'];
const HAPROXY_TUNED_LANE = 'haproxy (tuned)';

/** Lanes whose backends share one process: 12 lanes × up to 20 endpoints as separate processes would
 *  not fit the machine, one process for all would make its event loop everyone's bottleneck. */
const LANES_PER_BACKEND_PROCESS = 4;

/** The scenarios whose lanes run in batches (peak rate × lanes above MAX_OFFERED_RPS), for the lane notes. */
const batched = (): string => {
  const b = SCENARIOS.filter((sc) => sc.suite !== 'learning').map((sc) => ({ sc, n: laneBatches(SYSTEMS, liveScenario(sc).schedule) })).filter((x) => x.n.length > 1);
  return b.length === 0 ? 'none' : b.map(({ sc, n }) => `${sc.name} (${peakRate(liveScenario(sc).schedule)}/s at its peak: ${n.length} batches of ≤ ${Math.max(...n.map((l) => l.length))})`).join(', ');
};

/** What each lane is, exactly (printed above the tables). */
const LANE_NOTES = [
  '`meshmedic`: the meshmedic proxy, policy meshmedic, its defaults (Peak-EWMA power-of-two balancer; retries: connect failures ×2 for any method, GET on reset / per-try timeout / 500, 502, 503, 504 ×2, budget 20 % + 10/s; active probes of ejected endpoints). `meshmedic (retries off)`: the same with `proxy.retryConnectFailures 0`, `proxy.retries.attempts 0`.',
  "`envoy (defaults)`: Envoy's outlier detection with its ≥ 1.28 defaults (policy envoy-default: consecutive_5xx 5, interval 10 s, base ejection 30 s, max_ejection_percent 10, success rate 1.9σ) **on meshmedic's data plane with round-robin, no retries, no active probes** — there is no Envoy binary here. `envoy (always_eject_one_host)`: the same with always_eject_one_host.",
  "`istio (typical DestinationRule)`: the same outlier detection with consecutive5xxErrors 5, interval 10 s, baseEjectionTime 30 s, maxEjectionPercent 100, success-rate enforcement 0 (Istio's), on meshmedic's data plane with least-request (Istio's default LB) and Istio's default retry policy approximated as 2 retries on connect failure and 503 (meshmedic's data plane also retries resets and timeouts of replayable requests, which Istio's default list does not name). `istio (retries off)`: no retries.",
  '`haproxy (as shipped)`: HAProxy 2.6, `balance roundrobin`, `option httpchk` every 1 s (fall 3, rise 2), `observe layer7 error-limit 5 on-error mark-down`, `retries 2`, `option redispatch` (no retry-on: connection failures only). `haproxy (tuned)`: `balance leastconn`, checks every 1 s (250 ms while changing state or down; fall 2, rise 2), `observe layer7 error-limit 3 on-error mark-down`, `retry-on all-retryable-errors`, `retries 2`, `option redispatch 1`. `haproxy (tuned, retries off)`: `retries 0`, no retry-on.',
  '`nginx (as shipped)`: nginx 1.22 open source with its defaults (`max_fails=1 fail_timeout=10s`, `proxy_next_upstream error timeout`, round-robin, no zone). `nginx (tuned)`: `zone`, `random two least_conn`, `max_fails=3 fail_timeout=2s`, `proxy_next_upstream error timeout http_500 http_502 http_503 http_504`, `proxy_next_upstream_tries 3` (http_500 added: the suite\'s error faults answer 500). `nginx (tuned, retries off)`: `proxy_next_upstream_tries 1` (failures still counted).',
  `Every lane: its own copy of the same backends (one backend process per ${LANES_PER_BACKEND_PROCESS} lanes; request K's baseline latency drawn from the same number in every lane, common random numbers), the same load (open loop, the scenario's rate, one generator for all lanes at once — except where the scenario's peak rate × the lanes would exceed ${MAX_OFFERED_RPS.toLocaleString('en-US')} requests/s, more than one generator and this 2-core machine carry on time: those run their lanes in batches one after the other, same seed, cluster and schedule — ${batched()}), the scenario's 1 s request timeout as upstream timeout, request logging off. A request the generator reaches more than ${MAX_LATE_MS} ms after its scheduled time is not sent: it counts as late (a run with > 1 % late is marked disturbed), and a stall of the generator is not followed by a burst of every overdue request.`,
];
const COLUMN_NOTES = 'Two clocks per fault: **traffic shifted** = from the fault\'s start until the faulty endpoints stop being hit (the client-felt clock: a balancer steering away counts); **decided** = the system\'s own first ejection / drain / mark-down of a faulty endpoint (meshmedic and the Envoy/Istio lanes: /v1/events; HAProxy: its stats CSV, sampled every 250 ms; nginx: "upstream server temporarily disabled" in its error log, whole seconds). Recovery = from the fault\'s end until the faulty endpoints get ≥ 50 % of their fair share over 1 s. Ratios of failed requests are paired: the same scenarios and seed for both lanes, one ratio per seed.';

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


type LaneBackends = Lane['backends'];

/** Start every lane's copy of the scenario's cluster (the same models and seeds for each lane). */
async function startBackends(count: number, spec: ScenarioSpec, seed: number, dir: string): Promise<{ perLane: LaneBackends[]; procs: Spawned[] }> {
  const be = nodeEntry('src/testing/backend-main.ts');
  const models = backendModels(spec, seed);
  const groups = Math.ceil(count / LANES_PER_BACKEND_PROCESS);
  const perLane: LaneBackends[] = [];
  const procs: Spawned[] = [];
  await Promise.all(Array.from({ length: groups }, async (_, g) => {
    const lanes = Math.min(LANES_PER_BACKEND_PROCESS, count - g * LANES_PER_BACKEND_PROCESS);
    const proc = spawnTracked({
      name: `backends-${g}`, cmd: be.cmd, logDir: dir, stdinPipe: true,
      args: [...be.args, '--port', '0', '--control-port', '0', '--models', JSON.stringify(Array.from({ length: lanes }, () => models).flat()), '--exit-with-stdin'],
    });
    procs.push(proc);
    const r = await waitReadyLine<{ backends: { port: number; controlPort: number }[] }>(proc, 60_000);
    for (let k = 0; k < lanes; k++) {
      perLane[g * LANES_PER_BACKEND_PROCESS + k] = r.backends.slice(k * models.length, (k + 1) * models.length)
        .map((b) => ({ proc, port: b.port, controlPort: b.controlPort, address: `127.0.0.1:${b.port}` }));
    }
  }));
  return { perLane, procs };
}

async function startLane(sys: SystemUnderTest, spec: ScenarioSpec, backends: LaneBackends, dir: string): Promise<Lane> {
  const lane: Lane = { sys, backends };
  const why = sys.available();
  if (why) { lane.failed = why; return lane; }
  try {
    const ctx = { upstreams: lane.backends.map((b) => ({ host: '127.0.0.1', port: b.port })), dir, timeouts: timeoutsOf(spec) };
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
}

/** `batch` is set when the scenario's lanes ran in batches (see laneBatches): one file per batch. */
const evidenceFile = (sc: Scenario, seed: number, quick: boolean, batch?: number): string =>
  path.join(ROOT, 'bench', 'results', 'tmp', `scenario-${quick ? 'quick-' : ''}${sc.name}-seed${seed}${batch === undefined ? '' : `-batch${batch + 1}`}.json`);

interface Evidence { records: LoadRecords; logs: ArrivalLog[]; ejections: EjectionLike[] | null }
type EjectionLike = { address: string; at: number };

async function runScenario(spec: ScenarioSpec, seed: number, systems: SystemUnderTest[], dir: string, quick: boolean, batch?: number): Promise<Map<string, Outcome>> {
  const out = new Map<string, Outcome>();
  const sc = liveScenario(spec);
  let bes: { perLane: LaneBackends[]; procs: Spawned[] };
  try { bes = await startBackends(systems.length, spec, seed, dir); } catch (e) {
    for (const s of systems) out.set(s.name, { available: false, reason: `backends failed to start: ${(e as Error).message.split('\n')[0]}` });
    return out;
  }
  const lanes = await Promise.all(systems.map((s, i) => startLane(s, spec, bes.perLane[i]!, dir)));
  try {
    const live = lanes.filter((l) => !l.failed && l.sut);
    for (const l of lanes) if (l.failed) out.set(l.sys.name, { available: false, reason: l.failed });
    if (live.length === 0) return out;

    let startAt = Date.now() + 2500;
    const optsFile = path.join(dir, `load-${sc.name}.json`);
    const outFile = path.join(dir, `records-${sc.name}.json`);
    writeFileSync(optsFile, JSON.stringify({
      targets: live.map((l) => ({ name: l.sys.name, url: l.sut!.url, schedule: sc.schedule })),
      durationMs: sc.durationMs, timeoutMs: CLIENT_TIMEOUT_MS, connections: 512, startAt, seqHeader: LOAD_SEQ_HEADER, skipLateMs: MAX_LATE_MS,
    }));
    const gen = nodeEntry('bench/lib/loadgen-main.ts');
    const genProc = spawnTracked({ name: `loadgen-${sc.name}`, cmd: gen.cmd, args: [...gen.args, optsFile, outFile], logDir: dir });
    // Faults are timed from the load's actual start, which a busy machine may delay past startAt.
    startAt = (await waitReadyLine<{ start: number }>(genProc, 60_000)).start;

    // Every backend gets its faults once, timed from the load's start: it realizes them itself.
    const faultErrors: string[] = [];
    await Promise.all(live.flatMap((l) => l.backends.map((b, i) => {
      const faults = faultsOf(spec, i);
      return faults.length === 0 ? undefined : post(`http://127.0.0.1:${b.controlPort}/__fault`, { faults, t0: startAt }).catch((e: Error) => { faultErrors.push(`${l.sys.name}: ${e.message}`); });
    })));
    // HAProxy keeps no history of server states: sample them while the load runs.
    const sampler = setInterval(() => { for (const l of live) void l.sut!.sample?.(); }, 250);
    const { code } = await genProc.exited;
    clearInterval(sampler);
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
    writeJson(evidenceFile(sc, seed, quick, batch), { scenario: sc, seed, startAt, ...(batch === undefined ? {} : { batch: batch + 1 }), evidence });
    return out;
  } finally {
    await Promise.all(lanes.map(stopLane));
    await Promise.all(bes.procs.map((p) => p.stop()));
  }
}

const ms = (v: number | null | undefined): Cell => (v === null || v === undefined ? null : Math.round(v));

/** What each scenario does: set, cluster size, load, phases, faults (the catalogue's own data). */
function scenarioTable(list: readonly ScenarioSpec[]): Table {
  const s = (x: number): string => `${x / 1000}`;
  return {
    alignRight: [false, false, true, false, false, false],
    columns: ['scenario', 'set', 'endpoints', 'what happens', 'phases (s): warm / fault / after', 'faults (endpoint indexes, s)'],
    rows: list.map((sc) => [
      sc.name, sc.set, sc.endpoints.length, sc.description, `${s(sc.timing.warmMs)} / ${s(sc.timing.faultMs)} / ${s(sc.timing.afterMs)} at ${sc.rps} rps${sc.load ? ` (×${sc.load.factor} load)` : ''}`,
      sc.faults.map(({ endpoints, startMs, endMs, ...f }) => `${JSON.stringify(f)} on [${endpoints.join(', ')}] ${s(startMs)}–${s(endMs)}`).join('; ') || 'none: any ejection is false',
    ]),
  };
}

async function main(): Promise<number> {
  let v: Record<string, string | boolean | undefined>;
  try {
    ({ values: v } = parseArgs({
      options: {
        quick: { type: 'boolean' }, only: { type: 'string' }, systems: { type: 'string' }, seeds: { type: 'string' }, seed: { type: 'string' }, set: { type: 'string' },
        'no-build': { type: 'boolean' }, 'no-write': { type: 'boolean' }, write: { type: 'boolean' }, render: { type: 'string' }, help: { type: 'boolean' },
      },
    }));
  } catch (e) { log(`${(e as Error).message}\n${USAGE}\n`); return 2; }
  if (v.help) { process.stdout.write(USAGE + '\n'); return 0; }
  const quick = Boolean(v.quick);
  // The learning suite (bench/learn, virtual time) runs here only when named with --only.
  let scenarios: ScenarioSpec[] = SCENARIOS.filter((s) => s.suite !== 'learning');
  if (typeof v.only === 'string') {
    const names = v.only.split(',').map((s) => s.trim());
    const unknown = names.filter((n) => !SCENARIOS.some((s) => s.name === n));
    if (unknown.length) { log(`--only: unknown scenario(s) ${unknown.join(', ')}\n${USAGE}\n`); return 2; }
    scenarios = SCENARIOS.filter((s) => names.includes(s.name));
  } else if (quick) scenarios = scenarios.filter((s) => (QUICK_SCENARIOS as readonly string[]).includes(s.name));
  if (typeof v.set === 'string') {
    if (v.set !== 'tuning' && v.set !== 'held-out') { log(`--set: expected tuning or held-out, got ${v.set}\n${USAGE}\n`); return 2; }
    scenarios = scenarios.filter((s) => s.set === v.set);
  }
  const seedCount = typeof v.seeds === 'string' ? Number(v.seeds) : quick ? 1 : 3;
  if (!Number.isInteger(seedCount) || seedCount < 1 || seedCount > 20) { log(`--seeds: expected an integer 1..20, got ${String(v.seeds)}\n${USAGE}\n`); return 2; }
  let seedList = Array.from({ length: seedCount }, (_, k) => k + 1);
  if (typeof v.seed === 'string') {
    if (typeof v.seeds === 'string') { log(`--seed and --seeds: give one of them\n${USAGE}\n`); return 2; }
    const ks = v.seed.split(',').map((x) => Number(x.trim()));
    const bad = v.seed.split(',').filter((_, i) => !Number.isInteger(ks[i]) || ks[i]! < 1 || ks[i]! > 20);
    if (bad.length) { log(`--seed: expected integers 1..20 separated by commas, got ${JSON.stringify(v.seed)}\n${USAGE}\n`); return 2; }
    seedList = [...new Set(ks)];
  }
  let systems = SYSTEMS;
  if (typeof v.systems === 'string') {
    const words = v.systems.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
    systems = systems.filter((s) => words.some((w) => s.name.toLowerCase().includes(w)));
  }
  const write = quick ? Boolean(v.write) : !v['no-write'];

  let runs: RunRecord[] = [];
  const t0 = Date.now();
  let saved: { when: string; command: string; machine: string; minutes: number } | undefined;
  if (typeof v.render === 'string') {
    const j = JSON.parse(readFileSync(v.render, 'utf8')) as { when: string; command: string; machine: string; minutes: number; runs: RunRecord[] };
    saved = { when: j.when, command: j.command, machine: j.machine, minutes: j.minutes };
    runs = j.runs;
    scenarios = SCENARIOS.filter((s) => runs.some((r) => r.scenario === s.name));
  } else {
    const peers = await runCommand('bash', [path.join(ROOT, 'scripts', 'ensure-peers.sh')], 600_000);
    if (peers.code !== 0) log(peers.stderr);
    if (!v['no-build']) {
      const err = await buildIfStale(log);
      if (err) log(`bench:scenarios: the build reported errors (meshmedic may be unavailable):\n${err}\n`);
    }
    const tmp = tempDir('mm-bench-scen');
    try {
      // Held-out first, seed by seed: a run cut short still has whole seeds of the set that judges.
      const order = (['held-out', 'tuning'] as const).flatMap((set) =>
        seedList.map((seed) => scenarios.filter((sc) => sc.set === set).map((spec) => ({ spec, seed }))).flat());
      for (const { spec, seed } of order) {
        {
          const batches = laneBatches(systems, liveScenario(spec).schedule);
          const at = batches.length === 1 ? `${systems.length} systems at once`
            : `${systems.length} systems in ${batches.length} batches of ≤ ${Math.max(...batches.map((b) => b.length))}, one after the other: ${peakRate(liveScenario(spec).schedule)} rps × lanes > ${MAX_OFFERED_RPS}`;
          log(`scenario ${spec.name} (${spec.set}, seed ${seed}): ${spec.description} (${spec.durationMs / 1000} s at ${spec.rps} rps, ${at})\n`);
          const before = os.loadavg()[0];
          const outcomes = new Map<string, Outcome>();
          for (let b = 0; b < batches.length; b++) {
            for (const [k, o] of await runScenario(spec, seed, batches[b]!, tmp.dir, quick, batches.length === 1 ? undefined : b)) outcomes.set(k, o);
          }
          const loadavg = [Math.round(before * 10) / 10, Math.round(os.loadavg()[0] * 10) / 10];
          log(`  (load average ${loadavg[0]} → ${loadavg[1]} on ${os.cpus().length} CPUs; ${Math.round((Date.now() - t0) / 1000)} s so far)\n`);
          for (const [name, o] of outcomes) {
            log(o.available
              ? `  ${name}: failed ${o.metrics.failedPct}%, p99 ${ms(o.metrics.p99)} ms, shifted ${o.metrics.detectMs ?? '–'} ms, decided ${o.metrics.reportedDetectMs ?? '–'} ms, recovered ${o.metrics.recoverMs ?? '–'} ms, false ejections ${o.metrics.falseEjections ?? '–'}\n`
              : `  ${name}: not available: ${o.reason}\n`);
          }
          runs.push({
            scenario: spec.name, family: spec.family, set: spec.set, size: spec.endpoints.length, seed, faulted: spec.faults.length > 0, hard: spec.hard,
            loadavg, outcomes: Object.fromEntries(outcomes),
          });
          // What has run so far, renderable with --render if the run is cut short.
          writeJson(path.join(ROOT, 'bench', 'results', 'tmp', `scenarios-${quick ? 'quick-' : ''}partial.json`), {
            when: new Date(t0).toISOString(), command: `partial run of seeds ${seedList.join(', ')}`, machine: `${os.cpus().length} CPUs`, minutes: Math.round((Date.now() - t0) / 6000) / 10, runs,
          });
        }
      }
    } finally {
      await stopAll();
      tmp.remove();
    }
  }

  const names = systems.map((s) => s.name);
  const sections: string[] = [];
  const text: string[] = [];
  for (const set of ['tuning', 'held-out'] as const) {
    const rs = runs.filter((r) => r.set === set);
    if (rs.length === 0) continue;
    const summary = summaryTable(rs, names, MM);
    const detail = detailTable(rs, names);
    const checks = verdicts({ runs: rs, mm: MM, mmNoRetries: MM_NO_RETRIES, tunedPeers: TUNED_PEERS, noRetryLanes: NO_RETRY_LANES, haproxyTuned: HAPROXY_TUNED_LANE });
    const loads = rs.flatMap((r) => r.loadavg);
    const title = set === 'tuning' ? 'Tuning set (rules and defaults may be tuned on these)' : 'Held-out set (nothing is tuned on these)';
    text.push(`${title}\n${renderText(summary)}\n${checks.map((c) => `- ${c}`).join('\n')}\n`);
    sections.push([
      `### ${title}`, '',
      `${new Set(rs.map((r) => r.scenario)).size} scenarios × ${new Set(rs.map((r) => r.seed)).size} seeds; load average during the runs ${loads.length ? `${Math.min(...loads)}–${Math.max(...loads)}` : '–'}.`, '',
      renderMarkdown(summary), '',
      'Targets (issue 9), checked on this set:', '',
      checks.map((c) => `- ${c}`).join('\n'), '',
      '<details><summary>Every scenario × system (median [min–max] over seeds)</summary>', '',
      renderMarkdown(detail), '',
      '</details>', '',
    ].join('\n'));
  }
  process.stdout.write(`\n${text.join('\n')}\n`);
  const minutes = saved?.minutes ?? Math.round((Date.now() - t0) / 6000) / 10;
  log(`total ${minutes} min\n`);

  const readme = (when: string, cmd: string, machine: string): string => [
    `Last run: ${when}, \`${cmd}\`${quick ? ' (quick mode: three scenarios, one seed, indicative only)' : ''}, on ${machine}; ${minutes} min.`,
    '',
    LANE_NOTES.map((l) => `- ${l}`).join('\n'),
    '',
    COLUMN_NOTES,
    '',
    ...sections,
    '<details><summary>The scenarios of this run (src/sim/scenarios.ts)</summary>', '',
    renderMarkdown(scenarioTable(scenarios)), '',
    '</details>',
  ].join('\n');
  if (saved) {
    updateMarkdownFile(path.join(ROOT, 'bench', 'README.md'), 'bench:scenarios', readme(saved.when, saved.command, saved.machine), '## Fault scenarios: latest results');
    log(`re-rendered ${v.render} into bench/README.md\n`);
  } else if (write) {
    const when = new Date().toISOString();
    const cmd = `npm run bench:scenarios${quick ? ' -- --quick --write' : ''}`;
    const machine = `${os.cpus().length} × ${os.cpus()[0]?.model.trim() ?? 'cpu'}, Node ${process.version}`;
    writeJson(path.join(ROOT, 'bench', 'results', quick ? 'scenarios-quick.json' : 'scenarios.json'), {
      when, command: cmd, machine, minutes, clientTimeoutMs: CLIENT_TIMEOUT_MS, lanes: LANE_NOTES, runs,
    });
    updateMarkdownFile(path.join(ROOT, 'bench', 'README.md'), 'bench:scenarios', readme(when, cmd, machine), '## Fault scenarios: latest results');
    log(`wrote bench/results/${quick ? 'scenarios-quick' : 'scenarios'}.json and bench/README.md\n`);
  }
  return 0;
}

main().then((code) => process.exit(code), (e: Error) => { log(`bench:scenarios: ${e.stack ?? e.message}\n`); stopAll().finally(() => process.exit(1)); });
