// Test harness: a real mesh state, stats table and healing engine on a virtual clock, with helpers to
// feed crafted traffic into the windows exactly as the proxy does.
import { VirtualClock } from '../../src/core/clock.js';
import { endpointId, Outcome, type EndpointSpec } from '../../src/core/types.js';
import { MeshState, type RecordedDecision, type RoutingOptions } from '../../src/mesh/state.js';
import { StatsTable } from '../../src/stats/window.js';
import { HealingEngine } from '../../src/heal/engine.js';
import { resolvePolicySettings, type PolicySettings } from '../../src/config/sections/healing.js';

export interface HarnessOptions {
  endpoints: number;
  settings?: PolicySettings;
  priorities?: number[];
  zones?: string[];
  routing?: Partial<RoutingOptions>;
  urgent?: 'sync' | 'microtask' | 'tick';
  random?: () => number;
}

export function harness(o: HarnessOptions) {
  const clock = new VirtualClock(1_700_000_000_000);
  const mesh = new MeshState(clock);
  const specs: EndpointSpec[] = Array.from({ length: o.endpoints }, (_, i) => ({
    id: endpointId('svc', '127.0.0.1', 9000 + i),
    service: 'svc',
    host: '127.0.0.1',
    port: 9000 + i,
    locality: { region: 'r', zone: o.zones?.[i] ?? 'a', subzone: '' },
    priority: o.priorities?.[i] ?? 0,
    weight: 1,
    labels: {},
  }));
  mesh.setServices([{ spec: { name: 'svc', endpoints: specs }, routing: o.routing }]);
  const stats = new StatsTable({ windowMs: 1000, windows: 10, maxLatencyUs: 60_000_000, significantDigits: 2 });
  const settings = resolvePolicySettings(o.settings);
  const engine = new HealingEngine({ clock, mesh, stats, settingsFor: () => settings, tickMs: 100, urgent: o.urgent ?? 'sync', random: o.random ?? (() => 0.5) });
  const applied: RecordedDecision[] = [];
  mesh.subscribe((_s, changes) => {
    for (const c of changes) if (c.applied) applied.push(c);
  });
  const ids = specs.map((s) => s.id);
  const slot = (i: number) => mesh.snapshot().endpoints.get(ids[i]!)!.slot;
  const h = {
    clock,
    mesh,
    stats,
    engine,
    ids,
    applied,
    health: (i: number) => mesh.snapshot().endpoints.get(ids[i]!)!.health,
    /** Record one request of endpoint i (`refused`: a local-origin failure that was a refused connection). */
    record(i: number, outcome: Outcome, latencyUs = 10_000, refused = false) {
      stats.ensure(slot(i)).record(outcome, latencyUs, clock.now(), 0, refused);
    },
    /** Advance time by `ms`, ticking the engine every 100 ms; `perTick(i)` requests per endpoint each tick. */
    run(ms: number, traffic?: (i: number, tick: number) => { n: number; outcome?: Outcome; latencyUs?: number } | undefined) {
      const end = clock.now() + ms;
      let tick = 0;
      while (clock.now() < end) {
        for (let i = 0; i < ids.length; i++) {
          const tr = traffic?.(i, tick);
          if (!tr) continue;
          for (let k = 0; k < tr.n; k++) h.record(i, tr.outcome ?? Outcome.Success, tr.latencyUs ?? 10_000 * (1 + 0.1 * Math.sin(k + tick)));
        }
        clock.advance(100);
        engine.tick();
        tick++;
      }
    },
    decisions(action?: string) {
      return applied.filter((d) => !action || d.action === action);
    },
  };
  return h;
}
