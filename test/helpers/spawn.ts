// Start the real `meshmedic` command (node bin/meshmedic.js, built by `npm test`) and wait until it is
// ready; every process is killed in teardown.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';

export const BIN = fileURLToPath(new URL('../../bin/meshmedic.js', import.meta.url));

export interface Running {
  readonly child: ChildProcess;
  readonly addresses: Record<string, string>;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code. */
  readonly exited: Promise<number | null>;
}

export interface StartOptions {
  /** How long start-up may take before the test fails (a guard against a hang, not a performance bound). */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /**
   * Run with exactly these NODE_OPTIONS. The test runner rewrites the environment of every child it sees
   * spawned (to load its own hooks), so the child is started through env(1), which sets them last.
   */
  nodeOptions?: string;
  /** Run under this open-file limit (`ulimit -n`, set by bash before it execs node). */
  fdLimit?: number;
  /**
   * Run in a private mount namespace with a tmpfs of this size mounted on `dir` (unshare(1); the mount
   * exists only for this process, and nothing is left behind when it exits). `nsenter -t PID -m` enters it.
   */
  tmpfs?: { dir: string; sizeKb: number };
  /** Run inside the mount namespace of this process (nsenter(1)), e.g. one holding a tmpfs across restarts. */
  mountNamespaceOf?: number;
}

export async function startMeshmedic(t: Test, args: string[], opts: StartOptions = {}): Promise<Running> {
  const env = { ...process.env, ...opts.env };
  const child = opts.tmpfs !== undefined
    ? spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `mount -t tmpfs -o size=${opts.tmpfs.sizeKb}k meshmedic-test "$0" && exec "$@"`, opts.tmpfs.dir, process.execPath, BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env })
    : opts.mountNamespaceOf !== undefined
    ? spawn('nsenter', ['-t', String(opts.mountNamespaceOf), '-m', process.execPath, BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env })
    : opts.fdLimit !== undefined
    ? spawn('bash', ['-c', `ulimit -n ${opts.fdLimit} && exec "$@"`, 'bash', process.execPath, BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env })
    : opts.nodeOptions === undefined
      ? spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env })
      : spawn('env', [`NODE_OPTIONS=${opts.nodeOptions}`, process.execPath, BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  const addresses = await new Promise<Record<string, string>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`meshmedic not ready after ${opts.timeoutMs ?? 60_000} ms\nstdout: ${out}\nstderr: ${err}`)), opts.timeoutMs ?? 60_000);
    const check = () => {
      const line = out.split('\n').find((l) => l.includes('"meshmedic ready"'));
      if (line) {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { addresses: Record<string, string> }).addresses);
      }
    };
    child.stdout!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`meshmedic exited with ${code} before it was ready\nstderr: ${err}`));
    });
  });
  return { child, addresses, stdout: () => out, stderr: () => err, exited };
}
