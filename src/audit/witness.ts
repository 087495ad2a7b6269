// A witness for peers' audit logs: cosigns a checkpoint (C2SP tlog-cosignature v1) only after checking it is
// consistent with the last one it cosigned for that log; two checkpoints of one log that are not consistent
// (a fork, or a rewrite below a size it had cosigned) are reported with both as evidence. Pure: no I/O; its
// state (what it cosigned per log, the pinned keys) is exported and restored so that it survives a restart.
import { verifyConsistency } from './merkle.js';
import { cosignatureLine, openCheckpoint, parseVerifierKey, verifierKey, type NoteKey, type VerifiedCheckpoint } from './note.js';

export interface WitnessRequest {
  /** The log's signed checkpoint note. */
  readonly checkpoint: string;
  /** The log's verifier key (pinned on first sight for the log's origin prefix). */
  readonly logKey: string;
  /** Size the log believes this witness last cosigned, and the consistency proof from it (RFC 9162). */
  readonly oldSize: number;
  readonly proof: readonly Uint8Array[];
}

export type WitnessAnswer =
  | { readonly kind: 'cosigned'; readonly origin: string; readonly size: number; readonly line: string }
  /** Not checked: the witness knows a different size for this log; send a proof from `size`. */
  | { readonly kind: 'conflict'; readonly origin: string; readonly size: number }
  | { readonly kind: 'fork'; readonly origin: string; readonly message: string; readonly evidence: readonly string[] }
  | { readonly kind: 'refused'; readonly message: string };

/** What a witness remembers, as stored between runs (witness-store.ts): plain JSON. */
export interface WitnessState {
  /** Pinned verifier key per log (origin prefix). */
  readonly keys: Readonly<Record<string, string>>;
  /** Per checkpoint origin (log segment): the last checkpoint cosigned, and whether the log has forked. */
  readonly logs: Readonly<Record<string, { readonly checkpoint: string; readonly forked: boolean }>>;
}

interface LogView {
  key: NoteKey;
  size: number;
  root: Buffer;
  text: string;
  forked: boolean;
}

/** Origin prefix of a segment origin `<prefix>/<segment>`: the key is pinned per prefix. */
function prefixOf(origin: string): string {
  const i = origin.lastIndexOf('/');
  return i > 0 ? origin.slice(0, i) : origin;
}

export class Witness {
  /** By checkpoint origin (one per log segment). */
  private readonly views = new Map<string, LogView>();
  /** Pinned log keys by origin prefix (trust on first use). */
  private readonly keys = new Map<string, string>();

  /** Bumped on every change of what the witness remembers (so a store writes only when needed). */
  private changes = 0;

  /**
   * `state`: what this witness remembered before a restart. Every checkpoint in it is checked against the key
   * pinned for its log; anything inconsistent throws a RangeError naming it (the caller then starts empty).
   */
  constructor(private readonly key: NoteKey, private readonly now: () => number, private readonly maxLogs = 10_000, state?: WitnessState) {
    if (state) this.restore(state);
  }

  get version(): number {
    return this.changes;
  }

  /** What to store so that a restarted witness still knows what it cosigned. */
  state(): WitnessState {
    const logs: Record<string, { checkpoint: string; forked: boolean }> = {};
    for (const [origin, v] of this.views) logs[origin] = { checkpoint: v.text, forked: v.forked };
    return { keys: Object.fromEntries(this.keys), logs };
  }

  private restore(state: WitnessState): void {
    if (typeof state !== 'object' || state === null || typeof state.keys !== 'object' || state.keys === null || typeof state.logs !== 'object' || state.logs === null) {
      throw new RangeError('expected an object with "keys" and "logs"');
    }
    for (const [prefix, vkey] of Object.entries(state.keys)) {
      if (typeof vkey !== 'string') throw new RangeError(`keys["${prefix}"]: expected a verifier key string`);
      try {
        if (parseVerifierKey(vkey).name !== prefix) throw new Error(`the key is named "${parseVerifierKey(vkey).name}"`);
      } catch (err) {
        throw new RangeError(`keys["${prefix}"]: ${(err as Error).message}`);
      }
      this.keys.set(prefix, vkey);
    }
    for (const [origin, l] of Object.entries(state.logs)) {
      const where = `logs["${origin.slice(0, 200)}"]`;
      if (typeof l !== 'object' || l === null || typeof l.checkpoint !== 'string' || typeof l.forked !== 'boolean') throw new RangeError(`${where}: expected {checkpoint: string, forked: boolean}`);
      const vkey = this.keys.get(prefixOf(origin));
      if (vkey === undefined) throw new RangeError(`${where}: no pinned key for log "${prefixOf(origin)}"`);
      let cp: VerifiedCheckpoint;
      try {
        cp = openCheckpoint(l.checkpoint, parseVerifierKey(vkey));
      } catch (err) {
        throw new RangeError(`${where}: ${(err as Error).message}`);
      }
      if (cp.origin !== origin) throw new RangeError(`${where}: the checkpoint names origin "${cp.origin}"`);
      if (this.views.size >= this.maxLogs) throw new RangeError(`more than ${this.maxLogs} logs`);
      this.views.set(origin, { key: parseVerifierKey(vkey), size: cp.size, root: cp.root, text: cp.text, forked: l.forked });
    }
  }

  get verifierKey(): string {
    return verifierKey(this.key);
  }

  /** What this witness last cosigned for `origin`. */
  known(origin: string): { size: number; root: Buffer } | undefined {
    const v = this.views.get(origin);
    return v && { size: v.size, root: v.root };
  }

  add(req: WitnessRequest): WitnessAnswer {
    let logKey: NoteKey;
    try {
      logKey = parseVerifierKey(req.logKey);
    } catch (err) {
      return { kind: 'refused', message: `log key: ${(err as Error).message}` };
    }
    let cp: VerifiedCheckpoint;
    try {
      cp = openCheckpoint(req.checkpoint, logKey);
    } catch (err) {
      return { kind: 'refused', message: (err as Error).message };
    }
    if (prefixOf(cp.origin) !== logKey.name) return { kind: 'refused', message: `origin "${cp.origin}" is not a segment of log "${logKey.name}"` };
    const pinned = this.keys.get(logKey.name);
    if (pinned !== undefined && pinned !== req.logKey) {
      return { kind: 'fork', origin: cp.origin, message: `log "${logKey.name}" signed a checkpoint with a key other than the one this witness pinned (key replaced: a rewrite is possible)`, evidence: [pinned, req.logKey, req.checkpoint] };
    }
    const view = this.views.get(cp.origin);
    if (!view) {
      if (this.views.size >= this.maxLogs) return { kind: 'refused', message: `this witness already follows ${this.maxLogs} logs` };
      this.keys.set(logKey.name, req.logKey);
      this.views.set(cp.origin, { key: logKey, size: cp.size, root: cp.root, text: cp.text, forked: false });
      this.changes++;
      return this.cosign(cp);
    }
    if (view.forked) return { kind: 'refused', message: `log "${cp.origin}" has forked: this witness cosigns nothing more for it` };
    if (cp.size === view.size) {
      if (cp.root.equals(view.root)) return this.cosign(cp);
      return this.fork(view, cp, `two checkpoints of size ${cp.size} with different root hashes`);
    }
    if (cp.size < view.size || req.oldSize !== view.size) return { kind: 'conflict', origin: cp.origin, size: view.size };
    if (!verifyConsistency(view.size, cp.size, view.root, cp.root, req.proof)) {
      return this.fork(view, cp, `checkpoint of size ${cp.size} is not consistent with the checkpoint of size ${view.size} this witness cosigned (a fork, or a rewrite below a signed size)`);
    }
    view.size = cp.size;
    view.root = cp.root;
    view.text = cp.text;
    this.changes++;
    return this.cosign(cp);
  }

  /**
   * A checkpoint of a log seen elsewhere (another witness cosigned it): no proof, so only a same-size
   * contradiction can be judged; returns a fork answer when there is one.
   */
  compare(checkpoint: string, logKey: string): WitnessAnswer | undefined {
    let cp: VerifiedCheckpoint;
    try {
      cp = openCheckpoint(checkpoint, parseVerifierKey(logKey));
    } catch {
      return undefined;
    }
    const view = this.views.get(cp.origin);
    if (!view || view.forked || cp.size !== view.size || cp.root.equals(view.root)) return undefined;
    if (this.keys.get(prefixOf(cp.origin)) !== logKey) return undefined;
    return this.fork(view, cp, `a peer holds a checkpoint of size ${cp.size} with another root than the one this witness cosigned (split view)`);
  }

  private cosign(cp: VerifiedCheckpoint): WitnessAnswer {
    const line = cosignatureLine(cp.note.body, this.key, Math.floor(this.now() / 1000));
    return { kind: 'cosigned', origin: cp.origin, size: cp.size, line };
  }

  private fork(view: LogView, cp: VerifiedCheckpoint, why: string): WitnessAnswer {
    view.forked = true;
    this.changes++;
    return { kind: 'fork', origin: cp.origin, message: `log "${cp.origin}": ${why}`, evidence: [view.text, cp.text] };
  }
}
