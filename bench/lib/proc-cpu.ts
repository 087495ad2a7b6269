// CPU time of another process from /proc/PID/stat (Linux): what a benchmark charges to the system under test,
// all of its threads included, independent of how busy the rest of a shared machine is.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100; // USER_HZ on every Linux build in practice
    }
  }
  return ticksPerSecond;
}

/** Fields 3… of /proc/PID/stat: field N is at index N − 3. The command name (field 2) may hold spaces. */
function statFields(pid: number | string): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** CPU seconds (user + system) used so far by process `pid`. */
export function processCpuSeconds(pid: number): number {
  const f = statFields(pid);
  return (Number(f[11]) + Number(f[12])) / clockTicks(); // utime, stime (fields 14 and 15)
}

/**
 * CPU seconds used so far by every live process of process group `pgid` — a proxy's master, workers and
 * threads together — plus what their reaped children were charged (cutime, cstime). Undefined where
 * /proc cannot be listed.
 */
export function groupCpuSeconds(pgid: number): number | undefined {
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return undefined;
  }
  let ticks = 0;
  for (const name of names) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue; // not a process
    let f: string[];
    try {
      f = statFields(name);
    } catch {
      continue; // exited meanwhile
    }
    if (Number(f[2]) !== pgid) continue; // field 5: process group
    ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]); // fields 14–17
  }
  return ticks / clockTicks();
}
