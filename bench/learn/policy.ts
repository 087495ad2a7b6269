// `npm run bench:learn-policy`: the learned recovery policy against the rules-only meshmedic policy, in
// virtual time. Trains on the catalogue's tuning scenarios (or loads --policy-file), then runs both on
// every held-out scenario — which training never saw — on the same seeds. Results go to
// bench/results/learn-policy.json, the trained policy to bench/results/learned-policy.json, and the
// tables to bench/README.md.
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SCENARIOS, type ScenarioSpec } from '../../src/sim/scenarios.js';
import { runScenario, type SimResult } from '../../src/sim/simulator.js';
import { provideLearnedModel, withdrawLearnedModel } from '../../src/learn/learned-policy.js';
import { modelOf, type PolicyDocument } from '../../src/learn/policy-file.js';
import { readPolicyFile, writePolicyFile } from '../../src/learn/policy-io.js';
import { scorePolicy, trainPolicy } from '../../src/learn/train.js';
import { packageVersion } from '../../src/runtime/version.js';
import { parseBenchArgs } from '../lib/args.js';
import { ratio, renderMarkdown, renderText, updateMarkdownFile, writeJson, type Table } from '../lib/report.js';
import { medianOrNull as median } from '../lib/stats.js';

const USAGE = `npm run bench:learn-policy -- [--quick] [--seeds N] [--episodes N] [--policy-file F] [--write]

  --quick          2 seeds, 150 training episodes; writes nothing unless --write
  --seeds N        seeds per held-out scenario and lane (default 5)
  --episodes N     training episodes on the tuning scenarios (default 400)
  --policy-file F  evaluate this trained policy instead of training one
  --write          write bench/results and the tables in bench/README.md (default unless --quick)
`;

interface Row {
  scenario: string;
  lane: string;
  seed: number;
  failed: number;
  falseEjections: number;
  falseDeweights: number;
  ejections: number;
  recoverMs: number | null;
  learnedApplied: number;
}

const LANES = ['rules', 'learned'] as const;

function row(spec: ScenarioSpec, lane: string, seed: number, r: SimResult): Row {
  const learnedApplied = Object.entries(r.decisionCounts).filter(([k]) => k.includes(':learned_')).reduce((x, [, n]) => x + n, 0);
  return { scenario: spec.name, lane, seed, failed: r.failed, falseEjections: r.falseEjections, falseDeweights: r.falseDeweights, ejections: r.ejections, recoverMs: Number.isNaN(r.recoverMs) ? null : r.recoverMs, learnedApplied };
}

const sum = (xs: Row[], f: (r: Row) => number) => xs.reduce((a, r) => a + f(r), 0);

export async function main(argv: readonly string[]): Promise<number> {
  const args = parseBenchArgs(argv, USAGE, { seeds: 'integer', episodes: 'integer' }, ['policy-file']);
  if ('exit' in args) return args.exit;
  const quick = args.quick;
  let write = args.write;
  let seeds = args.numbers.seeds ?? 5;
  let episodes = args.numbers.episodes ?? 400;
  const policyFile: string | undefined = args.strings['policy-file'];
  if (quick) {
    seeds = Math.min(seeds, 2);
    episodes = Math.min(episodes, 150);
  }
  write ??= !quick;
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const wall0 = Date.now();
  const load0 = os.loadavg()[0]!;
  const tuning = SCENARIOS.filter((s) => s.set === 'tuning');
  const heldOut = SCENARIOS.filter((s) => s.set === 'held-out');

  let doc: PolicyDocument;
  let trainS = 0;
  if (policyFile) doc = readPolicyFile(policyFile);
  else {
    const t0 = Date.now();
    doc = trainPolicy({ scenarios: tuning, episodes, seed: 1, meshmedicVersion: packageVersion(), onEpisode: (k) => { if ((k + 1) % 50 === 0) process.stderr.write(`trained ${k + 1}/${episodes} episodes\n`); } }).document;
    trainS = (Date.now() - t0) / 1000;
  }
  const model = modelOf(doc);
  const key = 'bench:learn-policy';
  provideLearnedModel(key, model);
  const runs: Row[] = [];
  try {
    for (const spec of heldOut) {
      for (let seed = 1; seed <= seeds; seed++) {
        runs.push(row(spec, 'rules', seed, runScenario(spec, { policy: 'meshmedic', seed, keepDecisions: false })));
        runs.push(row(spec, 'learned', seed, runScenario(spec, { policy: 'learned', seed, settings: { policyFile: key }, keepDecisions: false })));
      }
      process.stderr.write(`${spec.name}: done\n`);
    }
  } finally {
    withdrawLearnedModel(key);
  }
  // The training yardstick: mean reward per endpoint-window, learned (greedy) against a random policy, on held-out.
  const yardstick = heldOut.filter((s) => s.suite !== 'learning').slice(0, 3);
  const scoreLearned = scorePolicy(model, yardstick, [1]);
  const scoreRandom = scorePolicy(null, yardstick, [1]);

  const by = (s: string, lane: string) => runs.filter((r) => r.scenario === s && r.lane === lane);
  const per: Table = {
    columns: ['scenario', 'failed: rules', 'failed: learned', 'ratio', 'false ejections: rules / learned', 'false drains + de-weights: rules / learned', 'recovery ms (median): rules / learned', 'learned decisions applied'],
    rows: heldOut.map((s) => {
      const a = by(s.name, 'rules');
      const b = by(s.name, 'learned');
      const rec = (xs: Row[]) => median(xs.map((r) => r.recoverMs).filter((x): x is number => x !== null));
      return [s.name, sum(a, (r) => r.failed), sum(b, (r) => r.failed), ratio(sum(b, (r) => r.failed), sum(a, (r) => r.failed)), `${sum(a, (r) => r.falseEjections)} / ${sum(b, (r) => r.falseEjections)}`, `${sum(a, (r) => r.falseDeweights)} / ${sum(b, (r) => r.falseDeweights)}`, `${rec(a) ?? '–'} / ${rec(b) ?? '–'}`, sum(b, (r) => r.learnedApplied)];
    }),
    alignRight: [false, true, true, true, true, true, true, true],
  };
  const lane = (l: string) => runs.filter((r) => r.lane === l);
  const failedRules = sum(lane('rules'), (r) => r.failed);
  const failedLearned = sum(lane('learned'), (r) => r.failed);
  const fejRules = sum(lane('rules'), (r) => r.falseEjections);
  const fejLearned = sum(lane('learned'), (r) => r.falseEjections);
  const fdwRules = sum(lane('rules'), (r) => r.falseDeweights);
  const fdwLearned = sum(lane('learned'), (r) => r.falseDeweights);
  const wins = failedLearned <= failedRules && fejLearned <= fejRules;
  const times = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(3)}×` : '–');
  const targets: Table = {
    columns: ['target (held-out scenarios, never trained on)', 'rules', 'learned', 'verdict'],
    rows: [
      ['failed requests ≤ rules\'', failedRules, failedLearned, failedLearned <= failedRules ? `met (${times(failedLearned, failedRules)})` : `missed (${times(failedLearned, failedRules)})`],
      ['false ejections ≤ rules\'', fejRules, fejLearned, fejLearned <= fejRules ? 'met' : 'missed'],
      ['false drains and de-weights (for information)', fdwRules, fdwLearned, '–'],
      ['mean reward per endpoint-window, learned vs a random policy (first 3 held-out scenarios, seed 1)', '–', `${scoreLearned.toFixed(3)} (random ${scoreRandom.toFixed(3)})`, scoreLearned > scoreRandom ? 'learned better' : 'NOT better than random'],
    ],
    alignRight: [false, true, true, false],
  };
  const wallS = Math.round((Date.now() - wall0) / 1000);
  const header = `Run ${new Date().toISOString()}, ${os.cpus().length} CPUs, Node ${process.version}, load average ${load0.toFixed(1)} at start; virtual time (the simulator); ${policyFile ? `policy ${policyFile}` : `trained ${episodes} episodes on the ${tuning.length} tuning scenarios (seed 1) in ${trainS.toFixed(0)} s`}; ${heldOut.length} held-out scenarios × ${seeds} seeds × 2 lanes; ${wallS} s wall. Policy checksum ${doc.checksum.slice(0, 19)}….`;
  const notes = [
    '- Lanes: `rules` is the meshmedic policy with its defaults (prediction on); `learned` is the same rules plus the trained Q table\'s choice per endpoint each window, through the same guards. Same seeds, same traffic.',
    '- "false ejections": ejections of an endpoint with no active fault; "false drains + de-weights": the same for drains and de-weights (the simulator\'s counts). "recovery": from the fault\'s start until 5 s in a row with < 2 % of requests reaching a faulty endpoint.',
    `- Verdict: the learned policy ${wins ? 'is no worse than the rules on failed requests and false ejections here' : 'does **not** beat the rules here'}; the default policy stays \`meshmedic\` (rules) either way until a run on the quiet machine says otherwise (docs/learning.md).`,
  ];
  const md = [header, '', '**Targets**', '', renderMarkdown(targets), '', '**Per held-out scenario** (sums over seeds)', '', renderMarkdown(per), '', ...notes].join('\n');
  process.stdout.write(`${header}\n\n${renderText(targets)}\n\n${renderText(per)}\n`);
  if (write) {
    writeJson(path.join(root, 'results', 'learn-policy.json'), { header, seeds, episodes: policyFile ? null : episodes, trainS, runs, scoreLearned, scoreRandom, checksum: doc.checksum });
    if (!policyFile) writePolicyFile(path.join(root, 'results', 'learned-policy.json'), doc);
    updateMarkdownFile(path.join(root, 'README.md'), 'bench:learn-policy', md, '## Learning: the learned recovery policy (`npm run bench:learn-policy`)');
    process.stderr.write('wrote bench/results/learn-policy.json, bench/results/learned-policy.json and bench/README.md\n');
  }
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  main(process.argv.slice(2)).then((code) => process.exit(code), (err) => {
    process.stderr.write(`bench:learn-policy failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
