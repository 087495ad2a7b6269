// The forwarding protocol shared by HTTP/1 (http1.ts), h2c (h2.ts) and TLS tunnels (connect.ts): every
// attempt goes begin → sent → response head → settle, and picks its retry target here. What each step does
// (in-flight count, balancer load and RTT, the latency sample, the windows) is a small handler composed
// once per proxy (attempt-handlers.ts); the retry policy is one too (retry.ts). Handlers are shared
// singletons called with the attempt, whose state lives in plain fields: nothing is allocated per attempt.
import { Outcome } from '../core/types.js';
import type { ServiceView } from '../mesh/state.js';
import type { ProxyCore } from './core.js';
import type { Upstream } from './upstream.js';
import { RESULT_NO_ENDPOINT, type RetryBudget } from './retry.js';

/** What is forwarded (the `protocol` label of the wait metrics). */
export const ATTEMPT_KINDS = ['http1', 'h2c', 'tunnel'] as const;
export const KIND_HTTP1 = 0;
export const KIND_H2C = 1;
export const KIND_TUNNEL = 2;

/**
 * One step of every attempt. Handlers hold no per-request state (they read and write the attempt's
 * fields), so one instance serves every request of every protocol.
 */
export interface AttemptHandler {
  /** The attempt starts: an endpoint is chosen, the request is about to be handed to its pool or session. */
  begin(a: Attempt): void;
  /** The request head was written on an established connection (once per attempt). */
  sent(a: Attempt): void;
  /** The response head arrived (status ≥ 200; for a tunnel, the endpoint's first byte). */
  headers(a: Attempt): void;
  /** The attempt ended with this outcome (exactly once per begin). */
  settle(a: Attempt, outcome: Outcome): void;
}

/**
 * A forwarded request (or tunnel) and its current attempt. The protocol forwarders extend it and call
 * beginAttempt/markSent/markHeaders/settle at the matching points of their own I/O.
 */
export abstract class Attempt {
  readonly core: ProxyCore;
  /** KIND_HTTP1, KIND_H2C or KIND_TUNNEL. */
  readonly kind: number;
  /** The service, or null for the local app (inbound): no retries then. */
  readonly view: ServiceView | null;
  /** The endpoint of the current attempt. */
  upstream: Upstream;
  readonly budget: RetryBudget | null;
  /** May be sent again after it reached an endpoint (idempotent method, no body). */
  readonly replayable: boolean;
  /** Attempts begun, retries taken. */
  attempts = 0;
  retries = 0;
  /** performance.now() of this attempt's begin, sent (0: not yet) and response head (0: not yet). */
  beginAt = 0;
  sentAt = 0;
  headersAt = 0;
  /** Response status of this attempt (0: none). */
  status = 0;
  /** This attempt failed with a refused connection (set by the forwarder before settle; the windows count it apart). */
  refused = false;
  settled = true;
  /** The client went away: nothing more is sent, nothing is retried. */
  gone = false;
  /** Slot of the endpoint that failed before the current one (-1: none), avoided by the next pick. */
  private failed1 = -1;

  constructor(core: ProxyCore, kind: number, view: ServiceView | null, upstream: Upstream, replayable: boolean) {
    this.core = core;
    this.kind = kind;
    this.view = view;
    this.upstream = upstream;
    this.replayable = view !== null && replayable;
    this.budget = view === null ? null : core.budget(view.name);
    if (this.budget !== null) this.budget.request(core.deps.clock.now()); // the budget counts requests, not retries
  }

  /** Start an attempt on `this.upstream`. */
  protected beginAttempt(): void {
    this.attempts++;
    this.beginAt = performance.now();
    this.sentAt = 0;
    this.headersAt = 0;
    this.status = 0;
    this.refused = false;
    this.settled = false;
    const hs = this.core.attemptHandlers;
    for (let i = 0; i < hs.length; i++) hs[i]!.begin(this);
  }

  /**
   * The request head was written on an established connection. A resend of the same attempt (the HTTP/1
   * pool's transparent resend after a stale keep-alive connection) moves the mark, without a second event.
   */
  protected markSent(): void {
    const first = this.sentAt === 0;
    this.sentAt = performance.now();
    if (!first) return;
    const hs = this.core.attemptHandlers;
    for (let i = 0; i < hs.length; i++) hs[i]!.sent(this);
  }

  /** The response head arrived with this status. */
  protected markHeaders(status: number): void {
    this.status = status;
    this.headersAt = performance.now();
    if (this.sentAt === 0) this.sentAt = this.headersAt; // defensive: a head cannot precede the request
    const hs = this.core.attemptHandlers;
    for (let i = 0; i < hs.length; i++) hs[i]!.headers(this);
  }

  /** End the attempt with this outcome; later calls are ignored. */
  protected settle(outcome: Outcome): void {
    if (this.settled) return;
    this.settled = true;
    const hs = this.core.attemptHandlers;
    for (let i = 0; i < hs.length; i++) hs[i]!.settle(this, outcome);
  }

  /**
   * The latency sample of this attempt, ms — the one definition the balancer, the windows (and so
   * detection) use (docs/proxy.md, "The latency sample"): from the request head written on an established
   * connection to the response head; an attempt that ends without a head counts to its end (`now`); one
   * that was never sent (refused, connect or queue timeout) has no round trip and counts its wait.
   */
  latencyMs(now: number): number {
    if (this.sentAt === 0) return now - this.beginAt;
    return (this.headersAt !== 0 ? this.headersAt : now) - this.sentAt;
  }

  /** Queueing and connect time of this attempt, ms (begin → sent); 0 until sent. */
  waitMs(): number {
    return this.sentAt === 0 ? 0 : this.sentAt - this.beginAt;
  }

  /**
   * The endpoint for a retry of the current attempt, taken from the budget; null when the limit, the
   * budget or the endpoints allow none (each verdict is counted for meshmedic_retries_total). The
   * endpoints already tried (the two most recent) are avoided, and only one of the same protocol is taken.
   */
  retryTarget(reason: number, limit: number): Upstream | null {
    const view = this.view;
    const budget = this.budget;
    if (view === null || budget === null || this.retries >= limit || this.gone) return null;
    const failed = this.upstream.slot;
    const avoid1 = this.failed1 >= 0 ? this.failed1 : failed;
    // The view may be stale by now; use the current one for the same service.
    const core = this.core;
    const current = core.deps.mesh.snapshot().services.get(view.name) ?? view;
    const ev = core.balancer.pick(current, avoid1, failed);
    const up = ev === undefined ? undefined : core.upstream(ev);
    if (up === undefined || up.protocol !== this.upstream.protocol) {
      budget.note(reason, RESULT_NO_ENDPOINT);
      return null;
    }
    if (!budget.tryRetry(core.deps.clock.now(), reason)) return null;
    this.retries++;
    this.failed1 = failed; // with `failed` of the next failure: the two most recent are avoided
    return up;
  }
}
