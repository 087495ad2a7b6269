// The `learned` healing policy: the meshmedic rules run unchanged as a shield for hard failures, and a
// Q table trained in the simulator adds its own choice per endpoint in rotation each completed window
// (none, de-weight, drain, eject, restore). Its verdicts enter the rules' decision path as verdicts of
// source `learned`, so the same guards (max ejection %, panic, overload, rate limit) judge them. Pure: the
// table is handed over by whoever loaded it (src/learn/policy-io.ts), exploration randomness is injected.
import type { Decision } from '../core/types.js';
import { isRoutable } from '../mesh/state.js';
import { createMeshmedicPolicy } from '../heal/meshmedic.js';
import type { ExternalVerdict, HealingPolicy, PolicyFactory, PolicyInput } from '../heal/policy.js';
import { QTable } from './q-table.js';
import { ACTIONS, actionMask, DEFAULT_REWARD, RecoveryFeatures, rewardOf, type EndpointWindowFigures, type RewardWeights } from './recovery-state.js';

/** Training hooks: present only while `meshmedic learn train` runs the policy in the simulator. */
export interface Trainer {
  /** Probability of a random allowed action. */
  epsilon: number;
  readonly alphaMin: number;
  readonly random: () => number;
  /** Update the table (false: only explore, e.g. to score a random policy). */
  readonly learn: boolean;
  /** Called by each policy instance with a function that settles its open transitions (end of episode). */
  attach(flush: () => void): void;
}

/** A loaded (or training) policy. */
export interface LearnedModel {
  readonly table: QTable;
  readonly reward: RewardWeights;
  /** Discount per window. */
  readonly gamma: number;
  /** Live: an action tried fewer times than this in a state is never chosen there. */
  readonly minVisits: number;
  /** Live: an action other than none must be worth this much more than none (reward units). */
  readonly minAdvantage: number;
  /** The policy file's checksum ('' while training). */
  readonly checksum: string;
  readonly trainer?: Trainer;
  /** When present, every endpoint's reward of every window is added here (to compare policies). */
  readonly score?: { reward: number; windows: number };
}

/** What /v1/learn shows of a running learned policy. */
export interface LearnedPolicyView {
  readonly loaded: boolean;
  readonly file: string;
  readonly checksum: string;
  /** Learned choices by action (before the guards). */
  readonly choices: Readonly<Record<string, number>>;
}

const models = new Map<string, LearnedModel>();

/** Make a model available to `learned` policies whose `policyFile` is `key`. */
export function provideLearnedModel(key: string, model: LearnedModel): void {
  models.set(key, model);
}

export function withdrawLearnedModel(key: string): void {
  models.delete(key);
}

export function learnedModel(key: string): LearnedModel | undefined {
  return models.get(key);
}

interface Transition {
  state: number;
  action: number;
  /** Discounted reward gathered since the action. */
  gain: number;
  discount: number;
}

/** A transition still open when its discount falls below this is settled with no bootstrap (γ 0.8: 21 windows). */
const HORIZON_DISCOUNT = 0.01;
const NONE = ACTIONS.indexOf('none');

export const createLearnedPolicy: PolicyFactory = (settings, opts): HealingPolicy => {
  const inner = createMeshmedicPolicy(settings, opts);
  const model = models.get(settings.policyFile);
  const features = new RecoveryFeatures();
  const open = new Map<string, Transition>();
  const figures: EndpointWindowFigures = { failures: 0, requests: 0, latencyRatio: 1, removed: 0 };
  const choices: Record<string, number> = Object.fromEntries(ACTIONS.map((a) => [a, 0]));
  const cap = settings.peerLatency.usualRatioCap;
  const reward = model?.reward ?? DEFAULT_REWARD;
  const trainer = model?.trainer;

  const score = model?.score;
  const settle = (t: Transition, bootstrap: number): void => {
    if (trainer!.learn) model!.table.update(t.state, t.action, t.gain + t.discount * bootstrap, trainer!.alphaMin);
  };
  trainer?.attach(() => {
    for (const t of open.values()) settle(t, 0);
    open.clear();
  });

  return {
    name: 'learned',
    settings,
    counters: inner.counters,
    ...(inner.predictor ? { predictor: inner.predictor } : {}),
    learned: () => ({ loaded: model !== undefined, file: settings.policyFile, checksum: model?.checksum ?? '', choices: { ...choices } }),
    evaluate(input: PolicyInput): Decision[] {
      if (!model || input.completedEpoch < 0) return inner.evaluate(input);
      const { signals, completedEpoch: epoch, now } = input;
      const members = signals.filter((s) => isRoutable(s.health));
      features.prepare(members, signals, epoch);
      const verdicts: ExternalVerdict[] = [];
      const restores: Decision[] = [];
      for (const s of signals) {
        const t = trainer ? open.get(s.id) : undefined;
        if (t || score) {
          const r = rewardOf(features.figuresOf(s, epoch, cap, figures), reward);
          if (score) {
            score.reward += r;
            score.windows++;
          }
          if (t) {
            t.gain += t.discount * r;
            t.discount *= model.gamma;
          }
        }
        if (!isRoutable(s.health)) {
          if (t && t.discount < HORIZON_DISCOUNT) {
            settle(t, 0);
            open.delete(s.id);
          }
          continue;
        }
        const state = features.stateOf(s, epoch, now, cap);
        const mask = actionMask(s.health);
        if (t) settle(t, model.table.maxQ(state, mask));
        const a = trainer ? model.table.explore(state, mask, trainer.epsilon, trainer.random) : model.table.best(state, mask, model.minVisits, model.minAdvantage);
        if (trainer) open.set(s.id, { state, action: a, gain: 0, discount: 1 });
        const action = ACTIONS[a]!;
        choices[action]!++;
        const evidence = { state, q: Math.round(model.table.q(state, a) * 1000) / 1000, visits: model.table.visitsOf(state, a) };
        // The table chooses how strongly to act, the rules' evidence whether to act at all: a learned verdict
        // counts only on an endpoint the rules' detectors, predictor or peers flag in the same evaluation.
        if (action === 'deweight') verdicts.push({ target: s.id, detector: 'learned_deweight', kind: 'learned', severity: 'degrade', weight: 0.5, source: 'learned', needsCorroboration: true, evidence });
        else if (action === 'drain') verdicts.push({ target: s.id, detector: 'learned_drain', kind: 'learned', severity: 'drain', source: 'learned', needsCorroboration: true, evidence });
        else if (action === 'eject') verdicts.push({ target: s.id, detector: 'learned_eject', kind: 'learned', severity: 'eject', source: 'learned', needsCorroboration: true, evidence });
        else if (action === 'restore') restores.push({ action: 'restore', target: s.id, reason: 'learned_restore', source: 'learned', at: now, evidence: { ...evidence, from: s.health.weightFactor } });
      }
      if (trainer && open.size > signals.length) {
        const known = new Set(signals.map((s) => s.id));
        for (const id of open.keys()) if (!known.has(id)) open.delete(id);
      }
      const external = verdicts.length === 0 ? input.external : input.external.length === 0 ? verdicts : [...input.external, ...verdicts];
      const out = inner.evaluate(external === input.external ? input : { ...input, external });
      if (trainer && verdicts.length > 0) {
        // A verdict a guard refused (rate limit, cap, panic, overload) changed nothing: the transition
        // learns what happened, `none`. On a de-weighted endpoint a de-weight verdict holds its weight.
        const taken = new Set<string>();
        for (const d of out) if (d.source === 'learned') taken.add(d.target);
        for (const v of verdicts) {
          const t = open.get(v.target);
          const held = v.severity === 'degrade' && signals.find((s) => s.id === v.target)?.health.state === 'degraded';
          if (t && !taken.has(v.target) && !held) t.action = NONE;
        }
      }
      if (restores.length === 0) return out;
      // A learned restore replaces the rules' gradual ramp of the same endpoint in this evaluation.
      const restored = new Set(restores.map((d) => d.target));
      return [...out.filter((d) => !(restored.has(d.target) && (d.reason === 'ramp_up' || d.reason === 'recovered'))), ...restores];
    },
  };
};
