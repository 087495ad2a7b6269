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

interface VirtualTimer {
  id: number;
  at: number;
  every: number; // 0 = one-shot
  fn: () => void;
  cancelled: boolean;
}

/** A deterministic clock for tests and the simulator: time moves only when `advance`/`runUntil` is called. */
export class VirtualClock implements Clock {
  private t: number;
  private seq = 0;
  private timers: VirtualTimer[] = [];

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

  /** Fire every timer due at or before `target`, in time order, then set now = target. */
  runUntil(target: number): void {
    for (;;) {
      let next: VirtualTimer | undefined;
      for (const tm of this.timers) {
        if (tm.cancelled || tm.at > target) continue;
        if (!next || tm.at < next.at || (tm.at === next.at && tm.id < next.id)) next = tm;
      }
      if (!next) break;
      this.t = Math.max(this.t, next.at);
      if (next.every > 0) next.at += next.every;
      else next.cancelled = true;
      next.fn();
      this.timers = this.timers.filter((x) => !x.cancelled);
    }
    this.t = Math.max(this.t, target);
  }

  private add(fn: () => void, ms: number, every: number): TimerHandle {
    const tm: VirtualTimer = { id: this.seq++, at: this.t + ms, every, fn, cancelled: false };
    this.timers.push(tm);
    return { cancel: () => { tm.cancelled = true; } };
  }
}
