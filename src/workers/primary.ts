// The proxy on every core: the primary process forks N worker processes (node:cluster) that serve the
// proxy listeners, while it keeps the one healing engine and everything else (admin, xDS, gossip, audit,
// Kubernetes). Workers ship their window deltas once per tick and the primary merges them into its stats;
// every health change is broadcast, so all workers route by the same decisions. A worker that dies is
// replaced; the others keep their connections.
import cluster, { type Worker } from 'node:cluster';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { registerCollected } from '../proxy/component.js';
import { MeshmedicError } from '../core/errors.js';
import { OUTCOME_COUNT } from '../core/types.js';
import { EndpointWindows } from '../stats/window.js';
import type { Component, ComponentFactory, SidecarContext } from '../runtime/context.js';
import { healthMessage, topologyKey, type FromWorker, type InitMessage, type SharingMode, type ToWorker } from './messages.js';
import { chooseSharing, resolveListen, workerCount } from './sharing.js';

export interface WorkersComponent extends Component {
  readonly count: number;
  readonly sharing: SharingMode;
  /** Requests measured per worker index (lifetime, summed over replacements of that index). */
  readonly requests: readonly number[];
  /** Workers replaced after dying. */
  restarts(): number;
}

/** A replacement for a worker that died within this long of its start waits, doubling up to the cap. */
const QUICK_DEATH_MS = 2000;
const MAX_RESTART_DELAY_MS = 5000;

const WORKER_ENTRY = fileURLToPath(new URL(`./worker-main${extname(fileURLToPath(import.meta.url))}`, import.meta.url));

export const startWorkers: ComponentFactory = async (ctx): Promise<WorkersComponent> => {
  const { config, log: baseLog } = ctx;
  const log = baseLog.child({ component: 'workers' });
  const count = workerCount(config.proxy.workers);
  const sharing = await chooseSharing(config.proxy.workerSharing);
  const outboundListen = sharing === 'reuseport' && config.outbound.enabled ? await resolveListen(config.outbound.listen, 'outbound.listen') : config.outbound.listen;
  const inboundListen = sharing === 'reuseport' && config.inbound.enabled ? await resolveListen(config.inbound.listen, 'inbound.listen') : config.inbound.listen;
  // Round-robin hand-out by the primary; with reuseport every worker binds its own socket and cluster
  // stays out of the way.
  cluster.schedulingPolicy = cluster.SCHED_RR;
  cluster.setupPrimary({ exec: WORKER_ENTRY });

  const live: (Worker | undefined)[] = new Array<Worker | undefined>(count).fill(undefined);
  const requests = new Array<number>(count).fill(0);
  const quickDeaths = new Array<number>(count).fill(0);
  /** The primary's mesh version each worker routes by (acknowledged). */
  const applied = new Array<number>(count).fill(0);
  let restarts = 0;
  let closing = false;
  const addresses: Record<string, string> = {};
  const pendingStarts = new Set<(err?: Error) => void>();

  const sendTo = (w: Worker, m: ToWorker): void => {
    if (w.isConnected()) w.send(m);
  };

  // Health: every change goes to every worker, coalesced per turn of the event loop; services go along
  // when the set of endpoints changed (Kubernetes discovery, config reload).
  let topology = topologyKey(ctx.mesh.snapshot());
  let broadcastPending = false;
  let servicesChanged = false;
  const unsubscribe = ctx.mesh.subscribe((snap) => {
    const key = topologyKey(snap);
    if (key !== topology) {
      topology = key;
      servicesChanged = true;
      // The primary's stats follow the endpoints as the proxy core does in a single process.
      const slots = new Set([...snap.endpoints.values()].map((e) => e.slot));
      for (let s = 0; s < ctx.mesh.slotCapacity(); s++) if (!slots.has(s)) ctx.stats.clear(s);
    }
    if (broadcastPending) return;
    broadcastPending = true;
    setImmediate(() => {
      broadcastPending = false;
      const m = healthMessage(ctx.mesh.snapshot(), servicesChanged);
      servicesChanged = false;
      for (const w of live) if (w) sendTo(w, m);
    });
  });

  const merge = (index: number, m: Extract<FromWorker, { t: 'delta' }>): void => {
    const snap = ctx.mesh.snapshot();
    try {
      for (const [id, d] of m.endpoints) {
        const ev = snap.endpoints.get(id);
        if (!ev) continue; // removed since the worker measured it
        ctx.stats.ensure(ev.slot).mergeDelta(d);
        for (const row of d.windows) for (let o = 1; o <= OUTCOME_COUNT; o++) requests[index]! += row[o]!;
      }
      if (m.inbound) {
        const [id, d] = m.inbound;
        if (ctx.stats.inbound?.id !== id) ctx.stats.inbound = { id, windows: new EndpointWindows(ctx.stats.opts) };
        ctx.stats.inbound.windows.mergeDelta(d);
      }
    } catch (err) {
      log.error('a worker sent a malformed delta; dropped', { worker: index, err });
    }
  };

  const fork = (index: number): Promise<void> => {
    const startedAt = Date.now();
    const w = cluster.fork({ MESHMEDIC_WORKER: String(index) });
    live[index] = w;
    return new Promise<void>((resolve, reject) => {
      let started = false;
      const settle = (err?: Error): void => {
        if (started) return;
        started = true;
        pendingStarts.delete(settle);
        if (err) reject(err);
        else resolve();
      };
      pendingStarts.add(settle);
      w.on('message', (m: FromWorker) => {
        if (m.t === 'delta') merge(index, m);
        else if (m.t === 'applied') applied[index] = m.version;
        else if (m.t === 'hello') {
          const init: InitMessage = { t: 'init', index, config, outboundListen, inboundListen, sharing, health: healthMessage(ctx.mesh.snapshot(), true) };
          sendTo(w, init);
        }
        else if (m.t === 'ready') {
          for (const [role, a] of Object.entries(m.addresses)) addresses[role] ??= a;
          settle();
        } else if (m.t === 'failed') {
          log.error('proxy worker could not start', { worker: index, error: m.error });
          settle(new MeshmedicError('MM_ERR_WORKER_START', `proxy worker ${index} could not start: ${m.error}`));
        }
      });
      w.on('exit', (code, signal) => {
        settle(new MeshmedicError('MM_ERR_WORKER_START', `proxy worker ${index} exited (code ${code}, signal ${signal}) before it was ready`));
        if (live[index] === w) live[index] = undefined;
        if (closing) return;
        quickDeaths[index] = Date.now() - startedAt < QUICK_DEATH_MS ? quickDeaths[index]! + 1 : 0;
        const delay = quickDeaths[index]! === 0 ? 0 : Math.min(MAX_RESTART_DELAY_MS, 100 * 2 ** quickDeaths[index]!);
        log.warn('proxy worker exited; replacing it', { worker: index, pid: w.process.pid, code, signal, delayMs: delay });
        setTimeout(() => {
          if (closing) return;
          restarts++;
          fork(index).then(
            () => log.info('proxy worker replaced', { worker: index, pid: live[index]?.process.pid }),
            (err: unknown) => log.error('replacement proxy worker failed', { worker: index, err }),
          );
        }, delay).unref();
      });
    });
  };

  const closeWorkers = async (deadlineMs: number): Promise<void> => {
    closing = true;
    unsubscribe();
    const exits: Promise<void>[] = [];
    for (const w of live) {
      if (!w) continue;
      exits.push(new Promise<void>((resolve) => {
        if (w.isDead()) return resolve();
        w.once('exit', () => resolve());
        // Past the drain deadline (and a margin for the last delta), a worker that hangs is killed.
        const kill = setTimeout(() => w.process.kill('SIGKILL'), deadlineMs + 5000);
        kill.unref();
        w.once('exit', () => clearTimeout(kill));
        sendTo(w, { t: 'close', deadlineMs });
      }));
    }
    await Promise.all(exits);
  };

  try {
    // One at a time: in primary-distributes mode the first worker's listen creates the shared handle.
    for (let i = 0; i < count; i++) await fork(i);
  } catch (err) {
    for (const settle of pendingStarts) settle(err as Error);
    await closeWorkers(0);
    throw err;
  }
  registerWorkerMetrics(ctx, count, sharing, () => live.filter((w) => w !== undefined).length, requests, applied, () => restarts);
  log.info('proxy workers started', { workers: count, sharing, pids: live.map((w) => w?.process.pid) });
  return {
    name: 'workers',
    count,
    sharing,
    requests,
    restarts: () => restarts,
    addresses: Object.freeze({ ...addresses }),
    close: (deadlineMs = config.proxy.drainTimeoutMs) => closeWorkers(deadlineMs),
  };
};

/**
 * `meshmedic_proxy_workers{sharing}` (live worker processes), `meshmedic_proxy_worker_requests_total{worker}`
 * (requests each worker measured; their sum is what meshmedic_requests_total counts),
 * `meshmedic_proxy_worker_mesh_version{worker}` (the health each routes by) and
 * `meshmedic_proxy_worker_restarts_total`.
 */
function registerWorkerMetrics(ctx: SidecarContext, count: number, sharing: SharingMode, alive: () => number, requests: readonly number[], applied: readonly number[], restarts: () => number): void {
  registerCollected(ctx.metrics, 'meshmedic_proxy_workers', `Proxy worker processes alive (of ${count} configured) and how they share the listener ports: reuseport or primary-distributes (single: one process, no workers).`, 'gauge', () => [{ labels: { sharing }, value: alive() }]);
  registerCollected(ctx.metrics, 'meshmedic_proxy_worker_requests_total', 'Requests measured by each proxy worker (by index; a replaced worker continues its index).', 'counter', () => requests.map((n, i) => ({ labels: { worker: String(i) }, value: n })));
  registerCollected(ctx.metrics, 'meshmedic_proxy_worker_mesh_version', 'The mesh snapshot version (as in /v1/endpoints) whose health each proxy worker routes by: behind the primary\'s while a change is on its way.', 'gauge', () => applied.map((v, i) => ({ labels: { worker: String(i) }, value: v })));
  registerCollected(ctx.metrics, 'meshmedic_proxy_worker_restarts_total', 'Proxy workers replaced after they died.', 'counter', () => [{ labels: {}, value: restarts() }]);
}

