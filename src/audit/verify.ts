// Offline verification of an audit directory (recompute every leaf, every tree, check every checkpoint),
// and inclusion/consistency proofs built from it or checked against a trusted key.
import { MerkleTree, hashLeaf, verifyConsistency, verifyInclusion } from './merkle.js';
import { canonicalJson } from './record.js';
import { listSegments, metaKeys, readMeta, readSegment, segmentOrigin, type SegmentContents } from './files.js';
import { openCheckpoint, type NoteKey, type VerifiedCheckpoint } from './note.js';

export interface SegmentReport {
  readonly segment: number;
  readonly origin: string;
  readonly entries: number;
  readonly checkpoints: number;
  /** Largest signed size, 0 when unsigned. */
  readonly signed: number;
}

export interface VerifyReport {
  readonly ok: boolean;
  /** Every problem found, most important (first in the log) first. */
  readonly problems: string[];
  /** Things that are fine but worth saying (an unsigned tail, a torn record after a crash). */
  readonly notes: string[];
  readonly segments: SegmentReport[];
}

/** Verify everything in `dir`. `trusted` pins the log key (otherwise log.json's keys are used). */
export function verifyDir(dir: string, trusted?: NoteKey): VerifyReport {
  const problems: string[] = [];
  const notes: string[] = [];
  const segments: SegmentReport[] = [];
  let meta;
  try {
    meta = readMeta(dir);
  } catch (err) {
    return { ok: false, problems: [`cannot read the log description: ${(err as Error).message}`], notes, segments };
  }
  let keys: NoteKey[];
  try {
    keys = trusted ? (trusted.name === meta.origin ? [trusted] : []) : metaKeys(meta);
  } catch (err) {
    return { ok: false, problems: [`log.json holds a bad verifier key: ${(err as Error).message}`], notes, segments };
  }
  if (trusted && keys.length === 0) return { ok: false, problems: [`the trusted key is named "${trusted.name}" but the log's origin is "${meta.origin}"`], notes, segments };
  const nums = listSegments(dir);
  if (nums.length === 0) notes.push('no segment yet');
  let prevFinal: { n: number; checkpoint: VerifiedCheckpoint | undefined; size: number } | undefined;
  for (let i = 0; i < nums.length; i++) {
    const n = nums[i]!;
    if (i > 0 && n !== nums[i - 1]! + 1) problems.push(`segment ${nums[i - 1]! + 1} is missing between segments ${nums[i - 1]} and ${n} (deleted out of order)`);
    const c = readSegment(dir, n, keys, meta.origin);
    const r = verifySegment(c, meta.origin, problems, notes);
    segments.push(r.report);
    if (prevFinal && prevFinal.n === n - 1) checkChain(c, n, prevFinal, problems);
    prevFinal = { n, checkpoint: c.checkpoints[c.checkpoints.length - 1], size: r.report.entries };
  }
  return { ok: problems.length === 0, problems, notes, segments };
}

function checkChain(c: SegmentContents, n: number, prev: { checkpoint: VerifiedCheckpoint | undefined; size: number }, problems: string[]): void {
  const first = c.entries.records[0];
  if (!first) return;
  let e: { kind?: unknown; previous?: { size?: unknown; root?: unknown } };
  try {
    e = JSON.parse(first.payload.toString('utf8'));
  } catch {
    return; // reported by verifySegment
  }
  if (e.kind !== 'segment' || !e.previous) {
    problems.push(`segment ${n} entry 0: does not link to segment ${n - 1}`);
    return;
  }
  const fin = prev.checkpoint;
  if (!fin) return;
  if (e.previous.size !== fin.size || e.previous.root !== fin.root.toString('base64')) {
    problems.push(`segment ${n} entry 0: links to size ${String(e.previous.size)} of segment ${n - 1}, whose final signed checkpoint has size ${fin.size} and another root`);
  }
}

function verifySegment(c: SegmentContents, origin: string, problems: string[], notes: string[]): { report: SegmentReport } {
  const n = c.n;
  const where = (i: number) => `segment ${n} entry ${i}`;
  const tree = new MerkleTree();
  let firstBad: number | undefined;
  c.entries.records.forEach((rec, i) => {
    tree.append(rec.payload);
    if (firstBad !== undefined) return;
    const text = rec.payload.toString('utf8');
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      problems.push(`${where(i)}: not JSON (record altered)`);
      firstBad = i;
      return;
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v) || canonicalJson(v) !== text) {
      problems.push(`${where(i)}: not canonical JSON (record altered)`);
      firstBad = i;
      return;
    }
    const idx = (v as { i?: unknown }).i;
    if (idx !== i) {
      problems.push(`${where(i)}: holds index ${String(idx)} (records reordered, inserted or removed)`);
      firstBad = i;
    }
  });
  const count = c.entries.records.length;
  const stop = c.entries.stop;
  const maxSigned = c.checkpoints.reduce((m, k) => Math.max(m, k.size), 0);
  if (stop) {
    if (stop.reason === 'checksum' || stop.reason === 'length' || stop.reason === 'magic') {
      problems.push(stop.reason === 'magic' ? `segment ${n}: the file header is not a meshmedic audit segment` : `${where(stop.index)}: ${stop.reason === 'checksum' ? 'checksum mismatch' : 'impossible length'} at byte ${stop.offset} (record altered)`);
    } else if (stop.index >= maxSigned) {
      notes.push(`${where(stop.index)}: incomplete record at byte ${stop.offset}, after the last signed checkpoint (a crash during a write; cut off when the log reopens)`);
    }
  }
  // Checkpoints: each must cover entries that are present and match them exactly.
  for (const p of c.checkpointProblems) problems.push(`segment ${n} ${p.message} (forged or altered checkpoint)`);
  if (c.checkpointTail && c.checkpointTail.reason !== 'truncated') problems.push(`segment ${n}: checkpoint record #${c.checkpointTail.index} is damaged (${c.checkpointTail.reason})`);
  let lastGood = 0;
  let prev: VerifiedCheckpoint | undefined;
  c.checkpoints.forEach((ck, pos) => {
    const label = `checkpoint of size ${ck.size} (segment ${n}, #${pos})`;
    if (prev && ck.size < prev.size) problems.push(`${label} is smaller than the one before it (size ${prev.size}): the log was rolled back`);
    if (ck.size > count) {
      const damaged = stop && stop.reason !== 'truncated';
      problems.push(damaged ? `${label} covers the damaged ${where(count)}` : `${label}: only ${count} entries are present (log truncated or rewritten below a signed size)`);
      return;
    }
    if (!tree.root(ck.size).equals(ck.root)) {
      problems.push(firstBad !== undefined && firstBad < ck.size
        ? `${label} does not match the entries (first bad entry ${firstBad})`
        : `${label} does not match the entries: an entry in ${lastGood}..${ck.size - 1} was altered, reordered or replaced (log rewritten below a signed size)`);
      return;
    }
    lastGood = Math.max(lastGood, ck.size);
    prev = ck;
  });
  if (count > 0 && c.checkpoints.length === 0) notes.push(`segment ${n}: ${count} entries, none signed yet`);
  else if (count > maxSigned && !problems.length) notes.push(`segment ${n}: entries ${maxSigned}..${count - 1} are not signed yet`);
  return { report: { segment: n, origin: segmentOrigin(origin, n), entries: count, checkpoints: c.checkpoints.length, signed: maxSigned } };
}

/** A proof as printed by `audit prove` and read by `audit verify-proof` (RFC 9162 field names). */
export interface InclusionProofDoc {
  readonly type: 'inclusion';
  readonly checkpoint: string;
  readonly leaf_index: number;
  readonly tree_size: number;
  /** The entry itself (canonical JSON); its leaf hash is recomputed by the verifier. */
  readonly entry: string;
  readonly inclusion_path: string[];
}

export interface ConsistencyProofDoc {
  readonly type: 'consistency';
  readonly checkpoint: string;
  readonly tree_size_1: number;
  /** Root of the smaller tree (base64); the verifier compares it with a checkpoint it holds. */
  readonly root_1: string;
  /** The signed checkpoint of the smaller size, when one was published. */
  readonly checkpoint_1?: string;
  readonly tree_size_2: number;
  readonly consistency_path: string[];
}

export type ProofDoc = InclusionProofDoc | ConsistencyProofDoc;

/** Load a segment's tree and its latest checkpoint (for `prove`). */
export function loadSegmentTree(dir: string, segment?: number): { n: number; tree: MerkleTree; entries: Buffer[]; checkpoints: VerifiedCheckpoint[] } {
  const meta = readMeta(dir);
  const nums = listSegments(dir);
  const n = segment ?? nums[nums.length - 1];
  if (n === undefined || !nums.includes(n)) throw new RangeError(segment === undefined ? 'the log has no segment' : `no segment ${segment}`);
  const c = readSegment(dir, n, metaKeys(meta), meta.origin);
  const tree = new MerkleTree();
  const entries = c.entries.records.map((r) => r.payload);
  for (const e of entries) tree.append(e);
  return { n, tree, entries, checkpoints: c.checkpoints };
}

export function inclusionProofDoc(tree: MerkleTree, entries: readonly Buffer[], checkpoint: VerifiedCheckpoint, index: number): InclusionProofDoc {
  if (!Number.isInteger(index) || index < 0 || index >= checkpoint.size) throw new RangeError(`index ${index} is not covered by the latest checkpoint (size ${checkpoint.size})`);
  return {
    type: 'inclusion', checkpoint: checkpoint.text, leaf_index: index, tree_size: checkpoint.size,
    entry: entries[index]!.toString('utf8'),
    inclusion_path: tree.inclusionProof(index, checkpoint.size).map((h) => h.toString('base64')),
  };
}

export function consistencyProofDoc(tree: MerkleTree, checkpoints: readonly VerifiedCheckpoint[], latest: VerifiedCheckpoint, from: number): ConsistencyProofDoc {
  if (!Number.isInteger(from) || from < 0 || from > latest.size) throw new RangeError(`size ${from} is not between 0 and the latest checkpoint's ${latest.size}`);
  const signedFirst = checkpoints.find((c) => c.size === from);
  return {
    type: 'consistency', checkpoint: latest.text, tree_size_1: from, root_1: tree.root(from).toString('base64'),
    ...(signedFirst ? { checkpoint_1: signedFirst.text } : {}),
    tree_size_2: latest.size,
    consistency_path: tree.consistencyProof(from, latest.size).map((h) => h.toString('base64')),
  };
}

/** Check a proof document against the log's trusted key. Returns undefined when valid, else the problem. */
export function checkProofDoc(doc: unknown, key: NoteKey): string | undefined {
  if (typeof doc !== 'object' || doc === null) return 'the proof is not a JSON object';
  const d = doc as { [K in keyof InclusionProofDoc | keyof ConsistencyProofDoc]?: unknown };
  if (typeof d.checkpoint !== 'string') return 'the proof has no "checkpoint" text';
  let cp: VerifiedCheckpoint;
  try {
    cp = openCheckpoint(d.checkpoint, key);
  } catch (err) {
    return `checkpoint: ${(err as Error).message}`;
  }
  const path = (a: unknown): Buffer[] | string => {
    if (!Array.isArray(a) || a.length > 64) return 'the path is not an array of at most 64 hashes';
    const out = a.map((x) => (typeof x === 'string' ? Buffer.from(x, 'base64') : Buffer.alloc(0)));
    return out.every((b) => b.length === 32) ? out : 'a path element is not a base64 SHA-256 hash';
  };
  if (d.type === 'inclusion') {
    if (d.tree_size !== cp.size) return `tree_size ${String(d.tree_size)} differs from the checkpoint's size ${cp.size}`;
    if (typeof d.entry !== 'string' || typeof d.leaf_index !== 'number') return 'an inclusion proof needs "entry" and "leaf_index"';
    const p = path(d.inclusion_path);
    if (typeof p === 'string') return p;
    return verifyInclusion(hashLeaf(Buffer.from(d.entry, 'utf8')), d.leaf_index, cp.size, p, cp.root) ? undefined : `entry ${d.leaf_index} is not included in the tree of size ${cp.size} with that root`;
  }
  if (d.type === 'consistency') {
    if (d.tree_size_2 !== cp.size) return `tree_size_2 ${String(d.tree_size_2)} differs from the checkpoint's size ${cp.size}`;
    if (typeof d.tree_size_1 !== 'number' || typeof d.root_1 !== 'string') return 'a consistency proof needs "tree_size_1" and "root_1"';
    let root1: Buffer = Buffer.from(d.root_1, 'base64');
    if (d.checkpoint_1 !== undefined) {
      if (typeof d.checkpoint_1 !== 'string') return '"checkpoint_1" is not checkpoint text';
      try {
        const c1 = openCheckpoint(d.checkpoint_1, key);
        if (c1.size !== d.tree_size_1) return `checkpoint_1 has size ${c1.size}, not ${d.tree_size_1}`;
        root1 = c1.root;
      } catch (err) {
        return `checkpoint_1: ${(err as Error).message}`;
      }
    }
    const p = path(d.consistency_path);
    if (typeof p === 'string') return p;
    return verifyConsistency(d.tree_size_1, cp.size, root1, cp.root, p) ? undefined : `the tree of size ${d.tree_size_1} is not a prefix of the signed tree of size ${cp.size}`;
  }
  return 'the proof "type" is neither "inclusion" nor "consistency"';
}
