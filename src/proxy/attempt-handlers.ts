// The measuring and accounting handlers every attempt runs through (attempt.ts), composed once per proxy
// in ProxyCore: in-flight count (graceful drain), balancer load and RTT, the endpoint's windows, and the
// wait (queueing + connect) totals. Each is a stateless singleton: the per-request cost is a few calls.
import { Outcome } from '../core/types.js';
import type { Attempt, AttemptHandler } from './attempt.js';

function none(): void {}

/** Requests in flight, for graceful drain (ProxyCore.whenIdle). */
export const inflightHandler: AttemptHandler = {
  begin: (a) => a.core.begin(),
  sent: none,
  headers: none,
  settle: (a) => a.core.end(),
};

/** The balancer's pending count and its Peak-EWMA RTT, fed the attempt's latency sample at the response head. */
export const balancerHandler: AttemptHandler = {
  begin(a) {
    const slot = a.upstream.slot;
    if (slot >= 0) a.core.balancer.begin(slot);
  },
  sent: none,
  headers(a) {
    const slot = a.upstream.slot;
    if (slot >= 0) a.core.balancer.observe(slot, a.headersAt - a.sentAt);
  },
  settle(a) {
    const slot = a.upstream.slot;
    if (slot >= 0) a.core.balancer.end(slot);
  },
};

/** The endpoint's rolling windows (what detection reads): outcome, status class and the latency sample. */
export const windowsHandler: AttemptHandler = {
  begin: none,
  sent: none,
  headers: none,
  settle(a, outcome: Outcome) {
    const w = a.upstream.windows;
    // Integer µs: a small integer is passed unboxed (a fractional double would be allocated per call).
    // The window number is computed here so that no epoch-ms double crosses the call (it would be boxed).
    w.recordEpoch(outcome, Math.round(a.latencyMs(performance.now()) * 1000), Math.floor(a.core.deps.clock.now() / w.opts.windowMs), a.status, a.refused);
  },
};

/** Queueing + connect time of sent attempts, summed per kind into ProxyCore.waits (meshmedic_proxy_upstream_wait_*). */
export const waitHandler: AttemptHandler = {
  begin: none,
  sent(a) {
    const waits = a.core.waits;
    waits[a.kind * 2]! += a.waitMs() / 1000;
    waits[a.kind * 2 + 1]! += 1;
  },
  headers: none,
  settle: none,
};

/** The handlers of every attempt, in order (the in-flight count last: its end may wake a drain). */
export const ATTEMPT_HANDLERS: readonly AttemptHandler[] = Object.freeze([balancerHandler, windowsHandler, waitHandler, inflightHandler]);
