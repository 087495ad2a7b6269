// The injected clock: every timestamp and timer in the decision core goes through a Clock,
// so the same code runs in real time (sidecar, benchmarks) and virtual time (tests, simulator).

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  /** Run `fn` once after `ms`. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Run `fn` every `ms`. */
  setInterval(fn: () => void, ms: number): TimerHandle;
}

export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return { cancel: () => clearTimeout(t) };
  },
  setInterval(fn: () => void, ms: number): TimerHandle {
    const t = setInterval(fn, ms);
    t.unref?.();
    return { cancel: () => clearInterval(t) };
  },
});

/**
 * `base` with its wall clock moved by `offsetMs` (timers unchanged): a host whose clock is wrong. Used by
 * tests and, through the test-only MESHMEDIC_TEST_CLOCK_SKEW_MS variable, by the chaos lab.
 */
export function skewedClock(base: Clock, offsetMs: number): Clock {
  if (offsetMs === 0) return base;
  return Object.freeze({
    now: () => base.now() + offsetMs,
    setTimeout: (fn: () => void, ms: number) => base.setTimeout(fn, ms),
    setInterval: (fn: () => void, ms: number) => base.setInterval(fn, ms),
  });
}

interface VirtualTimer {
  at: number;
  id: number;
  every: number; // 0 = one-shot
  fn: () => void;
  cancelled: boolean;
}

/**
 * A deterministic clock for tests and simulators: time moves only when `advance`/`runUntil` is called.
 * Timers sit in a binary heap (O(log n) each, cheap with thousands of simulated members) and fire in
 * time order, then creation order.
 */
export class VirtualClock implements Clock {
  private t: number;
  private seq = 0;
  private readonly heap: VirtualTimer[] = [];

  constructor(startMs = 1_700_000_000_000) {
    this.t = startMs;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    return this.add(fn, Math.max(0, ms), 0);
  }

  setInterval(fn: () => void, ms: number): TimerHandle {
    if (!(ms > 0)) throw new RangeError('interval must be > 0 ms');
    return this.add(fn, ms, ms);
  }

  /** Move time forward by `ms`, firing due timers in order. */
  advance(ms: number): void {
    this.runUntil(this.t + ms);
  }

  /** Fire every timer due at or before `target` in order, then set now = target (or stop early when `stop()` says so). */
  runUntil(target: number, stop?: () => boolean): void {
    while (this.heap.length > 0) {
      const top = this.heap[0]!;
      if (top.at > target) break;
      this.pop();
      if (top.cancelled) continue;
      this.t = Math.max(this.t, top.at);
      if (top.every > 0) {
        top.at += top.every;
        this.push(top);
      }
      top.fn();
      if (stop?.()) return;
    }
    this.t = Math.max(this.t, target);
  }

  /** Timers still scheduled (cancelled ones are dropped lazily). */
  get pendingTimers(): number {
    return this.heap.length;
  }

  private add(fn: () => void, ms: number, every: number): TimerHandle {
    const tm: VirtualTimer = { at: this.t + ms, id: this.seq++, every, fn, cancelled: false };
    this.push(tm);
    return { cancel: () => { tm.cancelled = true; } };
  }

  private less(a: VirtualTimer, b: VirtualTimer): boolean {
    return a.at < b.at || (a.at === b.at && a.id < b.id);
  }

  private push(x: VirtualTimer): void {
    const h = this.heap;
    h.push(x);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}
