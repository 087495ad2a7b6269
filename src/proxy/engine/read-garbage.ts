// Paces V8's young-generation collections by the bytes the portable engine reads. In `data` mode every
// socket read arrives in a fresh buffer that becomes garbage at once; Node 24/26's V8 collects it only
// after ~64–80 MiB have piled up (Node 20 after ~35), so a long body grew RSS by 90+ MiB. A scavenge after
// every few MiB read frees those buffers while they are still young, which costs ~0.1 ms each.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** V8's gc extension, as `--expose-gc` installs it. */
type GcFunction = (options?: { type?: 'minor' | 'major'; execution?: 'sync' | 'async' }) => void;

/** Bytes read between two young-generation collections: the garbage it leaves stays about this size. */
export const READ_GARBAGE_PACE = 8 * 1024 * 1024;

/**
 * V8's gc function: the global one when the process runs with `--expose-gc`, else one taken from a fresh
 * context with the flag set only while it is created (the documented `v8.setFlagsFromString` and `vm`),
 * so the process's own global stays untouched. Null when this V8 offers neither (then no pacing).
 */
function findGc(): GcFunction | null {
  const global = (globalThis as { gc?: unknown }).gc;
  if (typeof global === 'function') return global as GcFunction;
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('typeof gc === "function" ? gc : null');
    return typeof gc === 'function' ? (gc as GcFunction) : null;
  } catch {
    return null;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}

/** Counts read bytes and runs a young-generation collection after every `pace` of them. */
export class ReadGarbagePacer {
  private readonly gc: GcFunction | null;
  private readonly pace: number;
  private sinceCollection = 0;
  /** Collections run (for tests and diagnostics). */
  collections = 0;

  constructor(gc: GcFunction | null, pace = READ_GARBAGE_PACE) {
    this.gc = gc;
    this.pace = pace;
  }

  /** Pacing is possible on this Node. */
  get active(): boolean {
    return this.gc !== null;
  }

  /** `bytes` more were read into a buffer that is garbage once parsed. */
  read(bytes: number): void {
    if (this.gc === null) return;
    this.sinceCollection += bytes;
    if (this.sinceCollection < this.pace) return;
    this.sinceCollection = 0;
    this.collections++;
    this.gc({ type: 'minor', execution: 'sync' });
  }
}

let shared: ReadGarbagePacer | null = null;

/** The process-wide pacer every portable parser reports its reads to. */
export function readGarbagePacer(): ReadGarbagePacer {
  shared ??= new ReadGarbagePacer(findGc());
  return shared;
}
