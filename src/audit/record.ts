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
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new RangeError(`canonical JSON has no ${v}`);
    return JSON.stringify(v);
  }
  if (Array.isArray(v)) return `[${v.map((x) => canonicalJson(x ?? null)).join(',')}]`;
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  throw new RangeError(`canonical JSON has no ${typeof v}`);
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
