// The audit directory layout and reading it: log.json (origin and verifier keys), one pair of files per
// segment (seg-NNNNNN.log: entries; seg-NNNNNN.ckpt: the signed checkpoints of that segment, in order).
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CHECKPOINTS_MAGIC, SEGMENT_MAGIC, scanRecords, type ScanResult } from './record.js';
import { openCheckpoint, parseVerifierKey, type NoteKey, type VerifiedCheckpoint } from './note.js';

export const META_FILE = 'log.json';
export const META_FORMAT = 'meshmedic-audit/1';

export interface LogMeta {
  readonly format: string;
  /** Origin prefix: each segment's checkpoints carry `<origin>/<segment number>`. Also the key name. */
  readonly origin: string;
  /** Verifier keys (signed-note vkey text) that signed this log, oldest first. */
  readonly keys: readonly string[];
}

export function segmentLogName(n: number): string {
  return `seg-${String(n).padStart(6, '0')}.log`;
}

export function segmentCheckpointName(n: number): string {
  return `seg-${String(n).padStart(6, '0')}.ckpt`;
}

export function segmentOrigin(origin: string, n: number): string {
  return `${origin}/${n}`;
}

/** Segment numbers present in `dir`, ascending. */
export function listSegments(dir: string): number[] {
  const out: number[] = [];
  for (const f of readdirSync(dir)) {
    const m = /^seg-(\d{6,})\.log$/.exec(f);
    if (m) out.push(Number(m[1]));
  }
  return out.sort((a, b) => a - b);
}

export function readMeta(dir: string): LogMeta {
  const text = readFileSync(join(dir, META_FILE), 'utf8');
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new RangeError(`${META_FILE} is not JSON: ${(err as Error).message}`);
  }
  const m = v as Partial<LogMeta>;
  if (!m || m.format !== META_FORMAT || typeof m.origin !== 'string' || !Array.isArray(m.keys) || m.keys.some((k) => typeof k !== 'string')) {
    throw new RangeError(`${META_FILE} is not a ${META_FORMAT} description (format, origin, keys)`);
  }
  return m as LogMeta;
}

export function metaKeys(meta: LogMeta): NoteKey[] {
  return meta.keys.map((k) => parseVerifierKey(k));
}

export interface CheckpointProblem {
  /** 0-based position of the checkpoint record in the .ckpt file. */
  readonly position: number;
  readonly message: string;
}

export interface SegmentContents {
  readonly n: number;
  readonly entries: ScanResult;
  /** Checkpoints with a valid signature by one of `keys`, in file order. */
  readonly checkpoints: VerifiedCheckpoint[];
  readonly checkpointProblems: CheckpointProblem[];
  /** A torn tail of the checkpoint file (crash during a write). */
  readonly checkpointTail?: ScanResult['stop'];
}

function readOrEmpty(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return Buffer.alloc(0);
    throw err;
  }
}

/** Read one segment: its records (valid prefix) and its checkpoints (signature-checked, not yet against the tree). */
export function readSegment(dir: string, n: number, keys: readonly NoteKey[], origin: string): SegmentContents {
  const entries = scanRecords(readOrEmpty(join(dir, segmentLogName(n))), SEGMENT_MAGIC);
  const ck = scanRecords(readOrEmpty(join(dir, segmentCheckpointName(n))), CHECKPOINTS_MAGIC);
  const checkpoints: VerifiedCheckpoint[] = [];
  const problems: CheckpointProblem[] = [];
  const expectOrigin = segmentOrigin(origin, n);
  ck.records.forEach((r, position) => {
    const text = r.payload.toString('utf8');
    let last: string | undefined;
    for (const key of keys) {
      try {
        const c = openCheckpoint(text, key);
        if (c.origin !== expectOrigin) {
          last = `checkpoint #${position} names origin "${c.origin}", expected "${expectOrigin}"`;
          continue;
        }
        checkpoints.push(c);
        last = undefined;
        break;
      } catch (err) {
        last = `checkpoint #${position}: ${(err as Error).message}`;
      }
    }
    if (last !== undefined || keys.length === 0) problems.push({ position, message: last ?? `checkpoint #${position}: no verifier key` });
  });
  return { n, entries, checkpoints, checkpointProblems: problems, checkpointTail: ck.stop };
}
