// The proxy component of a running sidecar (started by src/runtime/sidecar.ts when the config enables a
// listener), and createProxy() to start the same thing programmatically (tests, benchmarks).
import type { Component, ComponentFactory } from '../runtime/context.js';
import { ProxyCore, type ProxyDeps, type ProxyOptions } from './core.js';
import { startListener, type ProxyListener } from './listener.js';
import { RETRY_REASONS, RETRY_RESULTS } from './retry.js';
import { ATTEMPT_KINDS } from './attempt.js';
import { selectHttp1Engine } from './engine/index.js';
import type { Http1Engine } from './engine/types.js';
import { fdExhaustionCount } from './fd-limit.js';
import type { Metric, Registry } from '../admin/metrics-registry.js';

export interface ProxyHandle extends Component {
  readonly core: ProxyCore;
  readonly outbound: ProxyListener | undefined;
  readonly inbound: ProxyListener | undefined;
  /** `outbound` / `inbound` → HOST:PORT actually bound. */
  readonly addresses: Readonly<Record<string, string>>;
}

export interface CreateProxyOptions extends ProxyOptions {
  /** Override config.outbound.enabled / config.inbound.enabled. */
  readonly outbound?: boolean;
  readonly inbound?: boolean;
  /** Listen with SO_REUSEPORT (worker processes sharing the ports; see src/workers). */
  readonly reusePort?: boolean;
}

/** Start the listeners the config (or `opts`) enables, sharing one core (upstreams, balancer, stats). */
export async function createProxy(deps: ProxyDeps, opts: CreateProxyOptions = {}): Promise<ProxyHandle> {
  const cfg = deps.config;
  const wantOut = opts.outbound ?? cfg.outbound.enabled;
  const wantIn = opts.inbound ?? cfg.inbound.enabled;
  const defaultService = opts.defaultService ?? (cfg.outbound.defaultService || undefined);
  const { engine, fallbackReason } = await selectHttp1Engine(cfg.proxy.http1Engine);
  if (fallbackReason !== null) deps.log.warn('the native HTTP/1 engine failed its probe on this Node; using the portable one (slower)', { reason: fallbackReason, node: process.version });
  deps.log.info('HTTP/1 engine', { engine: engine.name, readMode: engine.readMode, setting: cfg.proxy.http1Engine });
  const core = new ProxyCore(deps, engine, { ...opts, ...(defaultService ? { defaultService } : {}) });
  let outbound: ProxyListener | undefined;
  let inbound: ProxyListener | undefined;
  try {
    const listeners = (wantOut ? 1 : 0) + (wantIn ? 1 : 0);
    if (wantOut) outbound = await startListener(core, 'outbound', cfg.outbound.listen, listeners, opts.reusePort);
    if (wantIn) {
      if (!core.app) throw new Error('inbound listener enabled but config.inbound is disabled: no local app to forward to');
      inbound = await startListener(core, 'inbound', cfg.inbound.listen, listeners, opts.reusePort);
    }
  } catch (err) {
    await outbound?.close(0);
    await core.destroy();
    throw err;
  }
  const addresses: Record<string, string> = {};
  if (outbound) addresses.outbound = outbound.address;
  if (inbound) addresses.inbound = inbound.address;
  let closing: Promise<void> | undefined;
  return {
    name: 'proxy',
    core,
    outbound,
    inbound,
    addresses: Object.freeze(addresses),
    close(deadlineMs = cfg.proxy.drainTimeoutMs): Promise<void> {
      closing ??= (async () => {
        await Promise.all([outbound?.close(deadlineMs), inbound?.close(deadlineMs)]);
        await core.destroy();
      })();
      return closing;
    },
  };
}

export const startProxy: ComponentFactory = async (ctx) => {
  const handle = await createProxy(ctx);
  registerRetryMetrics(ctx.metrics, handle.core);
  registerEngineMetric(ctx.metrics, handle.core.http1);
  registerConnectionMetrics(ctx.metrics, handle);
  registerWaitMetrics(ctx.metrics, handle.core);
  return handle;
};

/** `meshmedic_proxy_http1_engine_info{engine,read_mode} 1`: which HTTP/1 engine and socket-read mode run. */
export function registerEngineMetric(registry: Registry, engine: Http1Engine): void {
  const name = 'meshmedic_proxy_http1_engine_info';
  const help = 'The HTTP/1 engine in use (native or portable) and how it reads sockets (consume: the parser reads the socket handle; data: through data events). Always 1.';
  if (registry.getSingleMetric(name)) registry.removeSingleMetric(name);
  const values = [{ labels: { engine: engine.name, read_mode: engine.readMode }, value: 1 }];
  registry.registerMetric({
    name,
    help,
    type: 'gauge',
    aggregator: 'first',
    get: async () => ({ name, help, type: 'gauge', values, aggregator: 'first' }),
    reset: () => {},
  } as unknown as Metric);
}

/** `meshmedic_retries_total{service,reason,result}`, read from the budgets' counters at scrape time. */
export function registerRetryMetrics(registry: Registry, core: ProxyCore): void {
  const name = 'meshmedic_retries_total';
  const help = 'Retries wanted by the proxy, by service, reason (connect, reset, timeout, status) and result (retried, budget_exhausted, no_endpoint).';
  registerCollected(registry, name, help, 'counter', () => {
    const values: { labels: Record<string, string>; value: number }[] = [];
    for (const b of core.budgets.values()) {
      for (let r = 0; r < RETRY_REASONS.length; r++) {
        for (let x = 0; x < RETRY_RESULTS.length; x++) {
          values.push({ labels: { service: b.service, reason: RETRY_REASONS[r]!, result: RETRY_RESULTS[x]! }, value: b.counts[r * RETRY_RESULTS.length + x]! });
        }
      }
    }
    return values;
  });
}

/**
 * `meshmedic_proxy_upstream_wait_seconds_total{protocol}` and `meshmedic_proxy_upstream_sent_total{protocol}`:
 * queueing + connect time before each attempt's request was written, kept out of the latency sample
 * (docs/proxy.md, "The latency sample"); their ratio is the mean wait.
 */
export function registerWaitMetrics(registry: Registry, core: ProxyCore): void {
  const waits = core.waits;
  registerCollected(registry, 'meshmedic_proxy_upstream_wait_seconds_total', 'Time attempts waited for an upstream connection (pool queue + connect) before their request was written, by protocol (http1, h2c, tunnel); not part of the latency sample.', 'counter', () =>
    ATTEMPT_KINDS.map((protocol, k) => ({ labels: { protocol }, value: waits[k * 2]! })),
  );
  registerCollected(registry, 'meshmedic_proxy_upstream_sent_total', 'Attempts whose request was written to an endpoint, by protocol (http1, h2c, tunnel): the count for meshmedic_proxy_upstream_wait_seconds_total.', 'counter', () =>
    ATTEMPT_KINDS.map((protocol, k) => ({ labels: { protocol }, value: waits[k * 2 + 1]! })),
  );
}

/**
 * `meshmedic_proxy_connections{listener}`, `meshmedic_proxy_connections_refused_total{listener}` (new
 * downstream connections closed at proxy.maxConnections) and `meshmedic_fd_exhausted_total`.
 */
export function registerConnectionMetrics(registry: Registry, handle: ProxyHandle): void {
  const listeners = [handle.outbound, handle.inbound].filter((l): l is ProxyListener => l !== undefined);
  registerCollected(registry, 'meshmedic_proxy_connections', 'Open downstream connections per proxy listener.', 'gauge', () =>
    listeners.map((l) => ({ labels: { listener: l.role }, value: l.connections().open })),
  );
  registerCollected(registry, 'meshmedic_proxy_connections_refused_total', 'Downstream connections closed at once because the listener was at proxy.maxConnections.', 'counter', () =>
    listeners.map((l) => ({ labels: { listener: l.role }, value: l.connections().refused })),
  );
  registerCollected(registry, 'meshmedic_fd_exhausted_total', 'Times the process ran out of file descriptors (EMFILE/ENFILE) accepting or opening proxy connections.', 'counter', () => [
    { labels: {}, value: fdExhaustionCount() },
  ]);
}

/** Register a metric computed when Prometheus scrapes (nothing is observed per request). */
export function registerCollected(registry: Registry, name: string, help: string, type: 'counter' | 'gauge', collect: () => { labels: Record<string, string>; value: number }[]): void {
  if (registry.getSingleMetric(name)) registry.removeSingleMetric(name);
  // The registry's Metric contract (src/admin/metrics-registry.ts).
  registry.registerMetric({
    name,
    help,
    type,
    aggregator: 'sum',
    get: async () => ({ name, help, type, values: collect(), aggregator: 'sum' }),
    reset: () => {},
  } as unknown as Metric);
}

/** `meshmedic_proxy_workers{sharing="single"} 1`: the proxy runs in the one process. */
export function registerSingleProcessMetric(registry: Registry): void {
  registerCollected(registry, 'meshmedic_proxy_workers', 'Proxy worker processes alive and how they share the listener ports: reuseport or primary-distributes (single: one process, no workers).', 'gauge', () => [{ labels: { sharing: 'single' }, value: 1 }]);
}
