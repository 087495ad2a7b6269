// The healing policy contract: one interface for meshmedic, envoy-default and none, so that the live
// sidecar, the simulator and the tests compare them fairly. A policy is created per service, keeps its
// own small state (backoff levels, probation), and is a deterministic function of its inputs: time
// comes from `input.now`, randomness from the injected `random`.
import type { Decision, DecisionSource, EndpointHealth } from '../core/types.js';
import type { ResolvedPolicySettings } from '../config/sections/healing.js';
import type { ServiceView } from '../mesh/state.js';
import type { EndpointSignals, Verdict } from '../detect/types.js';
import type { GuardName } from './guards.js';
import type { ServicePredictor } from '../learn/prediction.js';
import type { LearnedPolicyView } from '../learn/learned-policy.js';

/**
 * Whether a decision takes traffic away from its target (an ejection, a drain or a de-weight), as opposed
 * to a step of re-admission (probation, canary sizing, ramping back up) or a restore: what counts as
 * detecting a fault.
 */
export function isDisruptive(d: Decision): boolean {
  if (d.action === 'eject' || d.action === 'drain') return true;
  return d.action === 'weight' && (d.weight ?? 1) < 1 && d.reason !== 'probation_passed' && d.reason !== 'ramp_up' && d.reason !== 'probation_probe';
}

/**
 * A drain that ends on its own through probation: one decided on a forecast or by the learned policy
 * (probed like an ejection meanwhile). Operator drains last until restored or timed out.
 */
export function isTimedDrain(h: EndpointHealth): boolean {
  return h.state === 'draining' && (h.source === 'predicted' || h.source === 'learned');
}

/** A verdict from outside this sidecar's own detectors (gossiped peers, the predictor). */
export interface ExternalVerdict extends Verdict {
  readonly source: Exclude<DecisionSource, 'local' | 'operator'>;
  /**
   * Acted on only where the policy's own evidence path (its detectors, its predictor, or a peer's
   * verdict given before this one) has a verdict for the same endpoint in the same evaluation: the
   * verdict may then choose a stronger action, never act on an endpoint nothing else finds wrong.
   */
  readonly needsCorroboration?: boolean;
}

/** The result of one active probe of an ejected endpoint (sent by the healing component or the simulator). */
export interface ProbeResult {
  readonly target: string;
  readonly ok: boolean;
  readonly at: number;
}

export interface PolicyInput {
  readonly now: number;
  readonly service: ServiceView;
  /** One per endpoint, in the order of `service.endpoints`. */
  readonly signals: readonly EndpointSignals[];
  /** The window that just completed (its figures are the newest in each feature ring), or -1. */
  readonly completedEpoch: number;
  readonly windowMs: number;
  /** External verdicts received since the last evaluation. */
  readonly external: readonly ExternalVerdict[];
  /** Probe results received since the last evaluation (absent: nobody probes). */
  readonly probes?: readonly ProbeResult[];
}

export interface PolicyCounters {
  /** Verdicts a guard refused, by guard. */
  readonly refusals: Record<GuardName, number>;
}

export interface HealingPolicy {
  readonly name: string;
  readonly settings: ResolvedPolicySettings;
  readonly counters: PolicyCounters;
  /** The failure predictor, for policies that run one (meshmedic with healing.prediction.enabled). */
  readonly predictor?: ServicePredictor;
  /** The learned policy's file and choices (policy `learned` only). */
  readonly learned?: () => LearnedPolicyView;
  evaluate(input: PolicyInput): Decision[];
  /**
   * Forget what the policy keeps about these endpoints: the engine released their service's signals after
   * it was quiet (src/heal/engine.ts), and they are judged afresh when it is used again.
   */
  release?(ids: readonly string[]): void;
}

export interface PolicyOptions {
  /** Uniform random numbers in [0, 1) (Envoy's enforcing percentages); seeded in the simulator. */
  readonly random: () => number;
}

export type PolicyFactory = (settings: ResolvedPolicySettings, opts: PolicyOptions) => HealingPolicy;

export function newCounters(): PolicyCounters {
  return { refusals: { max_ejection_pct: 0, panic: 0, rate_limit: 0, overload: 0 } };
}
