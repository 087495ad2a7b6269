// The healing component of a running sidecar: started by src/runtime/sidecar.ts when the config enables it.
// It runs the engine on the configured tick and exports engine counters on /metrics; decisions
// themselves are counted by the admin module from mesh changes (meshmedic_decisions_total).
import { Counter } from 'prom-client';
import type { Component, ComponentFactory } from '../runtime/context.js';
import { resolvePolicySettings, type PolicySettings, type ResolvedPolicySettings } from '../config/sections/healing.js';
import { HealingEngine } from './engine.js';
import type { ExternalVerdict } from './policy.js';

export interface HealingComponent extends Component {
  readonly engine: HealingEngine;
  /** External verdicts (gossip quorum, predictor), judged under the same guards. */
  submitVerdict(v: ExternalVerdict): boolean;
  /** New mesh-wide healing settings at run time (pod annotations); per-service config still applies on top. */
  reconfigure(healing: PolicySettings): void;
}

export const startHealing: ComponentFactory = async (ctx): Promise<HealingComponent> => {
  const log = ctx.log.child({ component: 'healing' });
  const perService = new Map(ctx.config.services.map((s) => [s.name, s.healing]));
  let meshWide: PolicySettings = ctx.config.healing;
  const cache = new Map<string, ResolvedPolicySettings>();
  const settingsFor = (name: string): ResolvedPolicySettings => {
    let s = cache.get(name);
    if (!s) cache.set(name, (s = resolvePolicySettings(meshWide, perService.get(name))));
    return s;
  };
  const engine = new HealingEngine({ clock: ctx.clock, mesh: ctx.mesh, stats: ctx.stats, settingsFor, tickMs: ctx.config.stats.tickMs, log, urgent: 'microtask' });
  const unregister = registerEngineMetrics(ctx.metrics, engine);
  engine.start();
  log.info('healing engine started', { policy: settingsFor('').policy, tickMs: ctx.config.stats.tickMs });
  return {
    name: 'healing',
    engine,
    submitVerdict: (v) => engine.submitVerdict(v),
    reconfigure(healing: PolicySettings) {
      meshWide = healing;
      cache.clear();
      engine.reconfigure(settingsFor);
      log.info('healing settings changed', { policy: settingsFor('').policy });
    },
    async close() {
      engine.stop();
      unregister();
    },
  };
};

function registerEngineMetrics(registry: import('prom-client').Registry, engine: HealingEngine): () => void {
  const names: string[] = [];
  const add = (name: string, help: string, labelNames: string[], collect: (c: Counter<string>) => void) => {
    if (registry.getSingleMetric(name)) return; // registered by someone else: leave theirs
    names.push(name);
    new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        collect(this);
      },
    });
  };
  add('meshmedic_healing_evaluations_total', 'Policy evaluations by the healing engine (tick and urgent).', ['kind'], (c) => {
    c.inc({ kind: 'tick' }, engine.counters.evaluations - engine.counters.urgentEvaluations);
    c.inc({ kind: 'urgent' }, engine.counters.urgentEvaluations);
  });
  add('meshmedic_healing_errors_total', 'Policy evaluations that failed (health left unchanged: fail open).', [], (c) => c.inc(engine.counters.policyErrors));
  add('meshmedic_healing_guard_refusals_total', 'Verdicts a guard refused, by guard.', ['guard'], (c) => {
    const sums: Record<string, number> = {};
    for (const name of engine.serviceNames()) {
      const p = engine.policyOf(name);
      if (!p) continue;
      for (const [g, n] of Object.entries(p.counters.refusals)) sums[g] = (sums[g] ?? 0) + n;
    }
    for (const [g, n] of Object.entries(sums)) c.inc({ guard: g }, n);
  });
  add('meshmedic_healing_external_verdicts_total', 'External verdicts (peer, predicted) received, by result.', ['result'], (c) => {
    c.inc({ result: 'accepted' }, engine.counters.externalAccepted);
    c.inc({ result: 'rejected' }, engine.counters.externalRejected);
  });
  return () => {
    for (const n of names) registry.removeSingleMetric(n);
  };
}
