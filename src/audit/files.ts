// The audit directory layout and reading it: log.json (origin and verifier keys), one pair of files per
// segment (seg-NNNNNN.log: entries; seg-NNNNNN.ckpt: the signed checkpoints of that segment, in order).
import { closeSync, fstatSync, openSync, readFileSync, readSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { MeshmedicError } from '../core/errors.js';
import { CHECKPOINTS_MAGIC, MAX_RECORD_BYTES, RECORD_OVERHEAD, SEGMENT_MAGIC, scanRecords, type ScanResult } from './record.js';
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

/** Read exactly `length` bytes at `position` (fewer only at the end of the file). */
function readAt(fd: number, buf: Buffer, length: number, position: number): number {
  let got = 0;
  while (got < length) {
    const n = readSync(fd, buf, got, length - got, position + got);
    if (n <= 0) break;
    got += n;
  }
  return got;
}

/**
 * The byte offset of every record in the valid prefix of segment `n`'s entries file, found by reading it in
 * chunks (a segment of 10^6 entries is a few hundred MB: it is never read whole). `end` is where the valid
 * prefix ends. Same validity rules as scanRecords: length bound and checksum.
 */
export function indexSegment(dir: string, n: number): { offsets: number[]; end: number } {
  const fd = openSync(join(dir, segmentLogName(n)), 'r');
  try {
    const size = fstatSync(fd).size;
    const chunk = Buffer.allocUnsafe(MAX_RECORD_BYTES + RECORD_OVERHEAD + (1 << 20));
    const offsets: number[] = [];
    if (readAt(fd, chunk, SEGMENT_MAGIC.length, 0) < SEGMENT_MAGIC.length || !chunk.subarray(0, SEGMENT_MAGIC.length).equals(SEGMENT_MAGIC)) return { offsets, end: 0 };
    let pos = SEGMENT_MAGIC.length;
    let start = 0;
    let len = 0; // chunk holds file bytes [start, start + len)
    while (pos + 4 <= size) {
      // A chunk always holds a whole record of the maximum size from where it starts.
      if (pos + 4 > start + len) {
        start = pos;
        len = readAt(fd, chunk, chunk.length, pos);
      }
      const rlen = chunk.readUInt32BE(pos - start);
      if (rlen > MAX_RECORD_BYTES) break;
      if (pos + rlen + RECORD_OVERHEAD > start + len) {
        if (start === pos) break; // truncated at the end of the file
        start = pos;
        len = readAt(fd, chunk, chunk.length, pos);
        continue;
      }
      const at = pos - start;
      if (crc32(chunk.subarray(at, at + 4 + rlen)) !== chunk.readUInt32BE(at + 4 + rlen)) break;
      offsets.push(pos);
      pos += rlen + RECORD_OVERHEAD;
    }
    return { offsets, end: pos };
  } finally {
    closeSync(fd);
  }
}

/**
 * The payloads (canonical JSON text) of the records in bytes [start, stop) of segment `n`'s entries file,
 * checksums checked: a record changed since it was indexed throws, naming it.
 */
export function readSegmentRecords(dir: string, n: number, start: number, stop: number, firstIndex: number): string[] {
  const buf = Buffer.allocUnsafe(stop - start);
  const fd = openSync(join(dir, segmentLogName(n)), 'r');
  let got: number;
  try {
    got = readAt(fd, buf, buf.length, start);
  } finally {
    closeSync(fd);
  }
  const out: string[] = [];
  for (let off = 0; off + 4 <= got;) {
    const len = buf.readUInt32BE(off);
    if (len > MAX_RECORD_BYTES || off + len + RECORD_OVERHEAD > got || crc32(buf.subarray(off, off + 4 + len)) !== buf.readUInt32BE(off + 4 + len)) {
      throw new MeshmedicError('MM_ERR_AUDIT_TAMPERED', `segment ${n} entry ${firstIndex + out.length}: the record is damaged (run \`meshmedic audit verify\`)`);
    }
    out.push(buf.toString('utf8', off + 4, off + 4 + len));
    off += len + RECORD_OVERHEAD;
  }
  return out;
}
