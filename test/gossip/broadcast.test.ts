// The broadcast queue: order (fewest transmissions, newest first), replacement by key, transmit limit,
// shedding past the cap, and a flood of updates handled in O(log n) per operation (the review's D5).
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

t.test('100,000 updates through a 4,096-item queue with takes in between stay fast', async (t) => {
  const q = new BroadcastQueue(4096);
  const out: Uint8Array[] = [];
  const bytes = msg('x'.repeat(40));
  // CPU time of this process, not wall time: other processes on a loaded machine do not count.
  const c0 = process.cpuUsage();
  for (let i = 0; i < 100_000; i++) {
    q.enqueue(`m${i % 50_000}`, bytes);
    if (i % 100 === 0) { out.length = 0; q.take(1100, 12, out, i + 1); }
  }
  const used = process.cpuUsage(c0);
  const ms = (used.user + used.system) / 1000;
  t.equal(q.length, 4096);
  // A linear scan plus a sort per insert (the old queue) takes minutes here; the heap takes milliseconds.
  t.ok(ms < 3000, `took ${ms.toFixed(0)} ms of CPU`);
});
