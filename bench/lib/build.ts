// Build dist/ before a benchmark when the sources changed since the last build (meshmedic and the
// backend run compiled). A failed build is reported, and whatever cannot run is marked so.
import { readdirSync, statSync, existsSync } from 'node:fs';
import path from 'node:path';
import { ROOT, runCommand } from './procs.js';

function newest(dir: string, ext: string): number {
  let m = 0;
  if (!existsSync(dir)) return 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) m = Math.max(m, newest(p, ext));
    else if (e.name.endsWith(ext)) m = Math.max(m, statSync(p).mtimeMs);
  }
  return m;
}

/** Returns null when dist/ is up to date or was rebuilt cleanly, else the first lines of the errors. */
export async function buildIfStale(log: (s: string) => void): Promise<string | null> {
  const src = newest(path.join(ROOT, 'src'), '.ts');
  const dist = newest(path.join(ROOT, 'dist'), '.js');
  if (dist >= src && existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'))) return null;
  log('building dist/ (sources changed since the last build)\n');
  const b = await runCommand(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], 300_000);
  if (b.code === 0) return null;
  return (b.stdout + b.stderr).split('\n').slice(0, 5).join('\n');
}
