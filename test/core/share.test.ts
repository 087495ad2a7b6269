// Equal leaf objects of a configuration or discovery list are shared, frozen (src/core/share.ts).
import t from 'tap';
import { freezeSharingLeaves, ValueSharer } from '../../src/core/share.js';

t.test('equal leaves become one frozen object; others stay distinct', async (t) => {
  const tree = {
    services: [
      { name: 'a', endpoints: [{ address: '10.0.0.1:80', locality: { region: 'r', zone: 'z1', subzone: '' }, labels: {} }, { address: '10.0.0.2:80', locality: { region: 'r', zone: 'z1', subzone: '' }, labels: {} }] },
      { name: 'b', endpoints: [{ address: '10.0.0.3:80', locality: { region: 'r', zone: 'z2', subzone: '' }, labels: { tier: 'web' } }] },
    ],
  };
  const out = freezeSharingLeaves(tree);
  t.equal(out, tree, 'the root is returned (frozen in place)');
  const [e1, e2] = out.services[0]!.endpoints;
  const e3 = out.services[1]!.endpoints[0]!;
  t.equal(e1!.locality, e2!.locality, 'same locality: one object');
  t.equal(e1!.labels, e2!.labels, 'empty labels: one object');
  t.not(e1!.locality, e3.locality, 'another zone: another object');
  t.same(e3.locality, { region: 'r', zone: 'z2', subzone: '' });
  t.same(e3.labels, { tier: 'web' });
  t.not(e1, e2, 'endpoints with different addresses stay distinct');
  for (const o of [out, out.services, out.services[0], e1, e1!.locality, e1!.labels, e3.labels]) t.ok(Object.isFrozen(o), 'frozen');
  t.throws(() => { (e1!.labels as Record<string, string>).x = 'y'; }, TypeError, 'a shared object cannot be changed (ESM is strict)');
});

t.test('leaves differ by key order, value type and nested objects', async (t) => {
  const s = new ValueSharer();
  const a = s.share({ x: 1, y: 2 });
  t.equal(s.share({ x: 1, y: 2 }), a);
  t.not(s.share({ y: 2, x: 1 }), a, 'another key order is another leaf');
  t.not(s.share({ x: '1', y: 2 }), a, 'a string is not a number');
  const nested = { x: { y: 1 } };
  t.equal(s.share(nested), nested, 'an object with an object value is no leaf: itself, frozen');
  t.ok(Object.isFrozen(nested));
  const arr = [1, 2];
  t.equal(s.share(arr), arr, 'arrays are not shared');
  class Point { constructor(readonly x: number) {} }
  const p = new Point(1);
  t.equal(s.share(p), p, 'only plain objects are shared');
  t.equal(s.share(new Point(1)) === p, false);
});

t.test('a sharer remembers at most `max` values; past it, objects are only frozen', async (t) => {
  const s = new ValueSharer(2);
  const a = s.share({ v: 1 });
  s.share({ v: 2 });
  const c = { v: 3 };
  t.equal(s.share(c), c);
  t.not(s.share({ v: 3 }), c, 'not remembered past the bound');
  t.equal(s.share({ v: 1 }), a, 'earlier ones still shared');
  t.equal(s.size, 2);
});
