// Training of the learned recovery policy in the virtual-time simulator: episodes cycle through the
// chosen scenarios (a seeded shuffle per round), the `learned` policy explores ε-greedily and updates its
// Q table after every window. Deterministic for a seed: the simulator, the shuffle and the exploration
// each draw from their own seeded stream.
import { Rng } from '../sim/rng.js';
import { runScenario } from '../sim/simulator.js';
import type { ScenarioSpec } from '../sim/scenarios.js';
import type { PolicySettings } from '../config/sections/healing.js';
import { provideLearnedModel, withdrawLearnedModel, type LearnedModel, type Trainer } from './learned-policy.js';
import { DEFAULT_MIN_ADVANTAGE, DEFAULT_MIN_VISITS, policyDocument, type PolicyDocument } from './policy-file.js';
import { QTable } from './q-table.js';
import { DEFAULT_REWARD, type RewardWeights } from './recovery-state.js';

export interface TrainOptions {
  readonly scenarios: readonly ScenarioSpec[];
  readonly episodes: number;
  readonly seed: number;
  readonly reward?: RewardWeights;
  /** Discount per window (default 0.8: about 5 windows of look-ahead). */
  readonly gamma?: number;
  readonly alphaMin?: number;
  /** ε falls linearly from the first to the second value over the episodes. */
  readonly epsilon?: readonly [number, number];
  /** Healing settings layered under the policy (the same as the live sidecar's; defaults if absent). */
  readonly settings?: PolicySettings;
  readonly meshmedicVersion?: string;
  readonly onEpisode?: (episode: number, scenario: string) => void;
}

/** Simulator seed of an episode: distinct per training seed and episode. */
export const episodeSeed = (seed: number, episode: number): number => ((seed * 100_003) ^ (episode * 7919 + 1)) >>> 0;

export function trainPolicy(opts: TrainOptions): { table: QTable; document: PolicyDocument } {
  if (opts.scenarios.length === 0) throw new Error('no scenarios to train on');
  const table = new QTable();
  const reward = opts.reward ?? DEFAULT_REWARD;
  const gamma = opts.gamma ?? 0.8;
  const alphaMin = opts.alphaMin ?? 0.05;
  const [eps0, eps1] = opts.epsilon ?? [0.3, 0.02];
  const explore = new Rng(opts.seed ^ 0x2545f491);
  const order = new Rng(opts.seed ^ 0x68e31da4);
  const flushes: (() => void)[] = [];
  const trainer: Trainer = { epsilon: eps0, alphaMin, learn: true, random: () => explore.next(), attach: (f) => flushes.push(f) };
  const key = `training:${opts.seed}`;
  provideLearnedModel(key, { table, reward, gamma, minVisits: 0, minAdvantage: 0, checksum: '', trainer });
  let round: ScenarioSpec[] = [];
  try {
    for (let k = 0; k < opts.episodes; k++) {
      if (round.length === 0) round = shuffled(opts.scenarios, order);
      const spec = round.pop()!;
      trainer.epsilon = opts.episodes > 1 ? eps0 + ((eps1 - eps0) * k) / (opts.episodes - 1) : eps1;
      runScenario(spec, { policy: 'learned', seed: episodeSeed(opts.seed, k), settings: { ...opts.settings, policy: 'learned', policyFile: key }, keepDecisions: false });
      for (const f of flushes.splice(0)) f();
      opts.onEpisode?.(k, spec.name);
    }
  } finally {
    withdrawLearnedModel(key);
  }
  const document = policyDocument(table, {
    seed: opts.seed, episodes: opts.episodes, scenarios: [...new Set(opts.scenarios.map((s) => s.name))].sort(), gamma, alphaMin,
    epsilon: [eps0, eps1], reward, meshmedicVersion: opts.meshmedicVersion ?? '',
  }, DEFAULT_MIN_VISITS, DEFAULT_MIN_ADVANTAGE);
  return { table, document };
}

/**
 * The mean reward per endpoint-window of a model on scenarios and seeds (greedy; or, with `randomPolicy`,
 * uniformly random allowed actions): the yardstick that training must improve.
 */
export function scorePolicy(model: LearnedModel | null, scenarios: readonly ScenarioSpec[], seeds: readonly number[], settings?: PolicySettings): number {
  const score = { reward: 0, windows: 0 };
  const rng = new Rng(0x51ed);
  const base: LearnedModel = model ?? { table: new QTable(), reward: DEFAULT_REWARD, gamma: 0.8, minVisits: 0, minAdvantage: 0, checksum: '' };
  const scored: LearnedModel = model
    ? { ...base, score }
    : { ...base, score, trainer: { epsilon: 1, alphaMin: 0, learn: false, random: () => rng.next(), attach: () => {} } };
  const key = `scoring:${++scoringRuns}`;
  provideLearnedModel(key, scored);
  try {
    for (const spec of scenarios) for (const seed of seeds) runScenario(spec, { policy: 'learned', seed, settings: { ...settings, policy: 'learned', policyFile: key }, keepDecisions: false });
  } finally {
    withdrawLearnedModel(key);
  }
  return score.windows > 0 ? score.reward / score.windows : 0;
}

let scoringRuns = 0;

function shuffled<T>(xs: readonly T[], rng: Rng): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}
