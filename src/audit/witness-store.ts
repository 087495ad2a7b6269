// A witness's memory on disk (witness.json in the audit directory): what it last cosigned per log and the keys
// it pinned, so that a restarted witness still detects a fork or rewrite spanning its restart. Written
// atomically (temp file, fsync, rename, fsync of the directory); an unreadable file is set aside, never fatal.
import { readFileSync, renameSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { NoteKey } from './note.js';
import { Witness, type WitnessState } from './witness.js';

export const WITNESS_STATE_FILE = 'witness.json';
const FORMAT = 'meshmedic-witness/1';

export function witnessStatePath(dir: string): string {
  return join(dir, WITNESS_STATE_FILE);
}

/**
 * The witness with what it remembered before a restart. No file: an empty witness. A file that cannot be read
 * or does not hold a consistent state: an empty witness and `problem` naming the file and what is wrong; the
 * file is renamed to `<file>.unreadable` (kept for inspection, not overwritten by the next save).
 */
export function loadWitness(file: string, key: NoteKey, now: () => number): { witness: Witness; problem?: string } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    // No file, or no directory yet (an unusable directory is the log's outage, reported there).
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { witness: new Witness(key, now) };
    return { witness: new Witness(key, now), problem: `witness state "${file}" cannot be read: ${(err as Error).message}` };
  }
  let why: string;
  try {
    const v = JSON.parse(text) as { format?: unknown; state?: WitnessState };
    if (v?.format !== FORMAT) throw new RangeError(`expected "format": "${FORMAT}"`);
    if (typeof v.state !== 'object' || v.state === null) throw new RangeError('expected a "state" object');
    return { witness: new Witness(key, now, undefined, v.state) };
  } catch (err) {
    why = (err as Error).message;
  }
  let aside = '';
  try {
    renameSync(file, `${file}.unreadable`);
    aside = `; moved to ${file}.unreadable`;
  } catch {
    /* it stays where it is; the next save replaces it */
  }
  return { witness: new Witness(key, now), problem: `witness state "${file}" is not usable (${why.slice(0, 300)}): starting with no memory of what was cosigned, so a fork spanning this restart goes unseen${aside}` };
}

/**
 * Saves a witness's state after changes. Saves coalesce: a save asked for while one is writing runs once after
 * it, with the state as it is then. `save()` resolves when the state at the time of the call is on disk, or
 * the write failed (reported to `onError`; it never rejects).
 */
export class WitnessStateWriter {
  private current: Promise<void> | undefined;
  private next: Promise<void> | undefined;
  private saved = -1;

  constructor(private readonly file: string, private readonly witness: Witness, private readonly onError: (err: Error) => void) {}

  save(): Promise<void> {
    if (this.next) return this.next;
    if (!this.current) {
      this.current = this.write().finally(() => {
        this.current = undefined;
      });
      return this.current;
    }
    this.next = this.current.then(() => {
      this.next = undefined;
      return this.save();
    });
    return this.next;
  }

  private async write(): Promise<void> {
    const version = this.witness.version;
    if (version === this.saved) return;
    const data = `${JSON.stringify({ format: FORMAT, state: this.witness.state() })}\n`;
    const tmp = `${this.file}.tmp`;
    try {
      const fh = await open(tmp, 'w', 0o600);
      try {
        await fh.writeFile(data);
        await fh.datasync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.file);
      // The rename itself is durable only once the directory is synced.
      const dir = await open(dirname(this.file), 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
      this.saved = version;
    } catch (err) {
      this.onError(err as Error);
    }
  }
}
