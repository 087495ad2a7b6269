// Retry budget per service (Linkerd's model): retries in the last 10 s may not exceed budgetPercent of the
// requests plus budgetMinPerSecond × 10 s, so retries cannot multiply the load of a failing service.
// Ring counters of 10 × 1 s buckets: counting a request or a retry allocates nothing.
import type { RetryConfig } from '../config/sections/proxy.js';
import type { Attempt } from './attempt.js';
import { HEADERS_TIMEOUT, type FailureClass } from './failure.js';
import type { Upstream } from './upstream.js';

/** Why a retry was wanted (the `reason` label of meshmedic_retries_total). */
export const RETRY_REASONS = ['connect', 'reset', 'timeout', 'status'] as const;
export const REASON_CONNECT = 0;
export const REASON_RESET = 1;
export const REASON_TIMEOUT = 2;
export const REASON_STATUS = 3;
/** What became of it (the `result` label). */
export const RETRY_RESULTS = ['retried', 'budget_exhausted', 'no_endpoint'] as const;
export const RESULT_RETRIED = 0;
export const RESULT_BUDGET = 1;
export const RESULT_NO_ENDPOINT = 2;

const BUCKETS = 10;
const BUCKET_MS = 1000;

export class RetryBudget {
  readonly service: string;
  private readonly ratio: number;
  private readonly floor: number;
  private readonly requests = new Float64Array(BUCKETS);
  private readonly retries = new Float64Array(BUCKETS);
  private readonly sum = new Float64Array(2);
  /** The second (epoch ms / 1000, floored) each bucket currently counts. */
  private readonly second = new Float64Array(BUCKETS).fill(-1);
  /** Lifetime counts by reason × result, read at scrape time. */
  readonly counts = new Float64Array(RETRY_REASONS.length * RETRY_RESULTS.length);

  constructor(service: string, cfg: Pick<RetryConfig, 'budgetPercent' | 'budgetMinPerSecond'>) {
    this.service = service;
    this.ratio = cfg.budgetPercent / 100;
    this.floor = cfg.budgetMinPerSecond * (BUCKETS * BUCKET_MS / 1000);
  }

  private bucket(nowMs: number): number {
    const sec = Math.floor(nowMs / BUCKET_MS);
    const i = sec % BUCKETS;
    if (this.second[i] !== sec) {
      this.second[i] = sec;
      this.requests[i] = 0;
      this.retries[i] = 0;
    }
    return i;
  }

  /** Count one client request (not its retries). */
  request(nowMs: number): void {
    this.requests[this.bucket(nowMs)]!++;
  }

  /** Requests and retries counted in the last 10 s (the current second included), into `this.sum` (no allocation). */
  private total(nowMs: number): Float64Array {
    const sec = Math.floor(nowMs / BUCKET_MS);
    let req = 0;
    let ret = 0;
    for (let i = 0; i < BUCKETS; i++) {
      const s = this.second[i]!;
      if (s > sec - BUCKETS && s <= sec) {
        req += this.requests[i]!;
        ret += this.retries[i]!;
      }
    }
    this.sum[0] = req;
    this.sum[1] = ret;
    return this.sum;
  }

  /** Take one retry from the budget if there is room; counts the verdict under `reason`. */
  tryRetry(nowMs: number, reason: number): boolean {
    const t = this.total(nowMs);
    if (t[1]! + 1 > this.ratio * t[0]! + this.floor) {
      this.note(reason, RESULT_BUDGET);
      return false;
    }
    this.retries[this.bucket(nowMs)]!++;
    this.note(reason, RESULT_RETRIED);
    return true;
  }

  note(reason: number, result: number): void {
    this.counts[reason * RETRY_RESULTS.length + result]!++;
  }

  /** For status views and tests (allocates). */
  window(nowMs: number): { requests: number; retries: number; allowed: number } {
    const t = this.total(nowMs);
    return { requests: t[0]!, retries: t[1]!, allowed: Math.floor(this.ratio * t[0]! + this.floor) };
  }
}

/** Methods whose requests may be replayed (RFC 9110 §9.2.2 idempotent methods). */
export function isReplayableMethod(method: string): boolean {
  switch (method) {
    case 'GET':
    case 'HEAD':
    case 'OPTIONS':
    case 'TRACE':
    case 'PUT':
    case 'DELETE':
      return true;
    default:
      return false;
  }
}

/** Lookup table of retriable statuses (index status - 500). */
export function retriableStatuses(list: readonly number[]): Uint8Array {
  const t = new Uint8Array(100);
  for (const s of list) if (s >= 500 && s <= 599) t[s - 500] = 1;
  return t;
}

/**
 * When an attempt is tried again elsewhere (docs/proxy.md, "Retries"): the attempt handler that decides,
 * shared by HTTP/1 and h2c. The forwarder asks only while nothing of the response reached its client.
 */
export interface RetryPolicy {
  /** After a response head with this status (≥ 200): the endpoint to replay on, or null to forward the answer. */
  afterStatus(a: Attempt, status: number): Upstream | null;
  /**
   * After a failure. `mayHaveBeenSent`: the forwarder cannot rule out that the request reached the
   * endpoint although its failure class says it never did (h2c: the stream was already open).
   */
  afterFailure(a: Attempt, fc: FailureClass, mayHaveBeenSent: boolean): Upstream | null;
}

/**
 * Connect failures (never sent) for any request up to proxy.retryConnectFailures; replayable requests also
 * after a reset, a malformed answer, a headers timeout or a status of proxy.retries.retryOn, up to
 * proxy.retries.attempts; every retry within the service's budget.
 */
export const budgetedRetries: RetryPolicy = {
  afterStatus(a, status) {
    const core = a.core;
    if (status < 500 || status > 599 || core.retryOn[status - 500] !== 1 || !a.replayable || a.gone) return null;
    return a.retryTarget(REASON_STATUS, core.deps.config.proxy.retries.attempts);
  },
  afterFailure(a, fc, mayHaveBeenSent) {
    const p = a.core.deps.config.proxy;
    if (fc.neverSent && !mayHaveBeenSent) return a.retryTarget(REASON_CONNECT, p.retryConnectFailures);
    if (!a.replayable) return null;
    return a.retryTarget(fc === HEADERS_TIMEOUT ? REASON_TIMEOUT : REASON_RESET, p.retries.attempts);
  },
};
