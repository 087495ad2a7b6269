// The healing guards applied to operator ejections and drains from the admin API: the maximum ejection
// share and the panic guard (the same EjectionGuard the engine uses) and a per-service token bucket of the
// configured rate. An operator overrides them only explicitly ("force": true).
import { EjectionGuard, TokenBucket, type GuardRefusal } from '../heal/guards.js';
import type { MeshSnapshot } from '../mesh/state.js';
import type { ResolvedPolicySettings } from '../config/sections/healing.js';

export class OperatorGuards {
  /** Separate from the engine's buckets: operators and detectors do not spend each other's budget. */
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(private readonly settingsFor: (service: string) => ResolvedPolicySettings) {}

  /** Undefined when taking `id` out of rotation is allowed now (a token is then spent), else the refusal. */
  check(snap: MeshSnapshot, id: string, now: number): GuardRefusal | undefined {
    const ev = snap.endpoints.get(id);
    const service = ev ? snap.services.get(ev.spec.service) : undefined;
    if (!ev || !service) return undefined;
    const settings = this.settingsFor(service.name);
    // Not a failure verdict: no failover bypass beyond the maximum ejection share.
    const refusal = new EjectionGuard(service, settings.ejection).check(ev, false);
    if (refusal) return refusal;
    let bucket = this.buckets.get(service.name);
    if (!bucket) this.buckets.set(service.name, (bucket = new TokenBucket(settings.rateLimit.perSecond, settings.rateLimit.burst, now)));
    if (!bucket.take(now)) return { guard: 'rate_limit', evidence: { service: service.name, perSecond: settings.rateLimit.perSecond, burst: settings.rateLimit.burst } };
    return undefined;
  }
}
