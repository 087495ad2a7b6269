// Runs wrk (closed-loop saturation load) and parses its report.
import { findBinary, runCommand } from './procs.js';

export interface WrkResult {
  requests: number;
  durationS: number;
  rps: number;
  /** Latency percentiles in ms (from --latency). */
  p50: number;
  p90: number;
  p99: number;
  non2xx: number;
  socketErrors: number;
}

/** Convert wrk's "460.00us" / "3.21ms" / "1.02s" / "2.00m" to ms. */
export function wrkDurationMs(s: string): number {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(s.trim());
  if (!m) return NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 'ms' ? v : m[2] === 's' ? v * 1000 : m[2] === 'm' ? v * 60_000 : v * 3_600_000;
}

/** Parse wrk's text report; missing fields come back as NaN (and the caller reports them as such). */
export function parseWrk(out: string): WrkResult {
  const num = (re: RegExp): number => { const m = re.exec(out); return m ? Number(m[1]) : NaN; };
  const pct = (p: string): number => { const m = new RegExp(`^\\s*${p}%\\s+(\\S+)`, 'm').exec(out); return m ? wrkDurationMs(m[1]) : NaN; };
  const total = /(\d+) requests in ([\d.]+\w+),/.exec(out);
  const se = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    requests: total ? Number(total[1]) : NaN,
    durationS: total ? wrkDurationMs(total[2]) / 1000 : NaN,
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    p50: pct('50'), p90: pct('90'), p99: pct('99'),
    non2xx: num(/Non-2xx or 3xx responses: (\d+)/) || 0,
    socketErrors: se ? Number(se[1]) + Number(se[2]) + Number(se[3]) + Number(se[4]) : 0,
  };
}

export function wrkAvailable(): string | null {
  return findBinary('wrk') ? null : 'wrk is not installed: run scripts/ensure-peers.sh';
}

export async function runWrk(url: string, o: { threads: number; connections: number; durationS: number }): Promise<WrkResult> {
  const bin = findBinary('wrk');
  if (!bin) throw new Error('wrk is not installed: run scripts/ensure-peers.sh');
  const r = await runCommand(bin, ['-t', String(o.threads), '-c', String(o.connections), '-d', `${o.durationS}s`, '--latency', url], (o.durationS + 30) * 1000);
  if (r.code !== 0) throw new Error(`wrk failed (${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  return parseWrk(r.stdout);
}
