// The fault-scenario catalogue, shared by the simulator, the tests and the real-process benchmark
// (bench/scenarios): plain data only, so that each driver realizes the same faults its own way.
// Times are ms from the start of the run; endpoints are referred to by index.

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

export type FaultSpec =
  /** Connection refused: fails at once (local-origin). */
  | { readonly kind: 'crash'; readonly endpoints: readonly number[]; readonly startMs: number; readonly endMs: number }
  /** Accepts, never answers: fails at the request timeout (local-origin). */
  | { readonly kind: 'blackhole'; readonly endpoints: readonly number[]; readonly startMs: number; readonly endMs: number }
  /** Answers `status` to this fraction of requests. */
  | { readonly kind: 'status'; readonly endpoints: readonly number[]; readonly startMs: number; readonly endMs: number; readonly status: 500 | 503; readonly fraction: number }
  /** Gray failure: answers 200, `factor` times slower. */
  | { readonly kind: 'latency'; readonly endpoints: readonly number[]; readonly startMs: number; readonly endMs: number; readonly factor: number }
  /** Latency creeps linearly from 1× to `factor`× until `crashAtMs`, then the endpoint crashes until endMs. */
  | { readonly kind: 'drift'; readonly endpoints: readonly number[]; readonly startMs: number; readonly endMs: number; readonly factor: number; readonly crashAtMs: number }
  /** Alternates down (crash) for downMs and up for upMs, starting down. */
  | { readonly kind: 'flap'; readonly endpoints: readonly number[]; readonly startMs: number; readonly endMs: number; readonly downMs: number; readonly upMs: number };

export interface LoadRamp {
  /** Offered load multiplies from 1 to `factor` between rampStartMs and rampEndMs, holds until holdEndMs, then returns to 1. */
  readonly rampStartMs: number;
  readonly rampEndMs: number;
  readonly holdEndMs: number;
  readonly factor: number;
}

export interface ScenarioSpec {
  readonly name: string;
  readonly title: string;
  readonly description: string;
  /** Offered load, requests per second (open loop, Poisson arrivals). */
  readonly rps: number;
  readonly durationMs: number;
  readonly endpoints: readonly EndpointModel[];
  /** Lognormal shape of latency (σ of log latency). */
  readonly latencySigma: number;
  /** Heavy tail: this fraction of requests is further multiplied by a Pareto(alpha) factor ≥ 1. */
  readonly latencyTail?: { readonly probability: number; readonly paretoAlpha: number };
  /** The client's (proxy's) request timeout, ms. */
  readonly requestTimeoutMs: number;
  readonly faults: readonly FaultSpec[];
  readonly load?: LoadRamp;
  /** What a good healer achieves here (asserted by tests; reported by the bench). */
  readonly targets: {
    /** Detection of the fault within this many ms of its start. */
    readonly detectWithinMs?: number;
    /** No endpoint without a fault is ever ejected. */
    readonly falseEjections: 0;
  };
}

const FIVE = (over: Partial<EndpointModel> = {}): EndpointModel[] =>
  [10, 9, 11, 10, 12].map((m) => ({ medianMs: m, zone: 'a', priority: 0, errorRate: 0.001, capacityRps: 0, ...over }));

const BASE = { rps: 200, durationMs: 90_000, latencySigma: 0.5, requestTimeoutMs: 1000 } as const;
const FAULT = { endpoints: [0], startMs: 30_000, endMs: 70_000 } as const;

export const SCENARIOS: readonly ScenarioSpec[] = [
  {
    ...BASE,
    name: 'crash',
    title: 'crash',
    description: 'one of five endpoints refuses connections for 40 s',
    endpoints: FIVE(),
    faults: [{ kind: 'crash', ...FAULT }],
    targets: { detectWithinMs: 1000, falseEjections: 0 },
  },
  {
    ...BASE,
    name: 'crash-10',
    title: 'crash, ten endpoints',
    description: 'one of ten endpoints refuses connections for 40 s (a cluster large enough for Envoy to eject)',
    rps: 400,
    endpoints: [10, 9, 11, 10, 12, 10, 9, 11, 10, 12].map((m) => ({ medianMs: m, zone: 'a', priority: 0, errorRate: 0.001, capacityRps: 0 })),
    faults: [{ kind: 'crash', ...FAULT }],
    targets: { detectWithinMs: 1000, falseEjections: 0 },
  },
  {
    ...BASE,
    name: 'blackhole',
    title: 'black hole',
    description: 'one of five endpoints accepts requests and never answers (1 s timeout)',
    endpoints: FIVE(),
    faults: [{ kind: 'blackhole', ...FAULT }],
    targets: { detectWithinMs: 2000, falseEjections: 0 },
  },
  {
    ...BASE,
    name: 'hard-5xx',
    title: 'hard 5xx',
    description: 'one of five endpoints answers 500 to every request',
    endpoints: FIVE(),
    faults: [{ kind: 'status', ...FAULT, status: 500, fraction: 1 }],
    targets: { detectWithinMs: 1000, falseEjections: 0 },
  },
  {
    ...BASE,
    name: 'partial-5xx-30',
    title: 'partial 5xx 30 %',
    description: 'one of five endpoints answers 500 to 30 % of requests',
    endpoints: FIVE(),
    faults: [{ kind: 'status', ...FAULT, status: 500, fraction: 0.3 }],
    targets: { detectWithinMs: 5000, falseEjections: 0 },
  },
  {
    ...BASE,
    name: 'partial-5xx-10',
    title: 'partial 5xx 10 %',
    description: 'one of five endpoints answers 500 to 10 % of requests',
    endpoints: FIVE(),
    faults: [{ kind: 'status', ...FAULT, status: 500, fraction: 0.1 }],
    targets: { detectWithinMs: 10_000, falseEjections: 0 },
  },
  {
    ...BASE,
    name: 'three-bad-of-10',
    title: 'three bad endpoints of ten',
    description: 'three of ten endpoints answer 500 to 30 % of requests: mean − 1.9 σ is dragged below them (masking)',
    rps: 400,
    endpoints: [10, 9, 11, 10, 12, 10, 9, 11, 10, 12].map((m) => ({ medianMs: m, zone: 'a', priority: 0, errorRate: 0.001, capacityRps: 0 })),
    faults: [{ kind: 'status', endpoints: [0, 1, 2], startMs: 30_000, endMs: 70_000, status: 500, fraction: 0.3 }],
    targets: { detectWithinMs: 5000, falseEjections: 0 },
  },
  {
    ...BASE,
    name: 'gray-3x',
    title: 'gray latency 3×',
    description: 'one of five endpoints answers 200, three times slower',
    endpoints: FIVE(),
    faults: [{ kind: 'latency', ...FAULT, factor: 3 }],
    targets: { detectWithinMs: 3000, falseEjections: 0 },
  },
  {
    ...BASE,
    name: 'gray-10x',
    title: 'gray latency 10×',
    description: 'one of five endpoints answers 200, ten times slower',
    endpoints: FIVE(),
    faults: [{ kind: 'latency', ...FAULT, factor: 10 }],
    // The Peak-EWMA balancer starves a 10× endpoint at once (1–2 requests a second; clients barely see
    // it): too few requests to judge it safely, so no detection target — its impact is in the p99.
    targets: { falseEjections: 0 },
  },
  {
    ...BASE,
    name: 'drift-crash',
    title: 'latency drift, then crash',
    description: 'one endpoint slows from 1× to 5× over 30 s, then crashes for 10 s',
    endpoints: FIVE(),
    faults: [{ kind: 'drift', endpoints: [0], startMs: 30_000, endMs: 70_000, factor: 5, crashAtMs: 60_000 }],
    targets: { detectWithinMs: 30_000, falseEjections: 0 },
  },
  {
    ...BASE,
    name: 'flapping',
    title: 'flapping',
    description: 'one endpoint goes down 3 s, up 3 s, repeatedly, for 40 s',
    endpoints: FIVE(),
    faults: [{ kind: 'flap', ...FAULT, downMs: 3000, upMs: 3000 }],
    targets: { detectWithinMs: 1000, falseEjections: 0 },
  },
  {
    ...BASE,
    name: 'zone-outage',
    title: 'zone outage',
    description: 'all three endpoints of zone a (priority 0) refuse connections; zone b (priority 1) is healthy',
    endpoints: [
      ...[10, 9, 11].map((m) => ({ medianMs: m, zone: 'a', priority: 0, errorRate: 0.001, capacityRps: 0 })),
      ...[12, 13, 12].map((m) => ({ medianMs: m, zone: 'b', priority: 1, errorRate: 0.001, capacityRps: 0 })),
    ],
    faults: [{ kind: 'crash', endpoints: [0, 1, 2], startMs: 30_000, endMs: 70_000 }],
    targets: { detectWithinMs: 1000, falseEjections: 0 },
  },
  {
    ...BASE,
    name: 'overload',
    title: 'overload',
    description: 'offered load triples over 20 s; every endpoint slows together (queueing): nothing must be ejected',
    endpoints: FIVE({ capacityRps: 150 }),
    faults: [],
    load: { rampStartMs: 30_000, rampEndMs: 50_000, holdEndMs: 70_000, factor: 3 },
    targets: { falseEjections: 0 },
  },
  {
    ...BASE,
    name: 'noise',
    title: 'fault-free noise',
    description: 'no fault: lognormal latency (σ 0.6, medians ±20 %) with a Pareto tail (2 % of requests × Pareto α 1.5), 0.1–0.5 % background errors',
    durationMs: 600_000,
    latencySigma: 0.6,
    latencyTail: { probability: 0.02, paretoAlpha: 1.5 },
    endpoints: [
      { medianMs: 10, zone: 'a', priority: 0, errorRate: 0.001, capacityRps: 0 },
      { medianMs: 8, zone: 'a', priority: 0, errorRate: 0.005, capacityRps: 0 },
      { medianMs: 12, zone: 'a', priority: 0, errorRate: 0.003, capacityRps: 0 },
      { medianMs: 9, zone: 'a', priority: 0, errorRate: 0.002, capacityRps: 0 },
      { medianMs: 11, zone: 'a', priority: 0, errorRate: 0.004, capacityRps: 0 },
    ],
    faults: [],
    targets: { falseEjections: 0 },
  },
];

export function scenarioByName(name: string): ScenarioSpec | undefined {
  return SCENARIOS.find((s) => s.name === name);
}

/** The endpoints a scenario's faults touch. */
export function faultyEndpoints(s: ScenarioSpec): Set<number> {
  const out = new Set<number>();
  for (const f of s.faults) for (const e of f.endpoints) out.add(e);
  return out;
}
