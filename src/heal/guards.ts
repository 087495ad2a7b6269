// Guards that always win over any detector, local or external: maximum ejection share per priority
// (and optionally locality) with always-eject-one, the panic guard, and a token-bucket rate limit.
import type { EndpointView, ServiceView } from '../mesh/state.js';
import { isRoutable } from '../mesh/state.js';
import { planPriorities } from '../mesh/priority.js';
import type { ResolvedPolicySettings } from '../config/sections/healing.js';

export type GuardName = 'max_ejection_pct' | 'panic' | 'rate_limit' | 'overload';

export interface GuardRefusal {
  readonly guard: GuardName;
  readonly evidence: Readonly<Record<string, number | string | boolean>>;
}

export function scopeKey(e: EndpointView, perLocality: boolean): string {
  const l = e.spec.locality;
  return perLocality ? `${e.spec.priority}|${l.region}|${l.zone}|${l.subzone}` : `${e.spec.priority}`;
}

/**
 * Decides whether one more endpoint may leave ordinary rotation. Built from a service view at the start
 * of an evaluation; `commit` accounts for ejections decided in the same evaluation.
 */
export class EjectionGuard {
  private readonly cfg: ResolvedPolicySettings['ejection'];
  private readonly service: ServiceView;
  private readonly scopeTotal = new Map<string, number>();
  private readonly scopeOut = new Map<string, number>();
  private readonly prioHealthy: number[] = [];
  private readonly prioTotal: number[] = [];

  constructor(service: ServiceView, cfg: ResolvedPolicySettings['ejection']) {
    this.cfg = cfg;
    this.service = service;
    for (const e of service.endpoints) {
      const k = scopeKey(e, cfg.perLocality);
      this.scopeTotal.set(k, (this.scopeTotal.get(k) ?? 0) + 1);
      if (!isRoutable(e.health)) this.scopeOut.set(k, (this.scopeOut.get(k) ?? 0) + 1);
      const p = e.spec.priority;
      while (this.prioTotal.length <= p) {
        this.prioTotal.push(0);
        this.prioHealthy.push(0);
      }
      this.prioTotal[p]!++;
      if (isRoutable(e.health)) this.prioHealthy[p]!++;
    }
  }

  /** Would taking `e` out of rotation be allowed? `hard`: a failure verdict (eligible for failover bypass). */
  check(e: EndpointView, hard: boolean): GuardRefusal | undefined {
    if (!isRoutable(e.health)) return undefined; // already out: nothing changes
    const k = scopeKey(e, this.cfg.perLocality);
    const total = this.scopeTotal.get(k) ?? 1;
    const out = this.scopeOut.get(k) ?? 0;
    const pct = (100 * (out + 1)) / total;
    const p = e.spec.priority;
    // Panic: after this ejection, would the service ignore health altogether?
    const counts = this.prioTotal.map((t, i) => ({ total: t, healthy: this.prioHealthy[i]! - (i === p ? 1 : 0) }));
    const plan = planPriorities(counts, this.service.routing.overprovisioningFactor, this.service.routing.panicThresholdPct);
    if (this.cfg.panicGuard && plan.panic) {
      return { guard: 'panic', evidence: { healthyAfter: counts.reduce((a, c) => a + c.healthy, 0), total: counts.reduce((a, c) => a + c.total, 0), panicThresholdPct: this.service.routing.panicThresholdPct } };
    }
    if (pct <= this.cfg.maxEjectionPct || (this.cfg.alwaysEjectOne && out === 0)) return undefined;
    // Failover bypass: a hard failure may go beyond the cap when another priority has healthy endpoints
    // that the plan spills this priority's traffic to (the cap protects capacity; here capacity exists).
    if (this.cfg.failoverBypass && hard) {
      let elsewhere = 0;
      for (let i = 0; i < counts.length; i++) if (i !== p) elsewhere += counts[i]!.healthy;
      if (elsewhere > 0) return undefined;
    }
    return { guard: 'max_ejection_pct', evidence: { scope: k, outAfter: out + 1, scopeTotal: total, pctAfter: Math.round(pct * 10) / 10, maxEjectionPct: this.cfg.maxEjectionPct } };
  }

  /** Account for an endpoint taken out in this evaluation. */
  commit(e: EndpointView): void {
    if (!isRoutable(e.health)) return;
    const k = scopeKey(e, this.cfg.perLocality);
    this.scopeOut.set(k, (this.scopeOut.get(k) ?? 0) + 1);
    this.prioHealthy[e.spec.priority]!--;
  }
}

/** Token bucket: `perSecond` tokens a second, at most `burst` saved. Time comes from the caller. */
export class TokenBucket {
  private tokens: number;
  private last: number;
  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  take(now: number): boolean {
    if (now > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.perSecond);
      this.last = now;
    }
    if (this.tokens >= 1 - 1e-9) { // tolerance: many small refills must add up to a whole token
      this.tokens -= 1;
      return true;
    }
    return false;
  }

  available(): number {
    return this.tokens;
  }
}
