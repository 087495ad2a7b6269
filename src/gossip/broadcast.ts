// Broadcast queues: each update is piggybacked on a bounded number of packets (memberlist's
// TransmitLimitedQueue), fewest transmissions first; a newer update about the same key replaces the older.
// An indexed binary heap keeps every operation O(log n): a flood of updates (one push-pull frame listing
// thousands of members) must not cost a scan or a sort per insert.

export interface QueuedBroadcast {
  readonly key: string;
  readonly bytes: Uint8Array;
  transmits: number;
  readonly id: number;
  /** The packet (stamp) that last took this item, so one packet never carries it twice. */
  stamp: number;
  /** Position in the heap array (kept up to date by the heap). */
  at: number;
}

/** Most items looked at and put back per `take` without being sent (too big, or already in this packet). */
const MAX_SKIPPED_PER_TAKE = 64;

export class BroadcastQueue {
  /** Min-heap: fewest transmissions first, newest (highest id) first among equals. */
  private heap: QueuedBroadcast[] = [];
  private readonly byKey = new Map<string, QueuedBroadcast>();
  private nextId = 0;
  private readonly skipped: QueuedBroadcast[] = [];

  constructor(private readonly maxItems = 4096) {}

  get length(): number {
    return this.heap.length;
  }

  /** Queue an encoded message; drops any older message with the same key. */
  enqueue(key: string, bytes: Uint8Array): void {
    const old = this.byKey.get(key);
    if (old) this.removeAt(old.at);
    const item: QueuedBroadcast = { key, bytes, transmits: 0, id: this.nextId++, stamp: 0, at: this.heap.length };
    this.byKey.set(key, item);
    this.heap.push(item);
    this.up(item.at);
    if (this.heap.length > this.maxItems) {
      // Shed the oldest item (Map order is insertion order, and a replaced key is re-inserted): it has had
      // the longest time to spread.
      const oldest = this.byKey.values().next().value!;
      this.removeAt(oldest.at);
    }
  }

  /**
   * Take messages that fit in `budget` bytes, fewest transmissions first (newest first among equals),
   * count one transmission each and drop those that reached `limit`. Returns the bytes used.
   */
  take(budget: number, limit: number, out: Uint8Array[], stamp: number): number {
    if (this.heap.length === 0 || budget <= 0) return 0;
    let used = 0;
    const taken = this.skipped; // reused: items popped this call, pushed back at the end
    taken.length = 0;
    let skips = 0;
    while (this.heap.length > 0 && skips < MAX_SKIPPED_PER_TAKE && budget - used > 0) {
      const b = this.popMin();
      if (b.stamp === stamp || used + b.bytes.length > budget) {
        skips++;
        taken.push(b);
        continue;
      }
      b.stamp = stamp;
      used += b.bytes.length;
      out.push(b.bytes);
      b.transmits++;
      if (b.transmits >= limit) this.byKey.delete(b.key);
      else taken.push(b);
    }
    for (const b of taken) {
      b.at = this.heap.length;
      this.heap.push(b);
      this.up(b.at);
    }
    taken.length = 0;
    return used;
  }

  clear(): void {
    this.heap = [];
    this.byKey.clear();
  }

  // ---------------------------------------------------------------- heap

  private less(a: QueuedBroadcast, b: QueuedBroadcast): boolean {
    return a.transmits < b.transmits || (a.transmits === b.transmits && a.id > b.id);
  }

  private popMin(): QueuedBroadcast {
    const top = this.heap[0]!;
    const last = this.heap.pop()!;
    if (last !== top) {
      last.at = 0;
      this.heap[0] = last;
      this.down(0);
    }
    return top;
  }

  private removeAt(i: number): void {
    const h = this.heap;
    const item = h[i]!;
    this.byKey.delete(item.key);
    const last = h.pop()!;
    if (last === item) return;
    last.at = i;
    h[i] = last;
    this.up(i);
    this.down(last.at);
  }

  private up(i: number): void {
    const h = this.heap;
    const item = h[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = h[p]!;
      if (!this.less(item, parent)) break;
      h[i] = parent;
      parent.at = i;
      i = p;
    }
    h[i] = item;
    item.at = i;
  }

  private down(i: number): void {
    const h = this.heap;
    const n = h.length;
    const item = h[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.less(h[r]!, h[l]!) ? r : l;
      const child = h[c]!;
      if (!this.less(child, item)) break;
      h[i] = child;
      child.at = i;
      i = c;
    }
    h[i] = item;
    item.at = i;
  }
}
