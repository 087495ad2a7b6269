// Child processes for the benchmarks: spawn, wait until ready, and kill every one of them at the end,
// on error, on Ctrl-C and on SIGTERM (each in its own process group, so nginx workers go too).
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, statSync, mkdtempSync, chmodSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface Spawned {
  readonly name: string;
  readonly child: ChildProcess;
  readonly logFile: string;
  /** Resolves when the process exits (code or signal). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(): Promise<void>;
}

const live = new Set<Spawned>();
const commands = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let hooked = false;

function killGroup(child: ChildProcess, sig: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try { process.kill(-child.pid, sig); } catch { try { child.kill(sig); } catch { /* gone */ } }
}

/** Kill every process this module started and remove its temp dirs (synchronous: usable from an 'exit' handler). */
export function killAllNow(): void {
  for (const s of live) killGroup(s.child, 'SIGKILL');
  for (const c of commands) { try { c.kill('SIGKILL'); } catch { /* gone */ } }
  for (const d of tempDirs) { try { rmSync(d, { recursive: true, force: true }); } catch { /* best effort */ } }
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAllNow);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      process.stderr.write(`\n${sig}: stopping ${live.size} child process(es)\n`);
      killAllNow();
      process.exit(130);
    });
  }
}

export interface SpawnOptions {
  name: string;
  cmd: string;
  args: string[];
  logDir: string;
  env?: NodeJS.ProcessEnv;
  /** Give the child a pipe on stdin and close it only when stopping (children may exit on EOF). */
  stdinPipe?: boolean;
  /** Signal for a graceful stop (default SIGTERM); SIGKILL follows after graceMs. */
  stopSignal?: NodeJS.Signals;
  graceMs?: number;
}

export function spawnTracked(o: SpawnOptions): Spawned {
  hook();
  const logFile = path.join(o.logDir, `${o.name.replace(/[^\w.-]+/g, '_')}.log`);
  const out = createWriteStream(logFile);
  const child = spawn(o.cmd, o.args, {
    cwd: ROOT, env: o.env ?? process.env, detached: true,
    stdio: [o.stdinPipe ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  child.stdout!.pipe(out, { end: false });
  child.stderr!.pipe(out, { end: false });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => { live.delete(s); resolve({ code, signal }); });
    child.on('error', (e) => { out.write(`spawn error: ${e.message}\n`); live.delete(s); resolve({ code: -1, signal: null }); });
  });
  let stopping: Promise<void> | undefined;
  const s: Spawned = {
    name: o.name, child, logFile, exited,
    stop: () => {
      stopping ??= (async () => {
        child.stdin?.end();
        killGroup(child, o.stopSignal ?? 'SIGTERM');
        const t = setTimeout(() => killGroup(child, 'SIGKILL'), o.graceMs ?? 3000);
        await exited;
        clearTimeout(t);
        // The leader is gone; make sure nothing it forked survives either.
        if (child.pid !== undefined) { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* none left */ } }
        out.end();
      })();
      return stopping;
    },
  };
  live.add(s);
  return s;
}

/** Stop every tracked process (graceful, then SIGKILL). */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((s) => s.stop()));
}

/** Wait for a line on stdout that parses as JSON with ready: true. */
export function waitReadyLine<T = Record<string, unknown>>(s: Spawned, timeoutMs = 15_000): Promise<T> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`${s.name}: not ready after ${timeoutMs} ms (see ${s.logFile})`)), timeoutMs);
    const onData = (c: Buffer): void => {
      buf += c.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl); buf = buf.slice(nl + 1);
        try {
          const v = JSON.parse(line) as T & { ready?: boolean };
          if (v && v.ready) { clearTimeout(timer); s.child.stdout!.off('data', onData); resolve(v); return; }
        } catch { /* not our line */ }
      }
    };
    s.child.stdout!.on('data', onData);
    s.exited.then(({ code, signal }) => { clearTimeout(timer); reject(new Error(`${s.name} exited (${code ?? signal}) before it was ready; see ${s.logFile}`)); });
  });
}

/** Wait until something accepts TCP connections on host:port. */
export async function waitPort(port: number, host = '127.0.0.1', timeoutMs = 15_000, s?: Spawned): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let dead = false;
  s?.exited.then(() => { dead = true; });
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = net.connect(port, host);
      sock.once('connect', () => { sock.destroy(); resolve(true); });
      sock.once('error', () => resolve(false));
    });
    if (ok) return;
    if (dead) throw new Error(`${s!.name} exited before listening on ${host}:${port}; see ${s!.logFile}`);
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms${s ? ` (${s.name}, see ${s.logFile})` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A free TCP port on loopback (bound then released: there is a small race, acceptable here). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** A temporary directory readable by nginx workers (they run as an unprivileged user). */
export function tempDir(prefix: string): { dir: string; remove(): void } {
  hook();
  const dir = mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
  chmodSync(dir, 0o755);
  tempDirs.add(dir); // removed on exit and on Ctrl-C too
  return { dir, remove: () => { tempDirs.delete(dir); rmSync(dir, { recursive: true, force: true }); } };
}

/** Find a binary on PATH or in /usr/sbin (where Debian puts haproxy and nginx). */
export function findBinary(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const d of dirs) {
    const p = path.join(d, name);
    try { if (d && existsSync(p) && statSync(p).isFile()) return p; } catch { /* keep looking */ }
  }
  return undefined;
}

/** How to run a TypeScript entry of this repo: compiled JS from dist/ when it is up to date, else tsx. */
export function nodeEntry(srcRel: string): { cmd: string; args: string[] } {
  const src = path.join(ROOT, srcRel);
  const dist = path.join(ROOT, srcRel.replace(/^src\//, 'dist/').replace(/\.ts$/, '.js'));
  try {
    if (existsSync(dist) && statSync(dist).mtimeMs >= statSync(src).mtimeMs) return { cmd: process.execPath, args: [dist] };
  } catch { /* fall through */ }
  return { cmd: process.execPath, args: ['--import', 'tsx', src] };
}

/** Run a command to completion, capturing output (for `haproxy -c`, `nginx -t`, wrk). */
export function runCommand(cmd: string, args: string[], timeoutMs = 120_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  hook();
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    commands.add(child);
    child.on('exit', () => commands.delete(child));
    let stdout = '', stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => { clearTimeout(t); resolve({ code: -1, stdout, stderr: stderr + e.message }); });
    child.on('close', (code) => { clearTimeout(t); resolve({ code, stdout, stderr }); });
  });
}
