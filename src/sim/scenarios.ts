// The fault-scenario catalogue: one module of plain data shared by the simulator, the live benchmark
// (bench/scenarios), the demo and the tests. Faults use the one vocabulary of ./faults.ts, which the test
// backend speaks. Times are ms from the start of the run; endpoints are referred to by index.
import type { TimedFault } from './faults.js';

export type { FaultKind, TimedFault } from './faults.js';

export interface EndpointModel {
  /** Median latency when healthy, ms. */
  readonly medianMs: number;
  /** Locality zone and priority (failover order: 0 first). */
  readonly zone: string;
  readonly priority: number;
  /** Background failure fraction (5xx) when healthy. */
  readonly errorRate: number;
  /** Requests per second the endpoint serves before queueing (overload model); 0 = unlimited. */
  readonly capacityRps: number;
}

/** A fault on some endpoints during [startMs, endMs). */
export type FaultSpec = TimedFault & { readonly endpoints: readonly number[] };

export interface LoadRamp {
  /** Offered load multiplies from 1 to `factor` between rampStartMs and rampEndMs, holds until holdEndMs, then returns to 1. */
  readonly rampStartMs: number;
  readonly rampEndMs: number;
  readonly holdEndMs: number;
  readonly factor: number;
}

/** Tuning scenarios may guide rules, thresholds and defaults; held-out ones never may (they judge them). */
export type ScenarioSet = 'tuning' | 'held-out';

/** The phases of a run: fault-free warm-up, the fault, observation of recovery. */
export interface Timing {
  readonly warmMs: number;
  readonly faultMs: number;
  readonly afterMs: number;
}

export interface ScenarioSpec {
  /** `<family>-<endpoints>`, e.g. crash-10. */
  readonly name: string;
  /** The scenario family (same fault at several cluster sizes). */
  readonly family: string;
  readonly set: ScenarioSet;
  readonly title: string;
  readonly description: string;
  /** Offered load, requests per second (open loop, Poisson arrivals). */
  readonly rps: number;
  readonly durationMs: number;
  readonly timing: Timing;
  /** The cluster: one model per endpoint (its length is the cluster size). */
  readonly endpoints: readonly EndpointModel[];
  /** Lognormal shape of latency (σ of log latency). */
  readonly latencySigma: number;
  /** Heavy tail: this fraction of requests is further multiplied by a Pareto(alpha) factor ≥ 1. */
  readonly latencyTail?: { readonly probability: number; readonly paretoAlpha: number };
  /** The client's (proxy's) request timeout, ms: the upstream timeout of every system. */
  readonly requestTimeoutMs: number;
  readonly faults: readonly FaultSpec[];
  readonly load?: LoadRamp;
  /** A hard failure (refused, black hole, 100 % 5xx): judged by "decided within 5 requests or 1 s". */
  readonly hard: boolean;
  /** How long traffic must stay off a faulty endpoint to count as shifted (default 1 s): longer when the
   *  fault itself pauses traffic (a flapping endpoint's down phase). */
  readonly quietMs?: number;
  /**
   * `learning`: scenarios of the learning layer (gradual failures that can be forecast, and non-failures
   * that must not be), run by bench/learn in virtual time; the live benchmark skips them unless named.
   */
  readonly suite?: 'learning';
  /** When a gradual fault turns into a hard one (ms from the start): the moment a forecast must beat. */
  readonly hardAtMs?: number;
  readonly targets: {
    /** The system's own decision (eject / drain / de-weight) within this many ms of the fault's start. */
    readonly decideWithinMs?: number;
    /** No endpoint without a fault is ever ejected. */
    readonly falseEjections: 0;
  };
}

/** Scenario timings. Short, so that the live suite fits ≥ 3 seeds of every scenario × system. */
export const TUNING_TIMING: Timing = Object.freeze({ warmMs: 4000, faultMs: 8000, afterMs: 6000 });
/** Held-out scenarios run on other timings (longer fault, longer warm-up) than the tuning set. */
export const HELD_OUT_TIMING: Timing = Object.freeze({ warmMs: 5000, faultMs: 12_000, afterMs: 7000 });
/** Learning scenarios: a longer warm-up (baselines and usual ratios settle) and a long fault phase. */
export const LEARN_TUNING_TIMING: Timing = Object.freeze({ warmMs: 20_000, faultMs: 30_000, afterMs: 10_000 });
export const LEARN_HELD_OUT_TIMING: Timing = Object.freeze({ warmMs: 25_000, faultMs: 36_000, afterMs: 12_000 });

const RPS = 200;
const SIGMA = 0.5;
const TIMEOUT_MS = 1000;
/** Healthy medians cycle through these (ms), so endpoints differ a little, as real ones do. */
const MEDIANS = [10, 9, 11, 10, 12];

const cluster = (n: number, over: (i: number) => Partial<EndpointModel> = () => ({})): EndpointModel[] =>
  Array.from({ length: n }, (_, i) => ({ medianMs: MEDIANS[i % MEDIANS.length]!, zone: 'a', priority: 0, errorRate: 0.001, capacityRps: 0, ...over(i) }));

/** The indexes 0..k-1. */
const first = (k: number): number[] => Array.from({ length: k }, (_, i) => i);

interface FamilyInput {
  readonly n: number;
  readonly t: Timing;
  /** Fault phase start and end, ms. */
  readonly F: number;
  readonly E: number;
}

/** A scenario family: the same fault at several cluster sizes, built for a timing. */
export interface Family {
  readonly family: string;
  readonly set: ScenarioSet;
  readonly sizes: readonly number[];
  readonly timing: Timing;
  build(x: FamilyInput): Omit<ScenarioSpec, 'name' | 'family' | 'set' | 'durationMs' | 'timing' | 'rps' | 'latencySigma' | 'requestTimeoutMs'> & Partial<Pick<ScenarioSpec, 'rps' | 'latencySigma' | 'requestTimeoutMs'>>;
}

const on = (endpoints: number[], x: FamilyInput): { endpoints: number[]; startMs: number; endMs: number } => ({ endpoints, startMs: x.F, endMs: x.E });
const ofN = (x: FamilyInput): string => `of ${x.n}`;

export const FAMILIES: readonly Family[] = [
  // ---- tuning set: every fault at 5 and 10 endpoints, partial and zone faults also at 20 ----
  {
    family: 'crash', set: 'tuning', sizes: [5, 10], timing: TUNING_TIMING,
    build: (x) => ({ title: 'crash', description: `one ${ofN(x)} refuses connections, then comes back`, endpoints: cluster(x.n), hard: true,
      faults: [{ kind: 'crash', ...on([0], x) }], targets: { decideWithinMs: 1000, falseEjections: 0 } }),
  },
  {
    family: 'blackhole', set: 'tuning', sizes: [5, 10], timing: TUNING_TIMING,
    build: (x) => ({ title: 'black hole', description: `one ${ofN(x)} accepts requests and never answers (1 s timeout)`, endpoints: cluster(x.n), hard: true,
      faults: [{ kind: 'blackhole', ...on([0], x) }], targets: { decideWithinMs: 2000, falseEjections: 0 } }),
  },
  {
    family: 'hard-5xx', set: 'tuning', sizes: [5, 10], timing: TUNING_TIMING,
    build: (x) => ({ title: 'hard 5xx', description: `one ${ofN(x)} answers 500 to every request`, endpoints: cluster(x.n), hard: true,
      faults: [{ kind: 'errors', status: 500, fraction: 1, ...on([0], x) }], targets: { decideWithinMs: 1000, falseEjections: 0 } }),
  },
  {
    family: 'partial-5xx-30', set: 'tuning', sizes: [5, 10, 20], timing: TUNING_TIMING,
    build: (x) => ({ title: 'partial 5xx 30 %', description: `one ${ofN(x)} answers 500 to 30 % of requests`, endpoints: cluster(x.n), hard: false,
      faults: [{ kind: 'errors', status: 500, fraction: 0.3, ...on([0], x) }], targets: { decideWithinMs: 3000, falseEjections: 0 } }),
  },
  {
    family: 'partial-5xx-10', set: 'tuning', sizes: [5, 10, 20], timing: TUNING_TIMING,
    build: (x) => ({ title: 'partial 5xx 10 %', description: `one ${ofN(x)} answers 500 to 10 % of requests`, endpoints: cluster(x.n), hard: false,
      faults: [{ kind: 'errors', status: 500, fraction: 0.1, ...on([0], x) }], targets: { falseEjections: 0 } }),
  },
  {
    family: 'gray-3x', set: 'tuning', sizes: [5, 10], timing: TUNING_TIMING,
    build: (x) => ({ title: 'gray latency 3×', description: `one ${ofN(x)} answers 200, three times slower`, endpoints: cluster(x.n), hard: false,
      faults: [{ kind: 'latency', factor: 3, ...on([0], x) }], targets: { decideWithinMs: 3000, falseEjections: 0 } }),
  },
  {
    family: 'gray-10x', set: 'tuning', sizes: [5, 10], timing: TUNING_TIMING,
    // A balancer that weighs latency starves a 10× endpoint at once: too few requests to judge it
    // safely, so no decision target; its cost shows in the p99.
    build: (x) => ({ title: 'gray latency 10×', description: `one ${ofN(x)} answers 200, ten times slower`, endpoints: cluster(x.n), hard: false,
      faults: [{ kind: 'latency', factor: 10, ...on([0], x) }], targets: { falseEjections: 0 } }),
  },
  {
    family: 'drift-crash', set: 'tuning', sizes: [5, 10], timing: TUNING_TIMING,
    build: (x) => {
      const crashAt = x.F + Math.round((x.E - x.F) * 0.6);
      return { title: 'latency drift, then crash', description: `one ${ofN(x)} slows from 1× to 5× over ${(crashAt - x.F) / 1000} s, then crashes until the fault ends`, endpoints: cluster(x.n), hard: false,
        faults: [{ kind: 'latency', factor: 5, rampMs: crashAt - x.F, endpoints: [0], startMs: x.F, endMs: crashAt }, { kind: 'crash', endpoints: [0], startMs: crashAt, endMs: x.E }],
        targets: { falseEjections: 0 } };
    },
  },
  {
    family: 'flapping', set: 'tuning', sizes: [5, 10], timing: TUNING_TIMING,
    build: (x) => ({ title: 'flapping', description: `one ${ofN(x)} goes down 2 s, up 2 s, repeatedly`, endpoints: cluster(x.n), hard: true, quietMs: 3000,
      faults: [{ kind: 'flap', downMs: 2000, upMs: 2000, ...on([0], x) }], targets: { decideWithinMs: 1000, falseEjections: 0 } }),
  },
  {
    family: 'zone-outage', set: 'tuning', sizes: [5, 10, 20], timing: TUNING_TIMING,
    build: (x) => {
      const k = Math.round(x.n * 0.4);
      return { title: 'zone outage', description: `zone a (${k} ${ofN(x)}) refuses connections; zone b is healthy`, hard: true,
        endpoints: cluster(x.n, (i) => ({ zone: i < k ? 'a' : 'b' })),
        faults: [{ kind: 'crash', ...on(first(k), x) }], targets: { decideWithinMs: 1000, falseEjections: 0 } };
    },
  },
  {
    family: 'overload', set: 'tuning', sizes: [5, 10], timing: TUNING_TIMING,
    build: (x) => ({ title: 'overload', description: `offered load triples over 2 s; all ${x.n} slow together (queueing): nothing must be ejected`, hard: false,
      endpoints: cluster(x.n, () => ({ capacityRps: (RPS * 3 * 1.25) / x.n })), faults: [],
      load: { rampStartMs: x.F, rampEndMs: x.F + 2000, holdEndMs: x.E, factor: 3 }, targets: { falseEjections: 0 } }),
  },
  {
    family: 'noise', set: 'tuning', sizes: [5, 10], timing: TUNING_TIMING,
    build: (x) => ({ title: 'fault-free noise', description: `no fault: lognormal latency (σ 0.6) with a Pareto tail (2 % of requests × Pareto α 1.5), 0.1–0.5 % background errors on all ${x.n}`, hard: false,
      latencySigma: 0.6, latencyTail: { probability: 0.02, paretoAlpha: 1.5 }, endpoints: cluster(x.n, (i) => ({ medianMs: [10, 8, 12, 9, 11][i % 5]!, errorRate: [0.001, 0.005, 0.003, 0.002, 0.004][i % 5]! })),
      faults: [], targets: { falseEjections: 0 } }),
  },
  // ---- held-out set: other magnitudes, sizes and timings; nothing may be tuned on these ----
  {
    family: 'gray-1.8x', set: 'held-out', sizes: [10], timing: HELD_OUT_TIMING,
    build: (x) => ({ title: 'gray latency 1.8×', description: `one ${ofN(x)} answers 200, 1.8 times slower`, endpoints: cluster(x.n), hard: false,
      faults: [{ kind: 'latency', factor: 1.8, ...on([0], x) }], targets: { decideWithinMs: 10_000, falseEjections: 0 } }),
  },
  {
    family: 'gray-2.5x', set: 'held-out', sizes: [7], timing: HELD_OUT_TIMING,
    build: (x) => ({ title: 'gray latency 2.5×', description: `one ${ofN(x)} answers 200, 2.5 times slower`, endpoints: cluster(x.n), hard: false,
      faults: [{ kind: 'latency', factor: 2.5, ...on([3], x) }], targets: { falseEjections: 0 } }),
  },
  {
    family: 'three-of-20-at-20pct', set: 'held-out', sizes: [20], timing: HELD_OUT_TIMING,
    build: (x) => ({ title: 'three bad of twenty', description: `three ${ofN(x)} answer 503 to 20 % of requests`, endpoints: cluster(x.n), hard: false,
      faults: [{ kind: 'errors', status: 503, fraction: 0.2, ...on([2, 9, 15], x) }], targets: { falseEjections: 0 } }),
  },
  {
    family: 'crash-and-gray', set: 'held-out', sizes: [10], timing: HELD_OUT_TIMING,
    build: (x) => ({ title: 'two faults at once', description: `one ${ofN(x)} crashes and another turns 2.5× slower, 3 s apart`, endpoints: cluster(x.n), hard: false,
      faults: [{ kind: 'latency', factor: 2.5, endpoints: [6], startMs: x.F, endMs: x.E }, { kind: 'crash', endpoints: [1], startMs: x.F + 3000, endMs: x.E }],
      targets: { falseEjections: 0 } }),
  },
  {
    family: 'slow-degradation', set: 'held-out', sizes: [8], timing: HELD_OUT_TIMING,
    build: (x) => ({ title: 'slow degradation', description: `one ${ofN(x)} degrades over the whole fault, as a draining node does: errors 0 → 25 % and latency 1× → 3×`, endpoints: cluster(x.n), hard: false,
      faults: [{ kind: 'errors', status: 503, fraction: 0.25, rampMs: x.E - x.F, ...on([4], x) }, { kind: 'latency', factor: 3, rampMs: x.E - x.F, ...on([4], x) }],
      targets: { falseEjections: 0 } }),
  },
  {
    family: 'hard-503', set: 'held-out', sizes: [7], timing: HELD_OUT_TIMING,
    build: (x) => ({ title: 'hard 503', description: `one ${ofN(x)} answers 503 to every request`, endpoints: cluster(x.n), hard: true,
      faults: [{ kind: 'errors', status: 503, fraction: 1, ...on([5], x) }], targets: { decideWithinMs: 1000, falseEjections: 0 } }),
  },
  {
    family: 'heterogeneous-healthy', set: 'held-out', sizes: [10], timing: HELD_OUT_TIMING,
    build: (x) => ({ title: 'heterogeneous but healthy', description: `no fault; one ${ofN(x)} is always 1.4× slower than the rest: nothing must be ejected`, hard: false,
      endpoints: cluster(x.n, (i) => ({ medianMs: i === 7 ? 14 : 10 })), faults: [], targets: { falseEjections: 0 } }),
  },
  ...LEARNING_FAMILIES(),
];

/** Build one family at one size and timing. */
export function buildScenario(fam: Family, n: number, timing: Timing = fam.timing): ScenarioSpec {
  const F = timing.warmMs, E = timing.warmMs + timing.faultMs;
  const b = fam.build({ n, t: timing, F, E });
  return {
    rps: RPS, latencySigma: SIGMA, requestTimeoutMs: TIMEOUT_MS, ...b,
    name: `${fam.family}-${n}`, family: fam.family, set: fam.set, timing,
    durationMs: timing.warmMs + timing.faultMs + timing.afterMs,
  };
}

/** Every scenario: each family at each of its sizes, on its own timing. */
export const SCENARIOS: readonly ScenarioSpec[] = FAMILIES.flatMap((f) => f.sizes.map((n) => buildScenario(f, n)));

export function scenarioByName(name: string): ScenarioSpec | undefined {
  return SCENARIOS.find((s) => s.name === name);
}

/** A scenario of the catalogue rebuilt on another timing (e.g. a 40 s fault for a long simulator test). */
export function scenarioAt(name: string, timing: Timing): ScenarioSpec | undefined {
  const s = scenarioByName(name);
  const fam = s && FAMILIES.find((f) => f.family === s.family);
  return fam && s ? buildScenario(fam, s.endpoints.length, timing) : undefined;
}

/** The endpoints a scenario's faults touch. */
export function faultyEndpoints(s: ScenarioSpec): Set<number> {
  const out = new Set<number>();
  for (const f of s.faults) for (const e of f.endpoints) out.add(e);
  return out;
}

/** When the scenario's faults begin and end (ms from the start); null when it has none. */
export function faultPhase(s: ScenarioSpec): { startMs: number; endMs: number } | null {
  if (s.faults.length === 0) return null;
  return { startMs: Math.min(...s.faults.map((f) => f.startMs)), endMs: Math.max(...s.faults.map((f) => f.endMs)) };
}

/** The faults of one endpoint, without their endpoint lists (what the backend of that endpoint is given). */
export function faultsOf(s: ScenarioSpec, endpoint: number): TimedFault[] {
  return s.faults.filter((f) => f.endpoints.includes(endpoint)).map(({ endpoints: _e, ...f }) => f as TimedFault);
}

/**
 * Drift then crash: latency grows linearly by `ratePerS` of the baseline per second for `driftMs`, then
 * the endpoint refuses connections until the fault phase ends.
 */
function driftCrash(family: string, set: ScenarioSet, sizes: number[], timing: Timing, ratePerS: number, driftMs: number, endpoint = 0): Family {
  return {
    family, set, sizes, timing,
    build: (x) => {
      const crashAt = x.F + driftMs;
      const factor = Math.round((1 + (ratePerS * driftMs) / 1000) * 100) / 100;
      return { title: `drift ${Math.round(ratePerS * 1000) / 10} %/s, then crash`, description: `one ${ofN(x)} slows by ${Math.round(ratePerS * 1000) / 10} % of its latency per second for ${driftMs / 1000} s (to ${factor}×), then refuses connections`,
        endpoints: cluster(x.n), hard: false, suite: 'learning', hardAtMs: crashAt,
        faults: [{ kind: 'latency', factor, rampMs: driftMs, endpoints: [endpoint], startMs: x.F, endMs: crashAt }, { kind: 'crash', endpoints: [endpoint], startMs: crashAt, endMs: x.E }],
        targets: { falseEjections: 0 } };
    },
  };
}

/** Creeping errors: the failure fraction grows from 0 to `fraction` over `rampMs`, then the endpoint crashes. */
function creepingErrors(family: string, set: ScenarioSet, sizes: number[], timing: Timing, fraction: number, rampMs: number, endpoint = 0): Family {
  return {
    family, set, sizes, timing,
    build: (x) => ({ title: `errors creeping to ${fraction * 100} %, then crash`, description: `one ${ofN(x)} answers 500 to a share growing from 0 to ${fraction * 100} % over ${rampMs / 1000} s, then refuses connections`,
      endpoints: cluster(x.n), hard: false, suite: 'learning', hardAtMs: x.F + rampMs,
      faults: [{ kind: 'errors', status: 500, fraction, rampMs, endpoints: [endpoint], startMs: x.F, endMs: x.F + rampMs }, { kind: 'crash', endpoints: [endpoint], startMs: x.F + rampMs, endMs: x.E }],
      targets: { falseEjections: 0 } }),
  };
}

/**
 * Saturation: offered load grows by `loadFactor` over `rampMs`; one endpoint has a fraction of the
 * others' capacity, so it queues first (latency grows with what it has in flight), then answers 503.
 */
function saturation(family: string, set: ScenarioSet, sizes: number[], timing: Timing, loadFactor: number, rampMs: number, weakShare: number, endpoint = 0): Family {
  return {
    family, set, sizes, timing,
    build: (x) => {
      const perEndpoint = (RPS * loadFactor) / x.n;
      return { title: 'saturation, then 503s', description: `offered load grows ×${loadFactor} over ${rampMs / 1000} s; one ${ofN(x)} has ${weakShare * 100} % of the others' capacity: it queues, then answers 503`,
        endpoints: cluster(x.n, (i) => ({ capacityRps: i === endpoint ? perEndpoint * weakShare * 1.6 : perEndpoint * 3 })), hard: false, suite: 'learning', hardAtMs: x.F + rampMs,
        load: { rampStartMs: x.F, rampEndMs: x.F + rampMs, holdEndMs: x.E, factor: loadFactor },
        faults: [{ kind: 'errors', status: 503, fraction: 1, endpoints: [endpoint], startMs: x.F + rampMs, endMs: x.E }],
        targets: { falseEjections: 0 } };
    },
  };
}

/** Not failures: nothing may be drained or ejected. */
function loadGrowth(family: string, set: ScenarioSet, sizes: number[], timing: Timing, factor: number, rampMs: number, capacitySpread: number): Family {
  return {
    family, set, sizes, timing,
    build: (x) => ({ title: 'load growth (not a failure)', description: `offered load grows ×${factor} over ${rampMs / 1000} s; all ${x.n} slow together${capacitySpread ? ` (capacities differ by ±${capacitySpread * 100} %)` : ''}: nothing may be drained or ejected`,
      endpoints: cluster(x.n, (i) => ({ capacityRps: ((RPS * factor * 1.3) / x.n) * (1 + capacitySpread * (i % 2 === 0 ? 1 : -1)) })), hard: false, suite: 'learning',
      load: { rampStartMs: x.F, rampEndMs: x.F + rampMs, holdEndMs: x.E, factor }, faults: [], targets: { falseEjections: 0 } }),
  };
}

/** A restarted endpoint warms up (JIT, caches): `factor`× slower at first, converging in three steps to 1× over settleMs. */
function warmup(family: string, set: ScenarioSet, sizes: number[], timing: Timing, factor: number, settleMs: number, endpoint = 0): Family {
  const step = Math.cbrt(factor); // three overlapping steps multiply to `factor`
  return {
    family, set, sizes, timing,
    build: (x) => ({ title: 'warm-up (not a failure)', description: `one ${ofN(x)} restarts ${factor}× slower and converges to 1× over ${settleMs / 1000} s: nothing may be drained or ejected`,
      endpoints: cluster(x.n), hard: false, suite: 'learning',
      faults: [1, 2, 3].map((k) => ({ kind: 'latency' as const, factor: Math.round(step * 1000) / 1000, endpoints: [endpoint], startMs: x.F, endMs: x.F + Math.round((settleMs * k) / 3) })),
      targets: { falseEjections: 0 } }),
  };
}

/** A rolling deploy: one endpoint after another restarts cold (warm-up) into a version 1.15× slower. */
function deploy(family: string, set: ScenarioSet, sizes: number[], timing: Timing, gapMs: number): Family {
  return {
    family, set, sizes, timing,
    build: (x) => {
      // The whole rollout fits in the fault phase (the last one has 7 s to settle).
      const gap = Math.min(gapMs, Math.floor((x.E - x.F - 7000) / x.n));
      return { title: 'rolling deploy (not a failure)', description: `every ${gap / 1000} s one more of ${x.n} restarts cold (2× slower, settling over 6 s) into a version 1.15× slower: nothing may be drained or ejected`,
      endpoints: cluster(x.n), hard: false, suite: 'learning' as const,
      faults: Array.from({ length: x.n }, (_, i) => {
        const at = x.F + i * gap;
        const cold = [1, 2].map((k) => ({ kind: 'latency' as const, factor: 1.414, endpoints: [i], startMs: at, endMs: at + 3000 * k }));
        return [...cold, { kind: 'latency' as const, factor: 1.15, endpoints: [i], startMs: at, endMs: x.E }];
      }).flat(),
      targets: { falseEjections: 0 as const } };
    },
  };
}

/**
 * Diurnal swing, compressed: load rises and falls as a day's does (ramp ×factor, hold, back), with the
 * capacity of every endpoint a little different. Nothing may be drained or ejected.
 */
function diurnal(family: string, set: ScenarioSet, sizes: number[], timing: Timing, factor: number): Family {
  return loadGrowth(family, set, sizes, timing, factor, Math.round(timing.faultMs / 2), 0.1);
}

function LEARNING_FAMILIES(): Family[] {
  const T = LEARN_TUNING_TIMING;
  const H = LEARN_HELD_OUT_TIMING;
  return [
    // Tuning: what the predictor's defaults were chosen on.
    driftCrash('drift-10pct-crash', 'tuning', [5, 10], T, 0.1, 8000),
    creepingErrors('creeping-errors', 'tuning', [5, 10], T, 0.05, 30_000 - 1000),
    saturation('saturation', 'tuning', [5, 10], T, 2, 20_000, 0.5),
    loadGrowth('load-growth', 'tuning', [5, 10], T, 3, 20_000, 0),
    warmup('warm-up', 'tuning', [5, 10], T, 3, 15_000),
    deploy('rolling-deploy', 'tuning', [5, 10], T, 5000),
    diurnal('diurnal', 'tuning', [5, 10], T, 2),
    // Held-out: other rates, magnitudes, sizes and timings.
    driftCrash('drift-5pct-crash', 'held-out', [6], H, 0.05, 16_000, 2),
    driftCrash('drift-7pct-crash', 'held-out', [8], H, 0.07, 13_000, 5),
    driftCrash('drift-15pct-crash', 'held-out', [7], H, 0.15, 6000, 1),
    driftCrash('drift-20pct-crash', 'held-out', [9], H, 0.2, 5000, 3),
    creepingErrors('creeping-errors-4pct', 'held-out', [8], H, 0.04, 25_000, 6),
    creepingErrors('creeping-errors-8pct', 'held-out', [6], H, 0.08, 30_000, 1),
    saturation('saturation-fast', 'held-out', [7], H, 2.5, 12_000, 0.4, 2),
    loadGrowth('load-growth-uneven', 'held-out', [8], H, 2.5, 25_000, 0.15),
    warmup('warm-up-slow', 'held-out', [6], H, 4, 25_000, 4),
    deploy('rolling-deploy-fast', 'held-out', [7], H, 3000),
    diurnal('diurnal-uneven', 'held-out', [9], H, 2.5),
  ];
}
