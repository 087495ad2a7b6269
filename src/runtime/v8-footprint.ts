// V8 heap settings of the long-running commands (run, proxy, control), set by the meshmedic command itself at
// start, so that a plain `meshmedic run` idles as small as an injected sidecar (docs/kubernetes.md, "Memory budget").
import { setFlagsFromString } from 'node:v8';
import { startYoungGenerationGovernor } from './young-generation.js';

/** `default` leaves V8's own heap sizing; `small` (or unset) applies SMALL_FOOTPRINT_FLAGS. */
export const ENV_V8_FOOTPRINT = 'MESHMEDIC_V8_FOOTPRINT';

/**
 * Without them V8 sizes its heap for the machine's RAM: under the burst of allocation at start the young
 * generation doubles up to 2 × 16 MB and stays, and the old generation may grow 4× its live size before
 * a full collection. Both flags are read by V8 each time it sizes a space, so they work when set after
 * start (unlike --max-semi-space-size, fixed when the heap is created). Throughput cost: docs/kubernetes.md.
 */
export const SMALL_FOOTPRINT_FLAGS = Object.freeze({
  /**
   * The young generation keeps its initial 1 MB semi-spaces (like --max-semi-space-size=1) while the process
   * is quiet; under load the governor (src/runtime/young-generation.ts) lets it grow, and shrinks it after.
   */
  young: '--semi-space-growth-factor=1',
  /** The old generation's next limit is its live size + 25 % (as V8 does for small max heaps). */
  old: '--heap-growing-percent=25',
});

const LONG_RUNNING = new Set(['run', 'proxy', 'control']);

/**
 * Which flags to set for `argv` (the command line after the script), given the environment and Node's
 * own options: none for short commands, none with MESHMEDIC_V8_FOOTPRINT=default, and none for a
 * generation the user already sized (NODE_OPTIONS or node's command line) — the injector's
 * NODE_OPTIONS, for one, stay in charge. Pure.
 */
export function footprintFlags(argv: readonly string[], env: NodeJS.ProcessEnv, execArgv: readonly string[]): { flags: string[]; warning?: string } {
  if (!LONG_RUNNING.has(argv[0] ?? '')) return { flags: [] };
  const mode = env[ENV_V8_FOOTPRINT]?.trim();
  if (mode === 'default') return { flags: [] };
  const warning = mode && mode !== 'small' ? `${ENV_V8_FOOTPRINT}=${JSON.stringify(mode)} is not "small" or "default"; using small` : undefined;
  const given = [...execArgv, ...(env.NODE_OPTIONS ?? '').split(/\s+/)].map((a) => a.replace(/_/g, '-'));
  const has = (...names: string[]) => given.some((a) => names.some((n) => a === n || a.startsWith(`${n}=`)));
  const flags: string[] = [];
  if (!has('--max-semi-space-size', '--semi-space-growth-factor', '--max-heap-size')) flags.push(SMALL_FOOTPRINT_FLAGS.young);
  if (!has('--max-old-space-size', '--heap-growing-percent', '--max-heap-size')) flags.push(SMALL_FOOTPRINT_FLAGS.old);
  return warning ? { flags, warning } : { flags };
}

/**
 * Set the flags for this process (call before the command's modules load: their start-up burst counts) and,
 * for a long-running command not on V8's own sizing, start the young-generation governor: it grows the
 * young generation under load only if the command set it small itself, and shrinks it when quiet either way.
 */
export function applyFootprint(argv: readonly string[], env: NodeJS.ProcessEnv = process.env, execArgv: readonly string[] = process.execArgv): readonly string[] {
  const { flags, warning } = footprintFlags(argv, env, execArgv);
  if (warning) process.stderr.write(`meshmedic: ${warning}\n`);
  if (flags.length) setFlagsFromString(flags.join(' '));
  if (LONG_RUNNING.has(argv[0] ?? '') && env[ENV_V8_FOOTPRINT]?.trim() !== 'default') {
    startYoungGenerationGovernor(flags.includes(SMALL_FOOTPRINT_FLAGS.young), (e) => process.stderr.write(`meshmedic: the young generation stays small: ${e.message}\n`));
  }
  return flags;
}
