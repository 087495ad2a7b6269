// The proxy core shared by both listeners: the upstream table kept in step with the mesh state (one
// Upstream per endpoint slot), the balancer, routing of a request to a service, and in-flight accounting
// for graceful drain. Listeners (listener.ts) hand it HTTP/1 requests and HTTP/2 streams.
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import type { Config } from '../config/types.js';
import type { EndpointView, MeshSnapshot, MeshState, ServiceView } from '../mesh/state.js';
import { EndpointWindows, type StatsTable } from '../stats/window.js';
import { parseHostPort } from '../core/address.js';
import { Balancer, type BalancerOptions } from './balancer.js';
import type { ForwardOptions } from './headers.js';
import { Upstream, type UpstreamProtocol } from './upstream.js';
import { budgetedRetries, RetryBudget, retriableStatuses, type RetryPolicy } from './retry.js';
import { ATTEMPT_HANDLERS } from './attempt-handlers.js';
import { ATTEMPT_KINDS, type AttemptHandler } from './attempt.js';
import type { Http1Engine } from './engine/types.js';
import { dataPlaneActivity } from '../core/activity.js';

export interface ProxyDeps {
  readonly mesh: MeshState;
  readonly stats: StatsTable;
  readonly config: Config;
  readonly clock: Clock;
  readonly log: Logger;
}

export interface ProxyOptions {
  /**
   * Quick mode: every outbound request goes to this service, whatever its Host or request target.
   * (`meshmedic proxy --service NAME` maps to it.)
   */
  readonly defaultService?: string;
  /** Protocol per service name; defaults to the `protocol` of each service in `config.services`. */
  readonly protocols?: ReadonlyMap<string, UpstreamProtocol>;
  /** Balancer tuning (tests inject a seeded random source). */
  readonly balancer?: Partial<BalancerOptions>;
  /** The handler chain of every attempt (default ATTEMPT_HANDLERS; tests and tools append observers). */
  readonly attemptHandlers?: readonly AttemptHandler[];
}

export type ListenerRole = 'outbound' | 'inbound';

export class ProxyCore {
  readonly deps: ProxyDeps;
  readonly balancer: Balancer;
  readonly forward: ForwardOptions;
  readonly defaultService: string;
  /** Upstream per mesh endpoint slot (outbound), created on the endpoint's first request. */
  private readonly bySlot: (Upstream | undefined)[] = [];
  /** Endpoint id per mesh slot, as of the last snapshot. */
  private readonly idBySlot: (string | undefined)[] = [];
  private readonly protocols: ReadonlyMap<string, UpstreamProtocol>;
  /** The local application behind the inbound listener, measured as a pseudo-endpoint. */
  readonly app: Upstream | undefined;
  private unsubscribe: (() => void) | undefined;
  /** Requests and streams being forwarded right now. */
  inflight = 0;
  /** Set once close() starts: responses carry `connection: close`, new work is still served until listeners stop. */
  draining = false;
  private idleWaiters: (() => void)[] = [];
  /** proxy.retries.retryOn as a lookup table (index status - 500). */
  readonly retryOn: Uint8Array;
  /** Headers timeout of each attempt of a replayable request (proxy.retries.perTryTimeoutMs, capped). */
  readonly perTryTimeoutMs: number;
  /** Retry budget per service name, created on first request. */
  readonly budgets = new Map<string, RetryBudget>();
  /** The HTTP/1 engine both listeners and every upstream pool use (chosen once, at start). */
  readonly http1: Http1Engine;
  /** What every attempt runs through (measuring, accounting), composed once. */
  readonly attemptHandlers: readonly AttemptHandler[];
  /** Whether and where a failed or retriable attempt goes next. */
  readonly retryPolicy: RetryPolicy = budgetedRetries;
  /** Per attempt kind (ATTEMPT_KINDS): [wait seconds summed, sent attempts], queueing + connect before the request was written. */
  readonly waits = new Float64Array(ATTEMPT_KINDS.length * 2);

  constructor(deps: ProxyDeps, http1: Http1Engine, opts: ProxyOptions = {}) {
    this.deps = deps;
    this.http1 = http1;
    this.attemptHandlers = opts.attemptHandlers ?? ATTEMPT_HANDLERS;
    this.balancer = new Balancer(deps.clock, { algorithm: deps.config.proxy.balancer, ...opts.balancer });
    this.forward = Object.freeze({ xForwardedFor: deps.config.proxy.xForwardedFor, via: deps.config.proxy.via, viaValue: '1.1 meshmedic' });
    this.defaultService = opts.defaultService ?? '';
    const r = deps.config.proxy.retries;
    this.retryOn = retriableStatuses(r.retryOn);
    const ht = deps.config.proxy.headersTimeoutMs;
    this.perTryTimeoutMs = r.perTryTimeoutMs > 0 && r.perTryTimeoutMs < ht ? r.perTryTimeoutMs : ht;
    this.protocols = opts.protocols ?? new Map(deps.config.services.map((s) => [s.name, s.protocol] as const));
    if (deps.config.inbound.enabled) {
      const hp = parseHostPort(deps.config.inbound.app, { allowHostname: true });
      if (typeof hp === 'string') throw new Error(`inbound.app: ${hp}`);
      const host = hp.host === 'localhost' ? '127.0.0.1' : hp.host;
      const id = `inbound/${host.includes(':') ? `[${host}]` : host}:${hp.port}`;
      const windows = new EndpointWindows(deps.stats.opts);
      deps.stats.inbound = { id, windows }; // exported by /metrics with direction="inbound"
      this.app = new Upstream(id, -1, host, hp.port, deps.config.inbound.protocol, windows, deps.config.proxy, http1);
    }
    this.sync(deps.mesh.snapshot());
    this.unsubscribe = deps.mesh.subscribe((snap) => this.sync(snap));
  }

  /**
   * Keep upstreams, stats rows and balancer load in step with the endpoints of the snapshot. An endpoint's
   * Upstream and stats windows are created on its first request (upstream()): most endpoints of a large mesh
   * are never called from one sidecar (~200 B and ~180 B each; docs/kubernetes.md, "Memory budget").
   */
  sync(snap: MeshSnapshot): void {
    const live = new Set<number>();
    for (const ev of snap.endpoints.values()) {
      live.add(ev.slot);
      if (this.idBySlot[ev.slot] === ev.spec.id) continue;
      const cur = this.bySlot[ev.slot];
      if (cur !== undefined) {
        this.bySlot[ev.slot] = undefined;
        this.retire(cur); // slot reused by another endpoint
      }
      this.balancer.load.ensure(ev.slot); // its stats windows come with its first request (upstream())
      this.idBySlot[ev.slot] = ev.spec.id;
    }
    for (let slot = 0; slot < this.idBySlot.length; slot++) {
      if (this.idBySlot[slot] === undefined || live.has(slot)) continue;
      this.idBySlot[slot] = undefined;
      const up = this.bySlot[slot];
      if (up !== undefined) {
        this.bySlot[slot] = undefined;
        this.retire(up);
      }
      this.deps.stats.clear(slot);
    }
  }

  private retire(up: Upstream): void {
    this.balancer.load.reset(up.slot);
    // In-flight requests finish on the old pool; new ones go elsewhere.
    up.close().catch((err: unknown) => this.deps.log.warn('closing upstream failed', { endpoint: up.id, err }));
  }

  /** The retry budget of a service. */
  budget(service: string): RetryBudget {
    let b = this.budgets.get(service);
    if (b === undefined) {
      b = new RetryBudget(service, this.deps.config.proxy.retries);
      this.budgets.set(service, b);
    }
    return b;
  }

  /** The endpoint's Upstream, created on first use; undefined for an endpoint no longer in the mesh. */
  upstream(ev: EndpointView): Upstream | undefined {
    const up = this.bySlot[ev.slot];
    if (up !== undefined) return up;
    if (this.idBySlot[ev.slot] !== ev.spec.id) return undefined;
    const protocol = this.protocols.get(ev.spec.service) ?? 'http1';
    return (this.bySlot[ev.slot] = new Upstream(ev.spec.id, ev.slot, ev.spec.host, ev.spec.port, protocol, this.deps.stats.ensure(ev.slot), this.deps.config.proxy, this.http1));
  }

  /**
   * The service a request is for: the quick-mode default, else the host part of the authority
   * (port ignored, case folded); a Kubernetes cluster-local name also tries its first label
   * (`payments.NS.svc`, `payments.NS.svc.cluster.local`). Nothing else falls back: `payments.evil.com`
   * must not reach the internal `payments`.
   */
  service(authority: string): ServiceView | undefined {
    const services = this.deps.mesh.snapshot().services;
    if (this.defaultService !== '') return services.get(this.defaultService);
    const name = hostOf(authority);
    const v = services.get(name);
    if (v !== undefined) return v;
    const dot = name.indexOf('.');
    if (dot <= 0) return undefined;
    const ns = name.indexOf('.', dot + 1);
    if (ns <= dot + 1) return undefined;
    const tail = name.slice(ns + 1);
    return tail === 'svc' || tail === 'svc.cluster.local' ? services.get(name.slice(0, dot)) : undefined;
  }

  begin(): void {
    this.inflight++;
    // Served work, for the young-generation governor: it shrinks only when this stays low (no pause while serving).
    // Masked to stay a small integer where nothing reads and resets it (a worker process runs no governor).
    dataPlaneActivity.requests = (dataPlaneActivity.requests + 1) & 0x3fffffff;
  }

  end(): void {
    if (--this.inflight === 0 && this.idleWaiters.length > 0) {
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const fn of w) fn();
    }
  }

  /** Resolves when nothing is in flight or after `ms`, whichever comes first; true if idle. */
  whenIdle(ms: number): Promise<boolean> {
    if (this.inflight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** Release every upstream (after draining). */
  async destroy(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    const all: Promise<void>[] = [];
    for (let slot = 0; slot < this.bySlot.length; slot++) {
      const up = this.bySlot[slot];
      if (up) all.push(up.destroy());
      this.bySlot[slot] = undefined;
    }
    this.idBySlot.length = 0;
    if (this.app) all.push(this.app.destroy());
    await Promise.all(all);
  }
}

/** Host of an authority (`name:port`, `[v6]:port`, `name`), lower-cased, without the port. */
export function hostOf(authority: string): string {
  if (authority.charCodeAt(0) === 0x5b /* [ */) {
    const end = authority.indexOf(']');
    return end > 0 ? authority.slice(1, end).toLowerCase() : authority.toLowerCase();
  }
  const colon = authority.indexOf(':');
  const host = colon >= 0 ? authority.slice(0, colon) : authority;
  // Service names are lower-case; only fold when needed.
  for (let i = 0; i < host.length; i++) {
    const c = host.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) return host.toLowerCase();
  }
  return host;
}
