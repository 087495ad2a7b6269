// The append-only audit log writer: entries go into the Merkle tree at once and to disk in batches, fsynced
// every fsyncIntervalMs; a checkpoint over the durable prefix is signed and stored at most every
// checkpointIntervalMs while there are new entries. Segments rotate by entry count or age; an I/O failure puts
// the log in an outage (entries queue, bounded) and it resumes when the directory is writable again.
import { mkdirSync, readFileSync, unlinkSync, writeFileSync, existsSync, renameSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import type { Clock, TimerHandle } from '../core/clock.js';
import { MerkleTree } from './merkle.js';
import { noteKeyFromPrivate, signCheckpoint, verifierKey, type NoteKey } from './note.js';
import { CHECKPOINTS_MAGIC, SEGMENT_MAGIC, canonicalJson, frameRecord } from './record.js';
import { META_FILE, META_FORMAT, indexSegment, listSegments, metaKeys, readMeta, readSegment, readSegmentRecords, segmentCheckpointName, segmentLogName, segmentOrigin, type LogMeta } from './files.js';

export interface RetentionOptions {
  /** Start a new segment after this many entries. */
  readonly maxSegmentEntries: number;
  /** Start a new segment once the current one is this old (ms). */
  readonly maxSegmentAgeMs: number;
  /** Keep at most this many segments (oldest deleted first; each keeps its final checkpoint until then). */
  readonly maxSegments: number;
}

export interface AuditLogOptions {
  readonly dir: string;
  /** Origin prefix for a new log (an existing log keeps the one in log.json). No whitespace, no '+'. */
  readonly origin: string;
  /** The node's Ed25519 private key. */
  readonly privateKey: KeyObject;
  readonly clock: Clock;
  readonly fsyncIntervalMs: number;
  readonly checkpointIntervalMs: number;
  readonly retention: RetentionOptions;
  /** Entries held in memory while the directory is unwritable; beyond this they are counted and dropped. */
  readonly maxQueued?: number;
  /** How often to try again during an outage (ms). */
  readonly retryMs?: number;
  /** A checkpoint was signed and stored (text is the signed note). */
  readonly onCheckpoint?: (text: string, size: number, origin: string) => void;
  /** The log went down (err) or came back (undefined). */
  readonly onOutage?: (err: Error | undefined) => void;
  /** Something on disk failed verification at open; logging continues in a new segment. */
  readonly onCorruption?: (message: string) => void;
  /** Test hook: called before every file write; throwing simulates an I/O error (ENOSPC, EIO). */
  readonly beforeWrite?: (file: string) => void;
}

interface Pending {
  /** Segment the entry was numbered in, and its index there (-1 while queued during an outage). */
  seg: number;
  index: number;
  readonly entry: Readonly<Record<string, unknown>>;
  framed: Buffer | undefined;
}

interface Segment {
  readonly n: number;
  readonly origin: string;
  readonly tree: MerkleTree;
  readonly created: number;
  pending: Pending[];
  fd: FileHandle | undefined;
  ckptFd: FileHandle | undefined;
  /** Bytes written to the entries file so far (the next write position). */
  pos: number;
  ckptPos: number;
  /** Entries known durable (written and fsynced). */
  durable: number;
  /** Size of the last signed checkpoint. */
  signed: number;
  lastCheckpointAt: number;
  closing: boolean;
  /** The file does not exist yet (created at the first flush). */
  fresh: boolean;
  /** File offset of each entry's record, and of the next one. */
  readonly offsets: number[];
  nextOffset: number;
}

export interface AuditLogStatus {
  readonly state: 'ok' | 'outage' | 'closed';
  readonly segment: number;
  readonly size: number;
  readonly durable: number;
  readonly signed: number;
  readonly queued: number;
  readonly dropped: number;
  readonly appended: number;
  readonly outages: number;
  readonly lastError: string | undefined;
}

const DEFAULT_MAX_QUEUED = 100_000;

/** A page of entries of one segment (GET /v1/audit/entries). */
export interface EntryPage {
  readonly segment: number;
  readonly origin: string;
  readonly from: number;
  /** Entries readable in the segment now (durable ones of a live segment). */
  readonly size: number;
  /** The segment takes no more entries (rotated, or closing). */
  readonly complete: boolean;
  /** Canonical JSON text of each entry. */
  readonly entries: readonly string[];
  readonly next: { readonly segment: number; readonly from: number };
}

/** A request for entries that names a segment not held or an index beyond it. */
export class AuditRangeError extends RangeError {
  constructor(readonly param: 'segment' | 'from', readonly status: 400 | 404, message: string) {
    super(`${param}: ${message}`);
  }
}

export class AuditLog {
  private meta!: LogMeta;
  private key!: NoteKey;
  private segs: Segment[] = [];
  private state: 'ok' | 'outage' | 'closed' = 'ok';
  /** Entries waiting for the directory to come back. */
  private queue: Pending[] = [];
  private dropped = 0;
  private droppedSinceOutage = 0;
  private outageSince = 0;
  private appended = 0;
  private outages = 0;
  private lastError: Error | undefined;
  private flushing: Promise<void> | undefined;
  private timer: TimerHandle | undefined;
  private retryTimer: TimerHandle | undefined;
  private latest: { text: string; size: number; origin: string } | undefined;
  /** Recent checkpoint texts by "segment/size" (proofs at an earlier signed size). */
  private readonly recent = new Map<string, string>();

  private constructor(private readonly o: AuditLogOptions) {}

  /**
   * Open (or create) the log in `o.dir`. Never throws for I/O: an unusable directory starts the log in an
   * outage that retries. Throws only for programming errors (bad options).
   */
  static open(o: AuditLogOptions): AuditLog {
    const log = new AuditLog(o);
    try {
      log.load();
    } catch (err) {
      log.enterOutage(err as Error);
    }
    log.timer = o.clock.setInterval(() => void log.flush(), Math.max(1, o.fsyncIntervalMs));
    return log;
  }

  get origin(): string {
    return this.meta?.origin ?? this.o.origin;
  }

  /** The verifier key (signed-note vkey text) of this log's signing key. */
  get verifierKey(): string {
    return verifierKey(this.signingKey(this.origin));
  }

  /** The latest signed checkpoint note, if any. */
  checkpoint(): { text: string; size: number; origin: string } | undefined {
    return this.latest;
  }

  /** A recent signed checkpoint of the current segment at exactly `size`, if still held. */
  checkpointOfSize(size: number): string | undefined {
    const s = this.segs[this.segs.length - 1];
    return s && this.recent.get(`${s.n}/${size}`);
  }

  /** The current segment's tree (proofs, entries served by the admin API). */
  current(): { n: number; origin: string; tree: MerkleTree; signed: number } | undefined {
    const s = this.segs[this.segs.length - 1];
    return s && { n: s.n, origin: s.origin, tree: s.tree, signed: s.signed };
  }

  /** Segment numbers held (on disk, or begun and not yet written), ascending. */
  segmentNumbers(): number[] {
    let onDisk: number[] = [];
    try {
      onDisk = listSegments(this.o.dir);
    } catch {
      /* an unreadable directory: the outage is reported elsewhere; the live segments are still known */
    }
    return [...new Set([...onDisk, ...this.segs.map((s) => s.n)])].sort((a, b) => a - b);
  }

  /**
   * Entries [from, from + limit) of segment `segment` (default: the current one), as their canonical JSON text:
   * durable entries of a live segment, the valid records of a rotated one. A page stays within one segment;
   * `next` is where the following entries are (the next segment's start once this one is complete and a later
   * one exists, else this segment's end, to poll). Throws AuditRangeError naming a bad parameter.
   */
  readPage(segment: number | undefined, from: number, limit: number): EntryPage {
    const held = this.segmentNumbers();
    const n = segment ?? held[held.length - 1];
    if (n === undefined || !held.includes(n)) {
      throw new AuditRangeError('segment', 404, held.length ? `segment ${n} is not held: segments ${held[0]} to ${held[held.length - 1]} are${held.length < held[held.length - 1]! - held[0]! + 1 ? ` (some numbers missing: ${held.join(', ')})` : ''}` : 'no segment is held yet');
    }
    const live = this.segs.find((s) => s.n === n);
    let offsets: readonly number[];
    let size: number;
    let total: number;
    let endOffset: number;
    if (live) {
      offsets = live.offsets;
      size = live.durable;
      total = live.tree.size;
      endOffset = live.nextOffset;
    } else {
      let idx = this.closedIndex.get(n);
      if (!idx) {
        try {
          idx = indexSegment(this.o.dir, n);
        } catch (err) {
          throw new AuditRangeError('segment', 404, `segment ${n} cannot be read: ${(err as Error).message}`);
        }
        this.closedIndex.set(n, idx);
        if (this.closedIndex.size > 2) this.closedIndex.delete(this.closedIndex.keys().next().value!);
      }
      offsets = idx.offsets;
      size = total = idx.offsets.length;
      endOffset = idx.end;
    }
    if (from > size) {
      throw new AuditRangeError('from', 400, `from must be at most ${size}: segment ${n} holds ${size}${live ? ' durable' : ''} entries${size ? ` (indexes 0 to ${size - 1})` : ''}, got ${from}`);
    }
    const stop = Math.min(size, from + limit);
    const entries = stop > from ? readSegmentRecords(this.o.dir, n, offsets[from]!, stop < offsets.length ? offsets[stop]! : endOffset, from) : [];
    const later = held.find((h) => h > n);
    const next = stop < total || later === undefined ? { segment: n, from: stop } : { segment: later, from: 0 };
    return { segment: n, origin: segmentOrigin(this.origin, n), from, size, complete: !live || live.closing, entries, next };
  }

  /** Offsets of rotated segments recently read (their files no longer change). */
  private readonly closedIndex = new Map<number, { offsets: number[]; end: number }>();

  status(): AuditLogStatus {
    const s = this.segs[this.segs.length - 1];
    return {
      state: this.state,
      segment: s?.n ?? 0,
      size: s?.tree.size ?? 0,
      durable: s?.durable ?? 0,
      signed: s?.signed ?? 0,
      queued: this.queue.length + this.segs.reduce((a, x) => a + x.pending.length, 0),
      dropped: this.dropped,
      appended: this.appended,
      outages: this.outages,
      lastError: this.lastError?.message,
    };
  }

  /**
   * Append an entry (a JSON object; `i`, the index in its segment, is added). Returns the index, or -1 when
   * the entry is queued during an outage (or dropped beyond the queue bound).
   */
  append(entry: Readonly<Record<string, unknown>>): number {
    if (this.state === 'closed') throw new Error('the audit log is closed');
    this.appended++;
    if (this.state === 'outage') {
      if (this.queue.length >= (this.o.maxQueued ?? DEFAULT_MAX_QUEUED)) {
        this.dropped++;
        this.droppedSinceOutage++;
      } else this.queue.push({ seg: -1, index: -1, entry, framed: undefined });
      return -1;
    }
    const seg = this.rotateIfFull();
    return this.appendTo(seg, entry);
  }

  private appendTo(seg: Segment, entry: Readonly<Record<string, unknown>>): number {
    const index = seg.tree.size;
    const payload = Buffer.from(canonicalJson(withIndex(entry, index)), 'utf8');
    seg.tree.append(payload);
    const framed = frameRecord(payload);
    seg.pending.push({ seg: seg.n, index, entry, framed });
    seg.offsets.push(seg.nextOffset);
    seg.nextOffset += framed.length;
    return index;
  }

  /** Write and fsync what is pending, sign a checkpoint when due, rotate and apply retention. */
  flush(force = false): Promise<void> {
    if (this.flushing) return force ? this.flushing.then(() => this.flush(true)) : this.flushing;
    const p = this.doFlush(force).finally(() => {
      this.flushing = undefined;
    });
    this.flushing = p;
    return p;
  }

  private async doFlush(force: boolean): Promise<void> {
    if (this.state !== 'ok') return;
    const now = this.o.clock.now();
    const last = this.segs[this.segs.length - 1];
    if (last && !last.closing && last.tree.size > 1 && now - last.created >= this.o.retention.maxSegmentAgeMs) this.rotate();
    try {
      for (const seg of [...this.segs]) {
        await this.writePending(seg);
        const due = force || seg.closing || now - seg.lastCheckpointAt >= this.o.checkpointIntervalMs;
        if (seg.durable > seg.signed && due) await this.writeCheckpoint(seg, now);
        if (seg.closing && seg.pending.length === 0 && seg.signed === seg.tree.size) {
          await this.closeSegment(seg);
          this.segs = this.segs.filter((s) => s !== seg);
          this.applyRetention();
        }
      }
    } catch (err) {
      this.enterOutage(err as Error);
    }
  }

  private async writePending(seg: Segment): Promise<void> {
    if (seg.pending.length === 0) return;
    if (!seg.fd) await this.createSegmentFiles(seg);
    const batch = seg.pending;
    const cut = batch.length;
    const bufs: Buffer[] = [];
    for (let i = 0; i < cut; i++) bufs.push(batch[i]!.framed!);
    const data = Buffer.concat(bufs);
    this.o.beforeWrite?.(segmentLogName(seg.n));
    await writeAll(seg.fd!, data, seg.pos);
    seg.pos += data.length;
    await seg.fd!.datasync();
    seg.durable = batch[cut - 1]!.index + 1;
    // Entries appended while we waited stay pending for the next round.
    seg.pending = seg.pending.slice(cut);
  }

  private async writeCheckpoint(seg: Segment, now: number): Promise<void> {
    const size = seg.durable;
    const text = signCheckpoint({ origin: seg.origin, size, root: seg.tree.root(size) }, this.signingKey(this.meta.origin));
    if (!seg.ckptFd) await this.createSegmentFiles(seg);
    const rec = frameRecord(Buffer.from(text, 'utf8'));
    this.o.beforeWrite?.(segmentCheckpointName(seg.n));
    await writeAll(seg.ckptFd!, rec, seg.ckptPos);
    seg.ckptPos += rec.length;
    await seg.ckptFd!.datasync();
    seg.signed = size;
    seg.lastCheckpointAt = now;
    this.latest = { text, size, origin: seg.origin };
    this.recent.set(`${seg.n}/${size}`, text);
    if (this.recent.size > 256) this.recent.delete(this.recent.keys().next().value!);
    this.o.onCheckpoint?.(text, size, seg.origin);
  }

  /** Stop the timers, write and sign everything pending, close the files. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.timer?.cancel();
    this.retryTimer?.cancel();
    if (this.state === 'ok') await this.flush(true);
    else await this.flushing;
    this.state = 'closed';
    for (const s of this.segs) await this.closeSegment(s);
  }

  // ---- opening, rotation, retention ----

  private signingKey(name: string): NoteKey {
    if (this.key?.name !== name) this.key = noteKeyFromPrivate(name, this.o.privateKey);
    return this.key;
  }

  private load(): void {
    const dir = this.o.dir;
    mkdirSync(dir, { recursive: true });
    const metaPath = join(dir, META_FILE);
    if (existsSync(metaPath)) this.meta = readMeta(dir);
    else this.meta = { format: META_FORMAT, origin: this.o.origin, keys: [] };
    const vkey = verifierKey(this.signingKey(this.meta.origin));
    if (!this.meta.keys.includes(vkey)) {
      this.meta = { ...this.meta, keys: [...this.meta.keys, vkey] };
      this.o.beforeWrite?.(META_FILE);
      writeFileSync(`${metaPath}.tmp`, `${JSON.stringify(this.meta, null, 2)}\n`);
      renameSync(`${metaPath}.tmp`, metaPath);
    }
    const segments = listSegments(dir);
    const lastN = segments[segments.length - 1];
    if (lastN === undefined) {
      this.segs = [this.newSegment(1, undefined)];
      return;
    }
    const problem = this.reopenSegment(lastN);
    if (problem !== undefined) {
      // Keep the damaged segment for forensics; log on in a fresh one that records why.
      this.o.onCorruption?.(problem);
      const seg = this.newSegment(lastN + 1, undefined);
      this.appendTo(seg, { kind: 'audit', event: 'previous_segment_failed_verification', at: this.o.clock.now(), segment: lastN, problem });
      this.segs = [seg];
    }
  }

  /** Reopen segment `n` for appending; returns a problem description when it cannot be trusted. */
  private reopenSegment(n: number): string | undefined {
    const c = readSegment(this.o.dir, n, metaKeys(this.meta), this.meta.origin);
    const tree = new MerkleTree();
    for (const r of c.entries.records) tree.append(r.payload);
    let signed = 0;
    for (const ck of c.checkpoints) {
      if (ck.size > tree.size) return `segment ${n}: checkpoint of size ${ck.size} is signed but only ${tree.size} entries are readable`;
      if (!tree.root(ck.size).equals(ck.root)) return `segment ${n}: entries do not match the signed checkpoint of size ${ck.size}`;
      signed = Math.max(signed, ck.size);
    }
    if (c.checkpointProblems.length) return `segment ${n}: ${c.checkpointProblems[0]!.message}`;
    let created = this.o.clock.now();
    const first = c.entries.records[0];
    if (first) {
      try {
        const e = JSON.parse(first.payload.toString('utf8')) as { at?: unknown };
        if (typeof e.at === 'number') created = e.at;
      } catch {
        /* a segment's first entry is ours; unparsable means we just use now */
      }
    }
    const seg: Segment = {
      n, origin: segmentOrigin(this.meta.origin, n), tree, created, pending: [], fd: undefined, ckptFd: undefined,
      pos: c.entries.validBytes, ckptPos: 0, durable: tree.size, signed, lastCheckpointAt: -Infinity, closing: false, fresh: true,
      offsets: c.entries.records.map((r) => r.offset), nextOffset: Math.max(c.entries.validBytes, SEGMENT_MAGIC.length),
    };
    // Reopen the files at the end of their valid prefix: a torn tail from a crash is cut off.
    seg.fresh = false;
    const last = c.checkpoints[c.checkpoints.length - 1];
    if (last) this.latest = { text: last.text, size: last.size, origin: last.origin };
    this.segs = [seg];
    this.pendingReopen = { seg, entriesBytes: c.entries.validBytes, ckptBytes: c.checkpointTail ? c.checkpointTail.offset : undefined };
    if (tree.size === 0) {
      // An empty segment (crash right after creation): give it its opening entry again.
      this.appendTo(seg, this.segmentOpening(seg, undefined));
    }
    return undefined;
  }

  private pendingReopen: { seg: Segment; entriesBytes: number; ckptBytes: number | undefined } | undefined;

  private newSegment(n: number, previous: { origin: string; size: number; root: string } | undefined): Segment {
    const seg: Segment = {
      n, origin: segmentOrigin(this.meta.origin, n), tree: new MerkleTree(), created: this.o.clock.now(), pending: [], fd: undefined,
      ckptFd: undefined, pos: 0, ckptPos: 0, durable: 0, signed: 0, lastCheckpointAt: -Infinity, closing: false, fresh: true,
      offsets: [], nextOffset: SEGMENT_MAGIC.length,
    };
    this.appendTo(seg, this.segmentOpening(seg, previous));
    return seg;
  }

  private segmentOpening(seg: Segment, previous: { origin: string; size: number; root: string } | undefined): Record<string, unknown> {
    return { kind: 'segment', at: this.o.clock.now(), segment: seg.n, origin: seg.origin, ...(previous ? { previous } : {}) };
  }

  private async createSegmentFiles(seg: Segment): Promise<void> {
    const reopen = this.pendingReopen?.seg === seg ? this.pendingReopen : undefined;
    const logPath = join(this.o.dir, segmentLogName(seg.n));
    const ckPath = join(this.o.dir, segmentCheckpointName(seg.n));
    this.o.beforeWrite?.(segmentLogName(seg.n));
    if (!seg.fd) {
      if (seg.fresh) {
        seg.fd = await open(logPath, 'wx');
        await writeAll(seg.fd, SEGMENT_MAGIC, 0);
        seg.pos = SEGMENT_MAGIC.length;
      } else {
        seg.fd = await open(logPath, 'r+');
        if (reopen) await seg.fd.truncate(reopen.entriesBytes);
        if (seg.pos < SEGMENT_MAGIC.length) {
          // Crashed before even the header was complete: start the file over.
          await seg.fd.truncate(0);
          await writeAll(seg.fd, SEGMENT_MAGIC, 0);
          seg.pos = SEGMENT_MAGIC.length;
        }
      }
    }
    if (!seg.ckptFd) {
      seg.ckptFd = await open(ckPath, seg.fresh ? 'wx' : existsSync(ckPath) ? 'r+' : 'w');
      const st = await seg.ckptFd.stat();
      if (st.size === 0) {
        await writeAll(seg.ckptFd, CHECKPOINTS_MAGIC, 0);
        seg.ckptPos = CHECKPOINTS_MAGIC.length;
      } else {
        seg.ckptPos = reopen?.ckptBytes ?? st.size;
        if (reopen?.ckptBytes !== undefined) await seg.ckptFd.truncate(reopen.ckptBytes);
        if (seg.ckptPos < CHECKPOINTS_MAGIC.length) {
          await seg.ckptFd.truncate(0);
          await writeAll(seg.ckptFd, CHECKPOINTS_MAGIC, 0);
          seg.ckptPos = CHECKPOINTS_MAGIC.length;
        }
      }
    }
    seg.fresh = false;
    if (reopen) this.pendingReopen = undefined;
  }

  private rotateIfFull(): Segment {
    const last = this.segs[this.segs.length - 1]!;
    if (last.tree.size < this.o.retention.maxSegmentEntries) return last;
    return this.rotate();
  }

  /** Close the current segment (its final checkpoint is signed by the flusher) and start the next. */
  private rotate(): Segment {
    const last = this.segs[this.segs.length - 1]!;
    last.closing = true;
    const next = this.newSegment(last.n + 1, { origin: last.origin, size: last.tree.size, root: last.tree.root().toString('base64') });
    this.segs.push(next);
    return next;
  }

  private applyRetention(): void {
    // Segments not yet on disk (created at their first flush) count too.
    const all = [...new Set([...listSegments(this.o.dir), ...this.segs.map((s) => s.n)])].sort((a, b) => a - b);
    const excess = all.length - this.o.retention.maxSegments;
    for (let i = 0; i < excess; i++) {
      const n = all[i]!;
      if (this.segs.some((s) => s.n === n)) break;
      for (const f of [segmentLogName(n), segmentCheckpointName(n)]) {
        try {
          unlinkSync(join(this.o.dir, f));
        } catch {
          /* already gone */
        }
      }
    }
  }

  private async closeSegment(seg: Segment): Promise<void> {
    const fds = [seg.fd, seg.ckptFd];
    seg.fd = seg.ckptFd = undefined;
    for (const fd of fds) {
      try {
        await fd?.close();
      } catch {
        /* closing a broken file: nothing more to do */
      }
    }
  }

  // ---- outage and recovery ----

  private enterOutage(err: Error): void {
    this.lastError = err;
    if (this.state === 'outage') return;
    this.state = 'outage';
    this.outages++;
    this.outageSince = this.o.clock.now();
    this.droppedSinceOutage = 0;
    // Everything not known durable is kept to be written again once the directory is back.
    for (const s of this.segs) {
      for (const p of s.pending) this.queue.push(p);
      s.pending = [];
      void this.closeSegment(s);
    }
    this.queue.sort((a, b) => a.seg - b.seg || a.index - b.index);
    this.o.onOutage?.(err);
    this.retryTimer = this.o.clock.setInterval(() => this.tryResume(), this.o.retryMs ?? 1000);
  }

  private tryResume(): void {
    if (this.state !== 'outage') return;
    const before = this.segs;
    try {
      this.segs = [];
      this.pendingReopen = undefined;
      this.load();
    } catch (err) {
      this.segs = before;
      this.lastError = err as Error;
      return;
    }
    this.retryTimer?.cancel();
    this.retryTimer = undefined;
    this.state = 'ok';
    const seg = this.segs[this.segs.length - 1]!;
    const queued = this.queue;
    this.queue = [];
    for (const p of queued) {
      // Written before the failure after all (same segment, within what is on disk now): keep, don't repeat.
      if (p.seg === seg.n && p.index >= 0 && p.index < seg.tree.size) continue;
      if (p.entry.kind === 'segment') continue; // the reopened segment has its own opening entry
      this.appendTo(this.rotateIfFull(), p.entry);
    }
    const now = this.o.clock.now();
    this.append({ kind: 'audit', event: 'resumed', at: now, outageMs: now - this.outageSince, dropped: this.droppedSinceOutage, error: this.lastError?.message ?? '' });
    this.o.onOutage?.(undefined);
    void this.flush();
  }
}

/** The entry with its index `i`, keys in sorted order (so canonical serialization is the native one). */
function withIndex(entry: Readonly<Record<string, unknown>>, index: number): Record<string, unknown> {
  const keys = Object.keys(entry);
  keys.push('i');
  keys.sort();
  const out: Record<string, unknown> = {};
  for (const k of keys) out[k] = k === 'i' ? index : entry[k];
  return out;
}

async function writeAll(fd: FileHandle, data: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < data.length) {
    const { bytesWritten } = await fd.write(data, off, data.length - off, position + off);
    if (bytesWritten <= 0) throw new Error('write made no progress');
    off += bytesWritten;
  }
}

/** Read a PEM file's private key, or undefined when absent. */
export function readPem(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
