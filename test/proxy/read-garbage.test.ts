// The portable engine's read-garbage pacer: one young-generation collection per pace of bytes read, a
// working gc function on every tested Node line, and the process's own global left as it was.
import t from 'tap';
import { ReadGarbagePacer, readGarbagePacer, READ_GARBAGE_PACE } from '../../src/proxy/engine/read-garbage.js';

t.test('collects once per pace of bytes, young generation only, synchronously', async (t) => {
  const calls: unknown[] = [];
  const pacer = new ReadGarbagePacer((o) => calls.push(o), 100);
  pacer.read(60);
  t.equal(calls.length, 0, 'below the pace: no collection');
  pacer.read(60);
  t.same(calls, [{ type: 'minor', execution: 'sync' }], 'the pace reached: one minor collection');
  pacer.read(99);
  t.equal(calls.length, 1, 'the count restarted after the collection');
  pacer.read(1);
  t.equal(pacer.collections, 2);
});

t.test('without a gc function it counts nothing and never throws', async (t) => {
  const pacer = new ReadGarbagePacer(null, 1);
  t.equal(pacer.active, false);
  pacer.read(10);
  t.equal(pacer.collections, 0);
});

t.test(`this Node (${process.version}) offers the gc function; the global stays untouched`, async (t) => {
  const hadGlobal = typeof (globalThis as { gc?: unknown }).gc;
  const pacer = readGarbagePacer();
  t.equal(pacer.active, true, 'pacing works here (without it the portable engine leaves up to ~80 MiB of read buffers to V8)');
  t.equal(typeof (globalThis as { gc?: unknown }).gc, hadGlobal, 'globalThis.gc is as it was');
  const before = pacer.collections;
  pacer.read(READ_GARBAGE_PACE);
  t.equal(pacer.collections, before + 1, 'a real collection ran without error');
});
