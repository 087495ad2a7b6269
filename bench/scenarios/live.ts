// The live benchmark's view of a catalogue scenario (src/sim/scenarios.ts): the open-loop rate
// schedule, the fault phase and the faulty endpoints, as the analysis needs them. Pure.
import { faultPhase, faultyEndpoints, type ScenarioSpec } from '../../src/sim/scenarios.js';
import type { RateStep } from '../lib/loadgen.js';

export interface LiveScenario {
  readonly name: string;
  readonly description: string;
  /** Cluster size. */
  readonly endpoints: number;
  readonly schedule: readonly RateStep[];
  readonly durationMs: number;
  /** When the faults begin and end (ms after the load starts); end null = they never end. */
  readonly faultStartMs: number;
  readonly faultEndMs: number | null;
  /** Endpoints that are faulty; empty = a scenario where any ejection is a false one. */
  readonly faulty: readonly number[];
  /** A hard failure (refused, black hole, 100 % 5xx): target "decided within 5 requests or 1 s". */
  readonly hard: boolean;
  /** How long affected traffic must pause to count as shifted (default 1 s). */
  readonly quietMs?: number;
}

/** Load ramps become 250 ms rate steps (the generator's schedule is piecewise constant). */
const RAMP_STEP_MS = 250;

export function rateSchedule(s: ScenarioSpec): RateStep[] {
  const l = s.load;
  if (!l) return [{ atMs: 0, rate: s.rps }];
  const out: RateStep[] = [{ atMs: 0, rate: s.rps }];
  for (let t = l.rampStartMs; t < l.rampEndMs; t += RAMP_STEP_MS) {
    out.push({ atMs: t, rate: Math.round(s.rps * (1 + ((l.factor - 1) * (t - l.rampStartMs)) / Math.max(1, l.rampEndMs - l.rampStartMs))) });
  }
  out.push({ atMs: l.rampEndMs, rate: Math.round(s.rps * l.factor) }, { atMs: l.holdEndMs, rate: s.rps });
  return out;
}

export function liveScenario(s: ScenarioSpec): LiveScenario {
  const phase = faultPhase(s);
  return {
    name: s.name, description: s.description, endpoints: s.endpoints.length, schedule: rateSchedule(s), durationMs: s.durationMs,
    faultStartMs: phase?.startMs ?? s.timing.warmMs,
    faultEndMs: phase ? phase.endMs : null,
    faulty: [...faultyEndpoints(s)].sort((a, b) => a - b),
    hard: s.hard, quietMs: s.quietMs,
  };
}

/** The backend models of a scenario's cluster, for `backend-main --models`. */
export function backendModels(s: ScenarioSpec, seed: number): object[] {
  return s.endpoints.map((e, i) => ({
    medianMs: e.medianMs, sigma: s.latencySigma, errorRate: e.errorRate, capacityRps: e.capacityRps, seed: seed * 1000 + i + 1,
    ...(s.latencyTail ? { tail: s.latencyTail } : {}),
  }));
}
