// `npm run bench:learn`: failure prediction against the rules alone, in virtual time, on the catalogue's
// learning scenarios (tuning and held-out) and 24 simulated hours of heavy-tailed noise. Every lane runs
// in one invocation on the same seeds; results go to bench/results/learn.json and bench/README.md.
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_POLICY_SETTINGS, type PolicySettings } from '../../src/config/sections/healing.js';
import { EndpointModel } from '../../src/learn/predictor.js';
import { SCENARIOS, faultPhase, faultyEndpoints, scenarioByName, type ScenarioSpec } from '../../src/sim/scenarios.js';
import { runScenario, type SimResult } from '../../src/sim/simulator.js';
import { Rng } from '../../src/sim/rng.js';
import { parseBenchArgs } from '../lib/args.js';
import { runFederatedLanes } from './federated.js';
import { ratio, renderMarkdown, renderText, updateMarkdownFile, writeJson, type Table } from '../lib/report.js';
import { median } from '../lib/stats.js';

const USAGE = `npm run bench:learn -- [--quick] [--seeds N] [--noise-hours H] [--write]

  --quick        2 seeds, 1 simulated hour of noise (about a minute); writes nothing unless --write
  --seeds N      seeds per scenario and lane (default 5)
  --noise-hours  simulated hours of fault-free noise per lane (default 24)
  --write        write bench/results/learn.json and the tables in bench/README.md (default unless --quick)
`;

interface Lane {
  readonly name: string;
  readonly settings: PolicySettings;
}

const LANES: readonly Lane[] = [
  { name: 'rules only', settings: { prediction: { enabled: false } } },
  { name: 'rules + prediction', settings: {} },
];

interface Run {
  scenario: string;
  set: string;
  lane: string;
  seed: number;
  /** Failed requests to the faulty endpoint from the fault's start to 10 s after it turns hard. */
  faultFailed: number | null;
  failed: number;
  /** Out of ordinary rotation (drained or ejected) when the fault turned hard, and whether on a forecast. */
  outAtHard: boolean | null;
  predictedOutAtHard: boolean | null;
  predictedDrains: number;
  predictedDeweights: number;
  ejections: number;
  /** Ejections and predicted drains of an endpoint no fault touches (any of them, for non-failures). */
  falseOut: number;
  cpuMs: number;
}

function analyze(spec: ScenarioSpec, lane: Lane, seed: number, r: SimResult): Run {
  const faulty = faultyEndpoints(spec);
  const phase = faultPhase(spec);
  const t0 = simStart(r);
  const idx = (target: string): number => Number(target.slice(target.lastIndexOf(':') + 1)) - 20_000;
  let predictedDrains = 0;
  let predictedDeweights = 0;
  let falseOut = 0;
  for (const d of r.decisions) {
    if (!d.applied) continue;
    if (d.source === 'predicted' && d.action === 'drain') predictedDrains++;
    if (d.source === 'predicted' && d.action === 'weight') predictedDeweights++;
    const disruptive = d.action === 'eject' || (d.action === 'drain' && d.source === 'predicted');
    // A non-failure scenario's faults (warm-up, deploy) are not failures: any drain or ejection is false.
    if (disruptive && (spec.hardAtMs === undefined || !faulty.has(idx(d.target)))) falseOut++;
  }
  let faultFailed: number | null = null;
  let outAtHard: boolean | null = null;
  let predictedOutAtHard: boolean | null = null;
  if (spec.hardAtMs !== undefined && phase) {
    faultFailed = 0;
    const from = Math.floor(phase.startMs / 1000);
    const to = Math.floor((spec.hardAtMs + 10_000) / 1000);
    for (let s = from; s < to && s < r.faultyFailedPerSecond.length; s++) faultFailed += r.faultyFailedPerSecond[s]!;
    // State of the faulty endpoint at the moment the fault turns hard: replay its applied decisions.
    const target = [...faulty][0]!;
    let state = 'healthy';
    let source = '';
    for (const d of r.decisions) {
      if (!d.applied || idx(d.target) !== target || d.at - t0 >= spec.hardAtMs) continue;
      if (d.action === 'eject') state = 'ejected';
      else if (d.action === 'drain') state = 'draining';
      else if (d.action === 'probation') state = 'probation';
      else if (d.action === 'restore') state = 'healthy';
      else if (d.action === 'weight') state = (d.weight ?? 1) < 1 ? 'degraded' : 'healthy';
      source = d.source;
    }
    outAtHard = state === 'ejected' || state === 'draining';
    predictedOutAtHard = state === 'draining' && source === 'predicted';
  }
  return {
    scenario: spec.name, set: spec.set, lane: lane.name, seed, faultFailed, failed: r.failed, outAtHard, predictedOutAtHard,
    predictedDrains, predictedDeweights, ejections: r.ejections, falseOut, cpuMs: Math.round(r.cpuMs),
  };
}

/** The simulator's virtual clock starts at a fixed epoch (the first window boundary of the run). */
function simStart(_r: SimResult): number {
  return 1_700_000_000_000;
}

const spread = (xs: number[]): string => (xs.length ? `${median(xs)} [${Math.min(...xs)}–${Math.max(...xs)}]` : '–');

/** Predictor cost: one assessment of one endpoint's model (µs), measured on a realistic series. */
function assessCostUs(): number {
  const cfg = DEFAULT_POLICY_SETTINGS.prediction;
  const rng = new Rng(5);
  const models = Array.from({ length: 100 }, () => new EndpointModel(cfg.windows, cfg.errorWindows));
  const n = 400;
  for (let k = 0; k < 50; k++) for (const m of models) m.push({ epoch: k, requests: 40, failures: rng.next() < 0.1 ? 1 : 0, latencyLogRatio: 0.1 * rng.normal(), latencySe: 0.1, peerFailureRate: 0.002 });
  const t0 = process.hrtime.bigint();
  for (let k = 50; k < 50 + n; k++) {
    for (const m of models) {
      m.push({ epoch: k, requests: 40, failures: rng.next() < 0.1 ? 1 : 0, latencyLogRatio: 0.1 * rng.normal() + 0.002 * k, latencySe: 0.1, peerFailureRate: 0.002 });
      m.assess(cfg, 1000);
    }
  }
  return Number(process.hrtime.bigint() - t0) / 1000 / (n * models.length);
}

export async function main(argv: readonly string[]): Promise<number> {
  const args = parseBenchArgs(argv, USAGE, { seeds: 'integer', 'noise-hours': 'number' });
  if ('exit' in args) return args.exit;
  const quick = args.quick;
  let write = args.write;
  let seeds = args.numbers.seeds ?? 5;
  let noiseHours = args.numbers['noise-hours'] ?? 24;
  if (quick) {
    seeds = Math.min(seeds, 2);
    noiseHours = Math.min(noiseHours, 1);
  }
  write ??= !quick;
  const wall0 = Date.now();
  const load0 = os.loadavg()[0]!;
  const scenarios = SCENARIOS.filter((s) => s.suite === 'learning');
  const runs: Run[] = [];
  for (const spec of scenarios) {
    for (let seed = 1; seed <= seeds; seed++) {
      for (const lane of LANES) {
        const r = runScenario(spec, { policy: 'meshmedic', seed, settings: lane.settings });
        runs.push(analyze(spec, lane, seed, r));
      }
    }
    process.stderr.write(`${spec.name}: done (${seeds} seeds × ${LANES.length} lanes)\n`);
  }

  // 24 simulated hours of heavy-tailed noise, every lane, at the catalogue's rate.
  const noise = scenarioByName('noise-5')!;
  const noiseRows: (string | number)[][] = [];
  const noiseRuns: Record<string, unknown>[] = [];
  for (const lane of LANES) {
    const r = runScenario(noise, { policy: 'meshmedic', seed: 11, durationMs: noiseHours * 3_600_000, settings: lane.settings, keepDecisions: true });
    const a = analyze(noise, lane, 11, r);
    const rulesDeweights = r.decisions.filter((d) => d.applied && d.action === 'weight' && d.source === 'local' && (d.weight ?? 1) < 1 && !['probation_passed', 'ramp_up', 'probation_probe'].includes(d.reason)).length;
    noiseRows.push([lane.name, r.requests, a.predictedDrains, a.ejections, a.predictedDeweights, rulesDeweights, Math.round(r.cpuMs)]);
    noiseRuns.push({ lane: lane.name, hours: noiseHours, requests: r.requests, predictedDrains: a.predictedDrains, ejections: a.ejections, predictedDeweights: a.predictedDeweights, rulesDeweights, cpuMs: Math.round(r.cpuMs) });
    process.stderr.write(`noise ${noiseHours} h (${lane.name}): done\n`);
  }

  // Federated baselines: a fresh sidecar with and without the mesh aggregate; poisoning of the aggregate.
  const federated = runFederatedLanes(seeds);
  process.stderr.write('federated lanes: done\n');

  // Tables.
  const by = (s: string, lane: string) => runs.filter((r) => r.scenario === s && r.lane === lane);
  const gradual = scenarios.filter((s) => s.hardAtMs !== undefined);
  const calm = scenarios.filter((s) => s.hardAtMs === undefined);
  const gradualTable: Table = {
    columns: ['scenario', 'set', 'failed, rules only: median [min–max]', 'failed, + prediction', 'ratio (sums)', 'out before it turned hard, rules only', 'drained on a forecast before, + prediction', 'predicted drains', 'false drains or ejections'],
    rows: gradual.map((s) => {
      const a = by(s.name, LANES[0]!.name);
      const b = by(s.name, LANES[1]!.name);
      const sum = (xs: Run[]) => xs.reduce((x, r) => x + (r.faultFailed ?? 0), 0);
      return [
        s.name, s.set, spread(a.map((r) => r.faultFailed ?? 0)), spread(b.map((r) => r.faultFailed ?? 0)), ratio(sum(b), sum(a)),
        `${a.filter((r) => r.outAtHard).length}/${a.length}`, `${b.filter((r) => r.predictedOutAtHard).length}/${b.length}`,
        b.reduce((x, r) => x + r.predictedDrains, 0), b.reduce((x, r) => x + r.falseOut, 0),
      ];
    }),
    alignRight: [false, false, true, true, true, true, true, true, true],
  };
  const calmTable: Table = {
    columns: ['scenario', 'set', 'predicted drains', 'ejections (rules + prediction)', 'predicted de-weights (soft)', 'ejections (rules only)'],
    rows: calm.map((s) => {
      const a = by(s.name, LANES[0]!.name);
      const b = by(s.name, LANES[1]!.name);
      return [s.name, s.set, b.reduce((x, r) => x + r.predictedDrains, 0), b.reduce((x, r) => x + r.ejections, 0), b.reduce((x, r) => x + r.predictedDeweights, 0), a.reduce((x, r) => x + r.ejections, 0)];
    }),
  };
  const noiseTable: Table = { columns: ['lane', 'requests', 'predicted drains', 'ejections', 'predicted de-weights (soft)', 'rules de-weights (soft)', 'CPU ms'], rows: noiseRows };

  // Targets.
  const held = (pred: (s: ScenarioSpec) => boolean) => gradual.filter((s) => s.set === 'held-out' && pred(s));
  const sumOf = (list: ScenarioSpec[], lane: string) => list.reduce((x, s) => x + by(s.name, lane).reduce((y, r) => y + (r.faultFailed ?? 0), 0), 0);
  const drift = held((s) => s.family.startsWith('drift'));
  const driftRuns = drift.flatMap((s) => by(s.name, LANES[1]!.name));
  const drainedShare = driftRuns.length ? driftRuns.filter((r) => r.predictedOutAtHard).length / driftRuns.length : NaN;
  const driftRatio = ratio(sumOf(drift, LANES[1]!.name), sumOf(drift, LANES[0]!.name));
  const creep = held((s) => s.family.startsWith('creeping') || s.family.startsWith('saturation'));
  const creepRatio = ratio(sumOf(creep, LANES[1]!.name), sumOf(creep, LANES[0]!.name));
  const calmDrains = calm.reduce((x, s) => x + by(s.name, LANES[1]!.name).reduce((y, r) => y + r.predictedDrains, 0), 0);
  const calmEjections = calm.reduce((x, s) => x + by(s.name, LANES[1]!.name).reduce((y, r) => y + r.ejections, 0), 0);
  const calmEjectionsRules = calm.reduce((x, s) => x + by(s.name, LANES[0]!.name).reduce((y, r) => y + r.ejections, 0), 0);
  const noiseFalse = (noiseRuns[1] as { predictedDrains: number; ejections: number });
  const cfg = DEFAULT_POLICY_SETTINGS.prediction;
  const modelBytes = new EndpointModel(cfg.windows, cfg.errorWindows).stateBytes();
  const costUs = assessCostUs();
  const yes = (b: boolean) => (b ? 'met' : 'missed');
  const targets: Table = {
    columns: ['target', 'measured', 'verdict'],
    rows: [
      ['drift-then-crash (held-out rates): drained on a forecast before the crash in ≥ 90 % of seeds', `${(drainedShare * 100).toFixed(0)} % (${driftRuns.filter((r) => r.predictedOutAtHard).length}/${driftRuns.length})`, yes(drainedShare >= 0.9)],
      ['drift-then-crash (held-out): failed requests fault start → crash + 10 s ≤ 0.25× rules only', `${driftRatio ?? '–'}× (${sumOf(drift, LANES[1]!.name)} vs ${sumOf(drift, LANES[0]!.name)})`, yes(driftRatio !== null && driftRatio <= 0.25)],
      ['creeping errors and saturation (held-out): failed requests ≤ 0.5× rules only', `${creepRatio ?? '–'}× (${sumOf(creep, LANES[1]!.name)} vs ${sumOf(creep, LANES[0]!.name)})`, yes(creepRatio !== null && creepRatio <= 0.5)],
      ['non-failures (load growth, warm-up, diurnal, deploy; both sets): 0 predicted drains or ejections', `${calmDrains} predicted drains; ${calmEjections} ejections (rules only: ${calmEjectionsRules}, of cold endpoints 2–4× slower)`, calmDrains === 0 && calmEjections === 0 ? 'met' : calmDrains === 0 && calmEjections <= calmEjectionsRules ? 'met for prediction; the rules eject' : 'missed'],
      [`${noiseHours} simulated hours of heavy-tailed noise: 0 predicted drains or ejections`, `${noiseFalse.predictedDrains + noiseFalse.ejections}`, yes(noiseFalse.predictedDrains + noiseFalse.ejections === 0)],
      ['model state ≤ 4 KB per endpoint', `${modelBytes} bytes`, yes(modelBytes <= 4096)],
      ['prediction cost: on the tick, per endpoint per window (not per request)', `${costUs.toFixed(2)} µs per assessment`, '–'],
      ...federated.tables.targets.rows,
    ],
    alignRight: [false, true, false],
  };

  const wallS = Math.round((Date.now() - wall0) / 1000);
  const header = `Run ${new Date().toISOString()}, ${os.cpus().length} CPUs, Node ${process.version}, load average ${load0.toFixed(1)} at start and ${os.loadavg()[0]!.toFixed(1)} at end; virtual time (the simulator), ${seeds} seeds per scenario and lane, ${noiseHours} h of noise per lane; ${wallS} s wall.`;
  const notes = [
    '- Lanes: the meshmedic policy with its default settings (rules + prediction) and the same with `healing.prediction.enabled: false` (rules only), on the same seeds. "failed" counts failed requests sent to the faulty endpoint from the fault\'s start to 10 s after it turns hard (crash or 503s); background errors of other endpoints are excluded.',
    '- "out before it turned hard": the faulty endpoint was drained or ejected (by anything) at the moment of the crash; "drained on a forecast": drained by a decision with source `predicted`.',
    `- Prediction cost: ${costUs.toFixed(2)} µs per endpoint per completed window on the engine's tick; at 1,000 requests/s per endpoint that is ${((costUs * 1000) / 1000).toFixed(2)} ns of CPU per request, and nothing on the request path.`,
    '- Poisoning: the liar takes each of the 5 places in turn (the worst is shown). "p90 baseline appeared or vanished": a coordinate is aggregated only when 3 contributors learned it (p90 needs busy windows, and most of these sidecars have none); where 2 or 3 honest ones did, the liar adds or removes it. Added, it is the clipped mean of the 2 honest values and the liar\'s, within about their spread; removed, endpoints are seeded without a p90 chart.',
  ];
  const md = [header, '', '**Targets**', '', renderMarkdown(targets), '', '**Gradual failures**', '', renderMarkdown(gradualTable), '', '**Non-failures** (any drain or ejection is false)', '', renderMarkdown(calmTable), '', `**${noiseHours} simulated hours of fault-free, heavy-tailed noise** (noise-5 at ${noise.rps} requests/s)`, '', renderMarkdown(noiseTable), '', '**Federated baselines**: a sidecar starts; 2 s later one endpoint turns 3× slower (20 s runs, 200 requests/s). "with federation": its endpoints adopt the robust aggregate of 5 mesh sidecars that learned a minute of fault-free traffic (other seeds); "detected": the first applied ejection, de-weight or drain of that endpoint', '', renderMarkdown(federated.tables.detect), '', '**Poisoning**: one of the 5 mesh sidecars replaced by a liar; the shift is the largest relative change of the aggregate\'s p50 and p90 baselines and scales against the 5 honest ones', '', renderMarkdown(federated.tables.poison), '', ...notes].join('\n');
  process.stdout.write(`${header}\n\n${renderText(targets)}\n\n${renderText(gradualTable)}\n\n${renderText(calmTable)}\n\n${renderText(noiseTable)}\n\n${renderText(federated.tables.detect)}\n\n${renderText(federated.tables.poison)}\n`);
  if (write) {
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
    writeJson(path.join(root, 'results', 'learn.json'), { header, seeds, noiseHours, runs, noise: noiseRuns, modelBytes, assessCostUs: costUs, federated: { runs: federated.rows, poisonShifts: federated.poisonShifts } });
    updateMarkdownFile(path.join(root, 'README.md'), 'bench:learn', md, '## Learning: failure prediction (`npm run bench:learn`)');
    process.stderr.write('wrote bench/results/learn.json and bench/README.md\n');
  }
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  main(process.argv.slice(2)).then((code) => process.exit(code), (err) => {
    process.stderr.write(`bench:learn failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
