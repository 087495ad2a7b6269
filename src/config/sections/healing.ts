// Detection and healing settings, per service (with mesh-wide defaults).
// The detection/healing engine owns this file: every detector and guard parameter is declared here, once.
//
// Defaults live in the schema as the `x-default` annotation of each property rather than `default`, so
// that the validator does not fill them in: the same schema is used mesh-wide and per service, and a
// per-service block filled with defaults would silently mask the mesh-wide values. `resolvePolicySettings` merges
// built-in defaults ← mesh-wide `healing` ← `services[].healing` into one frozen, complete object.

export const POLICIES = ['meshmedic', 'envoy-default', 'none', 'learned'] as const;
export type PolicyName = (typeof POLICIES)[number];

type Num = { type: 'number' | 'integer'; minimum: number; maximum: number; 'x-default': number; description: string };
type Bool = { type: 'boolean'; 'x-default': boolean; description: string };
type Str = { type: 'string'; maxLength: number; pattern: string; 'x-default': string; description: string };

const int = (def: number, min: number, max: number, description: string): Num => ({ type: 'integer', minimum: min, maximum: max, 'x-default': def, description });
const num = (def: number, min: number, max: number, description: string): Num => ({ type: 'number', minimum: min, maximum: max, 'x-default': def, description });
const bool = (def: boolean, description: string): Bool => ({ type: 'boolean', 'x-default': def, description });
const str = (def: string, pattern: string, maxLength: number, description: string): Str => ({ type: 'string', maxLength, pattern, 'x-default': def, description });
const group = <P extends Record<string, Num | Bool | Str>>(description: string, properties: P) => ({ type: 'object' as const, additionalProperties: false as const, description, properties });

/** Every group of settings; the order is the order of docs/healing.md. */
export const HEALING_GROUPS = {
  consecutive: group('Consecutive-failure detectors (meshmedic policy); checked right after each failure.', {
    enabled: bool(true, 'run the consecutive-failure detectors'),
    errors5xx: int(5, 1, 1000, 'consecutive failures of any kind (5xx, gateway, local-origin) that eject'),
    gateway: int(5, 1, 1000, 'consecutive gateway failures (502/503/504, connect errors, timeouts) that eject'),
    localOrigin: int(3, 1, 1000, 'consecutive local-origin failures (refused, reset, timeout) that eject'),
    refused: int(1, 0, 1000, 'consecutive refused connections (nothing listens at the endpoint: certain evidence, unlike a timeout) that eject; the active probes readmit it. 0 = count them as local-origin failures only'),
  }),
  peerSuccess: group('Robust peer detector on success rate: median/MAD across endpoints plus a binomial test.', {
    enabled: bool(true, 'run the detector'),
    windows: int(5, 1, 60, 'completed windows summed per endpoint'),
    minRequests: int(100, 1, 1_000_000, 'minimum requests in those windows for an endpoint to be judged or counted'),
    minHosts: int(3, 2, 10_000, 'minimum number of endpoints with enough requests'),
    madFactor: num(5, 0, 100, 'flag when the success rate is below median − madFactor × 1.4826 × MAD'),
    minDrop: num(0.05, 0, 1, 'and at least this far (absolute) below the median success rate'),
    maxPValue: num(1e-9, 1e-300, 0.5, 'and failures this many or more would happen with at most this probability at the other endpoints\' rate (Poisson tail; 1e-9 ≈ one false alarm in 30 years of 1 s windows per endpoint)'),
    baseFailureRate: num(0.005, 0, 1, 'lowest failure rate assumed for the peers (background errors)'),
  }),
  peerLatency: group('Robust peer detector on latency: median/MAD across endpoints of each window p50, p90 and p99.', {
    enabled: bool(true, 'run the detector'),
    minRequests: int(10, 1, 1_000_000, 'minimum requests for an endpoint p50 to be used (p90 needs five times as many)'),
    poolWindows: int(9, 1, 60, 'an endpoint with too few requests in the newest window is judged on up to this many recent windows pooled'),
    minRequestsP99: int(200, 1, 1_000_000, 'minimum requests in a window for its p99 to be used'),
    minHosts: int(3, 2, 10_000, 'minimum number of endpoints with enough requests'),
    ejectRatio: num(2, 1, 1000, 'quantile ≥ ejectRatio × peer median (p50; p90 and p99 use 1.25× this) ejects'),
    degradeRatio: num(1.5, 1, 1000, 'quantile ≥ degradeRatio × peer median de-weights'),
    madFactor: num(3, 0, 100, 'and the excess over the median exceeds madFactor × 1.4826 × MAD'),
    minExcessMs: num(2, 0, 600_000, 'and the excess over the median is at least this many ms'),
    usualRatioCap: num(1.5, 1, 100, "an endpoint's usual ratio to its peers (learned when it is not an outlier) discounts its ratio, up to this factor"),
    usualRatioAlpha: num(0.01, 0.0001, 1, 'learning rate of the usual ratio'),
    confirmWindows: int(2, 1, 60, 'strikes needed (+1 per window the condition holds, −1 per judged window it does not); ejection counts only windows at ejectRatio'),
    warmupWindows: int(5, 0, 16, "an endpoint is ejected for latency only once it has had traffic in this many windows: its first windows (after a start of the proxy or of the endpoint) are cold (JIT, caches, new connections); before that a latency outlier is de-weighted. 0 = no warm-up"),
  }),
  starvedLatency: group('Latency of an endpoint the balancer starves (docs/healing.md): judged on the few answers it got over several windows; every one of them must be far slower than its peers. De-weights only.', {
    enabled: bool(true, 'run the detector (meshmedic policy)'),
    windows: int(8, 1, 9, 'most completed windows pooled: the newest ones in a row in which it was starved'),
    minRequests: int(6, 2, 1_000_000, 'answers in those windows needed before a verdict (a de-weighted endpoint stays flagged while it has at least one, all still slow)'),
    maxShare: num(0.2, 0, 1, 'starved in a window: it completed at most this share of the median request count of the service\'s endpoints'),
    ratio: num(3, 1, 1000, 'its fastest tenth (p10) must be ≥ ratio × the peers\' median p50, and ≥ their median p90'),
  }),
  latencyBaseline: group('Self-baseline latency detector: one-sided CUSUM over log(window p50) and log(window p90).', {
    enabled: bool(true, 'run the detector'),
    k: num(0.5, 0, 10, 'CUSUM reference value, in standard deviations'),
    h: num(12, 0.5, 100, 'CUSUM decision interval; with k 0.5, h 12 the in-control ARL is about 1.0e6 windows (docs/healing.md)'),
    sigmaFloor: num(0.15, 0.001, 10, 'lower bound of the standard deviation of log latency (0.15 ≈ 15 %)'),
    zClip: num(4, 0.5, 100, 'each standardized sample is clipped to ±zClip before it enters the CUSUM (robustness to heavy tails)'),
    alpha: num(0.02, 0.0001, 1, 'EWMA weight with which the baseline learns from in-control windows'),
    warmupWindows: int(30, 2, 100_000, 'windows with enough requests before the baseline is trusted'),
    minRequests: int(10, 1, 1_000_000, 'minimum requests for a p50 sample (pooled over up to peerLatency.poolWindows windows, as the peer detector does); p90 needs five times as many in one window'),
    corroborateZ: num(3, 0, 100, "a peer-latency verdict stands only if the endpoint's latest p50 is this many σ above its own baseline (or it has no baseline yet, or the ratio is twice peerLatency.ejectRatio)"),
    peerCorroboration: num(1.5, 1, 100, "act on an alarm only if the endpoint's p50 is also this many times its peers' median (alone in its service: always act)"),
  }),
  peerErrorCusum: group('Sequential test of each endpoint\'s failures against its peers\' rate (Bernoulli CUSUM, updated every tick).', {
    enabled: bool(true, 'run the detector (meshmedic policy)'),
    shift: num(0.1, 0.001, 0.99, 'failure rate the test is tuned to detect, above the peers\' rate (the alternative p1 = peer rate + shift)'),
    h: num(23, 1, 200, 'decision threshold on the log-likelihood ratio; a false alarm needs e^h ≈ 1e10 requests or more at the peers\' rate (Wald), with 23'),
    windows: int(5, 1, 10, 'completed windows of the other endpoints that give the peers\' failure rate'),
    minHosts: int(3, 2, 10_000, 'endpoints with traffic in those windows (itself included) needed to judge'),
    baseFailureRate: num(0.005, 0.000001, 0.5, 'lowest failure rate assumed for the peers (background errors)'),
  }),
  errorBaseline: group('Self-baseline error detector: EWMA control chart over the window failure fraction.', {
    enabled: bool(true, 'run the detector'),
    lambda: num(0.2, 0.01, 1, 'EWMA weight of the newest window'),
    L: num(4, 0.5, 20, 'control limit width in standard deviations (λ 0.2, L 3: two-sided ARL ≈ 560 windows; L 4, upper only: ≈ 3.8 × 10^4)'),
    minDelta: num(0.05, 0, 1, 'and the smoothed failure fraction exceeds the baseline by at least this much'),
    pFloor: num(0.001, 0.000001, 0.5, 'lower bound of the baseline failure fraction'),
    alpha: num(0.02, 0.0001, 1, 'EWMA weight with which the baseline learns from in-control windows'),
    warmupWindows: int(30, 2, 100_000, 'windows with enough requests before the baseline is trusted'),
    minRequests: int(20, 1, 1_000_000, 'minimum requests in a window to use it'),
    peerCorroboration: bool(true, "act on an alarm only if the endpoint's failure fraction also exceeds its peers' median by minDelta (alone: always act)"),
  }),
  ejection: group('Ejection, backoff and the guards that always win.', {
    baseMs: int(10_000, 100, 86_400_000, 'ejection time at level 1; level n ejects for baseMs × n'),
    maxMs: int(300_000, 100, 86_400_000, 'longest ejection'),
    maxEjectionPct: num(50, 0, 100, 'most endpoints of one priority (and locality) that may be out at once, %'),
    alwaysEjectOne: bool(true, 'allow one ejection per priority/locality even when maxEjectionPct forbids it'),
    perLocality: bool(false, 'apply maxEjectionPct per priority and locality (else per priority)'),
    failoverBypass: bool(true, 'beyond maxEjectionPct, still eject a hard-failing endpoint when another priority has healthy capacity for its traffic'),
    panicGuard: bool(true, 'refuse ejections that would put the service in panic (routing.panicThresholdPct)'),
    decayMs: int(60_000, 100, 86_400_000, 'a healthy endpoint loses one backoff level per this much time'),
  }),
  probation: group('Re-admission through probation: canary traffic judged by its observed health.', {
    canaryWeight: num(0.05, 0.001, 1, 'weight factor of a probation endpoint (share of its normal traffic)'),
    minRequests: int(20, 1, 1_000_000, 'canary requests needed before a verdict'),
    maxFailureRate: num(0.02, 0, 1, 'highest canary failure fraction that passes'),
    maxLatencyRatio: num(1.5, 1, 1000, 'highest canary p50 / peer median p50 that passes'),
    failConsecutive: int(3, 1, 1000, 'consecutive canary failures that re-eject at once'),
    widenAfterMs: int(10_000, 100, 86_400_000, 'without enough canary requests for this long, double the canary weight (up to 0.5), or probe with ordinary traffic when its priority receives none'),
    rampStart: num(0.5, 0.001, 1, 'weight factor after passing probation; it then ramps back to 1'),
    judgeMs: int(2000, 100, 600_000, 'canary share is sized from the peers\' traffic so that minRequests arrive within this time (at least canaryWeight, at most maxCanaryWeight)'),
    maxCanaryWeight: num(0.25, 0.001, 1, 'largest canary share when sizing it from the expected traffic'),
    fastCanaryWeight: num(1, 0.001, 1, 'canary share when the fast path applies (a first ejection for consecutive failures ended by passing probes); the larger share brings the fastRequests canaries in quickly'),
    fastRequests: int(5, 0, 1_000_000, 'after a failure ejection at backoff level 1 that passing probes ended, restore at full weight (no ramp) once this many canaries are all clean and not slower than maxLatencyRatio; 0 = always wait for minRequests and ramp'),
  }),
  probe: group('Active probes of ejected endpoints only: a failing probe keeps the endpoint out without canary traffic or a higher backoff level; passing probes let it into probation early.', {
    enabled: bool(true, 'probe ejected endpoints (the sidecar sends them; in the simulator they are modelled)'),
    path: str('/healthz', '^(|/[\\x21-\\x7e]*)$', 256, 'HTTP GET path of the probe; any answer below 500 passes; empty = TCP connect only'),
    intervalMs: int(200, 100, 600_000, 'time between probes of one ejected endpoint (each sidecar probes the endpoints it ejected: N sidecars send N probes per interval)'),
    timeoutMs: int(400, 10, 60_000, 'a probe without an answer in this time fails'),
    passes: int(1, 1, 100, 'consecutive passing probes needed before probation, times the backoff level'),
    minEjectionMs: int(2000, 0, 86_400_000, 'shortest ejection at level n (× n) after a failure ejection when probes pass (never longer than the backoff timer); failing probes keep it out'),
  }),
  deweight: group('De-weighting of a degrading endpoint and the automatic ramp back.', {
    enabled: bool(true, 'de-weight on degrade verdicts (self-baseline alarms, moderate peer latency)'),
    minWeight: num(0.1, 0.001, 1, 'lowest weight factor'),
    rampStep: num(0.25, 0.01, 1, 'weight factor added back per clean window'),
  }),
  overload: group('Overload guard: latency rising on most endpoints together is load, not an outlier.', {
    enabled: bool(true, 'suppress latency-based ejections and de-weights under overload'),
    fraction: num(0.5, 0, 1, 'overload when at least this fraction of judged endpoints are slow against their own baseline'),
    minHosts: int(2, 1, 10_000, 'overload needs at least this many slow endpoints'),
  }),
  prediction: group('Failure prediction (docs/learning.md): a CUSUM of each endpoint\'s latency against its peers\' with a rising-slope gate, and a trend test of its error rate; a forecast failure within the horizon de-weights, then drains (never ejects), under the same guards.', {
    enabled: bool(true, 'run the predictor (meshmedic policy)'),
    horizonMs: int(15_000, 1000, 600_000, 'act on a failure forecast within this time'),
    windows: int(12, 6, 64, 'at most this many completed windows in the latency slope fit'),
    errorWindows: int(30, 6, 64, 'completed windows in the error trend fit (failures are rare events: a longer look)'),
    errorMinFailures: int(4, 1, 1_000_000, 'failures in those windows before an error trend counts (a floor: the error CUSUM at its default threshold needs at least 4 anyway)'),
    minPoints: int(8, 3, 64, 'measurable windows needed in the error trend fit'),
    minRequests: int(10, 1, 1_000_000, 'requests in a window (the endpoint\'s, and its peers\' together) for its latency to be a point'),
    latencyFailRatio: num(2, 1.1, 100, 'failure line of latency: this many times the peers\' (mean log latency)'),
    latencyMinRatio: num(1.3, 1, 100, 'act only once the fitted latency is already this many times the peers\''),
    errorFailExcess: num(0.03, 0.001, 1, 'failure line of errors: failure fraction this far above the peers\''),
    errorMinExcess: num(0.01, 0, 1, 'act only once the failure fraction is already this far above the peers\''),
    errorShift: num(0.02, 0.001, 0.5, 'error CUSUM: the rise of the failure fraction it is tuned to detect (p1 = p0 + shift; p0 = the larger of the peers\' fraction, the endpoint\'s own usual one and 0.1 %)'),
    errorH: num(10, 0.5, 200, 'error CUSUM threshold (log-likelihood ratio): an error trend counts only while the CUSUM is above it'),
    errorDrainArl: num(1e9, 1000, 1e15, 'error CUSUM threshold that drains at once (no confirmWindows streak), stated as its in-control average run length in requests: the threshold is ln of it (an LLR CUSUM alarms on in-control data no more often than once in e^h observations)'),
    deweightZ: num(2.6, 0, 10, 'error trend test z (Cochran–Armitage) that de-weights'),
    drainZ: num(3.3, 0, 10, 'error trend test z that drains (after confirmWindows windows of forecasts)'),
    cusumK: num(1, 0.1, 5, 'latency CUSUM reference value, in standard errors of a window\'s mean log latency against its peers (the chart grows only on windows beyond it)'),
    deweightArl: num(1_000_000, 1000, 1e12, 'latency CUSUM threshold that de-weights, stated as its in-control average run length in endpoint-windows (Brook–Evans)'),
    drainArl: num(100_000_000, 1000, 1e12, 'latency CUSUM threshold that drains, as an in-control average run length in endpoint-windows'),
    overdispersion: num(1.25, 1, 10, 'latency standard errors are widened by this factor (windows scatter more than independent requests would)'),
    slopeZ: num(1.5, 0, 10, 'still rising: the weighted slope of the newest windows (since the chart left zero) must be this many standard errors above zero'),
    confirmWindows: int(4, 1, 60, 'windows with a forecast (+1 each, −1 for each without) before a drain'),
    deweightWeight: num(0.5, 0.01, 1, 'weight factor of a predicted de-weight'),
    drainMs: int(10_000, 1000, 3_600_000, 'a predicted drain lasts this long, then the endpoint is tried again through probation'),
  }),
  rateLimit: group('Rate limit on disruptive decisions (eject, de-weight, drain) per service: a token bucket.', {
    perSecond: num(2, 0.001, 10_000, 'tokens added per second'),
    burst: int(5, 1, 10_000, 'bucket size'),
    exemptHardFailures: bool(true, 'ejections for consecutive failures (refused or timed-out connections, consecutive 5xx or gateway errors) take no token: direct evidence is not rate limited, as in Envoy and Linkerd; the ejection guards still apply'),
  }),
  envoy: group("envoy-default policy: Envoy's outlier detection (defaults are Envoy's own).", {
    intervalMs: int(10_000, 100, 86_400_000, 'analysis interval (success rate, failure %, un-ejection)'),
    baseEjectionTimeMs: int(30_000, 100, 86_400_000, 'base_ejection_time'),
    maxEjectionTimeMs: int(300_000, 100, 86_400_000, 'max_ejection_time (Envoy uses max(300 s, base))'),
    maxEjectionPercent: num(10, 0, 100, 'max_ejection_percent, cluster-wide'),
    alwaysEjectOneHost: bool(false, 'always_eject_one_host'),
    consecutive5xx: int(5, 1, 1000, 'consecutive_5xx'),
    enforcingConsecutive5xx: int(100, 0, 100, 'enforcing_consecutive_5xx, %'),
    consecutiveGatewayFailure: int(5, 1, 1000, 'consecutive_gateway_failure'),
    enforcingConsecutiveGatewayFailure: int(0, 0, 100, 'enforcing_consecutive_gateway_failure, %'),
    successRateMinimumHosts: int(5, 1, 10_000, 'success_rate_minimum_hosts'),
    successRateRequestVolume: int(100, 1, 1_000_000, 'success_rate_request_volume'),
    successRateStdevFactor: int(1900, 0, 100_000, 'success_rate_stdev_factor (divided by 1000)'),
    enforcingSuccessRate: int(100, 0, 100, 'enforcing_success_rate, %'),
    failurePercentageThreshold: int(85, 0, 100, 'failure_percentage_threshold'),
    failurePercentageMinimumHosts: int(5, 1, 10_000, 'failure_percentage_minimum_hosts'),
    failurePercentageRequestVolume: int(50, 1, 1_000_000, 'failure_percentage_request_volume'),
    enforcingFailurePercentage: int(0, 0, 100, 'enforcing_failure_percentage, %'),
  }),
} as const;

export type HealingGroupName = keyof typeof HEALING_GROUPS;

export const policySettingsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    policy: { enum: POLICIES, description: 'healing policy: meshmedic, envoy-default, none, or learned (the meshmedic rules plus a policy trained by `meshmedic learn train`, read from policyFile; docs/learning.md)' },
    policyFile: { type: 'string', minLength: 1, maxLength: 4096, description: 'the learned policy file (JSON written by `meshmedic learn train`), read and verified at start; required by policy learned' },
    ...HEALING_GROUPS,
  },
} as const;

type GroupValues<G> = G extends { properties: infer P } ? { readonly [K in keyof P]: P[K] extends Bool ? boolean : P[K] extends Str ? string : number } : never;

/** The settings as written in a config file: every key optional. */
export type PolicySettings = {
  readonly policy?: PolicyName;
  readonly policyFile?: string;
} & { readonly [G in HealingGroupName]?: Partial<GroupValues<(typeof HEALING_GROUPS)[G]>> };

/** The settings a policy runs with: complete and frozen. */
export type ResolvedPolicySettings = {
  readonly policy: PolicyName;
  /** '' when none is configured. */
  readonly policyFile: string;
} & { readonly [G in HealingGroupName]: GroupValues<(typeof HEALING_GROUPS)[G]> };

function defaultsOf(): ResolvedPolicySettings {
  const out: Record<string, unknown> = { policy: 'meshmedic', policyFile: '' };
  for (const [g, spec] of Object.entries(HEALING_GROUPS)) {
    const values: Record<string, unknown> = {};
    for (const [k, p] of Object.entries(spec.properties)) values[k] = p['x-default'];
    out[g] = values;
  }
  return out as ResolvedPolicySettings;
}

/** Built-in defaults, from the schema. */
export const DEFAULT_POLICY_SETTINGS: ResolvedPolicySettings = deepFreeze(defaultsOf());

/** Merge built-in defaults ← mesh-wide ← per-service settings (later wins, key by key). */
export function resolvePolicySettings(...layers: (PolicySettings | undefined)[]): ResolvedPolicySettings {
  const out: Record<string, unknown> = { policy: DEFAULT_POLICY_SETTINGS.policy, policyFile: '' };
  for (const g of Object.keys(HEALING_GROUPS)) out[g] = { ...(DEFAULT_POLICY_SETTINGS as unknown as Record<string, object>)[g] };
  for (const layer of layers) {
    if (!layer) continue;
    if (layer.policy) out.policy = layer.policy;
    if (typeof layer.policyFile === 'string') out.policyFile = layer.policyFile;
    for (const g of Object.keys(HEALING_GROUPS) as HealingGroupName[]) {
      const v = layer[g];
      if (v && typeof v === 'object') Object.assign(out[g] as object, v);
    }
  }
  return deepFreeze(out as ResolvedPolicySettings);
}

/** Per-service resolved settings, cached; `reset` takes new mesh-wide settings (run-time reconfiguration). */
export interface PolicySettingsResolver {
  (service: string): ResolvedPolicySettings;
  reset(meshWide: PolicySettings): void;
  /** The mesh-wide settings in force (the last `reset`'s, else the first). */
  meshWide(): PolicySettings | undefined;
}

/**
 * The one rule for which settings a service runs under: built-in defaults ← mesh-wide ← the service's own block.
 * A service without a healing block of its own shares the mesh-wide object (one resolved copy, not one per
 * known service: ~3.5 KB each, ~0.7 MB of heap for 200 services — docs/kubernetes.md).
 */
export function policySettingsResolver(
  meshWide: PolicySettings | undefined,
  perService: ReadonlyMap<string, PolicySettings | undefined>,
): PolicySettingsResolver {
  let mesh = meshWide;
  const cache = new Map<string, ResolvedPolicySettings>();
  const MESH_WIDE = ''; // service names are non-empty (config schema), so '' cannot collide with one
  const resolve = (service: string): ResolvedPolicySettings => {
    const own = perService.get(service);
    const key = own ? service : MESH_WIDE;
    let s = cache.get(key);
    if (!s) cache.set(key, (s = resolvePolicySettings(mesh, own)));
    return s;
  };
  return Object.assign(resolve, {
    reset(next: PolicySettings): void {
      mesh = next;
      cache.clear();
    },
    meshWide: (): PolicySettings | undefined => mesh,
  });
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as object)) deepFreeze(v);
  }
  return o;
}
