// Shared data model: endpoints, services, outcomes, health states and decisions.
// Everything here is plain data so that the decision core, the adapters and the simulator share it.

export interface Locality {
  readonly region: string;
  readonly zone: string;
  readonly subzone: string;
}

export const NO_LOCALITY: Locality = Object.freeze({ region: '', zone: '', subzone: '' });

/** One instance of a service: an IP literal and a numeric port. */
export interface EndpointSpec {
  /** `service/host:port` (IPv6 hosts in brackets: `svc/[::1]:80`). */
  readonly id: string;
  readonly service: string;
  readonly host: string;
  readonly port: number;
  readonly locality: Locality;
  /** 0 is the most preferred priority; higher numbers are failover targets. */
  readonly priority: number;
  /** Static weight from config or discovery (>= 1). */
  readonly weight: number;
  readonly labels: Readonly<Record<string, string>>;
}

export interface ServiceSpec {
  readonly name: string;
  readonly endpoints: readonly EndpointSpec[];
}

/**
 * Outcome classes, Envoy's split. Numeric so that the hot path indexes counters with them.
 * - Success: any response that is not a 5xx (4xx is the client's fault, not the endpoint's).
 * - Error5xx: a 5xx other than 502/503/504 returned by the endpoint.
 * - Gateway: 502, 503 or 504 returned by the endpoint.
 * - LocalOrigin: no response: connect refused, reset, timeout (Envoy counts these as 503/504 when not split).
 * - Cancelled: the client went away first; not charged to the endpoint.
 */
export const Outcome = {
  Success: 0,
  Error5xx: 1,
  Gateway: 2,
  LocalOrigin: 3,
  Cancelled: 4,
} as const;
export type Outcome = (typeof Outcome)[keyof typeof Outcome];
export const OUTCOME_COUNT = 5;
export const OUTCOME_NAMES: readonly string[] = Object.freeze(['success', '5xx', 'gateway', 'local_origin', 'cancelled']);

/** Classify an HTTP status answered by an endpoint. */
export function outcomeOfStatus(status: number): Outcome {
  if (status < 500) return Outcome.Success;
  if (status === 502 || status === 503 || status === 504) return Outcome.Gateway;
  return Outcome.Error5xx;
}

/** Is this outcome an error charged to the endpoint (Envoy's "5xx" family, local-origin included)? */
export function isFailure(o: Outcome): boolean {
  return o === Outcome.Error5xx || o === Outcome.Gateway || o === Outcome.LocalOrigin;
}

export type HealthState = 'healthy' | 'degraded' | 'ejected' | 'probation' | 'draining';
export const HEALTH_STATES: readonly HealthState[] = Object.freeze(['healthy', 'degraded', 'ejected', 'probation', 'draining']);

export type DecisionAction = 'eject' | 'restore' | 'weight' | 'probation' | 'failover' | 'drain';
export type DecisionSource = 'local' | 'peer' | 'predicted' | 'learned' | 'operator';

/** A healing decision with its reason and evidence. Decisions are the only way health changes. */
export interface Decision {
  readonly action: DecisionAction;
  /** Endpoint id, or service name for service-wide actions such as failover. */
  readonly target: string;
  /** Short machine-readable reason, e.g. `consecutive_5xx`, `latency_peer`, `operator`. */
  readonly reason: string;
  readonly source: DecisionSource;
  /** Epoch milliseconds (from the injected clock). */
  readonly at: number;
  /** For eject/drain: how long, in ms (0 or absent = until restored). */
  readonly durationMs?: number;
  /** For `weight`: the weight factor in (0, 1] applied on top of the static weight. */
  readonly weight?: number;
  /** For failover: per-priority traffic share decided by the policy. */
  readonly evidence: Readonly<Record<string, number | string | boolean>>;
}

/** Health of one endpoint as the mesh state holds it. */
export interface EndpointHealth {
  readonly state: HealthState;
  /** Factor in [0, 1] applied to the static weight (1 = full share; degraded endpoints get less). */
  readonly weightFactor: number;
  readonly reason: string;
  readonly source: DecisionSource | 'init';
  /** Since when (epoch ms) this state holds. */
  readonly since: number;
  /** When an ejection or drain ends on its own (epoch ms), if it does. */
  readonly until: number | undefined;
  /** How many times this endpoint has been ejected (drives backoff). */
  readonly ejections: number;
}

export const INITIAL_HEALTH: EndpointHealth = Object.freeze({
  state: 'healthy',
  weightFactor: 1,
  reason: '',
  source: 'init',
  since: 0,
  until: undefined,
  ejections: 0,
});

/**
 * Build the canonical endpoint id. Joined, not concatenated: V8 keeps a concatenation as a tree of
 * string pieces (three of them here, plus the "service/" prefix: ~130 B per id) where a join makes one
 * flat string (~50 B); a sidecar keeps one id per endpoint it knows, thousands in a cluster.
 */
export function endpointId(service: string, host: string, port: number): string {
  return host.includes(':') ? [service, '/[', host, ']:', port].join('') : [service, '/', host, ':', port].join('');
}
