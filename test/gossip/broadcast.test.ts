// The broadcast queue: order (fewest transmissions, newest first), replacement by key, transmit limit,
// shedding past the cap, and a flood of updates handled in O(log n) comparisons per operation (the review's D5).
import t from 'tap';
import { BroadcastQueue } from '../../src/gossip/broadcast.js';

const msg = (s: string) => Buffer.from(s);

t.test('fewest transmissions first, newest first among equals; a key is replaced; the limit drops', async (t) => {
  const q = new BroadcastQueue();
  q.enqueue('a', msg('a1'));
  q.enqueue('b', msg('b1'));
  q.enqueue('c', msg('c1'));
  q.enqueue('a', msg('a2')); // replaces a1 and is now the newest
  t.equal(q.length, 3);
  const out: Uint8Array[] = [];
  q.take(4, 3, out, 1);
  t.same(out.map(String), ['a2', 'c1'], 'newest first, within the budget');
  out.length = 0;
  q.take(100, 3, out, 2);
  t.same(out.map(String), ['b1', 'a2', 'c1'], 'then the untransmitted one, then by recency');
  out.length = 0;
  q.take(100, 3, out, 3);
  t.same(out.map(String), ['b1', 'a2', 'c1']);
  t.equal(q.length, 1, 'items that reached the limit are dropped');
  out.length = 0;
  q.take(100, 3, out, 3);
  t.same(out, [], 'one packet (stamp) never carries an item twice');
});

t.test('past the cap the oldest item is shed', async (t) => {
  const q = new BroadcastQueue(3);
  for (const k of ['a', 'b', 'c', 'd']) q.enqueue(k, msg(k));
  const out: Uint8Array[] = [];
  q.take(100, 10, out, 1);
  t.same(out.map(String), ['d', 'c', 'b']);
});

t.test('100,000 updates through a 4,096-item queue with takes in between cost O(log n) comparisons each', async (t) => {
  // Counted, not timed: the heap's comparisons are the cost, and a count cannot be moved by a loaded machine.
  const proto = BroadcastQueue.prototype as unknown as { less(a: unknown, b: unknown): boolean };
  const less = proto.less;
  let comparisons = 0;
  proto.less = function (this: unknown, a: unknown, b: unknown) { comparisons++; return less.call(this, a, b); };
  t.teardown(() => { proto.less = less; });
  const q = new BroadcastQueue(4096);
  const out: Uint8Array[] = [];
  const bytes = msg('x'.repeat(40));
  let popped = 0;
  const c0 = process.cpuUsage();
  for (let i = 0; i < 100_000; i++) {
    q.enqueue(`m${i % 50_000}`, bytes);
    if (i % 100 === 0) { out.length = 0; q.take(1100, 12, out, i + 1); popped += out.length; }
  }
  const used = process.cpuUsage(c0);
  t.equal(q.length, 4096);
  t.ok(popped > 0, `takes sent ${popped} items`);
  // log2(4096) = 12 levels. An enqueue is at most a removal of the replaced key, a sift-up and the removal of
  // the shed item (each sift-down costs two comparisons a level); a take pops and pushes back at most what it
  // sends plus 64 skipped items. A linear scan per insert (the old queue) alone would be ≥ 4,096 per enqueue.
  const levels = 12;
  const perEnqueue = 2 * (3 * levels) + levels;
  const perTakenItem = 3 * levels;
  const bound = 100_000 * perEnqueue + (popped + 1000 * 64) * perTakenItem;
  t.ok(comparisons <= bound, `${comparisons} comparisons ≤ ${bound} (${(comparisons / 100_000).toFixed(1)} per update; ${((used.user + used.system) / 1000).toFixed(0)} ms of CPU)`);
});
