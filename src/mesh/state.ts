// The mesh state store: services, endpoints and their health. Health changes only through decisions;
// each change publishes a new frozen snapshot that readers (balancer, xDS, admin) use without locks.
import type { Clock } from '../core/clock.js';
import { INITIAL_HEALTH } from '../core/types.js';
import type { Decision, EndpointHealth, EndpointSpec, ServiceSpec } from '../core/types.js';
import { planPriorities, type PriorityPlan } from './priority.js';

export interface RoutingOptions {
  /** Envoy's overprovisioning factor (1.4): P0 sheds load once fewer than 1/1.4 = 71.4 % are healthy. */
  readonly overprovisioningFactor: number;
  /** Below this % of healthy endpoints (after overprovisioning) health is ignored. 0 disables panic. */
  readonly panicThresholdPct: number;
}

export const DEFAULT_ROUTING: RoutingOptions = Object.freeze({ overprovisioningFactor: 1.4, panicThresholdPct: 50 });

export interface EndpointView {
  readonly spec: EndpointSpec;
  readonly health: EndpointHealth;
  /** Stable small integer for this endpoint's life in this process: index into stats tables. */
  readonly slot: number;
}

export interface ServiceView {
  readonly name: string;
  readonly endpoints: readonly EndpointView[];
  readonly routing: RoutingOptions;
  /** Traffic share per priority and panic flag, derived from health. */
  readonly plan: PriorityPlan;
  /** Bumped whenever anything in this service changes. */
  readonly version: number;
}

export interface MeshSnapshot {
  readonly version: number;
  readonly at: number;
  readonly services: ReadonlyMap<string, ServiceView>;
  readonly endpoints: ReadonlyMap<string, EndpointView>;
}

/** A decision as recorded: with a sequence number and whether it changed anything. */
export interface RecordedDecision extends Decision {
  readonly seq: number;
  readonly applied: boolean;
  /** Why it was not applied, when it was not. */
  readonly refused?: string;
}

export type MeshListener = (snapshot: MeshSnapshot, changes: readonly RecordedDecision[]) => void;

export interface ServiceInput {
  readonly spec: ServiceSpec;
  readonly routing?: Partial<RoutingOptions>;
}

/** Whether an endpoint in this state takes ordinary (non-canary) traffic. */
export function isRoutable(h: EndpointHealth): boolean {
  return h.state === 'healthy' || h.state === 'degraded';
}

export class MeshState {
  private readonly clock: Clock;
  private snap: MeshSnapshot;
  private readonly slots = new Map<string, number>();
  private nextSlot = 0;
  private readonly freeSlots: number[] = [];
  private readonly listeners = new Set<MeshListener>();
  private readonly events: RecordedDecision[] = [];
  private readonly eventCapacity: number;
  private seq = 0;
  private serviceVersion = 0;

  constructor(clock: Clock, opts: { eventCapacity?: number } = {}) {
    this.clock = clock;
    this.eventCapacity = opts.eventCapacity ?? 1000;
    this.snap = Object.freeze({ version: 0, at: clock.now(), services: new Map(), endpoints: new Map() });
  }

  snapshot(): MeshSnapshot {
    return this.snap;
  }

  /** Highest slot number handed out so far + 1 (stats tables size themselves by it). */
  slotCapacity(): number {
    return this.nextSlot;
  }

  subscribe(fn: MeshListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Replace the set of services and endpoints (config load, discovery). Health of endpoints that
   * remain is kept; endpoints that disappear free their slot.
   */
  setServices(inputs: readonly ServiceInput[]): void {
    const old = this.snap;
    const services = new Map<string, ServiceView>();
    const endpoints = new Map<string, EndpointView>();
    const seen = new Set<string>();
    for (const input of inputs) {
      const prev = old.services.get(input.spec.name);
      const routing: RoutingOptions = Object.freeze({ ...DEFAULT_ROUTING, ...(prev?.routing ?? {}), ...(input.routing ?? {}) });
      const views: EndpointView[] = [];
      for (const spec of input.spec.endpoints) {
        if (seen.has(spec.id)) continue; // duplicates are rejected by config validation; keep the first
        seen.add(spec.id);
        const before = old.endpoints.get(spec.id);
        views.push(Object.freeze({ spec: Object.freeze(spec), health: before?.health ?? INITIAL_HEALTH, slot: this.slotFor(spec.id) }));
      }
      const view = this.buildService(input.spec.name, views, routing, prev);
      services.set(view.name, view);
      for (const ev of view.endpoints) endpoints.set(ev.spec.id, ev);
    }
    for (const id of old.endpoints.keys()) {
      if (!endpoints.has(id)) {
        const s = this.slots.get(id);
        if (s !== undefined) { this.slots.delete(id); this.freeSlots.push(s); }
      }
    }
    this.publish(services, endpoints, []);
  }

  /**
   * Apply a decision. Returns the recorded decision (applied or refused with a reason).
   * Guards live in the healing policy; this store only refuses what cannot be applied.
   */
  apply(decision: Decision): RecordedDecision {
    return this.applyAll([decision])[0]!;
  }

  /** Apply several decisions atomically: one snapshot, one notification. */
  applyAll(decisions: readonly Decision[]): RecordedDecision[] {
    const recorded: RecordedDecision[] = [];
    const touched = new Map<string, EndpointView[]>();
    const endpointsNow = new Map(this.snap.endpoints);
    for (const d of decisions) {
      if (d.action === 'failover') {
        // Service-level: the priority plan is derived from health; the decision is recorded for audit.
        const ok = this.snap.services.has(d.target);
        recorded.push(this.record(d, ok, ok ? undefined : `unknown service "${d.target}"`));
        continue;
      }
      const ev = endpointsNow.get(d.target);
      if (!ev) {
        recorded.push(this.record(d, false, `unknown endpoint "${d.target}"`));
        continue;
      }
      const health = nextHealth(ev.health, d);
      if (health === ev.health) {
        recorded.push(this.record(d, false, 'no change'));
        continue;
      }
      const nv: EndpointView = Object.freeze({ spec: ev.spec, health, slot: ev.slot });
      endpointsNow.set(d.target, nv);
      let list = touched.get(ev.spec.service);
      if (!list) touched.set(ev.spec.service, (list = []));
      list.push(nv);
      recorded.push(this.record(d, true));
    }
    if (touched.size > 0) {
      const services = new Map(this.snap.services);
      for (const name of touched.keys()) {
        const prev = services.get(name)!;
        const views = prev.endpoints.map((e) => endpointsNow.get(e.spec.id)!);
        services.set(name, this.buildService(name, views, prev.routing, prev));
      }
      this.publish(services, endpointsNow, recorded);
    } else if (recorded.length > 0) {
      for (const fn of this.listeners) safeCall(fn, this.snap, recorded);
    }
    return recorded;
  }

  /**
   * Take the health another process's mesh state decided (worker processes follow the one healing
   * engine): endpoints named in `health` get exactly that health, in one snapshot, without recording
   * decisions (the deciding process records them). Unknown ids are ignored.
   */
  adoptHealth(health: ReadonlyMap<string, EndpointHealth>): void {
    const endpointsNow = new Map(this.snap.endpoints);
    const touched = new Set<string>();
    for (const [id, h] of health) {
      const ev = endpointsNow.get(id);
      if (!ev || sameHealth(ev.health, h)) continue;
      endpointsNow.set(id, Object.freeze({ spec: ev.spec, health: Object.freeze({ ...h }), slot: ev.slot }));
      touched.add(ev.spec.service);
    }
    if (touched.size === 0) return;
    const services = new Map(this.snap.services);
    for (const name of touched) {
      const prev = services.get(name)!;
      services.set(name, this.buildService(name, prev.endpoints.map((e) => endpointsNow.get(e.spec.id)!), prev.routing, prev));
    }
    this.publish(services, endpointsNow, []);
  }

  /** Restore endpoints whose timed ejection or drain has run out (operator overrides, policy `none`). */
  expire(now = this.clock.now()): RecordedDecision[] {
    const due: Decision[] = [];
    for (const ev of this.snap.endpoints.values()) {
      const h = ev.health;
      if (h.until !== undefined && h.until <= now && (h.state === 'ejected' || h.state === 'draining')) {
        due.push({ action: 'restore', target: ev.spec.id, reason: 'expired', source: h.source === 'init' ? 'operator' : h.source, at: now, evidence: { previous: h.state, previousReason: h.reason } });
      }
    }
    return due.length ? this.applyAll(due) : [];
  }

  /** Decisions recorded after sequence number `since` (oldest first), at most `limit`. */
  eventsSince(since = 0, limit = 500): RecordedDecision[] {
    const out: RecordedDecision[] = [];
    for (const e of this.events) if (e.seq > since) out.push(e);
    return out.length > limit ? out.slice(out.length - limit) : out;
  }

  private record(d: Decision, applied: boolean, refused?: string): RecordedDecision {
    const r: RecordedDecision = Object.freeze({ ...d, seq: ++this.seq, applied, ...(refused ? { refused } : {}) });
    this.events.push(r);
    if (this.events.length > this.eventCapacity) this.events.splice(0, this.events.length - this.eventCapacity);
    return r;
  }

  private slotFor(id: string): number {
    let s = this.slots.get(id);
    if (s === undefined) {
      s = this.freeSlots.pop() ?? this.nextSlot++;
      this.slots.set(id, s);
    }
    return s;
  }

  private buildService(name: string, endpoints: EndpointView[], routing: RoutingOptions, prev: ServiceView | undefined): ServiceView {
    const maxP = endpoints.reduce((m, e) => Math.max(m, e.spec.priority), -1);
    const counts = Array.from({ length: maxP + 1 }, () => ({ healthy: 0, total: 0 }));
    for (const e of endpoints) {
      const c = counts[e.spec.priority]!;
      c.total++;
      if (isRoutable(e.health)) c.healthy++;
    }
    const plan = planPriorities(counts, routing.overprovisioningFactor, routing.panicThresholdPct);
    return Object.freeze({
      name,
      endpoints: Object.freeze(endpoints),
      routing,
      plan: Object.freeze({ load: Object.freeze(plan.load), panic: plan.panic }),
      version: Math.max(++this.serviceVersion, (prev?.version ?? 0) + 1),
    });
  }

  private publish(services: Map<string, ServiceView>, endpoints: Map<string, EndpointView>, changes: readonly RecordedDecision[]): void {
    this.snap = Object.freeze({ version: this.snap.version + 1, at: this.clock.now(), services, endpoints });
    for (const fn of this.listeners) safeCall(fn, this.snap, changes);
  }
}

function safeCall(fn: MeshListener, s: MeshSnapshot, c: readonly RecordedDecision[]): void {
  try {
    fn(s, c);
  } catch (err) {
    // A consumer's failure must never stop the others (fail open).
    process.emitWarning(`mesh listener failed: ${(err as Error).message}`, { code: 'MM_WARN_LISTENER' });
  }
}

/** The health an endpoint has after a decision (the same object when nothing changes). */
export function nextHealth(h: EndpointHealth, d: Decision): EndpointHealth {
  const until = d.durationMs && d.durationMs > 0 ? d.at + d.durationMs : undefined;
  switch (d.action) {
    case 'eject':
      // Counted for automatic ejections only: operator actions must not lengthen future automatic backoff.
      return Object.freeze({ state: 'ejected', weightFactor: 0, reason: d.reason, source: d.source, since: d.at, until, ejections: d.source === 'operator' ? h.ejections : h.ejections + 1 });
    case 'drain':
      if (h.state === 'draining' && h.until === until) return h;
      return Object.freeze({ state: 'draining', weightFactor: 0, reason: d.reason, source: d.source, since: d.at, until, ejections: h.ejections });
    case 'probation': {
      const w = clampWeight(d.weight ?? 0.05);
      if (h.state === 'probation' && h.weightFactor === w) return h;
      return Object.freeze({ state: 'probation', weightFactor: w, reason: d.reason, source: d.source, since: h.state === 'probation' ? h.since : d.at, until: undefined, ejections: h.ejections });
    }
    case 'weight': {
      const w = clampWeight(d.weight ?? 1);
      const state = w >= 1 ? 'healthy' : 'degraded';
      if (h.state === state && h.weightFactor === w) return h;
      return Object.freeze({ state, weightFactor: w, reason: d.reason, source: d.source, since: h.state === state ? h.since : d.at, until: undefined, ejections: h.ejections });
    }
    case 'restore':
      if (h.state === 'healthy' && h.weightFactor === 1) return h;
      return Object.freeze({ state: 'healthy', weightFactor: 1, reason: d.reason, source: d.source, since: d.at, until: undefined, ejections: h.ejections });
    case 'failover':
      return h;
  }
}

function sameHealth(a: EndpointHealth, b: EndpointHealth): boolean {
  return a.state === b.state && a.weightFactor === b.weightFactor && a.reason === b.reason && a.source === b.source && a.since === b.since && a.until === b.until && a.ejections === b.ejections;
}

function clampWeight(w: number): number {
  if (!Number.isFinite(w)) return 1;
  return Math.min(1, Math.max(0.001, w));
}
