// The healing engine: on every tick (injected clock) it turns completed stats windows into per-endpoint
// figures, runs each service's policy and applies the decisions to the mesh state. The same engine runs
// in the sidecar, the simulator and the tests. It fails open: a policy that throws is logged and counted,
// and the mesh keeps its current health (the proxy keeps forwarding). Per-endpoint signals exist only for
// services in use (see ServiceRuntime.signals): a sidecar that knows thousands of endpoints holds them
// for the few it talks to.
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import { silentLogger } from '../core/log.js';
import type { MeshSnapshot, MeshState, ServiceView } from '../mesh/state.js';
import type { EndpointWindows, FailureHook, StatsTable } from '../stats/window.js';
import type { ResolvedPolicySettings } from '../config/sections/healing.js';
import { FeatureRing, OUTCOME_SCRATCH } from '../detect/features.js';
import { newBaseline, newErrorRun, type EndpointSignals } from '../detect/types.js';
import { scopeKey } from './guards.js';
import type { ExternalVerdict, HealingPolicy, ProbeResult } from './policy.js';
import { getPolicy } from './registry.js';

export interface HealingEngineOptions {
  readonly clock: Clock;
  readonly mesh: MeshState;
  readonly stats: StatsTable;
  /** Settings of a service (mesh-wide defaults merged with the service's own). */
  settingsFor: (service: string) => ResolvedPolicySettings;
  /** Evaluation period, ms (config.stats.tickMs). */
  readonly tickMs: number;
  readonly log?: Logger;
  /** Random source for policies (Envoy's enforcing rolls); seeded in the simulator. */
  readonly random?: () => number;
  /**
   * How a failure that reaches a consecutive threshold is handled: `microtask` (sidecar: right after the
   * proxy's callback returns), `sync` (simulator: at once), `tick` (wait for the next tick).
   */
  readonly urgent?: 'microtask' | 'sync' | 'tick';
  /**
   * Called once per completed window per service, before its evaluation: seeds endpoints without a
   * warmed-up baseline from the mesh's federated baseline (src/learn/federated.ts). Absent: no seeding.
   */
  adoptBaselines?: (service: string, signals: readonly EndpointSignals[], settings: ResolvedPolicySettings) => void;
  /**
   * Keep signals for every known service from its first view on and never release them, instead of only
   * for services in use (ServiceRuntime.signals). Costs ~3 KB per known endpoint; tests compare the two.
   */
  readonly allSignals?: boolean;
}

export interface EngineCounters {
  ticks: number;
  evaluations: number;
  urgentEvaluations: number;
  policyErrors: number;
  decisionsApplied: number;
  externalAccepted: number;
  externalRejected: number;
}

interface ServiceRuntime {
  readonly name: string;
  /**
   * Built at the service's first evaluation: most services a sidecar knows never have traffic, and a
   * policy holds ~2 KB of state and closures (200 idle services: ~0.4 MB). Kept after that (its counters
   * are exported).
   */
  policy: HealingPolicy | undefined;
  settings: ResolvedPolicySettings;
  view: ServiceView | undefined;
  /**
   * Signals of every endpoint of the service while it is in use, none while it is not. A service is in
   * use from the first tick (or urgent evaluation) at which it is not quiet (see quiet(): a request in
   * the stats ring, an endpoint not healthy, a verdict or probe submitted) and is released once it has
   * been quiet for releaseAfterWindows windows. Its signals are created together, never one endpoint
   * alone: the peer detectors count the idle members of a service too (starved_latency's window median).
   */
  signals: EndpointSignals[];
  /** The signals by endpoint id, while the service is in use (none while not: ~0.2 KB per idle service). */
  byId: Map<string, EndpointSignals> | undefined;
  inUse: boolean;
  /** First window of the current quiet spell (-1: not quiet). */
  quietSince: number;
  /**
   * Windows whose figures were pushed to this service's feature rings, oldest first (at most a ring's
   * capacity). Signals created later get an empty entry for each, as if they had existed all along.
   */
  readonly pushed: number[];
  /**
   * While not in use: endpoints that joined the view after its first one, and the first window pushed
   * after (created with the first such endpoint: a service whose endpoints never change has none).
   */
  joined: Map<string, number> | undefined;
  /** First window pushed after the runtime was created (it meets its first view before any push). */
  readonly bornEpoch: number;
  /**
   * This runtime's failure hook, on the windows of its view's endpoints (or waiting for the windows their
   * first request creates: StatsTable.hook). Which slots carry it is not kept: it is on a slot of the
   * synced view (rt.view) when the stats table holds this very function there (StatsTable.unhook takes
   * off only the hook it is given), so no map of slots per service (~0.5 KB for 10 endpoints).
   */
  readonly hook: (w: EndpointWindows) => void;
  /** The hook with the thresholds in force (hookAt, hookRefusedAt), as the stats table puts it on windows. */
  failureHook: FailureHook;
  lastEpoch: number;
  external: ExternalVerdict[];
  probes: ProbeResult[];
  urgent: boolean;
  hookAt: number;
  /** Refused connections in a row at which the policy may act (0 = it never acts on refusals alone). */
  hookRefusedAt: number;
}

const MAX_EXTERNAL = 1000;
/** Least quiet windows before a service's signals are released (see ServiceRuntime.signals). */
export const RELEASE_AFTER_WINDOWS = 60;
const NO_PROBES: readonly ProbeResult[] = Object.freeze([]);
/** Placeholder while a runtime is built (its hook closes over the runtime). */
const NO_HOOK: FailureHook = Object.freeze({ hook: () => {}, at: 0, refusedAt: 0 });

export class HealingEngine {
  readonly counters: EngineCounters = { ticks: 0, evaluations: 0, urgentEvaluations: 0, policyErrors: 0, decisionsApplied: 0, externalAccepted: 0, externalRejected: 0 };
  private readonly opts: HealingEngineOptions;
  private readonly log: Logger;
  private readonly windowMs: number;
  private readonly runtimes = new Map<string, ServiceRuntime>();
  private readonly scratchCounts = OUTCOME_SCRATCH();
  private readonly ringCapacity: number;
  /** Quiet windows after which a service's signals are released (documented in docs/kubernetes.md). */
  readonly releaseAfterWindows: number;
  private timer: TimerHandle | undefined;
  private urgentScheduled = false;
  private lastSnapshot: MeshSnapshot | undefined;
  private readonly runUrgentBound: () => void;
  /** See HealingEngineOptions.adoptBaselines; settable by a component started after the engine. */
  adoptBaselines: HealingEngineOptions['adoptBaselines'];

  constructor(opts: HealingEngineOptions) {
    this.opts = opts;
    this.log = opts.log ?? silentLogger;
    this.windowMs = opts.stats.opts.windowMs;
    this.runUrgentBound = () => this.runUrgent();
    this.ringCapacity = Math.max(16, opts.stats.opts.windows + 6);
    // Past a whole feature ring and stats ring of quiet windows, every figure a detector could read is
    // empty; a minute at the default 1 s windows, so that a service called now and then keeps what it learned.
    this.releaseAfterWindows = Math.max(RELEASE_AFTER_WINDOWS, this.ringCapacity + opts.stats.opts.windows);
    this.adoptBaselines = opts.adoptBaselines;
  }

  start(): void {
    if (this.timer) return;
    this.timer = this.opts.clock.setInterval(() => this.tick(), this.opts.tickMs);
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
    for (const rt of this.runtimes.values()) this.unhookAll(rt);
  }

  /** The policy running for a service (from its first evaluation: a service never in use has none). */
  policyOf(service: string): HealingPolicy | undefined {
    return this.runtimes.get(service)?.policy;
  }

  /** The settings a service's policy runs (or will run) with, for a service the engine has seen. */
  settingsOf(service: string): ResolvedPolicySettings | undefined {
    return this.runtimes.get(service)?.settings;
  }

  /**
   * New settings (annotations changed, config reloaded): each service's policy is rebuilt from them (one
   * not built yet is built from them at its first evaluation).
   * Learned signals (baselines, usual ratios, window figures) are kept; the policies' own state
   * (backoff levels, probation timers) starts afresh, and current health is left as it is.
   */
  reconfigure(settingsFor: (service: string) => ResolvedPolicySettings): void {
    this.opts.settingsFor = settingsFor;
    for (const rt of this.runtimes.values()) {
      const settings = settingsFor(rt.name);
      rt.settings = settings;
      if (rt.policy) rt.policy = this.newPolicy(settings);
      rt.hookAt = hookThreshold(settings);
      rt.hookRefusedAt = refusedHookThreshold(settings);
      this.unhookAll(rt); // before the view is forgotten: the hook is on its slots
      rt.view = undefined; // re-sync: scope keys and hooks follow the new settings
      rt.failureHook = { hook: rt.hook, at: rt.hookAt, refusedAt: rt.hookRefusedAt };
    }
  }

  /** Services the engine has seen. */
  serviceNames(): string[] {
    return [...this.runtimes.keys()];
  }

  /** Signals of a service's endpoints while it is in use, else none (read-only use: admin, tests). */
  signalsOf(service: string): readonly EndpointSignals[] {
    return this.runtimes.get(service)?.signals ?? [];
  }

  /**
   * A verdict from outside (gossiped peer observations past their quorum, the predictor). It is judged at
   * the next evaluation by the service's policy, under the same guards as local verdicts. Returns false
   * (and counts it) when the target is unknown or the verdict is malformed.
   */
  submitVerdict(v: ExternalVerdict): boolean {
    const ev = v && typeof v.target === 'string' ? this.opts.mesh.snapshot().endpoints.get(v.target) : undefined;
    const ok = ev !== undefined && (v.source === 'peer' || v.source === 'predicted') && (v.severity === 'eject' || v.severity === 'degrade' || v.severity === 'drain');
    if (!ok) {
      this.counters.externalRejected++;
      return false;
    }
    const rt = this.runtimes.get(ev.spec.service) ?? this.createRuntime(ev.spec.service);
    if (rt.external.length >= MAX_EXTERNAL) rt.external.shift();
    rt.external.push(v);
    this.counters.externalAccepted++;
    return true;
  }

  /**
   * The result of an active probe of an ejected endpoint, handed to its policy at the next evaluation.
   * Returns false when the target is unknown.
   */
  submitProbe(target: string, ok: boolean): boolean {
    const ev = typeof target === 'string' ? this.opts.mesh.snapshot().endpoints.get(target) : undefined;
    if (!ev) return false;
    const rt = this.runtimes.get(ev.spec.service) ?? this.createRuntime(ev.spec.service);
    if (rt.probes.length >= MAX_EXTERNAL) rt.probes.shift();
    rt.probes.push({ target, ok: ok === true, at: this.opts.clock.now() });
    // A passing probe may end an ejection: judged at once, as a failure run is, rather than at the next
    // tick (up to tickMs later, during which the recovered endpoint gets no traffic). A failing probe
    // changes nothing (it keeps the endpoint out) and waits for the tick.
    if (ok === true) this.scheduleUrgent(rt);
    return true;
  }

  /** One evaluation of every service. Called by the timer; callable directly by tests and the simulator. */
  tick(): void {
    this.counters.ticks++;
    const now = this.opts.clock.now();
    const epoch = Math.floor(now / this.windowMs);
    let snap;
    try {
      snap = this.opts.mesh.snapshot();
    } catch (err) {
      this.fail('snapshot', err);
      return;
    }
    for (const view of snap.services.values()) {
      const rt = this.runtimes.get(view.name) ?? this.createRuntime(view.name);
      try {
        this.sync(rt, view);
        const quiet = this.quiet(rt, view, epoch);
        if (!quiet) this.use(rt, view);
        let completed = -1;
        if (rt.lastEpoch < epoch - 1) {
          // Figures of every window completed since the last tick (older ones are gone from the ring).
          const first = Math.max(rt.lastEpoch + 1, epoch - (this.opts.stats.opts.windows - 1));
          for (let e = first; e <= epoch - 1; e++) {
            for (const s of rt.signals) s.features.push(e, s.windows, this.scratchCounts);
            if (rt.pushed.length === this.ringCapacity) rt.pushed.shift();
            rt.pushed.push(e);
          }
          rt.lastEpoch = epoch - 1;
          completed = epoch - 1;
          this.adoptBaselines?.(rt.name, rt.signals, rt.settings);
        }
        if (quiet) {
          if (rt.quietSince < 0) rt.quietSince = epoch;
          else if (rt.inUse && !this.opts.allSignals && epoch - rt.quietSince >= this.releaseAfterWindows) this.release(rt);
          continue;
        }
        rt.quietSince = -1;
        this.evaluate(rt, view, completed, now);
      } catch (err) {
        this.fail(view.name, err);
      }
    }
    // Services can only have gone when the snapshot changed; no key array per tick otherwise.
    if (snap !== this.lastSnapshot) {
      this.lastSnapshot = snap;
      for (const name of [...this.runtimes.keys()]) if (!snap.services.has(name)) this.dropRuntime(name);
    }
  }

  /**
   * Nothing can change for this service: no endpoint has had a request in the whole ring, every endpoint
   * is healthy and nothing was submitted, so its detectors would see only empty windows. Evaluation is
   * skipped: at cluster scale most known services are like this, and evaluating them allocated ~13 MB/s
   * for 2,000 endpoints.
   */
  private quiet(rt: ServiceRuntime, view: ServiceView, epoch: number): boolean {
    if (rt.urgent || rt.external.length > 0 || rt.probes.length > 0) return false;
    for (const ev of view.endpoints) if (ev.health.state !== 'healthy') return false;
    const ring = this.opts.stats.opts.windows;
    for (const ev of view.endpoints) {
      const w = this.opts.stats.get(ev.slot);
      if (w !== undefined && epoch - w.lastEpoch <= ring) return false;
    }
    return true;
  }

  /** Create the signals of every endpoint of the service (it is about to be evaluated). */
  private use(rt: ServiceRuntime, view: ServiceView): void {
    if (rt.inUse) return;
    rt.inUse = true;
    this.syncSignals(rt, view, true);
    rt.joined = undefined;
  }

  /**
   * Drop the signals of a service quiet for releaseAfterWindows, and what its policy keeps per endpoint:
   * when it is used again, each endpoint is judged like one that never had traffic.
   */
  private release(rt: ServiceRuntime): void {
    rt.policy?.release?.(rt.byId ? [...rt.byId.keys()] : []);
    rt.signals = [];
    rt.byId = undefined;
    rt.inUse = false;
  }

  private createRuntime(name: string): ServiceRuntime {
    const settings = this.opts.settingsFor(name);
    const lastEpoch = Math.floor(this.opts.clock.now() / this.windowMs) - 1;
    const rt: ServiceRuntime = {
      name,
      policy: undefined,
      settings,
      view: undefined,
      signals: [],
      byId: undefined,
      inUse: false,
      quietSince: -1,
      pushed: [],
      joined: undefined,
      bornEpoch: lastEpoch + 1,
      hook: (w) => this.onFailure(rt, w),
      lastEpoch,
      external: [],
      probes: [],
      urgent: false,
      hookAt: hookThreshold(settings),
      hookRefusedAt: refusedHookThreshold(settings),
      failureHook: NO_HOOK,
    };
    rt.failureHook = { hook: rt.hook, at: rt.hookAt, refusedAt: rt.hookRefusedAt };
    this.runtimes.set(name, rt);
    return rt;
  }

  private newPolicy(settings: ResolvedPolicySettings): HealingPolicy {
    const factory = getPolicy(settings.policy) ?? getPolicy('none')!;
    return factory(settings, { random: this.opts.random ?? Math.random });
  }

  private dropRuntime(name: string): void {
    const rt = this.runtimes.get(name);
    if (!rt) return;
    this.unhookAll(rt);
    this.runtimes.delete(name);
  }

  /**
   * Align the runtime with the service view (new endpoints, removed ones, health): failure hooks on every
   * endpoint's windows, and while the service is in use, its signals.
   */
  private sync(rt: ServiceRuntime, view: ServiceView): void {
    if (rt.view === view) return;
    if (this.opts.allSignals) rt.inUse = true;
    const seen = new Set<string>();
    const slots = new Set<number>();
    const hooking = rt.hookAt > 0 && this.opts.urgent !== 'tick';
    for (const ev of view.endpoints) {
      seen.add(ev.spec.id);
      slots.add(ev.slot);
      // On the windows if the endpoint has them, else on the windows its first request creates.
      if (hooking) this.opts.stats.hook(ev.slot, rt.failureHook);
    }
    // Off the slots that left the view (an endpoint removed, or given another slot).
    if (rt.view !== undefined) for (const ev of rt.view.endpoints) if (!slots.has(ev.slot)) this.opts.stats.unhook(ev.slot, rt.hook);
    if (rt.inUse) this.syncSignals(rt, view, false);
    else if (rt.view !== undefined) {
      // Not in use: remember when endpoints joined, for the feature rings they get once it is.
      const before = new Set<string>();
      for (const ev of rt.view.endpoints) before.add(ev.spec.id);
      for (const id of seen) if (!before.has(id) && !rt.joined?.has(id)) (rt.joined ??= new Map()).set(id, rt.lastEpoch + 1);
      if (rt.joined !== undefined) for (const id of rt.joined.keys()) if (!seen.has(id)) rt.joined.delete(id);
    }
    rt.view = view;
  }

  /** Align the signals of a service in use with its view; `filled`: the service has just come into use. */
  private syncSignals(rt: ServiceRuntime, view: ServiceView, filled: boolean): void {
    const perLocality = rt.settings.ejection.perLocality;
    const next: EndpointSignals[] = [];
    const seen = new Set<string>();
    for (const ev of view.endpoints) {
      let s = rt.byId?.get(ev.spec.id);
      if (!s) {
        s = {
          id: ev.spec.id,
          spec: ev.spec,
          health: ev.health,
          slot: ev.slot,
          windows: undefined,
          features: this.newFeatureRing(rt, ev.spec.id, filled),
          latencyStrikes: 0,
          latencyEjectStrikes: 0,
          usualLogRatio: 0,
          usualN: 0,
          latencyP50: newBaseline(),
          latencyP90: newBaseline(),
          errors: newBaseline(),
          errorRun: newErrorRun(),
          scope: '',
        };
        (rt.byId ??= new Map()).set(s.id, s);
      }
      s.spec = ev.spec;
      s.health = ev.health;
      s.slot = ev.slot;
      s.scope = scopeKey(ev, perLocality);
      s.windows = this.opts.stats.ensure(ev.slot);
      seen.add(s.id);
      next.push(s);
    }
    if (rt.byId !== undefined) for (const id of rt.byId.keys()) if (!seen.has(id)) rt.byId.delete(id);
    rt.signals = next;
  }

  /**
   * The feature ring of an endpoint whose signals are created now: an empty entry for each window pushed
   * to the service since the endpoint joined it, so that it is the ring it would have had if its signals
   * had existed all along (the windows of a quiet service are all empty).
   */
  private newFeatureRing(rt: ServiceRuntime, id: string, filled: boolean): FeatureRing {
    const ring = new FeatureRing(this.ringCapacity);
    if (filled) {
      const from = rt.joined?.get(id) ?? rt.bornEpoch;
      for (const e of rt.pushed) if (e >= from) ring.push(e, undefined, this.scratchCounts);
    }
    return ring;
  }

  private unhookAll(rt: ServiceRuntime): void {
    if (rt.view !== undefined) for (const ev of rt.view.endpoints) this.opts.stats.unhook(ev.slot, rt.hook);
  }

  private evaluate(rt: ServiceRuntime, view: ServiceView, completed: number, now: number): void {
    const external = rt.external.length ? rt.external.splice(0) : [];
    const probes = rt.probes.length ? rt.probes.splice(0) : NO_PROBES;
    let decisions;
    try {
      this.counters.evaluations++;
      rt.policy ??= this.newPolicy(rt.settings);
      decisions = rt.policy.evaluate({ now, service: view, signals: rt.signals, completedEpoch: completed, windowMs: this.windowMs, external, probes });
    } catch (err) {
      this.fail(rt.name, err);
      return;
    }
    if (decisions.length === 0) return;
    const recorded = this.opts.mesh.applyAll(decisions);
    for (const r of recorded) {
      if (!r.applied) continue;
      this.counters.decisionsApplied++;
      if (r.action === 'eject' || r.action === 'probation') {
        // As Envoy does on (un)ejection: start counting afresh, so stale streaks do not re-trigger.
        const s = rt.byId?.get(r.target);
        s?.windows?.resetConsecutive();
        if (s) s.latencyStrikes = s.latencyEjectStrikes = 0;
      }
    }
    // Health changed: the next evaluation must see the new view.
    const nv = this.opts.mesh.snapshot().services.get(rt.name);
    if (nv) this.sync(rt, nv);
  }

  private onFailure(rt: ServiceRuntime, _w: EndpointWindows): void {
    if (this.runtimes.get(rt.name) !== rt) return;
    this.scheduleUrgent(rt);
  }

  /** Evaluate this service outside the tick: at once (`sync`), after the current callback (`microtask`), or not (`tick`). */
  private scheduleUrgent(rt: ServiceRuntime): void {
    if (this.opts.urgent === 'tick') return;
    rt.urgent = true;
    if (this.opts.urgent === 'sync') this.runUrgent();
    else if (!this.urgentScheduled) {
      this.urgentScheduled = true;
      queueMicrotask(this.runUrgentBound);
    }
  }

  private runUrgent(): void {
    this.urgentScheduled = false;
    const snap = this.opts.mesh.snapshot();
    const now = this.opts.clock.now();
    for (const rt of this.runtimes.values()) {
      if (!rt.urgent) continue;
      rt.urgent = false;
      const view = snap.services.get(rt.name);
      if (!view) continue;
      try {
        this.counters.urgentEvaluations++;
        this.sync(rt, view);
        this.use(rt, view);
        this.evaluate(rt, view, -1, now);
      } catch (err) {
        this.fail(rt.name, err);
      }
    }
  }

  private fail(where: string, err: unknown): void {
    this.counters.policyErrors++;
    // Fail open: keep the current health; the proxy keeps forwarding.
    this.log.error('healing evaluation failed; health left unchanged', { service: where, err });
  }
}

/** The lowest consecutive-failure count at which the policy may act (0 = it never does). */
function hookThreshold(s: ResolvedPolicySettings): number {
  switch (s.policy) {
    case 'meshmedic':
    case 'learned': // the meshmedic rules run underneath as its shield
      return s.consecutive.enabled ? Math.min(s.consecutive.errors5xx, s.consecutive.gateway, s.consecutive.localOrigin, s.probation.failConsecutive) : s.probation.failConsecutive;
    case 'envoy-default':
      return Math.min(s.envoy.consecutive5xx, s.envoy.consecutiveGatewayFailure);
    default:
      return 0;
  }
}

/** The refused-connection run at which the policy may act (0 = none: the ordinary threshold applies). */
function refusedHookThreshold(s: ResolvedPolicySettings): number {
  return (s.policy === 'meshmedic' || s.policy === 'learned') && s.consecutive.enabled ? s.consecutive.refused : 0;
}
