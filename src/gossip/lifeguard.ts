// Lifeguard's two local mechanisms: the suspicion timer that shrinks with independent confirmations
// (LHA-suspicion) and the local health awareness score that slows a struggling member down (LHA-probe).
import type { Clock, TimerHandle } from '../core/clock.js';

/**
 * A suspicion about one member. It starts at `maxMs` and shrinks towards `minMs` as k independent
 * members confirm it: timeout(c) = max − (max − min) · log(c + 1) / log(k + 1), floored at min.
 * Without expected confirmations (k < 1) the timeout is `minMs`, SWIM's fixed timeout.
 */
export class Suspicion {
  private confirmations = 0;
  private readonly confirmers = new Set<string>();
  private readonly start: number;
  private timer: TimerHandle | undefined;
  private fired = false;
  private readonly initialTimeout: number;

  constructor(
    from: string,
    private readonly k: number,
    private readonly minMs: number,
    private readonly maxMs: number,
    private readonly clock: Clock,
    private readonly onTimeout: (confirmations: number) => void,
  ) {
    this.confirmers.add(from);
    this.start = clock.now();
    this.initialTimeout = k < 1 ? minMs : maxMs;
    this.timer = clock.setTimeout(() => this.fire(), this.initialTimeout);
  }

  static remaining(n: number, k: number, elapsedMs: number, minMs: number, maxMs: number): number {
    const frac = Math.log(n + 1) / Math.log(k + 1);
    const raw = maxMs - frac * (maxMs - minMs);
    const timeout = Math.max(minMs, Math.floor(raw));
    return timeout - elapsedMs;
  }

  /** The timeout now in force (ms from the start of the suspicion). */
  currentTimeoutMs(): number {
    if (this.k < 1) return this.minMs;
    return Suspicion.remaining(this.confirmations, this.k, 0, this.minMs, this.maxMs);
  }

  /** Record a confirmation from `from`; true if it was new (then the caller re-gossips the suspicion). */
  confirm(from: string): boolean {
    if (this.fired || this.confirmations >= this.k) return false;
    if (this.confirmers.has(from)) return false;
    this.confirmers.add(from);
    this.confirmations++;
    const remaining = Suspicion.remaining(this.confirmations, this.k, this.clock.now() - this.start, this.minMs, this.maxMs);
    this.timer?.cancel();
    this.timer = this.clock.setTimeout(() => this.fire(), Math.max(0, remaining));
    return true;
  }

  cancel(): void {
    this.fired = true;
    this.timer?.cancel();
    this.timer = undefined;
  }

  private fire(): void {
    if (this.fired) return;
    this.fired = true;
    this.onTimeout(this.confirmations);
  }
}

/**
 * Local health awareness: a score in [0, max − 1]; timeouts are multiplied by score + 1. Failed probes
 * without nacks, refutations and a starved event loop raise it; successful probes lower it.
 */
export class Awareness {
  private score = 0;
  constructor(private readonly max: number) {}

  applyDelta(delta: number): void {
    this.score = Math.min(this.max - 1, Math.max(0, this.score + delta));
  }

  get health(): number {
    return this.score;
  }

  scale(ms: number): number {
    return ms * (this.score + 1);
  }
}
