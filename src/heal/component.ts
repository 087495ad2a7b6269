// The healing component of a running sidecar: started by src/runtime/sidecar.ts when the config enables it.
// It runs the engine on the configured tick and exports engine counters on /metrics; decisions
// themselves are counted by the admin module from mesh changes (meshmedic_decisions_total).
import { Counter } from '../admin/metrics-registry.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { MeshState } from '../mesh/state.js';
import type { EndpointHealth } from '../core/types.js';
import type { Component, ComponentFactory } from '../runtime/context.js';
import { policySettingsResolver, type PolicySettings, type ResolvedPolicySettings } from '../config/sections/healing.js';
import { HealingEngine } from './engine.js';
import { httpProbe, tcpProbe } from './probe-io.js';
import { isTimedDrain, type ExternalVerdict } from './policy.js';
import { registerLearnMetrics, registerLearnRoutes } from '../learn/admin.js';
import { provideLearnedModel, withdrawLearnedModel } from '../learn/learned-policy.js';
import { loadPolicyFile } from '../learn/policy-io.js';

export interface HealingComponent extends Component {
  readonly engine: HealingEngine;
  /** External verdicts (gossip quorum, predictor), judged under the same guards. */
  submitVerdict(v: ExternalVerdict): boolean;
  /** New mesh-wide healing settings at run time (pod annotations); per-service config still applies on top. */
  reconfigure(healing: PolicySettings): void;
  /** The settings in force for a service (the admin API applies its guards to operator ejections). */
  settingsFor(service: string): ResolvedPolicySettings;
}

export const startHealing: ComponentFactory = async (ctx): Promise<HealingComponent> => {
  const log = ctx.log.child({ component: 'healing' });
  const perService = new Map(ctx.config.services.map((s) => [s.name, s.healing]));
  const settingsFor = policySettingsResolver(ctx.config.healing, perService);
  // Learned policy files are read and verified before anything runs: a bad file stops the start (exit 2).
  const loaded = new Set<string>();
  const loadLearned = (): void => {
    for (const name of ['', ...perService.keys()]) {
      const s = settingsFor(name);
      if (s.policy !== 'learned' || loaded.has(s.policyFile)) continue;
      provideLearnedModel(s.policyFile, loadPolicyFile(s.policyFile));
      loaded.add(s.policyFile);
      log.info('learned policy loaded', { file: s.policyFile });
    }
  };
  loadLearned();
  const engine = new HealingEngine({ clock: ctx.clock, mesh: ctx.mesh, stats: ctx.stats, settingsFor, tickMs: ctx.config.stats.tickMs, log, urgent: 'microtask' });
  const unregister = registerEngineMetrics(ctx.metrics, engine);
  const unregisterLearn = registerLearnMetrics(ctx.metrics, engine);
  registerLearnRoutes(ctx.admin, engine, ctx.clock);
  engine.start();
  const prober = new EjectedEndpointProber(ctx.clock, ctx.mesh, engine, (name) => settingsFor(name));
  prober.start();
  log.info('healing engine started', { policy: settingsFor('').policy, tickMs: ctx.config.stats.tickMs });
  return {
    name: 'healing',
    engine,
    submitVerdict: (v) => engine.submitVerdict(v),
    settingsFor,
    reconfigure(healing: PolicySettings) {
      const previous = settingsFor.meshWide() ?? {};
      settingsFor.reset(healing);
      try {
        loadLearned();
      } catch (err) {
        // Keep healing with the settings in force rather than run a policy without its table.
        settingsFor.reset(previous);
        log.error('healing settings not changed: the learned policy file cannot be used', { err });
        return;
      }
      engine.reconfigure(settingsFor);
      log.info('healing settings changed', { policy: settingsFor('').policy });
    },
    async close() {
      await prober.stop();
      engine.stop();
      unregister();
      unregisterLearn();
      for (const file of loaded) withdrawLearnedModel(file);
    },
  };
};

function registerEngineMetrics(registry: import('../admin/metrics-registry.js').Registry, engine: HealingEngine): () => void {
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

/**
 * Active probes of ejected endpoints only (never of endpoints in rotation: their real traffic is the
 * evidence). Every `probe.intervalMs` an ejected endpoint gets an HTTP GET of `probe.path` on a fresh
 * connection (any answer below 500 passes), or a bare TCP connect when the path is empty; no answer
 * within `probe.timeoutMs` fails. Results go to the engine, which hands them to the policy.
 */
export class EjectedEndpointProber {
  private timer: TimerHandle | undefined;
  private readonly lastSent = new Map<string, number>();
  private readonly inFlight = new Set<string>();
  private stopped = false;
  sent = 0;

  constructor(
    private readonly clock: Clock,
    private readonly mesh: MeshState,
    private readonly engine: { submitProbe(target: string, ok: boolean): boolean },
    private readonly settingsFor: (service: string) => ResolvedPolicySettings,
    private readonly periodMs = 100,
  ) {}

  start(): void {
    this.timer ??= this.clock.setInterval(() => this.scan(), this.periodMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
  }

  /** One pass: probe every ejected endpoint whose interval has elapsed. */
  scan(): void {
    const now = this.clock.now();
    const snap = this.mesh.snapshot();
    for (const ev of snap.endpoints.values()) { // values(): no [key, value] pair allocated per endpoint
      const id = ev.spec.id;
      if (!isProbed(ev.health)) {
        this.lastSent.delete(id);
        continue;
      }
      const cfg = this.settingsFor(ev.spec.service);
      if (cfg.policy !== 'meshmedic' || !cfg.probe.enabled || this.inFlight.has(id)) continue;
      if (now - (this.lastSent.get(id) ?? -Infinity) < cfg.probe.intervalMs) continue;
      this.lastSent.set(id, now);
      this.inFlight.add(id);
      this.sent++;
      void this.probe(ev.spec.host, ev.spec.port, cfg.probe.path, cfg.probe.timeoutMs).then((ok) => {
        this.inFlight.delete(id);
        if (!this.stopped) this.engine.submitProbe(id, ok);
      });
    }
    if (this.lastSent.size > snap.endpoints.size) for (const id of this.lastSent.keys()) if (!snap.endpoints.has(id)) this.lastSent.delete(id);
  }

  private probe(host: string, port: number, path: string, timeoutMs: number): Promise<boolean> {
    return path === '' ? tcpProbe(host, port, timeoutMs) : httpProbe(host, port, path, timeoutMs);
  }
}

/** Ejected endpoints (not by an operator) and endpoints drained on a forecast are probed. */
export function isProbed(h: EndpointHealth): boolean {
  return (h.state === 'ejected' && h.source !== 'operator') || isTimedDrain(h);
}

