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

/**
 * The most requests per second the harness offers the machine at once, over all lanes: 12 lanes × 200,
 * the steady rate of every scenario but overload. At overload's peak (12 × 600 = 7,200/s) one load
 * generator's event loop needs about a core on its own (~120 µs of its main thread per request, 2 cores
 * shared with every proxy and backend): the quiet judged run sent 25-50 % of the overload requests more
 * than 200 ms late, in every lane, and its p99s (1-2 s) were the machine's, not the systems'.
 */
export const MAX_OFFERED_RPS = 2400;

/** Highest rate of a schedule (requests per second). */
export const peakRate = (schedule: readonly RateStep[]): number => schedule.reduce((m, s) => Math.max(m, s.rate), 0);

/**
 * The lanes split into consecutive batches that run one after the other (same cluster models, seed and
 * schedule), so that no batch offers more than `maxRps` at the schedule's peak; one batch when all fit.
 * As few batches as the budget allows, as even as possible (10 lanes, 3 per batch: 3 + 3 + 2 + 2).
 */
export function laneBatches<T>(lanes: readonly T[], schedule: readonly RateStep[], maxRps = MAX_OFFERED_RPS): T[][] {
  if (!(maxRps > 0)) throw new RangeError(`laneBatches: maxRps must be a positive number, got ${maxRps}`);
  if (lanes.length === 0) return [];
  const perBatch = Math.max(1, Math.floor(maxRps / Math.max(1, peakRate(schedule))));
  const count = Math.ceil(lanes.length / perBatch);
  const out: T[][] = [];
  for (let b = 0, at = 0; b < count; b++) {
    const size = Math.floor(lanes.length / count) + (b < lanes.length % count ? 1 : 0);
    out.push(lanes.slice(at, at + size));
    at += size;
  }
  return out;
}

/** The backend models of a scenario's cluster, for `backend-main --models`. */
export function backendModels(s: ScenarioSpec, seed: number): object[] {
  return s.endpoints.map((e, i) => ({
    medianMs: e.medianMs, sigma: s.latencySigma, errorRate: e.errorRate, capacityRps: e.capacityRps, seed: seed * 1000 + i + 1,
    // Common random numbers: request K's latency draw is the same in every lane's copy of the cluster.
    latencySeed: seed,
    ...(s.latencyTail ? { tail: s.latencyTail } : {}),
  }));
}
