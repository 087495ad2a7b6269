// The healing component as the sidecar starts it: config → engine on the injected clock → mesh, metrics.
import t from 'tap';
import { Registry } from '../../src/admin/metrics-registry.js';
import { VirtualClock } from '../../src/core/clock.js';
import { Outcome } from '../../src/core/types.js';
import { silentLogger } from '../../src/core/log.js';
import { validateConfig } from '../../src/config/load.js';
import { DEFAULT_POLICY_SETTINGS, resolvePolicySettings } from '../../src/config/sections/healing.js';
import { MeshState } from '../../src/mesh/state.js';
import { StatsTable } from '../../src/stats/window.js';
import { servicesFromConfig } from '../../src/runtime/sidecar.js';
import type { AdminRoutes, SidecarContext } from '../../src/runtime/context.js';
import { startHealing, type HealingComponent } from '../../src/heal/component.js';

const DEFAULT_MAX_MS = DEFAULT_POLICY_SETTINGS.ejection.maxMs;

function context(doc: unknown) {
  const v = validateConfig(doc);
  if (!v.valid) throw new Error(v.errors.join('\n'));
  const clock = new VirtualClock(1_700_000_000_000);
  const mesh = new MeshState(clock);
  mesh.setServices(servicesFromConfig(v.result));
  const admin: AdminRoutes = { route: () => {} };
  const ctx: SidecarContext = { config: v.result, clock, mesh, stats: new StatsTable(), log: silentLogger, metrics: new Registry(), admin, components: new Map() };
  return { ctx, clock, mesh };
}

const addrs = (n: number, base = 9100) => Array.from({ length: n }, (_, i) => ({ address: `127.0.0.1:${base + i}` }));

t.test('config: per-service settings override mesh-wide ones key by key; bad values are rejected', async (t) => {
  const v = validateConfig({
    healing: { policy: 'meshmedic', ejection: { baseMs: 5000, maxMs: 60_000 } },
    services: [{ name: 'a', endpoints: addrs(2), healing: { policy: 'envoy-default', ejection: { baseMs: 2000 } } }],
  });
  t.ok(v.valid);
  if (!v.valid) return;
  const s = resolvePolicySettings(v.result.healing, v.result.services[0]!.healing);
  t.equal(s.policy, 'envoy-default');
  t.equal(s.ejection.baseMs, 2000, 'service value');
  t.equal(s.ejection.maxMs, 60_000, 'mesh-wide value kept (not masked by a default)');
  t.equal(s.probation.canaryWeight, 0.05, 'built-in default');
  const bad = validateConfig({ healing: { ejection: { baseMs: -1, bogus: 1 }, policy: 'magic' } });
  t.notOk(bad.valid);
  if (!bad.valid) {
    t.ok(bad.errors.some((e) => e.includes('/healing/ejection') && e.includes('bogus')), bad.errors.join('; '));
    t.ok(bad.errors.some((e) => e.includes('/healing/policy')));
  }
});

t.test('settingsFor: services without a healing block of their own share one resolved object', async (t) => {
  const { ctx } = context({
    healing: { ejection: { baseMs: 5000 } },
    services: [{ name: 'a', endpoints: addrs(1) }, { name: 'b', endpoints: addrs(1, 9200) }, { name: 'c', endpoints: addrs(1, 9300), healing: { ejection: { baseMs: 2000 } } }],
  });
  const c = (await startHealing(ctx)) as HealingComponent;
  t.teardown(() => c.close());
  const [a, b, own] = ['a', 'b', 'c'].map((n) => c.settingsFor(n));
  t.equal(a, b, 'a and b: the mesh-wide object');
  t.equal(a, c.settingsFor(''), 'the same as the mesh-wide settings');
  t.equal(a!.ejection.baseMs, 5000);
  t.not(own, a, 'c has its own');
  t.equal(own!.ejection.baseMs, 2000);
  c.reconfigure({ ejection: { baseMs: 7000 } });
  t.equal(c.settingsFor('a').ejection.baseMs, 7000, 'reconfigured: shared settings follow');
  t.equal(c.settingsFor('a'), c.settingsFor('b'));
  t.equal(c.settingsFor('c').ejection.baseMs, 2000, 'per-service value still wins');
  t.equal(c.settingsFor('c').ejection.maxMs, DEFAULT_MAX_MS, 'and built-in defaults fill the rest');
});

t.test('startHealing: ticks on the injected clock, ejects, exports engine metrics, stops on close', async (t) => {
  const { ctx, clock, mesh } = context({ healing: { policy: 'meshmedic' }, services: [{ name: 'web', endpoints: addrs(3) }] });
  const c = (await startHealing(ctx)) as HealingComponent;
  t.equal(c.name, 'healing');
  clock.advance(1000);
  t.ok(c.engine.counters.ticks >= 9, `ticks ${c.engine.counters.ticks}`);
  const ev = [...mesh.snapshot().endpoints.values()][0]!;
  const w = ctx.stats.ensure(ev.slot);
  for (let k = 0; k < 3; k++) w.record(Outcome.LocalOrigin, 1000, clock.now());
  await Promise.resolve(); // the urgent path runs as a microtask
  t.equal(mesh.snapshot().endpoints.get(ev.spec.id)!.health.state, 'ejected');
  const text = await ctx.metrics.metrics();
  t.match(text, /meshmedic_healing_evaluations_total\{kind="urgent"\} [1-9]/);
  t.match(text, /meshmedic_healing_errors_total 0/);
  t.match(text, /meshmedic_healing_guard_refusals_total/);
  await c.close();
  const ticks = c.engine.counters.ticks;
  clock.advance(1000);
  t.equal(c.engine.counters.ticks, ticks, 'no tick after close');
  t.notMatch(await ctx.metrics.metrics(), /meshmedic_healing_evaluations_total/, 'metrics unregistered');
});

t.test('policy none never ejects; operator decisions still apply', async (t) => {
  const { ctx, clock, mesh } = context({ healing: { policy: 'none' }, services: [{ name: 'web', endpoints: addrs(3) }] });
  const c = await startHealing(ctx);
  const ev = [...mesh.snapshot().endpoints.values()][0]!;
  for (let k = 0; k < 50; k++) ctx.stats.ensure(ev.slot).record(Outcome.Error5xx, 1000, clock.now());
  clock.advance(2000);
  t.equal(mesh.snapshot().endpoints.get(ev.spec.id)!.health.state, 'healthy');
  mesh.apply({ action: 'eject', target: ev.spec.id, reason: 'operator', source: 'operator', at: clock.now(), evidence: {} });
  clock.advance(500);
  t.equal(mesh.snapshot().endpoints.get(ev.spec.id)!.health.state, 'ejected', 'the engine does not undo an operator ejection');
  await c.close();
});

t.test('reconfigure: new mesh-wide settings take effect at run time (pod annotations)', async (t) => {
  const { ctx, clock, mesh } = context({ healing: { policy: 'none' }, services: [{ name: 'web', endpoints: addrs(3) }] });
  const c = (await startHealing(ctx)) as HealingComponent;
  clock.advance(500);
  t.equal(c.engine.settingsOf('web')!.policy, 'none');
  t.equal(c.engine.policyOf('web'), undefined, 'no traffic yet: no policy built');
  c.reconfigure({ policy: 'meshmedic', consecutive: { localOrigin: 2 } });
  clock.advance(200);
  t.equal(c.engine.settingsOf('web')!.policy, 'meshmedic');
  t.equal(c.engine.settingsOf('web')!.consecutive.localOrigin, 2);
  const ev = [...mesh.snapshot().endpoints.values()][1]!;
  for (let k = 0; k < 2; k++) ctx.stats.ensure(ev.slot).record(Outcome.LocalOrigin, 1000, clock.now());
  await Promise.resolve();
  t.equal(mesh.snapshot().endpoints.get(ev.spec.id)!.health.state, 'ejected', 'the new threshold (2) and the failure hook apply');
  t.equal(c.engine.policyOf('web')!.name, 'meshmedic', 'the policy built at that evaluation runs the new settings');
  t.equal(c.engine.policyOf('web')!.settings.consecutive.localOrigin, 2);
  await c.close();
});
