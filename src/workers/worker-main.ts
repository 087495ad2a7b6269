// Entry point of a proxy worker process (forked by src/workers/primary.ts): the proxy listeners and
// forwarders only. It measures requests into its own windows, ships what it measured to the primary once
// per tick, and routes by the health the primary broadcasts; it decides nothing itself.
import { systemClock } from '../core/clock.js';
import { createLogger } from '../core/log.js';
import { MeshState } from '../mesh/state.js';
import { StatsTable } from '../stats/window.js';
import { createProxy, type ProxyHandle } from '../proxy/component.js';
import type { WindowsDelta } from '../stats/window.js';
import { reviveHealth, type DeltaMessage, type FromWorker, type HealthMessage, type InitMessage, type ToWorker } from './messages.js';

/** How soon a failure is shipped to the primary (instead of at the next tick). */
const URGENT_SHIP_MS = 5;

function send(m: FromWorker, then?: () => void): void {
  // The channel is gone when the primary died; the worker exits on 'disconnect'.
  if (process.connected) process.send!(m, undefined, {}, () => then?.());
  else then?.();
}

async function run(init: InitMessage): Promise<void> {
  const base = init.config;
  const config = { ...base, outbound: { ...base.outbound, listen: init.outboundListen }, inbound: { ...base.inbound, listen: init.inboundListen } };
  const log = createLogger(config.log.level).child({ worker: init.index, pid: process.pid });
  const clock = systemClock;
  const mesh = new MeshState(clock);
  const applyHealth = (m: HealthMessage): void => {
    if (m.services) mesh.setServices(m.services);
    mesh.adoptHealth(new Map(m.health.map(([id, h]) => [id, reviveHealth(h)])));
    send({ t: 'applied', version: m.version });
  };
  applyHealth(init.health);
  const stats = new StatsTable({ windowMs: config.stats.windowMs, windows: config.stats.windows, maxLatencyUs: 60_000_000, significantDigits: 2 });
  // Health that arrives while the listeners start applies at once; a close waits for the proxy.
  let closeRequested: number | undefined;
  let onClose: ((deadlineMs: number) => void) | undefined;
  process.on('message', (m: ToWorker) => {
    if (m.t === 'health') applyHealth(m);
    else if (m.t === 'close' && closeRequested === undefined) {
      closeRequested = m.deadlineMs;
      onClose?.(m.deadlineMs);
    }
  });
  let proxy: ProxyHandle;
  try {
    proxy = await createProxy({ mesh, stats, config, clock, log }, { reusePort: init.sharing === 'reuseport' });
  } catch (err) {
    send({ t: 'failed', error: (err as Error).message });
    process.exit(1);
  }

  // What was measured since the last tick, by endpoint id (the primary's slots may differ from ours).
  const shipDeltas = (then?: () => void): void => {
    const endpoints: [string, WindowsDelta][] = [];
    for (const ev of mesh.snapshot().endpoints.values()) {
      const d = stats.get(ev.slot)?.exportDelta();
      if (d) endpoints.push([ev.spec.id, d]);
    }
    const app = stats.inbound;
    const appDelta = app?.windows.exportDelta();
    if (endpoints.length === 0 && !appDelta) return then?.();
    const connections: Record<string, number> = {};
    if (proxy.outbound) connections.outbound = proxy.outbound.connections().open;
    if (proxy.inbound) connections.inbound = proxy.inbound.connections().open;
    const m: DeltaMessage = { t: 'delta', endpoints, connections, ...(app && appDelta ? { inbound: [app.id, appDelta] as const } : {}) };
    send(m, then);
  };
  const ticker = setInterval(() => shipDeltas(), config.stats.tickMs);
  // A failure ships early (within URGENT_SHIP_MS, once per such span) rather than at the next tick: the
  // primary's consecutive-failure ejection would otherwise wait up to a tick longer than in one process.
  let urgent: NodeJS.Timeout | undefined;
  const shipSoon = (): void => {
    urgent ??= setTimeout(() => {
      urgent = undefined;
      shipDeltas();
    }, URGENT_SHIP_MS);
  };
  // On every endpoint's windows: now, or when its first request creates them (nothing else hooks them here).
  const shipHook = Object.freeze({ hook: shipSoon, at: 1, refusedAt: 0 });
  const hookFailures = (): void => {
    for (const ev of mesh.snapshot().endpoints.values()) stats.hook(ev.slot, shipHook);
  };
  hookFailures();
  mesh.subscribe(hookFailures);

  onClose = (deadlineMs) => {
    void proxy.close(deadlineMs).finally(() => {
      clearInterval(ticker);
      clearTimeout(urgent);
      shipDeltas(() => process.exit(0));
    });
  };
  send({ t: 'ready', addresses: proxy.addresses });
  log.debug('worker ready', { addresses: proxy.addresses, sharing: init.sharing });
  if (closeRequested !== undefined) onClose(closeRequested);
}

process.once('message', (m: ToWorker) => {
  if (m.t !== 'init') {
    send({ t: 'failed', error: `expected the init message first, got "${m.t}"` });
    process.exit(1);
  }
  run(m).catch((err: unknown) => {
    send({ t: 'failed', error: (err as Error).message });
    process.exit(1);
  });
});
send({ t: 'hello' });
