// The one rule for which healing settings a service runs under (policySettingsResolver): used by the healing
// component and by the sidecar's admin API when healing is off, so the two cannot drift apart.
import t from 'tap';
import { DEFAULT_POLICY_SETTINGS, policySettingsResolver, type PolicySettings } from '../../src/config/sections/healing.js';

const meshWide = { ejection: { baseMs: 5000 } } as PolicySettings;
const own = { ejection: { baseMs: 2000 } } as PolicySettings;

t.test('services without a healing block of their own share one resolved object', async (t) => {
  const r = policySettingsResolver(meshWide, new Map([['pay', own], ['cart', undefined]]));
  t.equal(r('cart'), r('search'), 'a configured service without a block and an unknown service: the same object');
  t.equal(r('cart'), r(''), 'and the mesh-wide settings themselves');
  t.equal(r('cart').ejection.baseMs, 5000, 'mesh-wide value over the built-in default');
  t.equal(r('cart').ejection.maxMs, DEFAULT_POLICY_SETTINGS.ejection.maxMs, 'built-in defaults fill the rest');
  t.not(r('pay'), r('cart'), 'a service with its own block has its own object');
  t.equal(r('pay').ejection.baseMs, 2000, "the service's own value wins");
  t.equal(r('pay'), r('pay'), 'resolved once (cached)');
  t.ok(Object.isFrozen(r('pay').ejection), 'resolved settings are frozen');
});

t.test('reset: new mesh-wide settings reach shared and per-service settings alike', async (t) => {
  const r = policySettingsResolver(meshWide, new Map([['pay', own]]));
  const before = r('cart');
  t.equal(r.meshWide(), meshWide, 'the mesh-wide settings in force: the first');
  const next = { ejection: { baseMs: 7000, maxMs: 90_000 } } as PolicySettings;
  r.reset(next);
  t.equal(r.meshWide(), next, 'then the last reset');
  t.not(r('cart'), before, 'the cache is dropped');
  t.equal(r('cart').ejection.baseMs, 7000);
  t.equal(r('pay').ejection.baseMs, 2000, 'per-service value still wins');
  t.equal(r('pay').ejection.maxMs, 90_000, 'and takes the new mesh-wide value where it has none');
});

t.test('no mesh-wide block: built-in defaults', async (t) => {
  const r = policySettingsResolver(undefined, new Map());
  t.same(r('any'), DEFAULT_POLICY_SETTINGS);
});
