// Sizes V8's young generation to the traffic: small while the process is quiet (RSS), grown one doubling at a
// time while scavenges take a real share of the time (CPU per request), and shrunk back by one memory-reducing
// GC once it turns quiet — quiet in bytes allocated and in requests served, so that the shrink's full-GC pause
// never lands on traffic.
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { takeRequestCount } from '../core/activity.js';

/** What one tick (TICK_MS) of the process looked like. */
export interface YoungGenerationSample {
  /** Scavenges (minor GCs) during the tick. */
  scavenges: number;
  /** Milliseconds those scavenges took. */
  scavengeMs: number;
  /** Bytes the new space holds (both semi-spaces, as V8 reports it). */
  newSpaceBytes: number;
  /** Bytes in use in the new space at the end of the tick. */
  newSpaceUsedBytes: number;
  /** Requests the data plane began during the tick (src/core/activity.ts). */
  requests: number;
}

/** `grow`: let V8 double the semi-spaces (once); `hold`: stop growing; `reduce`: back to small, by a memory-reducing GC. */
export type YoungGenerationAction = 'grow' | 'hold' | 'reduce';

export const YOUNG_GENERATION_LIMITS = Object.freeze({
  tickMs: 500,
  /**
   * Busy: at least this many bytes allocated in a tick (16 MB/s: some thousand proxied requests a second;
   * an idle sidecar knowing 2,000 endpoints allocates ~2 MB/s for its windows and timers).
   */
  busyBytes: 8 * 2 ** 20,
  /** Quiet: under this many bytes allocated in a tick. */
  quietBytes: 2 * 2 ** 20,
  /**
   * Quiet: also under this many requests begun in a tick (< 20 a second). Bytes alone are not enough: a
   * proxied request allocates ~3 KB, so 1,000 requests a second stay under quietBytes, and the shrink's
   * ~10–40 ms pause then delayed every request in flight. Under this rate it delays at most about one.
   */
  quietRequests: 10,
  /** Quiet ticks in a row before shrinking (the GC that shrinks is a full one: ~10–40 ms). */
  quietTicks: 2,
  /**
   * Grow (one doubling of the semi-spaces) only when scavenges took at least this share of a busy tick. A
   * scavenge costs about what survives it, not what it frees: a proxy's requests die young, so even 10k
   * requests a second (~25 scavenges a second of the 1 MB semi-spaces) spend ~1 % of the time there, while
   * each doubling costs the process 2 × the semi-space in RSS. It pays when many objects survive (large
   * buffered bodies, bursts of start-up-like work), which is what a high share measures.
   */
  growScavengeShare: 0.1,
  /** Largest semi-space to grow to (V8's own maximum on 64-bit is 16 MB). */
  maxSemiSpaceBytes: 16 * 2 ** 20,
});

/**
 * The decision, pure: fed one sample per tick, it answers what to do with the young generation. It starts
 * as after a burst (the start-up's, which it does not grow for), so the first quiet spell shrinks once;
 * later only a busy spell arms the next shrink. `manageGrowth` false (the user sized the young generation): only the shrink when quiet.
 */
export class YoungGenerationPolicy {
  /** While growing: the new-space size that ends this doubling (0: not growing). */
  private growTo = 0;
  /** Set by the first shrink: the start-up's burst is short, growing for it would only raise the peak. */
  private started = false;
  private busySinceReduce = true;
  private quiet = 0;
  private lastUsed: number | undefined;

  constructor(private readonly manageGrowth: boolean, private readonly limits = YOUNG_GENERATION_LIMITS) {}

  /**
   * Bytes allocated in the tick, estimated from the new space's use: each scavenge empties a semi-space
   * that was full (survivors ignored: they are few in a proxy, and the estimate only needs to tell ~2 MB/s
   * of timers from the tens of MB/s of a loaded proxy).
   */
  private allocated(s: YoungGenerationSample): number {
    const last = this.lastUsed ?? s.newSpaceUsedBytes;
    this.lastUsed = s.newSpaceUsedBytes;
    return Math.max(0, s.scavenges * (s.newSpaceBytes / 2) - last + s.newSpaceUsedBytes);
  }

  step(s: YoungGenerationSample): YoungGenerationAction | undefined {
    const allocated = this.allocated(s);
    if (allocated >= this.limits.busyBytes) {
      this.busySinceReduce = true;
      this.quiet = 0;
      const costly = s.scavengeMs >= this.limits.growScavengeShare * this.limits.tickMs;
      if (this.manageGrowth && this.started && this.growTo === 0 && costly && s.newSpaceBytes < 2 * this.limits.maxSemiSpaceBytes) {
        this.growTo = Math.min(2 * s.newSpaceBytes, 2 * this.limits.maxSemiSpaceBytes);
        return 'grow';
      }
    }
    if (this.growTo > 0 && s.newSpaceBytes >= this.growTo) {
      this.growTo = 0;
      return 'hold';
    }
    this.quiet = allocated < this.limits.quietBytes && s.requests < this.limits.quietRequests ? this.quiet + 1 : 0;
    if (this.quiet >= this.limits.quietTicks && this.busySinceReduce) {
      this.busySinceReduce = false;
      this.started = true;
      this.growTo = 0;
      this.quiet = 0;
      return 'reduce';
    }
    return undefined;
  }
}

/**
 * The growth factor while growing: one doubling (V8's default factor), taken when V8 next finds a
 * semi-space's worth of objects survived; the policy holds it there and asks again on the next costly tick.
 */
const GROW_FLAG = '--semi-space-growth-factor=2';
/** The growth factor that keeps the semi-spaces as they are (SMALL_FOOTPRINT_FLAGS.young). */
const HOLD_FLAG = '--semi-space-growth-factor=1';

/**
 * The memory-reducing GC (V8's LowMemoryNotification: full, compacting, and it shrinks the new space) is
 * reachable from JavaScript only through the inspector protocol's HeapProfiler.collectGarbage, over an
 * in-process session (no port is opened). In a Node built without the inspector it rejects.
 */
async function memoryReducingGc(): Promise<void> {
  const { Session } = await import('node:inspector');
  const session = new Session();
  session.connect();
  try {
    await new Promise<void>((resolve, reject) => session.post('HeapProfiler.collectGarbage', (err) => (err ? reject(err) : resolve())));
  } finally {
    session.disconnect();
  }
}

/**
 * Run the policy in this process: one unref'd timer and a GC observer. `manageGrowth`: the command set the
 * small young generation itself (HOLD_FLAG), so it may grow it under load. `onAction`: each decision, as
 * taken (diagnostics, tests). Returns a stop function.
 */
export function startYoungGenerationGovernor(manageGrowth: boolean, onError: (e: Error) => void = () => {}, onAction: (a: YoungGenerationAction) => void = () => {}): () => void {
  const policy = new YoungGenerationPolicy(manageGrowth);
  let scavenges = 0;
  let scavengeMs = 0;
  let reducing = false;
  let stop = () => {};
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if ((e as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) { scavenges++; scavengeMs += e.duration; }
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  const timer = setInterval(() => {
    const ns = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
    if (!ns || reducing) return;
    const action = policy.step({ scavenges, scavengeMs, newSpaceBytes: ns.space_size, newSpaceUsedBytes: ns.space_used_size, requests: takeRequestCount() });
    scavenges = 0;
    scavengeMs = 0;
    if (action) onAction(action);
    if (action === 'grow') setFlagsFromString(GROW_FLAG);
    else if (action === 'hold') setFlagsFromString(HOLD_FLAG);
    else if (action === 'reduce') {
      if (manageGrowth) setFlagsFromString(HOLD_FLAG);
      reducing = true;
      memoryReducingGc().then(() => { reducing = false; }, (e: Error) => {
        // Cannot shrink (no inspector in this Node): stay small from now on rather than grow for good.
        stop();
        if (manageGrowth) setFlagsFromString(HOLD_FLAG);
        onError(e);
      });
    }
  }, YOUNG_GENERATION_LIMITS.tickMs);
  timer.unref();
  stop = () => { clearInterval(timer); observer.disconnect(); };
  return stop;
}
