// The audit file formats: canonical JSON entries and length-prefixed, checksummed records
// ([u32 length][payload][u32 CRC-32 of length ‖ payload], big-endian), and a scanner that finds the valid prefix.
import { crc32 } from 'node:zlib';

/** First bytes of every segment and checkpoint file: format name and version. */
export const SEGMENT_MAGIC = Buffer.from('MMAUDIT1', 'ascii');
export const CHECKPOINTS_MAGIC = Buffer.from('MMCKPT01', 'ascii');
export const RECORD_OVERHEAD = 8;
export const MAX_RECORD_BYTES = 1 << 20;

/** JSON with object keys sorted at every depth and no whitespace: one byte string per value. */
export function canonicalJson(v: unknown): string {
  // Values already in canonical order (as the audit log builds its entries) take the native serializer.
  if (alreadyCanonical(v, 0)) return JSON.stringify(v);
  const sorted = sortDeep(v, 0);
  return sorted === INTEGER_KEYS ? slowCanonicalJson(v) : JSON.stringify(sorted);
}

const INTEGER_KEYS = Symbol('integer-like keys');

/** A copy with keys sorted at every depth (the value itself where already canonical); INTEGER_KEYS when
 * an object has integer-like keys, which JSON.stringify would always put first. */
function sortDeep(v: unknown, depth: number): unknown {
  if (alreadyCanonical(v, depth)) return v;
  if (typeof v === 'number') throw new RangeError(`canonical JSON has no ${v}`);
  if (typeof v !== 'object' || v === null || depth > 64) return slowCanonicalJson(v); // throws for what JSON cannot hold
  if (Array.isArray(v)) {
    const out: unknown[] = [];
    for (const x of v) {
      const s = sortDeep(x ?? null, depth + 1);
      if (s === INTEGER_KEYS) return INTEGER_KEYS;
      out.push(s);
    }
    return out;
  }
  const o = v as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(o).sort()) {
    if (k.length > 0 && k.length < 11 && /^\d/.test(k)) return INTEGER_KEYS;
    if (o[k] === undefined) continue;
    const s = sortDeep(o[k], depth + 1);
    if (s === INTEGER_KEYS) return INTEGER_KEYS;
    out[k] = s;
  }
  return out;
}

/** Keys in sorted order at every depth, no undefined, no non-finite number, nothing JSON.stringify would alter. */
function alreadyCanonical(v: unknown, depth: number): boolean {
  if (depth > 32) return false;
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return true;
  if (typeof v === 'number') return Number.isFinite(v);
  if (typeof v !== 'object') return false;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (!alreadyCanonical(v[i], depth + 1)) return false;
    return true;
  }
  if (Object.getPrototypeOf(v) !== Object.prototype && Object.getPrototypeOf(v) !== null) return false;
  let prev: string | undefined;
  for (const k in v as Record<string, unknown>) {
    if (prev !== undefined && !(prev < k)) return false;
    // Integer-like keys are enumerated first whatever the insertion order: let the slow path sort them.
    if (k.length > 0 && k.length < 11 && /^\d/.test(k)) return false;
    const x = (v as Record<string, unknown>)[k];
    if (x === undefined || !alreadyCanonical(x, depth + 1)) return false;
    prev = k;
  }
  return true;
}

function slowCanonicalJson(v: unknown): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'boolean':
      return v ? 'true' : 'false';
    case 'string':
      return JSON.stringify(v);
    case 'number':
      if (!Number.isFinite(v)) throw new RangeError(`canonical JSON has no ${v}`);
      return JSON.stringify(v);
    case 'object': {
      if (Array.isArray(v)) {
        let out = '[';
        for (let i = 0; i < v.length; i++) out += (i ? ',' : '') + slowCanonicalJson(v[i] ?? null);
        return out + ']';
      }
      const o = v as Record<string, unknown>;
      const keys = Object.keys(o).sort();
      let out = '{';
      let first = true;
      for (const k of keys) {
        const x = o[k];
        if (x === undefined) continue;
        out += (first ? '' : ',') + JSON.stringify(k) + ':' + slowCanonicalJson(x);
        first = false;
      }
      return out + '}';
    }
    default:
      throw new RangeError(`canonical JSON has no ${typeof v}`);
  }
}

export function frameRecord(payload: Uint8Array): Buffer {
  if (payload.length > MAX_RECORD_BYTES) throw new RangeError(`record of ${payload.length} bytes exceeds ${MAX_RECORD_BYTES}`);
  const out = Buffer.allocUnsafe(payload.length + RECORD_OVERHEAD);
  out.writeUInt32BE(payload.length, 0);
  out.set(payload, 4);
  out.writeUInt32BE(crc32(out.subarray(0, 4 + payload.length)), 4 + payload.length);
  return out;
}

export interface ScannedRecord {
  /** Byte offset of the record's length field. */
  readonly offset: number;
  readonly payload: Buffer;
}

export interface ScanResult {
  readonly records: ScannedRecord[];
  /** Bytes of the valid prefix (header included). */
  readonly validBytes: number;
  /** Why scanning stopped before the end of the file, if it did. */
  readonly stop?: { readonly offset: number; readonly index: number; readonly reason: 'truncated' | 'checksum' | 'length' | 'magic' };
}

/** Read records from the start of a file until the end or the first bad one. */
export function scanRecords(buf: Buffer, magic: Buffer): ScanResult {
  const records: ScannedRecord[] = [];
  if (buf.length < magic.length || !buf.subarray(0, magic.length).equals(magic)) {
    return { records, validBytes: 0, stop: buf.length === 0 ? undefined : { offset: 0, index: 0, reason: buf.length < magic.length && magic.subarray(0, buf.length).equals(buf) ? 'truncated' : 'magic' } };
  }
  let off = magic.length;
  while (off < buf.length) {
    const index = records.length;
    if (off + 4 > buf.length) return { records, validBytes: off, stop: { offset: off, index, reason: 'truncated' } };
    const len = buf.readUInt32BE(off);
    if (len > MAX_RECORD_BYTES) return { records, validBytes: off, stop: { offset: off, index, reason: 'length' } };
    if (off + len + RECORD_OVERHEAD > buf.length) return { records, validBytes: off, stop: { offset: off, index, reason: 'truncated' } };
    const sum = buf.readUInt32BE(off + 4 + len);
    if (crc32(buf.subarray(off, off + 4 + len)) !== sum) return { records, validBytes: off, stop: { offset: off, index, reason: 'checksum' } };
    records.push({ offset: off, payload: buf.subarray(off + 4, off + 4 + len) });
    off += len + RECORD_OVERHEAD;
  }
  return { records, validBytes: off };
}
