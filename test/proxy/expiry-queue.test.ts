// The expiry queue answers late connections a few per event-loop turn and a bounded number per sweep, in
// the order found, and never loses one (driven here by a hand-turned scheduler: no timing involved).
import t from 'tap';
import { ExpiryQueue } from '../../src/proxy/expiry-queue.js';

class Conn {
  expired: string[] = [];
  constructor(readonly id: number, readonly log: number[]) {}
  expire(why: string): boolean {
    this.expired.push(why);
    this.log.push(this.id);
    return true;
  }
}

function setup(perTurn: number, perRefill: number, drainRefills = 1000): { q: ExpiryQueue<Conn>; turns: (() => void)[]; log: number[]; conns: Conn[] } {
  const turns: (() => void)[] = [];
  const q = new ExpiryQueue<Conn>(perTurn, perRefill, drainRefills, (fn) => turns.push(fn));
  const log: number[] = [];
  return { q, turns, log, conns: [] };
}

t.test('a flood is answered perTurn at a time, at most perRefill per sweep, in order', async (t) => {
  const { q, turns, log } = setup(8, 20);
  const conns = Array.from({ length: 50 }, (_, i) => new Conn(i, log));
  for (const c of conns) q.add(c, `late ${c.id}`);
  t.equal(q.pending, 50);
  t.equal(log.length, 0, 'nothing answered before the first sweep');
  q.refill();
  t.equal(log.length, 8, 'one turn: 8');
  t.equal(turns.length, 1, 'the rest on a later turn');
  turns.shift()!();
  t.equal(log.length, 16);
  turns.shift()!();
  t.equal(log.length, 20, 'the sweep allowance (20) is used up');
  t.equal(turns.length, 0, 'nothing more until the next sweep');
  q.refill();
  while (turns.length > 0) turns.shift()!();
  q.refill();
  while (turns.length > 0) turns.shift()!();
  q.refill();
  t.same(log, conns.map((c) => c.id), 'every connection answered once, in the order found');
  t.equal(q.pending, 0);
  t.same(conns[7]!.expired, ['late 7'], 'with its own reason');
});

t.test('a refill while a turn is scheduled does not start a second chain', async (t) => {
  const { q, turns, log } = setup(2, 100);
  for (let i = 0; i < 6; i++) q.add(new Conn(i, log), 'x');
  q.refill();
  t.equal(log.length, 2);
  q.refill();
  t.equal(log.length, 2, 'no extra batch on the sweep: the scheduled turn goes on');
  t.equal(turns.length, 1);
  while (turns.length > 0) turns.shift()!();
  t.equal(log.length, 6);
});

t.test('connections added while answering are answered after the earlier ones', async (t) => {
  const { q, turns, log } = setup(3, 100);
  for (let i = 0; i < 4; i++) q.add(new Conn(i, log), 'x');
  q.refill();
  q.add(new Conn(4, log), 'x');
  while (turns.length > 0) turns.shift()!();
  t.same(log, [0, 1, 2, 3, 4]);
  t.equal(q.pending, 0);
  q.refill();
  t.equal(log.length, 5, 'an empty queue does nothing');
});

t.test('a backlog larger than perRefill allows is still cleared within drainRefills refills', async (t) => {
  const { q, turns, log } = setup(8, 10, 4);
  for (let i = 0; i < 1000; i++) q.add(new Conn(i, log), 'x');
  for (let sweep = 1; sweep <= 4; sweep++) {
    q.refill();
    while (turns.length > 0) turns.shift()!();
  }
  t.equal(q.pending, 0, `1,000 late answered in 4 sweeps (perRefill 10 alone would take 100)`);
  t.equal(log.length, 1000);
});

t.test('a flood that never lets the queue run dry does not keep the answered connections', async (t) => {
  const { q, turns, log } = setup(100, 100, 1000);
  let id = 0;
  for (let sweep = 0; sweep < 200; sweep++) {
    for (let i = 0; i < 101; i++) q.add(new Conn(id++, log), 'x'); // one more each sweep than is answered
    q.refill();
    while (turns.length > 0) turns.shift()!();
    t.ok(q.pending > 0 || sweep === 0, 'the queue never runs dry');
  }
  t.equal(log.length, 200 * 100, 'answered at the allowance');
  const held = (q as unknown as { late: unknown[] }).late.length;
  t.ok(held <= 2 * 1024 + 2 * 101 + q.pending, `answered entries dropped as it goes: ${held} held for ${q.pending} pending`);
});
