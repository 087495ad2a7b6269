// The healing engine keeps per-endpoint signals only for services in use: created on a service's first
// traffic (or verdict, probe, failure), released after releaseAfterWindows quiet windows. Decisions must be
// those of an engine that keeps every service's signals all along (allSignals), on the same inputs; a
// released service is judged like one that never had traffic; the guards still count every known endpoint.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { VirtualClock } from '../../src/core/clock.js';
import { endpointId, Outcome, type EndpointSpec } from '../../src/core/types.js';
import { MeshState, type RecordedDecision } from '../../src/mesh/state.js';
import { StatsTable } from '../../src/stats/window.js';
import { HealingEngine } from '../../src/heal/engine.js';
import { resolvePolicySettings, type PolicySettings } from '../../src/config/sections/healing.js';
import { Rng } from '../../src/sim/rng.js';
import { learnStatus } from '../../src/learn/admin.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const SEED = Number(process.env.MESHMEDIC_TEST_SEED ?? 20261207);
const T0 = 1_700_000_000_000;

function specs(service: string, n: number, from = 0): EndpointSpec[] {
  return Array.from({ length: n }, (_, i) => ({
    id: endpointId(service, '127.0.0.1', 9000 + from + i),
    service,
    host: '127.0.0.1',
    port: 9000 + from + i,
    locality: { region: 'r', zone: 'a', subzone: '' },
    priority: 0,
    weight: 1,
    labels: {},
  }));
}

/** A mesh, stats and engine on a virtual clock; traffic is recorded into the windows as the proxy does. */
function world(services: Record<string, number>, o: { allSignals?: boolean; settings?: PolicySettings; compareWith?: () => HealingEngine } = {}) {
  const clock = new VirtualClock(T0);
  const mesh = new MeshState(clock);
  const members = new Map(Object.entries(services).map(([name, n]) => [name, specs(name, n)]));
  const publish = () => mesh.setServices([...members].map(([name, endpoints]) => ({ spec: { name, endpoints } })));
  publish();
  const stats = new StatsTable({ windowMs: 1000, windows: 10, maxLatencyUs: 60_000_000, significantDigits: 2 });
  const settings = resolvePolicySettings(o.settings);
  const engine = new HealingEngine({ clock, mesh, stats, settingsFor: () => settings, tickMs: 100, urgent: 'sync', random: () => 0.5, allSignals: o.allSignals });
  const applied: RecordedDecision[] = [];
  mesh.subscribe((_s, changes) => {
    for (const c of changes) if (c.applied) applied.push(c);
  });
  const view = (service: string) => mesh.snapshot().services.get(service)!;
  return {
    clock,
    mesh,
    stats,
    engine,
    applied,
    view,
    health: (service: string, i: number) => view(service).endpoints[i]!.health,
    record(service: string, i: number, outcome: Outcome, latencyUs: number) {
      stats.ensure(view(service).endpoints[i]!.slot).record(outcome, latencyUs, clock.now());
    },
    /** A new endpoint joins the service (a rollout). */
    join(service: string) {
      const list = members.get(service)!;
      list.push(...specs(service, 1, 100 + list.length));
      publish();
    },
    /** The service's last endpoint leaves it. */
    leave(service: string) {
      members.get(service)!.pop();
      publish();
    },
    /** The service is no longer known. */
    forget(service: string) {
      members.delete(service);
      publish();
    },
    tick() {
      clock.advance(100);
      engine.tick();
      if (o.compareWith) compareRings(engine, o.compareWith(), clock.now(), this);
    },
    /** The first difference found between this engine's feature rings and the other's ('' = none). */
    ringsDiffer: '',
  };
}

/** The rings of `lazy`'s services in use, entry by entry (newest first), against `all`'s. */
function compareRings(lazy: HealingEngine, all: HealingEngine, now: number, into: { ringsDiffer: string }): void {
  if (into.ringsDiffer !== '') return;
  for (const service of lazy.serviceNames()) {
    const mine = lazy.signalsOf(service);
    if (mine.length === 0) continue;
    const theirs = all.signalsOf(service);
    for (let k = 0; k < mine.length; k++) {
      const a = mine[k]!.features;
      const b = theirs[k]?.features;
      const row = (f: typeof a, age: number) => {
        const i = f.index(age);
        return [f.epoch[i], f.total[i], f.failures[i], f.gateway[i], f.localOrigin[i], f.p10[i], f.p50[i], f.p90[i], f.p99[i]].join(',');
      };
      if (b === undefined || a.size !== b.size) {
        into.ringsDiffer = `${now - T0} ms, ${mine[k]!.id}: ${a.size} entries, the other ${b?.size}`;
        return;
      }
      for (let age = 0; age < a.size; age++) {
        if (row(a, age) === row(b, age)) continue;
        into.ringsDiffer = `${now - T0} ms, ${mine[k]!.id}, age ${age}: ${row(a, age)} against ${row(b, age)}`;
        return;
      }
    }
  }
}

type World = ReturnType<typeof world>;

/** What a decision says, for comparing two runs (the mesh's sequence numbers aside). */
const said = (d: RecordedDecision) => JSON.stringify({ action: d.action, target: d.target, reason: d.reason, source: d.source, at: d.at - T0, weight: d.weight, evidence: d.evidence });

/**
 * A randomized minute of a three-service mesh: `hot` always called, `warm` called in spells with quiet
 * gaps (shorter than the release period) and a rollout, `cold` first called late, after a rollout; faults:
 * a dead endpoint, a 3× slower one, a burst of failures on a never-called service. Traffic follows health
 * (no ordinary requests to ejected or draining endpoints, a few to canaries), as a balancer's would.
 */
function scenario(worlds: readonly World[], seed: number): number {
  let joined = 0;
  const plan = new Rng(seed);
  const warmSpells: [number, number][] = [];
  for (let at = 2_000 + Math.floor(plan.next() * 4_000); at < 60_000; ) {
    const len = 3_000 + Math.floor(plan.next() * 10_000);
    warmSpells.push([at, at + len]);
    at += len + 2_000 + Math.floor(plan.next() * 15_000);
  }
  const coldFrom = 20_000 + 100 * Math.floor(plan.next() * 250); // times are whole ticks (100 ms)
  const deadHot = Math.floor(plan.next() * 6);
  const deadFrom = 5_000 + Math.floor(plan.next() * 40_000);
  const grayWarm = Math.floor(plan.next() * 6);
  // Rollouts: an endpoint joins `warm` at a random time, another joins `cold` before its first call.
  const joins: [string, number][] = [['warm', 10_000 + 100 * Math.floor(plan.next() * 300)], ['cold', coldFrom - 1_000 - 100 * Math.floor(plan.next() * 60)]];
  const burstCold = plan.next() < 0.5;
  const rngs = worlds.map(() => new Rng(seed + 1));
  for (let ms = 0; ms < 60_000; ms += 100) {
    // Each world in turn, with its own copy of the same random stream.
    worlds.forEach((w, wi) => {
      const rng = rngs[wi]!;
      for (const [service, at] of joins) if (ms === at) w.join(service);
      if (ms === 59_900) joined += w.view('warm').endpoints.length + w.view('cold').endpoints.length - 11;
      const warmOn = warmSpells.some(([a, b]) => ms >= a && ms < b);
      for (const service of ['hot', 'warm', 'cold']) {
        const eps = w.view(service).endpoints;
        for (let i = 0; i < eps.length; i++) {
          const n = 1 + Math.floor(rng.next() * 4); // drawn whatever happens, so both runs draw alike
          const jitter = 1 + 0.2 * rng.normal();
          const on = service === 'hot' || (service === 'warm' && warmOn) || (service === 'cold' && ms >= coldFrom);
          const h = eps[i]!.health;
          if (!on || h.state === 'ejected' || h.state === 'draining') continue;
          const count = h.state === 'probation' ? 1 : n;
          for (let k = 0; k < count; k++) {
            if (service === 'hot' && i === deadHot && ms >= deadFrom) w.record(service, i, Outcome.LocalOrigin, 1_000);
            else if (service === 'cold' && burstCold && i < 3 && ms < coldFrom + 500) w.record(service, i, Outcome.Gateway, 2_000);
            else w.record(service, i, Outcome.Success, (service === 'warm' && i === grayWarm ? 30_000 : 10_000) * Math.max(0.5, jitter));
          }
        }
      }
      w.tick();
    });
  }
  return joined / worlds.length;
}

t.test('decisions equal those of an engine that keeps every service\'s signals, over randomized minutes', async (t) => {
  for (let k = 0; k < 6; k++) {
    const seed = SEED + k;
    // Stepped together: after each tick the lazy engine's rings are compared with the other's.
    const all = world({ hot: 6, warm: 6, cold: 5 }, { allSignals: true });
    const lazy = world({ hot: 6, warm: 6, cold: 5 }, { compareWith: () => all.engine });
    t.equal(scenario([all, lazy], seed), 2, `seed ${seed}: two endpoints joined`);
    t.ok(all.applied.length > 0, `seed ${seed}: the scenario decides something (${all.applied.length} decisions)`);
    t.same(lazy.applied.map(said), all.applied.map(said), `seed ${seed}: the same decisions in the same order`);
    t.same(lazy.engine.counters, all.engine.counters, `seed ${seed}: the same evaluations`);
    t.equal(lazy.ringsDiffer, '', `seed ${seed}: every feature ring of a service in use held what the other engine's held, at every tick`);
  }
});

t.test('signals exist only for services in use; a never-called service keeps its failure hooks', async (t) => {
  const w = world({ hot: 4, idle: 10 });
  for (let ms = 0; ms < 3_000; ms += 100) {
    for (let i = 0; i < 4; i++) w.record('hot', i, Outcome.Success, 10_000);
    w.tick();
  }
  t.equal(w.engine.signalsOf('hot').length, 4, 'hot: one signal object per endpoint');
  t.equal(w.engine.signalsOf('idle').length, 0, 'idle: none');
  t.ok(w.view('idle').endpoints.every((e) => w.stats.hookOf(e.slot) !== null), 'idle: every endpoint carries the failure hook');
  t.ok(w.view('idle').endpoints.every((e) => w.stats.get(e.slot) === undefined), 'idle: no windows yet (they come with the first request)');
  const first = w.view('idle').endpoints[0]!;
  t.equal(w.stats.ensure(first.slot).failureHook, w.stats.hookOf(first.slot), 'the windows a first request creates carry it');
});

t.test('failure hooks follow the view: off a removed endpoint, back after new settings, off a removed service', async (t) => {
  const w = world({ a: 3, b: 2 });
  w.tick();
  const hooked = (service: string) => w.view(service).endpoints.map((e) => w.stats.hookOf(e.slot) !== null);
  t.same(hooked('a'), [true, true, true]);
  const gone = w.view('a').endpoints[2]!.slot;
  w.leave('a');
  w.tick();
  t.same(hooked('a'), [true, true], 'the endpoints that stay keep it');
  t.equal(w.stats.hookOf(gone), null, 'the slot of the endpoint that left carries none');
  w.engine.reconfigure(() => resolvePolicySettings({ consecutive: { errors5xx: 3 } }));
  t.same(hooked('a'), [false, false], 'new settings take the hooks off...');
  w.tick();
  t.same(hooked('a'), [true, true], '...and the next tick puts them back');
  const b = w.view('b').endpoints.map((e) => e.slot);
  w.forget('b');
  w.tick();
  t.same(b.map((slot) => w.stats.hookOf(slot)), [null, null], 'a service no longer known leaves no hook behind');
  // A failure burst still ejects at once on the re-hooked endpoints (the hook carries the new threshold).
  for (let i = 0; i < 3; i++) w.record('a', 0, Outcome.Error5xx, 1_000);
  t.equal(w.health('a', 0).state, 'ejected', 'three 5xx in a row eject at once under the new settings');
});

t.test('a known service that never had traffic costs the engine little heap', async (t) => {
  // 1,000 services of 10 endpoints after 3 s of ticks, in a clean process. Measured 1,958 B per service
  // when each kept three maps (signals by id, joined endpoints, hooked slots) from its creation; 957 B
  // with those created only when needed (the hooked slots are the view's own).
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', path.join(here, 'fixtures', 'idle-runtime-bytes.ts'), '1000'], { encoding: 'utf8', timeout: 120_000 });
  t.equal(r.status, 0, r.stderr);
  const { perService } = JSON.parse(r.stdout.trim()) as { perService: number };
  t.ok(perService <= 1_300, `${perService} B of heap per idle service of 10 endpoints`);
});

t.test('a policy is built at its service\'s first evaluation, kept after, and rebuilt on new settings only if built', async (t) => {
  const w = world({ hot: 4, idle: 10 });
  for (let ms = 0; ms < 3_000; ms += 100) {
    for (let i = 0; i < 4; i++) w.record('hot', i, Outcome.Success, 10_000);
    w.tick();
  }
  t.equal(w.engine.policyOf('hot')?.name, 'meshmedic', 'hot: evaluated, its policy built');
  t.equal(w.engine.policyOf('idle'), undefined, 'idle: never evaluated, no policy');
  t.equal(w.engine.settingsOf('idle')?.policy, 'meshmedic', 'idle: its settings known all the same');
  const status = learnStatus(w.engine, w.clock) as { services: { service: string; policy: string | null; prediction: { counters: unknown; endpoints: unknown[] } | null }[] };
  const idle = status.services.find((s) => s.service === 'idle');
  t.equal(idle?.policy, 'meshmedic', '/v1/learn names the policy an idle service will run');
  t.same(idle?.prediction?.counters, { assessments: 0, degrade: 0, drain: 0 }, 'and the predictor figures a fresh one has');
  t.same(idle?.prediction?.endpoints, [], 'with no endpoint models');
  const hot = w.engine.policyOf('hot');
  w.engine.reconfigure(() => resolvePolicySettings({ policy: 'envoy-default' }));
  t.equal(w.engine.policyOf('hot')?.name, 'envoy-default', 'hot: rebuilt from the new settings');
  t.not(w.engine.policyOf('hot'), hot, 'a new policy object');
  t.equal(w.engine.policyOf('idle'), undefined, 'idle: still none');
  t.equal(w.engine.settingsOf('idle')?.policy, 'envoy-default', 'idle: the new settings, for when it is used');
  // Quiet for longer than releaseAfterWindows: signals released, the policy (and its counters) kept.
  for (let ms = 0; ms < 90_000; ms += 100) w.tick();
  t.equal(w.engine.signalsOf('hot').length, 0, 'hot: released after the quiet spell');
  t.equal(w.engine.policyOf('hot')?.name, 'envoy-default', 'hot: its policy kept (its counters are exported)');
  // A burst on the idle service: evaluated at once, with the current settings.
  for (let k = 0; k < 5; k++) w.record('idle', 0, Outcome.LocalOrigin, 1_000);
  t.equal(w.engine.policyOf('idle')?.name, 'envoy-default', 'idle: built at its first (urgent) evaluation');
});

t.test('a burst of failures on a never-called service ejects at once, and the guards count every known endpoint', async (t) => {
  const w = world({ idle: 5 });
  for (let ms = 0; ms < 5_000; ms += 100) w.tick();
  t.equal(w.engine.signalsOf('idle').length, 0, 'not in use before the failures');
  // Three of five fail at once: 20 %, 40 % may go, a third (60 %) is over max-ejection-percent 50.
  for (let k = 0; k < 5; k++) for (let i = 0; i < 3; i++) w.record('idle', i, Outcome.LocalOrigin, 1_000);
  const ejected = w.applied.filter((d) => d.action === 'eject').map((d) => d.target);
  t.equal(ejected.length, 2, `two ejected at once, without a tick (${ejected.join(', ')})`);
  t.equal(w.engine.signalsOf('idle').length, 5, 'the service came into use whole: all five endpoints have signals');
  t.ok(w.engine.policyOf('idle')!.counters.refusals.max_ejection_pct >= 1, 'the third was refused by max-ejection-percent over 5 known endpoints');
  t.equal(w.health('idle', 2).state, 'degraded', 'and de-weighted instead');
});

t.test('a service quiet for releaseAfterWindows is released, not before; used again it is judged like one that never had traffic', async (t) => {
  const release = new HealingEngine({ clock: new VirtualClock(T0), mesh: new MeshState(new VirtualClock(T0)), stats: new StatsTable(), settingsFor: () => resolvePolicySettings(), tickMs: 100 }).releaseAfterWindows;
  t.ok(release >= 60, `release after ${release} quiet windows`);
  // Backoff levels decay only after 10 minutes here: the level from phase 1 is still there at the release.
  const settings: PolicySettings = { ejection: { decayMs: 600_000 } };
  const used = world({ svc: 5 }, { settings });
  const fresh = world({ svc: 5 }, { settings });
  // Phase 1 (used only): traffic; endpoint 0 dies for 3 s (ejected: backoff level 1), then recovers and is
  // re-admitted; the baselines learn ~10 ms.
  let ms = 0;
  for (; ms < 60_000; ms += 100) {
    for (let i = 0; i < 5; i++) {
      const h = used.health('svc', i);
      if (h.state === 'ejected') continue;
      const n = h.state === 'probation' ? 1 : 4;
      for (let k = 0; k < n; k++) used.record('svc', i, i === 0 && ms >= 30_000 && ms < 33_000 ? Outcome.LocalOrigin : Outcome.Success, 10_000 + 100 * k);
    }
    used.tick();
    fresh.tick();
  }
  t.ok(used.applied.some((d) => d.action === 'eject' && d.target === used.view('svc').endpoints[0]!.spec.id), 'phase 1 ejected endpoint 0');
  t.ok(used.view('svc').endpoints.every((e) => e.health.state === 'healthy'), `all healthy again after phase 1 (${used.view('svc').endpoints.map((e) => e.health.state).join(',')})`);
  t.equal(used.engine.signalsOf('svc').length, 5, 'in use');
  // Quiet: released once the ring has been empty for `release` windows.
  const quietFrom = ms;
  let releasedAt = -1;
  for (; ms < quietFrom + (release + 15) * 1000; ms += 100) {
    used.tick();
    fresh.tick();
    if (releasedAt < 0 && used.engine.signalsOf('svc').length === 0) releasedAt = ms;
  }
  t.ok(releasedAt >= 0, 'released');
  // The ring empties 10 windows after the last request; the release follows `release` windows later.
  t.ok(releasedAt - quietFrom >= (release + 10) * 1000 - 1000 && releasedAt - quietFrom <= (release + 12) * 1000, `released ${(releasedAt - quietFrom) / 1000} s after the last request`);
  // Phase 2, the same traffic to both: endpoint 0 dies again, endpoint 1 runs 3× slower.
  const before = { used: used.applied.length, fresh: fresh.applied.length };
  for (const w of [used, fresh]) {
    for (let m = 0; m < 30_000; m += 100) {
      for (let i = 0; i < 5; i++) {
        const h = w.health('svc', i);
        if (h.state === 'ejected') continue;
        const n = h.state === 'probation' ? 1 : 4;
        for (let k = 0; k < n; k++) w.record('svc', i, i === 0 && m >= 12_000 ? Outcome.LocalOrigin : Outcome.Success, (i === 1 && m >= 4_000 ? 30_000 : 10_000) + 100 * k);
      }
      w.tick();
    }
  }
  const phase2 = (w: World, from: number) => w.applied.slice(from).map(said);
  t.ok(phase2(fresh, before.fresh).length > 0, `phase 2 decides something: ${phase2(fresh, before.fresh).join(' ')}`);
  t.same(phase2(used, before.used), phase2(fresh, before.fresh), 'the released service is judged like one that never had traffic (backoff level, baselines, predictor: afresh)');
});
