// Systems under test, each started as a real process in front of the same backends: direct (no proxy),
// meshmedic (`node bin/meshmedic.js proxy ...`), HAProxy and nginx. Pluggable: a benchmark lists them.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { request } from 'undici';
import {
  haproxyConfig, nginxConfig, haproxyRunArgs, nginxRunArgs, parseHaproxyCsv, nginxDisabledCounts,
  type HostPort, type Timeouts, type HaproxyHealing, type NginxHealing, type HaproxyServerStat,
} from './peers.js';
import { findBinary, freePort, spawnTracked, waitPort, ROOT, type Spawned } from './procs.js';

export interface SutContext {
  readonly upstreams: readonly HostPort[];
  /** Configs and logs go here (a temporary directory). */
  readonly dir: string;
  readonly timeouts: Timeouts;
}

/** What a system reports about its own ejections (for false-ejection counts and detection times). */
export interface EjectionEvent {
  /** Upstream address HOST:PORT. */
  readonly address: string;
  /** Epoch ms (for logs with second resolution: the start of that second). */
  readonly at: number;
  /** What was decided and why (meshmedic: action, reason and the decision's evidence), for the evidence files. */
  readonly detail: string;
  /** A de-weight (traffic reduced, not removed): a decision, but never a false ejection. */
  readonly soft?: boolean;
}

export interface RunningSut {
  readonly name: string;
  readonly url: string;
  readonly port: number;
  readonly proc?: Spawned;
  /** Ejections the system reported since it started; undefined = it has no way to report them. */
  ejections?(): Promise<EjectionEvent[]>;
  /** Sample state now (HAProxy: poll server states, since its stats keep no history). */
  sample?(): Promise<void>;
  stop(): Promise<void>;
}

export interface SystemUnderTest {
  readonly name: string;
  /** null when it can run here, else the reason it cannot. */
  available(): string | null;
  start(ctx: SutContext): Promise<RunningSut>;
}

const addr = (h: HostPort): string => `${h.host}:${h.port}`;

export function direct(): SystemUnderTest {
  return {
    name: 'direct',
    available: () => null,
    start: async (ctx) => ({ name: 'direct', url: `http://${addr(ctx.upstreams[0])}`, port: ctx.upstreams[0].port, stop: async () => {} }),
  };
}

export function haproxy(o: { name?: string; nbthread?: number; healing?: HaproxyHealing } = {}): SystemUnderTest {
  const name = o.name ?? (o.nbthread ? `haproxy (nbthread ${o.nbthread})` : 'haproxy');
  const bin = findBinary('haproxy');
  return {
    name,
    available: () => (bin ? null : 'haproxy is not installed: run scripts/ensure-peers.sh'),
    async start(ctx) {
      const port = await freePort();
      const statsPort = await freePort();
      const cfg = path.join(ctx.dir, `${name.replace(/\W+/g, '_')}.cfg`);
      writeFileSync(cfg, haproxyConfig({
        listen: { host: '127.0.0.1', port }, servers: ctx.upstreams, nbthread: o.nbthread, timeouts: ctx.timeouts,
        healing: o.healing, stats: { host: '127.0.0.1', port: statsPort },
      }));
      const proc = spawnTracked({ name, cmd: bin!, args: haproxyRunArgs(cfg), logDir: ctx.dir, stopSignal: 'SIGTERM', graceMs: 1000 });
      await waitPort(port, '127.0.0.1', 15_000, proc).catch(async (e: Error) => { await proc.stop(); throw e; });
      // Server state changes, as seen by polling the stats page (HAProxy keeps counters, not a history).
      const events: EjectionEvent[] = [];
      const last = new Map<string, HaproxyServerStat>();
      let prevSampleAt = Date.now();
      const sample = async (): Promise<void> => {
        try {
          const r = await request(`http://127.0.0.1:${statsPort}/stats;csv`, { headersTimeout: 2000, bodyTimeout: 2000 });
          const rows = parseHaproxyCsv(await r.body.text());
          const now = Date.now();
          for (const row of rows) {
            const prev = last.get(row.name);
            const wentDown = row.chkdown > (prev?.chkdown ?? 0);
            if (wentDown) {
              const i = Number(row.name.slice(1));
              // The change happened after the previous sample; lastchg (whole seconds) narrows it down.
              const at = row.status.startsWith('DOWN') ? Math.min(now, Math.max(prevSampleAt, now - row.lastchgS * 1000 - 500)) : (prevSampleAt + now) / 2;
              for (let k = prev?.chkdown ?? 0; k < row.chkdown; k++) {
                events.push({ address: addr(ctx.upstreams[i]), at: Math.round(at), detail: `${row.name} ${row.status}` });
              }
            }
            last.set(row.name, row);
          }
          prevSampleAt = now;
        } catch { /* stats momentarily unavailable: next sample */ }
      };
      return {
        name, url: `http://127.0.0.1:${port}`, port, proc,
        sample,
        ejections: async () => { await sample(); return events.slice(); },
        stop: () => proc.stop(),
      };
    },
  };
}

let nginxStarts = 0;

export function nginx(o: { name?: string; workers: 'auto' | number; healing?: NginxHealing }): SystemUnderTest {
  const name = o.name ?? (o.workers === 'auto' ? 'nginx' : `nginx (${o.workers} worker${o.workers === 1 ? '' : 's'})`);
  const bin = findBinary('nginx');
  return {
    name,
    available: () => (bin ? null : 'nginx is not installed: run scripts/ensure-peers.sh'),
    async start(ctx) {
      const port = await freePort();
      // A directory per start: each instance's error log holds only its own events.
      const dir = path.join(ctx.dir, `${name.replace(/\W+/g, '_')}-${++nginxStarts}`);
      const { mkdirSync, chmodSync } = await import('node:fs');
      mkdirSync(dir, { recursive: true });
      chmodSync(dir, 0o755);
      const cfg = path.join(dir, 'nginx.conf');
      writeFileSync(cfg, nginxConfig({ listen: { host: '127.0.0.1', port }, servers: ctx.upstreams, workers: o.workers, timeouts: ctx.timeouts, dir, healing: o.healing }));
      const proc = spawnTracked({ name, cmd: bin!, args: nginxRunArgs(cfg, dir), logDir: ctx.dir, stopSignal: 'SIGTERM', graceMs: 2000 });
      await waitPort(port, '127.0.0.1', 15_000, proc).catch(async (e: Error) => { await proc.stop(); throw e; });
      const errorLog = path.join(dir, 'error.log');
      return {
        name, url: `http://127.0.0.1:${port}`, port, proc,
        ejections: async () => {
          if (!existsSync(errorLog)) return [];
          const out: EjectionEvent[] = [];
          for (const line of readFileSync(errorLog, 'utf8').split('\n')) {
            const counts = nginxDisabledCounts(line);
            for (const [a] of counts) {
              const ts = /^(\d{4})\/(\d\d)\/(\d\d) (\d\d):(\d\d):(\d\d)/.exec(line);
              // nginx logs local time with second resolution.
              const at = ts ? new Date(+ts[1], +ts[2] - 1, +ts[3], +ts[4], +ts[5], +ts[6]).getTime() : NaN;
              out.push({ address: a, at, detail: 'upstream server temporarily disabled' });
            }
          }
          return out;
        },
        stop: () => proc.stop(),
      };
    },
  };
}

/** Is the meshmedic CLI built (dist/ from `npm run build`)? */
export function meshmedicBuilt(): string | null {
  if (!existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'))) return 'dist/cli/main.js is missing: run `npm run build`';
  return null;
}

export function meshmedic(o: { name?: string; policy?: string; env?: Record<string, string> } = {}): SystemUnderTest {
  const name = o.name ?? (o.policy ? `meshmedic (${o.policy})` : 'meshmedic');
  return {
    name,
    available: meshmedicBuilt,
    async start(ctx) {
      const port = await freePort();
      const adminPort = await freePort();
      const args = [
        path.join(ROOT, 'bin', 'meshmedic.js'), 'proxy',
        '--listen', `127.0.0.1:${port}`,
        '--upstream', ctx.upstreams.map((u) => `http://${addr(u)}`).join(','),
        '--admin', `127.0.0.1:${adminPort}`,
      ];
      if (o.policy) args.push('--policy', o.policy);
      // The same upstream timeouts as the peers, through the documented environment overrides.
      const env = {
        ...process.env,
        MESHMEDIC_PROXY__CONNECTTIMEOUTMS: String(ctx.timeouts.connectMs),
        MESHMEDIC_PROXY__HEADERSTIMEOUTMS: String(ctx.timeouts.serverMs),
        MESHMEDIC_PROXY__BODYTIMEOUTMS: String(ctx.timeouts.serverMs),
        ...o.env,
      };
      const proc = spawnTracked({ name, cmd: process.execPath, args, env, logDir: ctx.dir, stopSignal: 'SIGTERM', graceMs: 3000 });
      try {
        await waitPort(port, '127.0.0.1', 20_000, proc);
      } catch (e) {
        await proc.stop();
        // The most telling line: the first error message, else the last lines.
        const lines = existsSync(proc.logFile) ? readFileSync(proc.logFile, 'utf8').trim().split('\n') : [];
        const firstError = lines.find((l) => /error|Error|ERR_/.test(l) && !/^\s+at /.test(l));
        const log = firstError ? firstError.trim().slice(0, 300) : lines.slice(-3).join(' | ');
        throw new Error(`${(e as Error).message}${log ? `: ${log}` : ''}`);
      }
      const admin = `http://127.0.0.1:${adminPort}`;
      return {
        name, url: `http://127.0.0.1:${port}`, port, proc,
        ejections: async () => {
          const r = await request(`${admin}/v1/events?limit=5000`, { headersTimeout: 3000, bodyTimeout: 3000 });
          const body = (await r.body.json()) as unknown;
          const list = (Array.isArray(body) ? body : ((body as { events?: unknown[] })?.events ?? [])) as Record<string, unknown>[];
          const out: EjectionEvent[] = [];
          for (const ev of list) {
            const d = (ev.decision ?? ev) as Record<string, unknown>;
            // Only decisions that took effect (a guard may refuse one: recorded with applied=false); a
            // weight cut counts as a decision (soft), not the weights that restore an endpoint.
            if (d.applied === false) continue;
            const soft = d.action === 'weight' && Number(d.weight ?? 1) < 1 && !['probation_passed', 'ramp_up', 'probation_probe'].includes(String(d.reason));
            if (d.action !== 'eject' && d.action !== 'drain' && !soft) continue;
            const target = String(d.target ?? '');
            out.push({ address: target.slice(target.indexOf('/') + 1), at: Number(d.at ?? ev.at), detail: `${d.action} ${String(d.reason ?? '')} ${JSON.stringify(d.evidence ?? {})}`, soft });
          }
          return out;
        },
        stop: () => proc.stop(),
      };
    },
  };
}
