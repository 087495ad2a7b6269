// The meshmedic policy: every detector, ejection with backoff, re-admission through probation judged on
// the canary traffic's observed health, de-weighting with an automatic ramp back, failover audit, and
// the guards (max ejection share, always-eject-one, panic, overload, rate limit) that always win.
import { Outcome, OUTCOME_COUNT, type Decision, type DecisionSource } from '../core/types.js';
import type { ResolvedPolicySettings } from '../config/sections/healing.js';
import type { EndpointView } from '../mesh/state.js';
import { isRoutable } from '../mesh/state.js';
import { CONSECUTIVE_DETECTORS, consecutiveVerdicts } from '../detect/consecutive.js';
import { peerLatency, peerSuccess, usualRatio } from '../detect/peer.js';
import { errorBaseline, latencyBaseline } from '../detect/baseline.js';
import { starvedLatency } from '../detect/starved.js';
import { peerErrorCusum } from '../detect/error-cusum.js';
import { medianInPlace } from '../detect/robust.js';
import type { DetectionInput, EndpointSignals, Verdict } from '../detect/types.js';
import { EjectionGuard, TokenBucket } from './guards.js';
import type { ExternalVerdict, HealingPolicy, PolicyFactory, PolicyInput } from './policy.js';
import { isTimedDrain, newCounters } from './policy.js';
import { ServicePredictor } from '../learn/prediction.js';

interface EndpointState {
  /** Backoff level: the next ejection lasts min(baseMs × (level + 1), maxMs). */
  level: number;
  lastLevelChange: number;
  /** When an ejected endpoint goes to probation. */
  readmitAt: number;
  /** Probation: first window whose figures count as canary traffic, and when the canary last widened. */
  probationEpoch: number;
  lastWiden: number;
  /** The last window in which the endpoint was ramped back up (one step per window). */
  lastRampEpoch: number;
  /**
   * Probing: a probation endpoint whose priority receives no traffic at all (its whole locality is out)
   * gets ordinary traffic at a low weight instead, judged by the same canary rules.
   */
  probing: boolean;
  /** Active probes while ejected: consecutive passes, and when the last result arrived (0: none yet). */
  probePasses: number;
  lastProbeAt: number;
  /** The last ejection was for failures, which a probe sees; a latency ejection is re-tested on the timer. */
  probeable: boolean;
  /** The current probation began because probes passed. */
  viaProbe: boolean;
  /** The last ejection came from a run of consecutive failures (a hard fault, which probes see whole);
   *  statistical detectors catch partial faults, to which a passing probe may be blind. */
  hardFault: boolean;
  /** Passing probes in a row needed before probation, from the failure rate the ejection was for (see probePassesFor). */
  passesNeeded: number;
}

/**
 * A probe of an endpoint that still fails a share r of its requests passes with probability 1 − r: after
 * an ejection for a partial fault, one passing probe is weak evidence that it is over (at 30 % it passes
 * 7 times in 10), and each premature probation sends user requests to the fault. So many passes in a row
 * are asked that an endpoint still failing at the rate it was ejected for shows them at most this often.
 */
const PROBE_MISS = 0.05;

const SEVERITY_RANK = { eject: 3, drain: 2, degrade: 1 } as const;

interface Pending {
  verdict: Verdict;
  source: DecisionSource;
}

export const createMeshmedicPolicy: PolicyFactory = (settings: ResolvedPolicySettings): HealingPolicy => {
  const counters = newCounters();
  const states = new Map<string, EndpointState>();
  let bucket: TokenBucket | undefined;
  let lastPlan = '';
  const verdicts: Verdict[] = [];
  const predicted: Verdict[] = [];
  const predictor = new ServicePredictor(settings.prediction);
  const liveCounts = new Array<number>(OUTCOME_COUNT).fill(0);

  const stateOf = (id: string, now: number): EndpointState => {
    let s = states.get(id);
    if (!s) states.set(id, (s = { level: 0, lastLevelChange: now, readmitAt: 0, probationEpoch: 0, lastWiden: now, lastRampEpoch: -1, probing: false, probePasses: 0, lastProbeAt: 0, probeable: false, viaProbe: false, hardFault: false, passesNeeded: 1 }));
    return s;
  };

  return {
    name: 'meshmedic',
    settings,
    counters,
    predictor,
    release(ids) {
      for (const id of ids) {
        states.delete(id);
        predictor.forget(id);
      }
    },
    evaluate(input: PolicyInput): Decision[] {
      const { now, service, signals } = input;
      const out: Decision[] = [];
      bucket ??= new TokenBucket(settings.rateLimit.perSecond, settings.rateLimit.burst, now);
      const epochNow = Math.floor(now / input.windowMs);
      if (input.probes && settings.probe.enabled) {
        for (const p of input.probes) {
          const st = stateOf(p.target, now);
          st.probePasses = p.ok ? st.probePasses + 1 : 0;
          st.lastProbeAt = p.at;
        }
      }

      // 1. Detection over endpoints that take traffic (ordinary or canary).
      const active: EndpointSignals[] = [];
      for (const s of signals) if (isRoutable(s.health) || s.health.state === 'probation') active.push(s);
      verdicts.length = 0;
      const dInput: DetectionInput = { now, completedEpoch: input.completedEpoch, endpoints: active, settings };
      consecutiveVerdicts(dInput, verdicts);
      // Peer detectors judge ordinary members only: canaries have too little traffic to compare.
      const members = active.filter((s) => isRoutable(s.health));
      const wInput: DetectionInput = { ...dInput, endpoints: members };
      peerErrorCusum.detect(wInput, verdicts);
      let overloaded = false;
      if (input.completedEpoch >= 0) {
        peerSuccess.detect(wInput, verdicts);
        peerLatency.detect(wInput, verdicts);
        starvedLatency.detect(wInput, verdicts);
        latencyBaseline.detect(wInput, verdicts);
        errorBaseline.detect(wInput, verdicts);
        overloaded = isOverloaded(members, input.completedEpoch, settings);
        dropUncorroborated(verdicts, members, input.completedEpoch, settings);
        predicted.length = 0;
        predictor.observe(members, input.completedEpoch, settings, input.windowMs, predicted);
      }

      // 2. Strongest verdict per endpoint; external verdicts go through the same path and guards.
      const best = new Map<string, Pending>();
      const consider = (v: Verdict, source: DecisionSource) => {
        const cur = best.get(v.target);
        if (!cur || SEVERITY_RANK[v.severity] > SEVERITY_RANK[cur.verdict.severity]) best.set(v.target, { verdict: v, source });
      };
      for (const v of verdicts) consider(v, 'local');
      if (input.completedEpoch >= 0) for (const v of predicted) consider(v, 'predicted');
      for (const v of input.external) if (!(v as ExternalVerdict).needsCorroboration || best.has(v.target)) consider(v, (v as ExternalVerdict).source);

      const guard = new EjectionGuard(service, settings.ejection);
      const byId = new Map<string, EndpointView>();
      for (const e of service.endpoints) byId.set(e.spec.id, e);
      const flagged = new Set<string>();

      for (const [id, p] of best) {
        const e = byId.get(id);
        if (!e) continue;
        const v = p.verdict;
        const h = e.health;
        const st = stateOf(id, now);
        // A probation that this sidecar's own passing probe began is judged by its canaries only: the peers'
        // reports may date from before the endpoint recovered (they stay fresh for the board's window), and
        // re-ejecting on them put a recovered region back out at a higher level, again and again.
        if (p.source === 'peer' && st.viaProbe && (h.state === 'probation' || (st.probing && h.state === 'degraded'))) continue;
        flagged.add(id);
        if (overloaded && ((v.kind === 'latency' && p.source === 'local') || v.detector === 'predicted_latency' || p.source === 'learned')) {
          counters.refusals.overload++;
          continue;
        }
        if (h.state === 'ejected' || h.state === 'draining') continue;
        if (h.state === 'probation' || (st.probing && h.state === 'degraded')) {
          // A canary that fails, or is still slow against its peers, goes back out for longer.
          if (v.severity === 'eject' || v.kind === 'failure') out.push(eject(e, st, now, `probation_failed_${v.detector}`, p.source, v.evidence, v.kind === 'failure'));
          continue;
        }
        if (v.severity === 'drain') {
          const refusal = guard.check(e, false);
          if (refusal) {
            counters.refusals[refusal.guard]++;
            continue;
          }
          if (!take(now)) continue;
          guard.commit(e);
          st.probePasses = 0; // probes of the drained endpoint decide afresh whether it may come back
          st.lastProbeAt = 0;
          // A forecast of failures states the rate it saw: the probes that end the drain must be enough passes
          // in a row that an endpoint still failing at that rate shows them at most PROBE_MISS of the time (1
          // when it states none). Unlike after an ejection they are not capped at the canary count: a creep
          // seen at 3 % needs ~100, and 20 passes (a 3 % endpoint shows them 54 % of the time) let it back into
          // probation still failing, where 20 canaries cannot tell 3 % from healthy either. They cost no user
          // request; the cap is the probes of the longest ejection.
          st.passesNeeded = probePassesFor(failureRateOf(v.evidence), Math.ceil(settings.ejection.maxMs / settings.probe.intervalMs));
          out.push({ action: 'drain', target: id, reason: v.detector, source: p.source, at: now, evidence: v.evidence });
          continue;
        }
        if (v.severity === 'eject') {
          const refusal = guard.check(e, v.kind === 'failure');
          if (!refusal) {
            // A run of consecutive failures is direct evidence, not a statistical verdict: a dead zone's
            // endpoints all go at once instead of `burst` now and the rest a token at a time.
            const exempt = settings.rateLimit.exemptHardFailures && v.kind === 'failure' && CONSECUTIVE_DETECTORS.has(v.detector);
            if (!exempt && !take(now)) continue;
            guard.commit(e);
            out.push(eject(e, st, now, v.detector, p.source, v.evidence, v.kind === 'failure'));
            continue;
          }
          counters.refusals[refusal.guard]++;
          // A guard forbids ejecting: send it as little traffic as allowed instead.
          if (settings.deweight.enabled) deweight(e, settings.deweight.minWeight, v, p.source, { guard: refusal.guard, ...refusal.evidence });
          continue;
        }
        if (settings.deweight.enabled) deweight(e, v.weight ?? 0.5, v, p.source, {});
      }

      // 3. Time-driven transitions: ejected → probation → ramp → healthy, backoff decay.
      for (const s of signals) {
        const e = byId.get(s.id);
        if (!e) continue;
        const h = e.health;
        if (h.state === 'ejected' && h.source !== 'operator') {
          const st = stateOf(s.id, now);
          if (st.readmitAt === 0) st.readmitAt = h.since + Math.min(settings.ejection.baseMs * Math.max(1, st.level), settings.ejection.maxMs);
          const pr = settings.probe;
          // Probed: probes decide when it may be tried again. A failing probe keeps it out at no cost to
          // user traffic and without a higher level; the backoff timer only applies when nobody probes.
          const probed = pr.enabled && st.lastProbeAt > 0 && now - st.lastProbeAt <= 3 * pr.intervalMs + pr.timeoutMs && st.lastProbeAt >= h.since;
          // A failing probe always keeps it out. Passing probes readmit early only after failure ejections,
          // and a canary that failed after passing probes shows the probe was blind to part of the fault
          // (partial 5xx): each level asks for more passes in a row and doubles the minimum ejection.
          const lvl = Math.max(1, st.level);
          const due = probed
            ? st.probePasses >= Math.max(pr.passes * lvl, st.passesNeeded) && (st.probeable ? now - h.since >= Math.min(pr.minEjectionMs * lvl, st.readmitAt - h.since) : now >= st.readmitAt)
            : now >= st.readmitAt;
          if (due) {
            st.probationEpoch = epochNow;
            st.lastWiden = now;
            st.viaProbe = probed;
            // The fast path's canaries (see judgeProbation) come in at a larger share, so that a healthy
            // endpoint is back at full weight within a fraction of a second of its fault's end.
            const share = canaryShare(s, signals, input);
            const weight = fastRestoreApplies(st) ? Math.max(share, settings.probation.fastCanaryWeight) : share;
            out.push({ action: 'probation', target: s.id, reason: probed ? 'probe_passed' : 'readmit', source: 'local', at: now, weight, evidence: { level: st.level, ejectedForMs: now - h.since, probePasses: st.probePasses } });
          }
        } else if (isTimedDrain(h)) {
          // A predicted drain is tried again through probation once it has lasted drainMs and, while probes
          // report, the latest passesNeeded of them passed in a row (a failing probe: the forecast came true,
          // it stays out at no cost to traffic). Without probes, drainMs alone.
          const st = stateOf(s.id, now);
          const pr = settings.probe;
          const probed = pr.enabled && st.lastProbeAt >= h.since && now - st.lastProbeAt <= 3 * pr.intervalMs + pr.timeoutMs;
          if (now - h.since >= settings.prediction.drainMs && (!probed || st.probePasses >= st.passesNeeded)) {
            st.probationEpoch = epochNow;
            st.lastWiden = now;
            st.viaProbe = false;
            out.push({ action: 'probation', target: s.id, reason: 'predicted_drain_ended', source: 'local', at: now, weight: canaryShare(s, signals, input), evidence: { drainedForMs: now - h.since, probePasses: st.probePasses } });
          }
        } else if ((h.state === 'probation' || (h.state === 'degraded' && states.get(s.id)?.probing)) && !flagged.has(s.id)) {
          const d = judgeProbation(s, e, stateOf(s.id, now), now, input, signals);
          if (d) out.push(d);
        } else if (h.state === 'degraded' && h.source !== 'operator' && !flagged.has(s.id) && input.completedEpoch >= 0) {
          const st = stateOf(s.id, now);
          if (st.lastRampEpoch !== input.completedEpoch) {
            st.lastRampEpoch = input.completedEpoch;
            const w = Math.min(1, h.weightFactor + settings.deweight.rampStep);
            out.push(
              w >= 1
                ? { action: 'restore', target: s.id, reason: 'recovered', source: 'local', at: now, evidence: { from: round(h.weightFactor) } }
                : { action: 'weight', target: s.id, reason: 'ramp_up', source: 'local', at: now, weight: round(w), evidence: { from: round(h.weightFactor) } },
            );
          }
        } else if (h.state === 'healthy') {
          const st = states.get(s.id);
          if (st && st.level > 0 && now - st.lastLevelChange >= settings.ejection.decayMs) {
            st.level--;
            st.lastLevelChange = now;
          }
        }
      }

      // 4. Failover audit: the plan is derived from health by the mesh state; record when it shifts.
      const plan = `${service.plan.load.map((x) => Math.round(x * 1000) / 1000).join(',')}${service.plan.panic ? ' panic' : ''}`;
      if (lastPlan !== '' && plan !== lastPlan) {
        const evidence: Record<string, number | string | boolean> = { panic: service.plan.panic, previous: lastPlan };
        service.plan.load.forEach((x, i) => (evidence[`p${i}`] = Math.round(x * 1000) / 1000));
        const failback = service.plan.load.length > 0 && service.plan.load[0]! >= 1 && !service.plan.panic;
        out.push({ action: 'failover', target: service.name, reason: failback ? 'failback' : service.plan.panic ? 'panic' : 'priority_shift', source: 'local', at: now, evidence });
      }
      lastPlan = plan;
      return out;

      function take(t: number): boolean {
        if (bucket!.take(t)) return true;
        counters.refusals.rate_limit++;
        return false;
      }

      function deweight(e: EndpointView, target: number, v: Verdict, source: DecisionSource, extra: Record<string, number | string | boolean>): void {
        const w = round(Math.max(settings.deweight.minWeight, Math.min(1, target)));
        if (w >= e.health.weightFactor - 0.05) return; // already at or below: nothing to do
        if (!take(now)) return;
        out.push({ action: 'weight', target: e.spec.id, reason: v.detector, source, at: now, weight: w, evidence: { ...v.evidence, ...extra } });
      }
    },
  };

  /** `probeable`: the fault is one a probe can see (failures, not latency), so passing probes may readmit early. */
  function eject(e: EndpointView, st: EndpointState, now: number, reason: string, source: DecisionSource, evidence: Readonly<Record<string, number | string | boolean>>, probeable: boolean): Decision {
    st.level = Math.min(st.level + 1, Math.ceil(settings.ejection.maxMs / settings.ejection.baseMs));
    st.lastLevelChange = now;
    st.probing = false;
    st.probePasses = 0;
    // A canary that failed after passing probes shows the probes are blind to this fault (30 % of 5xx):
    // until it is healthy again, passing probes no longer shorten the backoff (failing ones still count).
    st.probeable = probeable && !st.viaProbe;
    st.hardFault = CONSECUTIVE_DETECTORS.has(reason);
    st.passesNeeded = st.hardFault ? 1 : probePassesFor(failureRateOf(evidence), settings.probation.minRequests);
    st.viaProbe = false;
    const ms = Math.min(settings.ejection.baseMs * st.level, settings.ejection.maxMs);
    st.readmitAt = now + ms;
    return { action: 'eject', target: e.spec.id, reason, source, at: now, evidence: { ...evidence, level: st.level, ejectMs: ms } };
  }

  /** The fast restore (see judgeProbation) applies: passing probes ended a first ejection for consecutive failures. */
  function fastRestoreApplies(st: EndpointState): boolean {
    return settings.probation.fastRequests > 0 && st.viaProbe && st.hardFault && st.level <= 1;
  }

  /**
   * The canary share: enough of the endpoint's expected traffic (its priority's requests in the last
   * window, split evenly over its members and this endpoint) that `minRequests` canaries arrive within
   * `judgeMs`; at least `canaryWeight`, at most `maxCanaryWeight`.
   */
  function canaryShare(s: EndpointSignals, all: readonly EndpointSignals[], input: PolicyInput): number {
    const cfg = settings.probation;
    let sum = 0;
    let n = 0;
    const recent = Math.floor(input.now / input.windowMs) - 2;
    for (const o of all) {
      if (o === s || !isRoutable(o.health) || o.spec.priority !== s.spec.priority) continue;
      const i = o.features.index(0);
      if (i < 0 || o.features.epoch[i]! < recent) continue;
      sum += o.features.total[i]!;
      n++;
    }
    const lo = cfg.canaryWeight;
    const hi = Math.max(lo, cfg.maxCanaryWeight);
    const perWindow = n > 0 ? sum / (n + 1) : 0;
    if (!(perWindow > 0)) return lo;
    const needed = cfg.minRequests / (perWindow * (cfg.judgeMs / input.windowMs));
    return round(Math.min(hi, Math.max(lo, needed)));
  }

  /** Whether no endpoint of the service has had a request at this sidecar in the last few windows. */
  function serviceIdle(all: readonly EndpointSignals[], current: number): boolean {
    const since = current - settings.peerLatency.poolWindows;
    for (const o of all) {
      for (let a = 0; a < o.features.size; a++) {
        const i = o.features.index(a);
        if (o.features.epoch[i]! < since) break;
        if (o.features.total[i]! > 0) return false;
      }
      const w = o.windows;
      if (w && w.windowCounts(current, liveCounts) && liveCounts[Outcome.Success]! + liveCounts[Outcome.Error5xx]! + liveCounts[Outcome.Gateway]! + liveCounts[Outcome.LocalOrigin]! > 0) return false;
    }
    return true;
  }

  /** Probation: restore only on the canary traffic's own health, never on time alone (an idle service aside). */
  function judgeProbation(s: EndpointSignals, e: EndpointView, st: EndpointState, now: number, input: PolicyInput, all: readonly EndpointSignals[]): Decision | undefined {
    const cfg = settings.probation;
    const w = s.windows;
    if (w && w.consecutive5xx >= cfg.failConsecutive) return eject(e, st, now, 'probation_failed', 'local', { consecutive: w.consecutive5xx }, true);
    // Canary figures: completed windows since probation began, plus the window in progress, so that the
    // verdict comes as soon as enough canaries have arrived rather than at the next window boundary.
    let total = 0;
    let failures = 0;
    const p50s = new Float64Array(s.features.capacity + 1);
    let np = 0;
    let newest = -1;
    for (let a = 0; a < s.features.size; a++) {
      const i = s.features.index(a);
      if (a === 0) newest = s.features.epoch[i]!;
      if (s.features.epoch[i]! < st.probationEpoch) break;
      total += s.features.total[i]!;
      failures += s.features.failures[i]!;
      if (s.features.p50[i]! > 0) p50s[np++] = s.features.p50[i]!;
    }
    const current = Math.floor(now / input.windowMs);
    if (w && current >= st.probationEpoch && current > newest && w.windowCounts(current, liveCounts)) {
      const fails = liveCounts[Outcome.Error5xx]! + liveCounts[Outcome.Gateway]! + liveCounts[Outcome.LocalOrigin]!;
      total += liveCounts[Outcome.Success]! + fails;
      failures += fails;
      const hist = w.windowHistogram(current);
      if (hist && hist.totalCount > 0) p50s[np++] = hist.getValueAtPercentile(50);
    }
    // Fast path: passing probes ended a first ejection for consecutive failures (a hard fault, which the
    // probe sees whole) and the first canaries are all clean: the fault is over, and the full canary count
    // and the ramp would only keep a healthy endpoint short of its share. Any failure, a slow canary, a
    // repeat offender (level ≥ 2) or a statistical ejection (a partial fault) takes the full path.
    if (fastRestoreApplies(st) && failures === 0 && total >= cfg.fastRequests && total < cfg.minRequests) {
      const fast = canaryLatencyRatio(s, p50s, np, current, all);
      if (fast.ratio <= cfg.maxLatencyRatio) {
        st.probing = false;
        st.viaProbe = false;
        return { action: 'restore', target: s.id, reason: 'probation_clean', source: 'local', at: now, evidence: { canaryRequests: total, canaryFailures: 0, latencyRatio: round(fast.ratio) } };
      }
    }
    // Failures: judged over minRequests canaries even before they have all arrived. Once the failures so
    // far exceed maxFailureRate of minRequests, the verdict at minRequests is failed whatever the rest
    // bring, and waiting for them would only send them to an endpoint that is still failing. At least
    // two failures: one background error among a few canary requests proves nothing.
    if (failures >= 2 && failures > cfg.maxFailureRate * Math.max(total, cfg.minRequests)) {
      return eject(e, st, now, 'probation_failed', 'local', { canaryRequests: total, canaryFailures: failures, failureRate: round(failures / total) }, true);
    }
    if (total < cfg.minRequests) {
      // This sidecar sends the service no traffic at all (it knew of the failure from its peers): there is
      // no canary to judge and no request at stake here. Restore once probation has lasted judgeMs; if
      // the peers still see the endpoint failing, their quorum ejects it again.
      if (serviceIdle(all, current) && now - (st.probationEpoch * input.windowMs) >= cfg.judgeMs) {
        st.probing = false;
        st.viaProbe = false;
        return { action: 'restore', target: s.id, reason: 'probation_idle', source: 'local', at: now, evidence: { canaryRequests: total, serviceRequests: 0 } };
      }
      const share = input.service.plan.load[e.spec.priority] ?? 0;
      // Probed with ordinary traffic and still none came: a higher priority serves everything here (a
      // remote region's endpoint), so there is nothing to judge and no request at stake. Restore once the
      // probe has lasted judgeMs, as for an idle service; peers still seeing it fail eject it again.
      if (st.probing && e.health.state === 'degraded' && share === 0 && now - (st.probationEpoch * input.windowMs) >= cfg.judgeMs) {
        st.probing = false;
        st.viaProbe = false;
        return { action: 'restore', target: s.id, reason: 'probation_unused', source: 'local', at: now, evidence: { canaryRequests: total, priorityShare: 0 } };
      }
      // No canary can arrive while its priority gets no traffic: probe at once rather than wait to widen.
      const starved = e.health.state === 'probation' && share === 0;
      if (!starved && now - st.lastWiden < cfg.widenAfterMs) return undefined;
      st.lastWiden = now;
      if (e.health.state === 'probation' && share === 0) {
        // Canary traffic is a share of its priority's traffic, and this priority gets none: probe with
        // ordinary traffic at the canary weight (a few requests decide; failures re-eject at once).
        st.probing = true;
        st.probationEpoch = Math.floor(now / input.windowMs);
        return { action: 'weight', target: s.id, reason: 'probation_probe', source: 'local', at: now, weight: cfg.canaryWeight, evidence: { canaryRequests: total, priorityShare: 0 } };
      }
      if (e.health.state === 'probation' && e.health.weightFactor < 0.5) {
        return { action: 'probation', target: s.id, reason: 'probation_widen', source: 'local', at: now, weight: round(Math.min(0.5, e.health.weightFactor * 2)), evidence: { canaryRequests: total } };
      }
      return undefined;
    }
    const { ratio, canaryP50, peers } = canaryLatencyRatio(s, p50s, np, current, all);
    if (ratio > cfg.maxLatencyRatio) return eject(e, st, now, 'probation_failed_latency', 'local', { canaryRequests: total, canaryP50Ms: round(canaryP50 / 1000), peerMedianMs: round(peers / 1000), ratio: round(ratio) }, false);
    st.probing = false;
    st.viaProbe = false;
    return { action: 'weight', target: s.id, reason: 'probation_passed', source: 'local', at: now, weight: cfg.rampStart, evidence: { canaryRequests: total, canaryFailures: failures, latencyRatio: round(ratio) } };
  }

  /** Canary p50 (median of its window p50s) over the peers' median p50 of the newest completed window,
   *  divided by the endpoint's usual ratio; 1 when either side has no figure. */
  function canaryLatencyRatio(s: EndpointSignals, p50s: Float64Array, np: number, current: number, all: readonly EndpointSignals[]): { ratio: number; canaryP50: number; peers: number } {
    const canaryP50 = np > 0 ? medianInPlace(p50s, np) : NaN;
    // Peers from the newest completed window (this evaluation may fall between window boundaries).
    const peers = peerMedianP50(all, current - 1, settings.peerLatency.minRequests);
    const ratio = canaryP50 > 0 && peers > 0 ? canaryP50 / peers / usualRatio(s, settings.peerLatency.usualRatioCap) : 1;
    return { ratio, canaryP50, peers };
  }
};

/** The failure rate an ejection's evidence states (a statistical detector's, or a canary verdict's); NaN if none. */
function failureRateOf(evidence: Readonly<Record<string, number | string | boolean>>): number {
  const f = evidence.failureRate;
  if (typeof f === 'number') return f;
  const s = evidence.successRate;
  return typeof s === 'number' ? 1 - s : NaN;
}

/**
 * Passing probes in a row that an endpoint still failing at `rate` would show with probability at most
 * PROBE_MISS: ln(PROBE_MISS) / ln(1 − rate), at most `most` (the canary count that judges it next);
 * 1 when the rate is unknown or near 1 (a hard fault, which the first probe sees whole).
 */
export function probePassesFor(rate: number, most: number): number {
  if (!(rate > 0) || rate >= 1 - PROBE_MISS) return 1;
  return Math.max(1, Math.min(most, Math.ceil(Math.log(PROBE_MISS) / Math.log(1 - rate))));
}

/**
 * Self-baseline alarms are acted on only when the peers agree that this endpoint stands out: latency or
 * errors rising on every endpoint together is load or a shared dependency, and moving traffic between
 * endpoints cannot help. An endpoint without enough judged peers is acted on alone.
 */
export function dropUncorroborated(verdicts: Verdict[], members: readonly EndpointSignals[], epoch: number, settings: ResolvedPolicySettings): void {
  const lb = settings.latencyBaseline;
  const eb = settings.errorBaseline;
  let medP50 = NaN;
  let medFail = NaN;
  let peersLatency = 0;
  let peersErrors = 0;
  for (let i = 0; i < verdicts.length; i++) {
    const v = verdicts[i]!;
    if (v.detector === 'peer_latency') {
      // Peers say slower; does the endpoint's own history agree that something changed? A steadily
      // slower endpoint that the balancer already starves (its few completions over-represent slow
      // requests) is consistent with itself; a gray failure is a shift.
      const s = members.find((m) => m.id === v.target);
      const st = s?.latencyP50;
      const strong = Number(v.evidence.ratio) >= 2 * settings.peerLatency.ejectRatio;
      // The latest independent sample must itself be far above the endpoint's own baseline (recent).
      const shifted = st !== undefined && st.last >= lb.corroborateZ && st.lastEpoch >= epoch - settings.peerLatency.poolWindows;
      if (st && st.n >= lb.warmupWindows && !strong && !shifted) verdicts.splice(i--, 1);
      continue;
    }
    if (v.detector !== 'latency_baseline' && v.detector !== 'error_baseline') continue;
    const s = members.find((m) => m.id === v.target);
    const j = s ? s.features.index(0) : -1;
    if (!s || j < 0) continue;
    let keep = true;
    if (v.detector === 'latency_baseline') {
      if (peersLatency === 0) ({ median: medP50, n: peersLatency } = peerMedian(members, epoch, (f, k) => (f.total[k]! >= lb.minRequests && f.p50[k]! > 0 ? f.p50[k]! : NaN)));
      if (peersLatency >= settings.peerLatency.minHosts) keep = s.features.p50[j]! >= lb.peerCorroboration * medP50;
    } else if (eb.peerCorroboration) {
      if (peersErrors === 0) ({ median: medFail, n: peersErrors } = peerMedian(members, epoch, (f, k) => (f.total[k]! >= eb.minRequests ? f.failures[k]! / f.total[k]! : NaN)));
      if (peersErrors >= settings.peerSuccess.minHosts) keep = s.features.failures[j]! / Math.max(1, s.features.total[j]!) >= medFail + eb.minDelta;
    }
    if (!keep) verdicts.splice(i--, 1);
  }
}

function peerMedian(members: readonly EndpointSignals[], epoch: number, value: (f: EndpointSignals['features'], k: number) => number): { median: number; n: number } {
  const xs = new Float64Array(members.length);
  let n = 0;
  for (const s of members) {
    const k = s.features.index(0);
    if (k < 0 || s.features.epoch[k] !== epoch) continue;
    const x = value(s.features, k);
    if (x === x) xs[n++] = x;
  }
  return { median: medianInPlace(xs, n), n };
}

/** Overload: most judged endpoints slow against their own baselines at once (load, not an outlier). */
export function isOverloaded(members: readonly EndpointSignals[], epoch: number, settings: ResolvedPolicySettings): boolean {
  const cfg = settings.overload;
  if (!cfg.enabled) return false;
  let judged = 0;
  let slow = 0;
  for (const s of members) {
    const i = s.features.index(0);
    if (i < 0 || s.features.epoch[i] !== epoch || s.features.total[i]! < settings.latencyBaseline.minRequests) continue;
    if (s.latencyP50.n < settings.latencyBaseline.warmupWindows) continue;
    judged++;
    if (s.latencyP50.alarm || s.latencyP90.alarm) slow++;
  }
  return slow >= cfg.minHosts && slow >= cfg.fraction * judged;
}

/** Median p50 (µs) of the newest window over ordinary members with enough requests; NaN if none. */
export function peerMedianP50(all: readonly EndpointSignals[], epoch: number, minRequests: number): number {
  const xs = new Float64Array(all.length);
  let n = 0;
  for (const s of all) {
    if (!isRoutable(s.health)) continue;
    const i = s.features.index(0);
    if (i < 0 || s.features.epoch[i] !== epoch || s.features.total[i]! < minRequests || !(s.features.p50[i]! > 0)) continue;
    xs[n++] = s.features.p50[i]!;
  }
  return medianInPlace(xs, n);
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
