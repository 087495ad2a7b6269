// RFC 6962 / RFC 9162 Merkle tree hashing: leaf = SHA-256(0x00‖entry), node = SHA-256(0x01‖left‖right).
// An in-memory tree that keeps every perfect subtree's hash, so roots, inclusion and consistency proofs
// at any earlier size cost O(log n) hashes instead of recomputing the tree; and the RFC's verifiers.
import { createHash, hash } from 'node:crypto';

export const HASH_BYTES = 32;
const LEAF_PREFIX = Buffer.from([0x00]);
const NODE_PREFIX = Buffer.from([0x01]);

/** SHA-256 of the empty string: the root of the empty tree. */
export const EMPTY_ROOT: Buffer = createHash('sha256').digest();

export function hashLeaf(entry: Uint8Array): Buffer {
  // One-shot hashing of a small prefixed copy is several times cheaper than a streaming Hash object.
  if (entry.length <= 4096) {
    const b = Buffer.allocUnsafe(entry.length + 1);
    b[0] = 0x00;
    b.set(entry, 1);
    return hash('sha256', b, 'buffer');
  }
  return createHash('sha256').update(LEAF_PREFIX).update(entry).digest();
}

const nodeScratch = Buffer.alloc(1 + 2 * HASH_BYTES);
nodeScratch[0] = NODE_PREFIX[0]!;

export function hashChildren(left: Uint8Array, right: Uint8Array): Buffer {
  if (left.length !== HASH_BYTES || right.length !== HASH_BYTES) return createHash('sha256').update(NODE_PREFIX).update(left).update(right).digest();
  nodeScratch.set(left, 1);
  nodeScratch.set(right, 1 + HASH_BYTES);
  return hash('sha256', nodeScratch, 'buffer');
}

/** Largest power of two strictly smaller than n (n ≥ 2). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** A growable array of 32-byte hashes in one buffer (no object per hash). */
class HashLevel {
  private buf = Buffer.allocUnsafe(HASH_BYTES * 64);
  length = 0;

  push(h: Uint8Array): void {
    if ((this.length + 1) * HASH_BYTES > this.buf.length) {
      const next = Buffer.allocUnsafe(this.buf.length * 2);
      this.buf.copy(next, 0, 0, this.length * HASH_BYTES);
      this.buf = next;
    }
    this.buf.set(h, this.length * HASH_BYTES);
    this.length++;
  }

  /** A view of hash i (valid until the next push). */
  at(i: number): Buffer {
    return this.buf.subarray(i * HASH_BYTES, (i + 1) * HASH_BYTES);
  }
}

export class MerkleTree {
  /** levels[k][i] = hash of the perfect subtree of 2^k leaves starting at leaf i·2^k. */
  private readonly levels: HashLevel[] = [new HashLevel()];

  get size(): number {
    return this.levels[0]!.length;
  }

  /** Append an entry (hashed as a leaf). Returns its index. */
  append(entry: Uint8Array): number {
    return this.appendLeafHash(hashLeaf(entry));
  }

  appendLeafHash(leaf: Uint8Array): number {
    const index = this.size;
    this.levels[0]!.push(leaf);
    // Each time a right child completes a pair, its parent becomes known: one hash per entry amortised.
    let i = index;
    let k = 0;
    while (i & 1) {
      const level = this.levels[k]!;
      const parent = hashChildren(level.at(i - 1), level.at(i));
      if (!this.levels[k + 1]) this.levels.push(new HashLevel());
      this.levels[k + 1]!.push(parent);
      i >>= 1;
      k++;
    }
    return index;
  }

  leafHash(index: number): Buffer {
    if (!Number.isInteger(index) || index < 0 || index >= this.size) throw new RangeError(`leaf ${index} is outside the tree of ${this.size}`);
    return Buffer.from(this.levels[0]!.at(index));
  }

  /** MTH(D[start:end]) for ranges that RFC 9162's recursion produces (start aligned to the left split). */
  private rangeHash(start: number, end: number): Buffer {
    const n = end - start;
    if ((n & (n - 1)) === 0 && start % n === 0) {
      const k = Math.log2(n);
      return this.levels[k]!.at(start / n);
    }
    const k = splitPoint(n);
    return hashChildren(this.rangeHash(start, start + k), this.rangeHash(start + k, end));
  }

  /** Root hash of the tree's first `size` entries. */
  root(size = this.size): Buffer {
    this.checkSize(size);
    if (size === 0) return Buffer.from(EMPTY_ROOT);
    return Buffer.from(this.rangeHash(0, size));
  }

  /** RFC 9162 inclusion path of entry `index` in the tree of `size` entries, leaf side first. */
  inclusionProof(index: number, size = this.size): Buffer[] {
    this.checkSize(size);
    if (!Number.isInteger(index) || index < 0 || index >= size) throw new RangeError(`index ${index} is outside the tree of ${size}`);
    const path: Buffer[] = [];
    let start = 0;
    let end = size;
    // Walk down from the root, collecting the sibling at each split; emitted leaf side first.
    while (end - start > 1) {
      const k = splitPoint(end - start);
      if (index < start + k) {
        path.push(Buffer.from(this.rangeHash(start + k, end)));
        end = start + k;
      } else {
        path.push(Buffer.from(this.rangeHash(start, start + k)));
        start += k;
      }
    }
    return path.reverse();
  }

  /** RFC 9162 consistency proof between the trees of `first` and `second` entries. */
  consistencyProof(first: number, second = this.size): Buffer[] {
    this.checkSize(second);
    if (!Number.isInteger(first) || first < 0 || first > second) throw new RangeError(`size ${first} is not between 0 and ${second}`);
    if (first === 0 || first === second) return [];
    const out: Buffer[] = [];
    this.subproof(first, 0, second, true, out);
    return out;
  }

  private subproof(m: number, start: number, end: number, complete: boolean, out: Buffer[]): void {
    const n = end - start;
    if (m === n) {
      if (!complete) out.push(Buffer.from(this.rangeHash(start, end)));
      return;
    }
    const k = splitPoint(n);
    if (m <= k) {
      this.subproof(m, start, start + k, complete, out);
      out.push(Buffer.from(this.rangeHash(start + k, end)));
    } else {
      this.subproof(m - k, start + k, end, false, out);
      out.push(Buffer.from(this.rangeHash(start, start + k)));
    }
  }

  private checkSize(size: number): void {
    if (!Number.isInteger(size) || size < 0 || size > this.size) throw new RangeError(`size ${size} is outside the tree of ${this.size}`);
  }
}

/** Root of a list of entries, computed from scratch (tests and cross-checks). */
export function rootOf(entries: readonly Uint8Array[]): Buffer {
  const t = new MerkleTree();
  for (const e of entries) t.append(e);
  return t.root();
}

/** RFC 9162 §2.1.3.2: does `path` prove `leaf` at `index` in the tree of `size` with `root`? */
export function verifyInclusion(leaf: Uint8Array, index: number, size: number, path: readonly Uint8Array[], root: Uint8Array): boolean {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return false;
  // BigInt-free: sizes stay below 2^53; shifts use division so they work past 2^31.
  let fn = index;
  let sn = size - 1;
  let r: Buffer = Buffer.from(leaf);
  for (const p of path) {
    if (p.length !== HASH_BYTES) return false;
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = hashChildren(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = hashChildren(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && r.equals(root);
}

/** RFC 9162 §2.1.4.2: does `path` prove the tree of `first` (firstRoot) is a prefix of `second` (secondRoot)? */
export function verifyConsistency(first: number, second: number, firstRoot: Uint8Array, secondRoot: Uint8Array, path: readonly Uint8Array[]): boolean {
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(second) || first < 0 || second < first) return false;
  if (path.some((p) => p.length !== HASH_BYTES)) return false;
  if (first === second) return path.length === 0 && Buffer.from(firstRoot).equals(secondRoot);
  if (first === 0) return path.length === 0; // the empty tree is a prefix of every tree
  if (path.length === 0) return false;
  const nodes: Uint8Array[] = (first & (first - 1)) === 0 ? [firstRoot, ...path] : [...path];
  let fn = first - 1;
  let sn = second - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr: Buffer = Buffer.from(nodes[0]!);
  let sr: Buffer = Buffer.from(nodes[0]!);
  for (let i = 1; i < nodes.length; i++) {
    const c = nodes[i]!;
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = hashChildren(c, fr);
      sr = hashChildren(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = hashChildren(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && fr.equals(firstRoot) && sr.equals(secondRoot);
}
