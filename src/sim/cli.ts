// `meshmedic sim`: run scenarios of the catalogue in virtual time and print a comparison table.
// Exit codes follow the CLI contract: 0 ok, 1 runtime error, 2 usage error.
import { POLICIES, type PolicyName } from '../config/sections/healing.js';
import { SCENARIOS, scenarioByName } from './scenarios.js';
import { runScenario, type SimResult } from './simulator.js';
import { arlTable, parameterTable } from './docs.js';

export const SIM_USAGE = `meshmedic sim — run fault scenarios in virtual time (seeded, deterministic)

Usage: meshmedic sim [--scenario NAME[,NAME…]] [--policy P[,P…]] [--seed N] [--duration-ms N] [--rps N]
                     [--markdown] [--json]

  --scenario   scenarios to run (default: all): ${SCENARIOS.map((s) => s.name).join(', ')}
  --policy     policies to compare (default: meshmedic,envoy-default,none)
  --seed       random seed (default 1)
  --duration-ms, --rps   override the scenario's duration and offered load
  --markdown   print a Markdown table (as in docs/healing.md)
  --json       print every result as JSON, one per line
  --list       list the scenarios and exit
  --parameters print the healing parameter table and the ARL table (Markdown) and exit
`;

export interface SimCliIo {
  readonly out: (s: string) => void;
  readonly err: (s: string) => void;
}

const defaultIo: SimCliIo = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) };

/** Run the sim command; returns the exit code. */
export function runSimCli(argv: readonly string[], io: SimCliIo = defaultIo): number {
  const opts: { scenarios: string[]; policies: PolicyName[]; seed: number; durationMs?: number; rps?: number; markdown: boolean; json: boolean } = {
    scenarios: SCENARIOS.map((s) => s.name),
    policies: POLICIES.filter((p) => p !== 'learned'),
    seed: 1,
    markdown: false,
    json: false,
  };
  const errors: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = (): string | undefined => {
      if (inline !== undefined) return inline;
      const v = argv[i + 1];
      if (v === undefined || v.startsWith('--')) {
        errors.push(`${flag}: a value is required`);
        return undefined;
      }
      i++;
      return v;
    };
    const positive = (v: string | undefined, name: string): number | undefined => {
      if (v === undefined) return undefined;
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0 || n > 1e12) {
        errors.push(`${name}: expected a positive number, got "${v}"`);
        return undefined;
      }
      return n;
    };
    switch (flag) {
      case '--help':
      case '-h':
        io.out(SIM_USAGE);
        return 0;
      case '--parameters':
        io.out(parameterTable() + '\n' + arlTable());
        return 0;
      case '--list':
        for (const s of SCENARIOS) io.out(`${s.name.padEnd(16)} ${s.description}\n`);
        return 0;
      case '--scenario': {
        const v = value();
        if (v === undefined) break;
        const names = v.split(',').map((x) => x.trim()).filter(Boolean);
        if (names.length === 0) errors.push('--scenario: name at least one scenario');
        for (const n of names) if (!scenarioByName(n)) errors.push(`--scenario: unknown scenario "${n}" (known: ${SCENARIOS.map((s) => s.name).join(', ')})`);
        opts.scenarios = names;
        break;
      }
      case '--policy': {
        const v = value();
        if (v === undefined) break;
        const names = v.split(',').map((x) => x.trim()).filter(Boolean);
        if (names.length === 0) errors.push('--policy: name at least one policy');
        for (const n of names) if (!(POLICIES as readonly string[]).includes(n)) errors.push(`--policy: unknown policy "${n}" (known: ${POLICIES.join(', ')})`);
        if (names.includes('learned')) errors.push('--policy: learned runs a trained policy file; compare it with the rules by `npm run bench:learn-policy`');
        opts.policies = names as PolicyName[];
        break;
      }
      case '--seed': {
        const n = positive(value(), '--seed');
        if (n !== undefined) opts.seed = Math.floor(n);
        break;
      }
      case '--duration-ms':
        opts.durationMs = positive(value(), '--duration-ms');
        break;
      case '--rps':
        opts.rps = positive(value(), '--rps');
        break;
      case '--markdown':
        opts.markdown = true;
        break;
      case '--json':
        opts.json = true;
        break;
      default:
        errors.push(`unknown option "${a}"`);
    }
  }
  if (errors.length) {
    for (const e of errors) io.err(`meshmedic sim: ${e}\n`);
    io.err(`Run "meshmedic sim --help" for usage.\n`);
    return 2;
  }
  try {
    const results: SimResult[] = [];
    for (const name of opts.scenarios) {
      const spec = scenarioByName(name)!;
      for (const policy of opts.policies) {
        const r = runScenario(spec, { policy, seed: opts.seed, durationMs: opts.durationMs, rps: opts.rps, keepDecisions: false });
        results.push(r);
        if (opts.json) io.out(JSON.stringify({ ...r, decisions: undefined }) + '\n');
      }
    }
    if (!opts.json) io.out(opts.markdown ? markdownTable(results) : textTable(results));
    return 0;
  } catch (err) {
    io.err(`meshmedic sim: ${(err as Error).message}\n`);
    return 1;
  }
}

const COLUMNS = ['scenario', 'policy', 'failed %', 'p50 ms', 'p99 ms', 'detect ms', 'recover ms', 'false ejections', 'false de-weights'] as const;

function row(r: SimResult): string[] {
  return [r.scenario, r.policy, r.failedPct.toFixed(3), r.p50Ms.toFixed(1), r.p99Ms.toFixed(1), fmt(r.detectMs), fmt(r.recoverMs), String(r.falseEjections), String(r.falseDeweights)];
}

function fmt(ms: number): string {
  return Number.isFinite(ms) ? String(Math.round(ms)) : '—';
}

export function textTable(results: readonly SimResult[]): string {
  const rows = [COLUMNS.slice() as string[], ...results.map(row)];
  const widths = COLUMNS.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((v, c) => (c < 2 ? v.padEnd(widths[c]!) : v.padStart(widths[c]!))).join('  ')).join('\n') + '\n' + summary(results);
}

export function markdownTable(results: readonly SimResult[]): string {
  const lines = [`| ${COLUMNS.join(' | ')} |`, `|${COLUMNS.map((_, c) => (c < 2 ? '---' : '---:')).join('|')}|`];
  for (const r of results) lines.push(`| ${row(r).join(' | ')} |`);
  return lines.join('\n') + '\n\n' + summary(results);
}

/** Failed requests over the whole suite, per policy, and meshmedic's ratio to each other policy. */
export function summary(results: readonly SimResult[]): string {
  const failed = new Map<string, { failed: number; requests: number }>();
  for (const r of results) {
    const f = failed.get(r.policy) ?? { failed: 0, requests: 0 };
    f.failed += r.failed;
    f.requests += r.requests;
    failed.set(r.policy, f);
  }
  const lines: string[] = [];
  for (const [p, f] of failed) lines.push(`${p}: ${f.failed} failed of ${f.requests} requests (${((100 * f.failed) / Math.max(1, f.requests)).toFixed(3)} %)`);
  const mm = failed.get('meshmedic');
  if (mm) for (const [p, f] of failed) if (p !== 'meshmedic' && f.failed > 0) lines.push(`meshmedic failed requests / ${p}: ${(mm.failed / f.failed).toFixed(3)}`);
  return lines.join('\n') + '\n';
}

// Run directly (npm run sim -- …).
if (process.argv[1] && /sim[/\\]cli\.(ts|js)$/.test(process.argv[1])) process.exitCode = runSimCli(process.argv.slice(2));
