// Broadcast queues: each update is piggybacked on a bounded number of packets (memberlist's
// TransmitLimitedQueue), fewest transmissions first; a newer update about the same key replaces the older.

export interface QueuedBroadcast {
  readonly key: string;
  readonly bytes: Uint8Array;
  transmits: number;
  readonly id: number;
  /** The packet (stamp) that last took this item, so one packet never carries it twice. */
  stamp: number;
}

export class BroadcastQueue {
  private items: QueuedBroadcast[] = [];
  private nextId = 0;

  constructor(private readonly maxItems = 4096) {}

  get length(): number {
    return this.items.length;
  }

  /** Queue an encoded message; drops any older message with the same key. */
  enqueue(key: string, bytes: Uint8Array): void {
    const i = this.items.findIndex((b) => b.key === key);
    if (i >= 0) this.items.splice(i, 1);
    this.items.push({ key, bytes, transmits: 0, id: this.nextId++, stamp: 0 });
    if (this.items.length > this.maxItems) {
      // Shed the most-transmitted (then oldest) items first: they have had their chance to spread.
      this.sort();
      this.items.length = this.maxItems;
    }
  }

  /**
   * Take messages that fit in `budget` bytes, fewest transmissions first (newest first among equals),
   * count one transmission each and drop those that reached `limit`. Returns the bytes used.
   */
  take(budget: number, limit: number, out: Uint8Array[], stamp: number): number {
    if (this.items.length === 0 || budget <= 0) return 0;
    this.sort();
    let used = 0;
    let dropped = false;
    for (const b of this.items) {
      if (b.stamp === stamp || used + b.bytes.length > budget) continue;
      b.stamp = stamp;
      used += b.bytes.length;
      out.push(b.bytes);
      b.transmits++;
      if (b.transmits >= limit) dropped = true;
    }
    if (dropped) this.items = this.items.filter((b) => b.transmits < limit);
    return used;
  }

  clear(): void {
    this.items = [];
  }

  private sort(): void {
    this.items.sort((a, b) => a.transmits - b.transmits || b.id - a.id);
  }
}
