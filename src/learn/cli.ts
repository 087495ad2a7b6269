// `meshmedic learn train|verify`: train the learned recovery policy in the simulator and write its file;
// verify a policy file (format, version, checksum, shape) and summarise it. Exit 2 on a usage error or
// an unusable file.
import { MeshmedicError } from '../core/errors.js';
import { SCENARIOS, scenarioByName, type ScenarioSpec } from '../sim/scenarios.js';
import { packageVersion } from '../runtime/version.js';
import { parseFlags, type CliIo } from '../cli/main.js';
import { readPolicyFile, writePolicyFile } from './policy-io.js';
import { trainPolicy } from './train.js';
import { DEFAULT_REWARD } from './recovery-state.js';

export const LEARN_HELP = `Usage: meshmedic learn train --out FILE [--scenarios tuning|NAME[,NAME...]] [--episodes N] [--seed S]
                           [--lambda X] [--mu X] [--gamma X]
       meshmedic learn verify FILE

train    trains the learned recovery policy by Q-learning in the virtual-time simulator and writes it
         (versioned, checksummed JSON). Deterministic: the same flags give the same file.
  --scenarios   tuning (default: the catalogue's tuning set) or scenario names; held-out scenarios are
                refused (they judge the policy: npm run bench:learn-policy)
  --episodes N  simulated runs (default 400)
  --seed S      seed of the simulator, the exploration and the episode order (default 1)
  --lambda X    reward weight of excess latency (default ${DEFAULT_REWARD.lambda})
  --mu X        reward weight of capacity removed (default ${DEFAULT_REWARD.mu})
  --gamma X     discount per window, 0 ≤ X < 1 (default 0.8)
verify   checks a policy file and prints its training summary.

Run it with: meshmedic proxy --policy learned --policy-file FILE, or healing.policy: learned and
healing.policyFile: FILE in the config (docs/learning.md).
`;

export async function learnCommand(argv: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    io.out(LEARN_HELP);
    return sub === undefined ? 2 : 0;
  }
  if (sub === 'verify') return verify(rest, io);
  if (sub !== 'train') {
    io.err(`meshmedic learn: expected "train" or "verify", got "${sub}"\n\n${LEARN_HELP}`);
    return 2;
  }
  const s = { type: 'string' } as const;
  const p = parseFlags('learn', rest, { scenarios: s, episodes: s, seed: s, out: s, lambda: s, mu: s, gamma: s }, io, { help: LEARN_HELP });
  if (p.code !== undefined) return p.code;
  const v = p.values as Record<string, string | undefined>;
  const errors: string[] = [];
  const int = (name: string, def: number, min: number, max: number): number => {
    if (v[name] === undefined) return def;
    const x = Number(v[name]);
    if (!Number.isInteger(x) || x < min || x > max) errors.push(`--${name}: expected an integer in [${min}, ${max}], got "${v[name]}"`);
    return x;
  };
  const num = (name: string, def: number, ok: (x: number) => boolean, what: string): number => {
    if (v[name] === undefined) return def;
    const x = Number(v[name]);
    if (!Number.isFinite(x) || !ok(x)) errors.push(`--${name}: expected ${what}, got "${v[name]}"`);
    return x;
  };
  const episodes = int('episodes', 400, 1, 1_000_000);
  const seed = int('seed', 1, 0, 2 ** 31 - 1);
  const lambda = num('lambda', DEFAULT_REWARD.lambda, (x) => x >= 0, 'a number ≥ 0');
  const mu = num('mu', DEFAULT_REWARD.mu, (x) => x >= 0, 'a number ≥ 0');
  const gamma = num('gamma', 0.8, (x) => x >= 0 && x < 1, 'a number in [0, 1)');
  if (!v.out) errors.push('--out FILE is required');
  let scenarios: ScenarioSpec[] = [];
  const names = (v.scenarios ?? 'tuning').split(',').map((x) => x.trim()).filter(Boolean);
  for (const name of names) {
    if (name === 'tuning') scenarios.push(...SCENARIOS.filter((x) => x.set === 'tuning'));
    else {
      const spec = scenarioByName(name);
      if (!spec) errors.push(`--scenarios: unknown scenario "${name}" (npm run sim -- --list names them)`);
      else if (spec.set === 'held-out') errors.push(`--scenarios: "${name}" is held out: the policy is judged on it, never trained on it`);
      else scenarios.push(spec);
    }
  }
  scenarios = [...new Set(scenarios)];
  if (names.length === 0) errors.push('--scenarios: name "tuning" or at least one scenario');
  if (errors.length) {
    io.err(`meshmedic learn train:\n${errors.map((e) => `  - ${e}`).join('\n')}\n\n${LEARN_HELP}`);
    return 2;
  }
  const t0 = Date.now();
  const { document } = trainPolicy({
    scenarios, episodes, seed, reward: { lambda, mu }, gamma, meshmedicVersion: packageVersion(),
    onEpisode: (k) => { if ((k + 1) % 50 === 0 || k + 1 === episodes) io.err(`trained ${k + 1}/${episodes} episodes\n`); },
  });
  writePolicyFile(v.out!, document);
  io.out(`wrote ${v.out}: ${episodes} episodes on ${scenarios.length} scenarios, seed ${seed}, ${((Date.now() - t0) / 1000).toFixed(1)} s, ${document.checksum}\n`);
  return 0;
}

function verify(argv: string[], io: CliIo): Promise<number> | number {
  const p = parseFlags('learn', argv, {}, io, { positionals: 1, help: LEARN_HELP });
  if (p.code !== undefined) return p.code;
  const file = p.positionals[0];
  if (!file) {
    io.err(`meshmedic learn verify: give the policy file\n\n${LEARN_HELP}`);
    return 2;
  }
  try {
    const doc = readPolicyFile(file);
    const visited = doc.visits.filter((r) => r.some((x) => x > 0)).length;
    const t = doc.training;
    io.out(`${file}: valid (version ${doc.version}, ${doc.checksum})\n  trained ${t.episodes} episodes on ${t.scenarios.length} scenarios, seed ${t.seed}, γ ${t.gamma}, λ ${t.reward.lambda}, μ ${t.reward.mu}\n  states visited: ${visited} of ${doc.q.length}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof MeshmedicError)) throw err;
    io.err(`meshmedic learn verify: ${err.code}: ${err.message}\n`);
    return 2;
  }
}
