// The learned recovery policy's value table: tabular Q-learning over the discretised endpoint states of
// ./recovery-state.ts. Holds action values and visit counts; chooses greedily (live) or ε-greedily
// (training, with an injected random source). Pure and deterministic.
import { ACTION_COUNT, STATE_COUNT } from './recovery-state.js';

export class QTable {
  readonly values: Float64Array;
  readonly visits: Uint32Array;

  constructor(values?: Float64Array, visits?: Uint32Array) {
    this.values = values ?? new Float64Array(STATE_COUNT * ACTION_COUNT);
    this.visits = visits ?? new Uint32Array(STATE_COUNT * ACTION_COUNT);
  }

  q(state: number, action: number): number {
    return this.values[state * ACTION_COUNT + action]!;
  }

  visitsOf(state: number, action: number): number {
    return this.visits[state * ACTION_COUNT + action]!;
  }

  /**
   * The best allowed action. `minVisits`: only actions tried at least this often in this state count (an
   * untried action keeps its initial value 0, which beats every tried one: live, it must not be taken);
   * when none qualifies, action 0 (`none`). Ties go to the lower index, so to the gentler action.
   * `minAdvantage`: another action must be worth at least this much more than action 0.
   */
  best(state: number, mask: number, minVisits = 0, minAdvantage = 0): number {
    let best = -1;
    let bestQ = -Infinity;
    for (let a = 0; a < ACTION_COUNT; a++) {
      if ((mask & (1 << a)) === 0 || this.visitsOf(state, a) < minVisits) continue;
      const q = this.q(state, a);
      if (q > bestQ) {
        bestQ = q;
        best = a;
      }
    }
    if (best <= 0) return 0;
    // A disruptive choice must beat doing nothing by a clear margin, not by the noise of its estimate.
    if (minAdvantage > 0 && this.visitsOf(state, 0) >= minVisits && bestQ - this.q(state, 0) < minAdvantage) return 0;
    return best;
  }

  /** max over allowed actions of Q(state, ·) (the bootstrap of an update). */
  maxQ(state: number, mask: number): number {
    return this.q(state, this.best(state, mask));
  }

  /** ε-greedy choice for training: a uniformly random allowed action with probability ε. */
  explore(state: number, mask: number, epsilon: number, random: () => number): number {
    if (random() < epsilon) {
      let n = 0;
      for (let a = 0; a < ACTION_COUNT; a++) if (mask & (1 << a)) n++;
      let k = Math.floor(random() * n);
      for (let a = 0; a < ACTION_COUNT; a++) if (mask & (1 << a) && k-- === 0) return a;
    }
    return this.best(state, mask);
  }

  /** Move Q(state, action) towards `target` with step max(alphaMin, 1 / visits) (a running mean at first). */
  update(state: number, action: number, target: number, alphaMin: number): void {
    const k = state * ACTION_COUNT + action;
    const n = ++this.visits[k]!;
    const alpha = Math.max(alphaMin, 1 / n);
    this.values[k] = this.values[k]! + alpha * (target - this.values[k]!);
  }
}
