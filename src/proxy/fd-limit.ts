// File descriptors: the proxy's downstream connection cap is fitted under the process limit with
// headroom (the admin listener, gossip, xDS, upstream connections and files need descriptors too), and
// running out of them (EMFILE/ENFILE) is reported once, loudly, instead of failing silently.
import { readFileSync } from 'node:fs';
import type { Logger } from '../core/log.js';

/** Descriptors kept free for everything but downstream proxy connections' own pairs. */
export const FD_HEADROOM = 256;

/** The soft RLIMIT_NOFILE of this process (Linux /proc), or undefined where it cannot be read. */
export function openFileLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'latin1'));
    if (m === null || m[1] === 'unlimited') return undefined;
    return Number(m[1]);
  } catch {
    return undefined;
  }
}

/**
 * The downstream connection cap of one listener: the configured one, lowered so that both listeners'
 * connections plus one upstream connection each, plus the headroom, fit in the descriptor limit.
 */
export function fittedConnectionCap(configured: number, fdLimit: number | undefined, listeners: number): number {
  if (fdLimit === undefined) return configured;
  const fit = Math.floor((fdLimit - FD_HEADROOM) / (2 * Math.max(1, listeners)));
  return Math.max(1, Math.min(configured, fit));
}

let reported = false;
let exhaustions = 0;

/** Count an EMFILE/ENFILE; the first one is logged as an error naming the fix. True if `err` was one. */
export function noteFdExhaustion(err: unknown, log: Logger, where: string): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (code !== 'EMFILE' && code !== 'ENFILE') return false;
  exhaustions++;
  if (!reported) {
    reported = true;
    log.error('OUT OF FILE DESCRIPTORS: new connections fail until some close; raise the limit (ulimit -n) or lower proxy.maxConnections / proxy.connectionsPerEndpoint', { code, where, fdLimit: openFileLimit() });
  }
  return true;
}

/** EMFILE/ENFILE errors seen by this process (for the metric). */
export function fdExhaustionCount(): number {
  return exhaustions;
}
