// The `none` policy: never ejects or re-weights anything. Operator decisions (admin API) still apply,
// since they go to the mesh state directly.
import type { HealingPolicy, PolicyFactory } from './policy.js';
import { newCounters } from './policy.js';

export const createNonePolicy: PolicyFactory = (settings): HealingPolicy => ({
  name: 'none',
  settings,
  counters: newCounters(),
  evaluate: () => [],
});
