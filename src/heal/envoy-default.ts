// The envoy-default policy: a faithful reimplementation of Envoy's outlier detection
// (source/common/upstream/outlier_detection_impl.cc) with its defaults, for side-by-side comparison.
// - consecutive 5xx / gateway counters notify the moment they reach the threshold and eject if the
//   enforcing roll passes; Envoy then resets its counter, so a streak is re-detected every N further
//   errors, whether the detection ejected or was refused (cap, enforcing roll); gateway enforcing is 0 %
//   by default (detected, not ejected);
// - every interval: un-eject hosts whose min(base × backoff, max) has passed, decrement the backoff of
//   hosts un-ejected for at least a full interval (Envoy ≥ 1.28), then run the success-rate and
//   failure-percentage detectors;
// - a host is ejected only if 100 × (ejected + 1) / hosts ≤ max_ejection_percent (cluster-wide), or
//   always_eject_one_host with none ejected: with defaults, fewer than 10 hosts never eject;
// - no probation: Envoy returns a host on time alone. Envoy's ejection-time jitter (default 0) is omitted.
import type { Decision } from '../core/types.js';
import type { ResolvedPolicySettings } from '../config/sections/healing.js';
import type { EndpointView } from '../mesh/state.js';
import { envoyFailurePercentage, envoySuccessRate } from '../detect/envoy.js';
import type { EndpointSignals, Verdict } from '../detect/types.js';
import type { HealingPolicy, PolicyFactory, PolicyInput, PolicyOptions } from './policy.js';
import { newCounters } from './policy.js';

interface HostMonitor {
  backoff: number;
  numEjections: number;
  /** When this policy ejected the host (undefined: not ejected by this policy). */
  ejectedAt: number | undefined;
  /** When it was last un-ejected (the backoff decrements only a full interval after). */
  unejectedAt: number | undefined;
  /** The part of the current streaks already spent on detections (Envoy resets its counters then). */
  spent5xx: number;
  spentGateway: number;
}

export const createEnvoyDefaultPolicy: PolicyFactory = (settings: ResolvedPolicySettings, opts: PolicyOptions): HealingPolicy => {
  const e = settings.envoy;
  const maxEjectMs = Math.max(e.maxEjectionTimeMs, e.baseEjectionTimeMs);
  const counters = newCounters();
  const monitors = new Map<string, HostMonitor>();
  let nextIntervalAt: number | undefined;
  const monitorOf = (id: string): HostMonitor => {
    let m = monitors.get(id);
    if (!m) monitors.set(id, (m = { backoff: 0, numEjections: 0, ejectedAt: undefined, unejectedAt: undefined, spent5xx: 0, spentGateway: 0 }));
    return m;
  };

  return {
    name: 'envoy-default',
    settings,
    counters,
    release(ids) {
      for (const id of ids) monitors.delete(id);
    },
    evaluate(input: PolicyInput): Decision[] {
      const { now, service, signals } = input;
      const out: Decision[] = [];
      const total = service.endpoints.length;
      // Hosts currently ejected by outlier detection (ejections_active).
      let active = 0;
      for (const ev of service.endpoints) {
        const m = monitors.get(ev.spec.id);
        if (m && m.ejectedAt !== undefined) {
          if (ev.health.state !== 'ejected') { m.ejectedAt = undefined; m.unejectedAt = now; } // restored by someone else (operator)
          else active++;
        }
      }
      const ejectHost = (ev: EndpointView, reason: string, enforcing: number, evidence: Record<string, number | string | boolean>): void => {
        const m = monitorOf(ev.spec.id);
        if (m.ejectedAt !== undefined || ev.health.state === 'ejected') return;
        const pct = (100 * (active + 1)) / total;
        if (!(pct <= e.maxEjectionPercent || (e.alwaysEjectOneHost && active === 0))) {
          counters.refusals.max_ejection_pct++;
          return;
        }
        if (!(opts.random() * 100 < enforcing)) return; // detected, not enforced
        if (m.backoff * e.baseEjectionTimeMs < maxEjectMs + e.baseEjectionTimeMs) m.backoff++;
        m.numEjections++;
        m.ejectedAt = now;
        active++;
        out.push({ action: 'eject', target: ev.spec.id, reason, source: 'local', at: now, evidence: { ...evidence, backoff: m.backoff, ejectMs: Math.min(e.baseEjectionTimeMs * m.backoff, maxEjectMs) } });
      };

      // Consecutive counters: Envoy notifies when its counter reaches the threshold and resets it, so a
      // streak is detected at N, 2N, 3N… errors. The stats keep the whole streak; the monitor remembers
      // how much of it past detections used (a success ends the streak: nothing is spent any more).
      for (let k = 0; k < signals.length; k++) {
        const s = signals[k]!;
        const ev = service.endpoints[k]!;
        const w = s.windows;
        if (!w || ev.health.state === 'ejected') continue;
        const m = monitorOf(s.id);
        if (w.consecutiveGateway < m.spentGateway) m.spentGateway = 0;
        if (w.consecutiveGateway - m.spentGateway >= e.consecutiveGatewayFailure) {
          m.spentGateway += e.consecutiveGatewayFailure * Math.floor((w.consecutiveGateway - m.spentGateway) / e.consecutiveGatewayFailure);
          ejectHost(ev, 'consecutive_gateway_failure', e.enforcingConsecutiveGatewayFailure, { consecutive: w.consecutiveGateway, threshold: e.consecutiveGatewayFailure });
        }
        if (w.consecutive5xx < m.spent5xx) m.spent5xx = 0;
        if (w.consecutive5xx - m.spent5xx >= e.consecutive5xx) {
          m.spent5xx += e.consecutive5xx * Math.floor((w.consecutive5xx - m.spent5xx) / e.consecutive5xx);
          ejectHost(ev, 'consecutive_5xx', e.enforcingConsecutive5xx, { consecutive: w.consecutive5xx, threshold: e.consecutive5xx });
        }
      }

      // The interval timer.
      nextIntervalAt ??= now + e.intervalMs;
      if (now >= nextIntervalAt) {
        while (nextIntervalAt <= now) nextIntervalAt += e.intervalMs;
        for (const ev of service.endpoints) {
          const m = monitorOf(ev.spec.id);
          if (m.ejectedAt === undefined) {
            // Envoy ≥ 1.28: only a host un-ejected for at least a full interval earns a decrement.
            if (m.backoff > 0 && m.unejectedAt !== undefined && now - m.unejectedAt >= e.intervalMs) m.backoff--;
            continue;
          }
          const ejectMs = Math.min(e.baseEjectionTimeMs * m.backoff, maxEjectMs);
          if (now - m.ejectedAt >= ejectMs) {
            out.push({ action: 'restore', target: ev.spec.id, reason: 'ejection_time_elapsed', source: 'local', at: now, evidence: { ejectedForMs: now - m.ejectedAt, backoff: m.backoff } });
            m.ejectedAt = undefined;
            m.unejectedAt = now;
            active--;
          }
        }
        const candidates: EndpointSignals[] = [];
        const views: EndpointView[] = [];
        for (let k = 0; k < signals.length; k++) {
          if (monitors.get(signals[k]!.id)?.ejectedAt !== undefined || service.endpoints[k]!.health.state === 'ejected') continue;
          candidates.push(signals[k]!);
          views.push(service.endpoints[k]!);
        }
        const found: Verdict[] = [];
        const newest = Math.floor(now / input.windowMs) - 1;
        const dInput = { now, completedEpoch: newest, endpoints: candidates, settings, intervalWindows: Math.max(1, Math.round(e.intervalMs / input.windowMs)) };
        envoySuccessRate.detect(dInput, found);
        envoyFailurePercentage.detect(dInput, found);
        for (const v of found) {
          const ev = views[candidates.findIndex((c) => c.id === v.target)]!;
          ejectHost(ev, v.detector === 'envoy_success_rate' ? 'success_rate' : 'failure_percentage', Number(v.evidence.enforcing), { ...v.evidence });
        }
      }
      return out;
    },
  };
};
