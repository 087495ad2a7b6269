// The virtual-time mesh simulator: Poisson traffic through the proxy's real balancer to modelled
// endpoints, outcomes recorded into the real stats windows, and the real healing engine ticking on a
// virtual clock. Hours of traffic run in seconds, deterministically for a given seed.
import * as hdr from 'hdr-histogram-js';
import { VirtualClock } from '../core/clock.js';
import { endpointId, isFailure, Outcome, type EndpointSpec } from '../core/types.js';
import { MeshState, type RecordedDecision } from '../mesh/state.js';
import { StatsTable } from '../stats/window.js';
import { Balancer } from '../proxy/balancer.js';
import { HealingEngine, type HealingEngineOptions } from '../heal/engine.js';
import { isDisruptive, isTimedDrain } from '../heal/policy.js';
import { resolvePolicySettings, type PolicyName, type PolicySettings } from '../config/sections/healing.js';
import { CompletionHeap } from './heap.js';
import { Rng } from './rng.js';
import { faultsOf as faultsOfEndpoint, type ScenarioSpec } from './scenarios.js';
import { effectAt, newEffect, type TimedFault } from './faults.js';

export interface SimOptions {
  readonly policy: PolicyName;
  readonly seed?: number;
  /** Settings layered over the defaults (the policy name above wins). */
  readonly settings?: PolicySettings;
  /** Override the scenario's duration or rate (e.g. long noise runs at a stated lower rate). */
  readonly durationMs?: number;
  readonly rps?: number;
  readonly tickMs?: number;
  readonly windowMs?: number;
  /** Model the healing component's active probes of ejected endpoints (default true). */
  readonly probes?: boolean;
  /** Keep every recorded decision in the result (default true; off for very long runs). */
  readonly keepDecisions?: boolean;
  /** Seeds endpoints' baselines from a federated aggregate (HealingEngineOptions.adoptBaselines). */
  readonly adoptBaselines?: HealingEngineOptions['adoptBaselines'];
  /** Called with the engine at the end of the run, before it stops (to read what it learned). */
  readonly atEnd?: (engine: HealingEngine) => void;
  /**
   * A bounded queue on every endpoint with a capacity (`capacityRps`): it holds at most
   * ceil(capacityRps × queueSeconds) requests in flight and answers 503 at once to any beyond them. Off by
   * default (the catalogue's queues are unbounded); one rule for every endpoint, so a diagnostic can ask
   * which endpoints would overflow (bench/learn/saturation-queue.ts).
   */
  readonly queueSeconds?: number;
}

export interface SimResult {
  readonly scenario: string;
  readonly policy: PolicyName;
  readonly seed: number;
  readonly durationMs: number;
  readonly requests: number;
  readonly failed: number;
  readonly failedPct: number;
  /** Requests sent to an endpoint while its fault was active (failed or slow). */
  readonly impacted: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** From the first fault's start to the first applied eject/de-weight/drain of a faulty endpoint (NaN: never). */
  readonly detectMs: number;
  /**
   * From the first fault's start to the first second after which, for 5 s, fewer than 2 % of requests
   * reach an endpoint while its fault is active (NaN: never within the run).
   */
  readonly recoverMs: number;
  /**
   * From the last fault's end until every faulty endpoint is back at full weight (healthy, weight factor 1),
   * checked each tick (NaN: not within the run, or no fault ends within it).
   */
  readonly restoreMs: number;
  /** Ejections of endpoints with no active fault (grace after a fault: request timeout + 10 windows). */
  readonly falseEjections: number;
  readonly falseDeweights: number;
  readonly ejections: number;
  readonly decisions: readonly RecordedDecision[];
  readonly decisionCounts: Readonly<Record<string, number>>;
  readonly engineErrors: number;
  readonly cpuMs: number;
  /** Failed requests by second of the run (all; and those sent to an endpoint some fault touches). */
  readonly failedPerSecond: readonly number[];
  readonly faultyFailedPerSecond: readonly number[];
  /** Per endpoint: requests answered 503 because its bounded queue was full (all 0 without `queueSeconds`). */
  readonly queueOverflows: readonly number[];
  /** Per endpoint: the most requests it held in flight at once. */
  readonly maxInFlight: readonly number[];
}

const SERVICE = 'sim';
/** A refused connection in the completion heap: recorded as a local-origin failure marked refused. */
const REFUSED_OUTCOME = -1;
/** A 503 from a full bounded queue: recorded as a gateway failure; it never entered the queue. */
const OVERFLOW_OUTCOME = -2;
const START = 1_700_000_000_000; // aligned to the second: windows start with the run

function loadFactor(s: ScenarioSpec, t: number): number {
  const l = s.load;
  if (!l || t < l.rampStartMs || t >= l.holdEndMs) return 1;
  if (t >= l.rampEndMs) return l.factor;
  return 1 + ((l.factor - 1) * (t - l.rampStartMs)) / Math.max(1, l.rampEndMs - l.rampStartMs);
}

export function runScenario(spec: ScenarioSpec, opts: SimOptions): SimResult {
  const cpu0 = process.cpuUsage();
  const seed = opts.seed ?? 1;
  const rng = new Rng(seed);
  const durationMs = opts.durationMs ?? spec.durationMs;
  const rps = opts.rps ?? spec.rps;
  const windowMs = opts.windowMs ?? 1000;
  const tickMs = opts.tickMs ?? 100;
  const keep = opts.keepDecisions ?? true;
  const clock = new VirtualClock(START);
  const mesh = new MeshState(clock, { eventCapacity: 10 });
  const specs: EndpointSpec[] = spec.endpoints.map((e, i) => ({
    id: endpointId(SERVICE, '127.0.0.1', 20_000 + i),
    service: SERVICE,
    host: '127.0.0.1',
    port: 20_000 + i,
    locality: { region: 'r', zone: e.zone, subzone: '' },
    priority: e.priority,
    weight: 1,
    labels: {},
  }));
  mesh.setServices([{ spec: { name: SERVICE, endpoints: specs } }]);
  const stats = new StatsTable({ windowMs, windows: 10, maxLatencyUs: 60_000_000, significantDigits: 2 });
  const balancer = new Balancer(clock, { random: () => rng.next() });
  const settings = resolvePolicySettings(opts.settings, { policy: opts.policy });
  const engine = new HealingEngine({ clock, mesh, stats, settingsFor: () => settings, tickMs, urgent: 'sync', random: () => rng.next(), adoptBaselines: opts.adoptBaselines });

  const n = specs.length;
  const slotOf = new Int32Array(n);
  const indexOfId = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const ev = mesh.snapshot().endpoints.get(specs[i]!.id)!;
    slotOf[i] = ev.slot;
    indexOfId.set(specs[i]!.id, i);
    balancer.load.ensure(ev.slot);
    stats.ensure(ev.slot);
  }
  const faultsOf: TimedFault[][] = specs.map((_, i) => faultsOfEndpoint(spec, i));
  const faultStart = spec.faults.length ? Math.min(...spec.faults.map((f) => f.startMs)) : NaN;
  // An ejection soon after a fault ends may rest on evidence gathered while it was active (a probation
  // canary, five windows of success rate): the grace covers the whole stats ring, the longest evidence.
  const grace = spec.requestTimeoutMs + 10 * windowMs;
  const faultyForJudgement = (i: number, t: number) => faultsOf[i]!.some((f) => t >= f.startMs && t < f.endMs + grace);

  // Decisions: detection time, false ejections, counts.
  const decisions: RecordedDecision[] = [];
  const decisionCounts: Record<string, number> = {};
  let detectAt = NaN;
  let falseEjections = 0;
  let falseDeweights = 0;
  let ejections = 0;
  mesh.subscribe((_s, changes) => {
    for (const d of changes) {
      if (!d.applied) continue;
      if (keep) decisions.push(d);
      const key = `${d.action}:${d.reason}`;
      decisionCounts[key] = (decisionCounts[key] ?? 0) + 1;
      const i = indexOfId.get(d.target);
      if (i === undefined) continue;
      const t = d.at - START;
      const disruptive = isDisruptive(d);
      if (d.action === 'eject') ejections++;
      if (!disruptive) continue;
      if (faultyForJudgement(i, t)) {
        if (Number.isNaN(detectAt) && t >= faultStart) detectAt = t;
      } else if (d.action === 'eject') falseEjections++;
      else falseDeweights++;
    }
  });

  const hist = hdr.build({ bitBucketSize: 32, autoResize: false, lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 2, useWebAssembly: false });
  const seconds = Math.ceil(durationMs / 1000) + 2;
  const secTotal = new Float64Array(seconds);
  const secImpacted = new Float64Array(seconds);
  const secFailed = new Float64Array(seconds);
  const secFaultyFailed = new Float64Array(seconds);
  const heap = new CompletionHeap();
  const done = { time: 0, endpoint: 0, outcome: 0, latencyUs: 0 };
  const beh = newEffect();
  const maxFactor = spec.load ? Math.max(1, spec.load.factor) : 1;
  const meanGap = 1000 / (rps * maxFactor);
  // Overload model: each endpoint's recent arrival rate (decayed count, τ = 1 s) drives a queueing factor.
  const tauMs = 1000;
  const arrivals = new Float64Array(n);
  const lastArrival = new Float64Array(n);
  const sigma = spec.latencySigma;
  const tail = spec.latencyTail;
  const timeoutUs = spec.requestTimeoutMs * 1000;
  // In flight per endpoint (answered connections not yet completed), and the bounded queue's limits.
  const inFlight = new Int32Array(n);
  const maxInFlight = new Int32Array(n);
  const overflows = new Float64Array(n);
  const queueLimit = spec.endpoints.map((e) => (opts.queueSeconds !== undefined && e.capacityRps > 0 ? Math.max(1, Math.ceil(e.capacityRps * opts.queueSeconds)) : Infinity));
  let requests = 0;
  let failed = 0;
  let impacted = 0;
  let nextArrival = rng.exp(meanGap);
  let nextTick = tickMs;
  // Active probes of ejected endpoints, as the healing component sends them (own random stream, so that
  // the traffic is the same with and without probes).
  const probeRng = new Rng(seed ^ 0x5bd1e995);
  const probeOn = (opts.probes ?? true) && settings.probe.enabled;
  const lastProbe = new Float64Array(n).fill(-Infinity);
  const probeBeh = newEffect();
  const faulty = [...new Set(spec.faults.flatMap((f) => f.endpoints))];
  const faultTouched = new Uint8Array(n);
  for (const i of faulty) faultTouched[i] = 1;
  const faultEnd = spec.faults.length ? Math.max(...spec.faults.map((f) => f.endMs)) : NaN;
  let restoreAt = NaN;
  const afterTick = (t: number) => {
    const snap = mesh.snapshot();
    if (probeOn) {
      for (let i = 0; i < n; i++) {
        const h = snap.endpoints.get(specs[i]!.id)!.health;
        if (!(h.state === 'ejected' || isTimedDrain(h)) || t - lastProbe[i]! < settings.probe.intervalMs) continue;
        lastProbe[i] = t;
        effectAt(faultsOf[i]!, t, probeBeh);
        // A probe fails when the endpoint refuses, never answers, or answers 5xx (at its fault's rate).
        const ok = probeBeh.down === 0 && !(probeBeh.errorFraction > 0 && probeRng.next() < probeBeh.errorFraction);
        engine.submitProbe(specs[i]!.id, ok);
      }
    }
    if (t >= faultEnd && Number.isNaN(restoreAt)) {
      let back = true;
      for (const i of faulty) {
        const h = snap.endpoints.get(specs[i]!.id)!.health;
        if (h.state !== 'healthy' || h.weightFactor < 1) back = false;
      }
      if (back) restoreAt = t;
    }
  };

  const complete = () => {
    heap.pop(done);
    const slot = slotOf[done.endpoint]!;
    const refused = done.outcome === REFUSED_OUTCOME;
    if (done.outcome >= 0) inFlight[done.endpoint]!--;
    const outcome = refused ? Outcome.LocalOrigin : done.outcome === OVERFLOW_OUTCOME ? Outcome.Gateway : (done.outcome as Outcome);
    stats.get(slot)!.record(outcome, done.latencyUs, START + done.time, 0, refused);
    balancer.end(slot);
    balancer.observe(slot, done.latencyUs / 1000);
  };

  while (nextArrival < durationMs || heap.size > 0) {
    const tNext = Math.min(nextArrival < durationMs ? nextArrival : Infinity, heap.peekTime());
    // Ticks due before the next event.
    while (nextTick <= tNext && nextTick <= durationMs + spec.requestTimeoutMs) {
      clock.runUntil(START + nextTick);
      engine.tick();
      afterTick(nextTick);
      nextTick += tickMs;
    }
    if (tNext === Infinity) break;
    clock.runUntil(START + tNext);
    if (heap.peekTime() <= tNext) {
      complete();
      continue;
    }
    // An arrival (thinned for a time-varying load).
    const t = nextArrival;
    nextArrival += rng.exp(meanGap);
    if (maxFactor > 1 && rng.next() * maxFactor > loadFactor(spec, t)) continue;
    requests++;
    const sec = Math.floor(t / 1000);
    secTotal[sec]!++;
    const view = mesh.snapshot().services.get(SERVICE)!;
    const ev = balancer.pick(view);
    if (!ev) {
      failed++;
      secFailed[sec]!++;
      hist.recordValue(1);
      continue;
    }
    const i = indexOfId.get(ev.spec.id)!;
    const m = spec.endpoints[i]!;
    effectAt(faultsOf[i]!, t, beh);
    let latencyUs: number;
    let outcome: Outcome;
    let overflow = false;
    if (beh.down === 1) {
      latencyUs = 500 + rng.next() * 500;
      outcome = Outcome.LocalOrigin;
    } else if (beh.down === 2) {
      latencyUs = timeoutUs;
      outcome = Outcome.LocalOrigin;
    } else if (inFlight[i]! >= queueLimit[i]!) {
      // The bounded queue is full: answered 503 at once.
      latencyUs = 1000;
      outcome = Outcome.Gateway;
      overflow = true;
      overflows[i]!++;
    } else {
      let f = beh.latencyFactor;
      if (m.capacityRps > 0) {
        const decayed = arrivals[i]! * Math.exp(-(t - lastArrival[i]!) / tauMs) + 1;
        arrivals[i] = decayed;
        lastArrival[i] = t;
        const rho = Math.min(0.95, decayed / (tauMs / 1000) / m.capacityRps);
        f *= 1 / (1 - rho);
      }
      latencyUs = m.medianMs * 1000 * f * Math.exp(sigma * rng.normal()) + beh.latencyAddMs * 1000;
      if (tail && rng.next() < tail.probability) latencyUs *= Math.pow(1 - rng.next(), -1 / tail.paretoAlpha);
      if (latencyUs >= timeoutUs) {
        latencyUs = timeoutUs;
        outcome = Outcome.LocalOrigin;
      } else if (beh.errorFraction > 0 && rng.next() < beh.errorFraction) {
        outcome = beh.status === 500 ? Outcome.Error5xx : Outcome.Gateway;
        latencyUs *= 0.5;
      } else if (rng.next() < m.errorRate) {
        outcome = Outcome.Error5xx;
      } else outcome = Outcome.Success;
    }
    if (isFailure(outcome)) {
      failed++;
      secFailed[sec]!++;
      if (faultTouched[i]) secFaultyFailed[sec]!++;
    }
    if (beh.faulty) {
      impacted++;
      secImpacted[sec]!++;
    } else if (isFailure(outcome)) secImpacted[sec]! += 0; // background errors are not fault impact
    hist.recordValue(Math.max(1, Math.round(latencyUs)));
    balancer.begin(slotOf[i]!);
    const code = beh.down === 1 ? REFUSED_OUTCOME : overflow ? OVERFLOW_OUTCOME : outcome;
    if (code >= 0 && ++inFlight[i]! > maxInFlight[i]!) maxInFlight[i] = inFlight[i]!;
    heap.push(t + latencyUs / 1000, i, code, latencyUs);
  }

  // Recovery: first second from the fault's start after which 5 s in a row stay below 2 % impact.
  let recoverMs = NaN;
  if (!Number.isNaN(faultStart)) {
    const s0 = Math.floor(faultStart / 1000);
    for (let s = s0; s + 5 < seconds; s++) {
      let ok = true;
      for (let k = s; k < s + 5; k++) if (secTotal[k]! > 0 && secImpacted[k]! / secTotal[k]! >= 0.02) ok = false;
      if (ok) {
        recoverMs = Math.max(0, s * 1000 - faultStart);
        break;
      }
    }
  }
  opts.atEnd?.(engine);
  engine.stop();
  const cpu = process.cpuUsage(cpu0);
  return {
    scenario: spec.name,
    policy: opts.policy,
    seed,
    durationMs,
    requests,
    failed,
    failedPct: requests ? (100 * failed) / requests : 0,
    impacted,
    p50Ms: hist.getValueAtPercentile(50) / 1000,
    p99Ms: hist.getValueAtPercentile(99) / 1000,
    detectMs: detectAt - faultStart,
    recoverMs,
    restoreMs: restoreAt - faultEnd,
    falseEjections,
    falseDeweights,
    ejections,
    decisions,
    decisionCounts,
    engineErrors: engine.counters.policyErrors,
    cpuMs: (cpu.user + cpu.system) / 1000,
    failedPerSecond: Array.from(secFailed),
    faultyFailedPerSecond: Array.from(secFaultyFailed),
    queueOverflows: Array.from(overflows),
    maxInFlight: Array.from(maxInFlight),
  };
}
