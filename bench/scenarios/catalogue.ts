// The fault-scenario catalogue for live benchmarks (real backend processes, real time): what each
// backend does and when, the load, and which endpoints are the faulty ones. Pure data.
import type { RateStep } from '../lib/loadgen.js';

export interface FaultStep {
  /** ms after the load starts. */
  readonly atMs: number;
  /** Endpoint indexes the fault applies to. */
  readonly endpoints: readonly number[];
  /** Body of POST /__fault. */
  readonly fault: Readonly<Record<string, unknown>>;
}

export interface Baseline {
  /** Lognormal latency of a healthy endpoint. */
  readonly medianMs: number;
  readonly sigma: number;
  /** Background error rate (500s) of a healthy endpoint. */
  readonly errorRate: number;
}

export interface Scenario {
  readonly name: string;
  readonly description: string;
  readonly endpoints: number;
  readonly baseline: Baseline;
  readonly schedule: readonly RateStep[];
  readonly durationMs: number;
  /** When the fault begins and ends (ms after the load starts); end null = it never ends. */
  readonly faultStartMs: number;
  readonly faultEndMs: number | null;
  /** Endpoints that are faulty; empty = a scenario where any ejection is a false one. */
  readonly faulty: readonly number[];
  readonly steps: readonly FaultStep[];
  /** A hard failure (refused, black hole, 100 % 5xx): target "detected within 5 requests or 1 s". */
  readonly hard: boolean;
  /** How long affected traffic must pause to count as "stopped" (default 1 s); longer when the fault
   *  itself pauses traffic (a flapping endpoint's down phase, hidden by retries, is no detection). */
  readonly quietMs?: number;
}

export interface Timing {
  /** Fault-free traffic first, so that baselines and windows fill. */
  readonly warmMs: number;
  readonly faultMs: number;
  /** Observation after the fault ends (recovery). */
  readonly afterMs: number;
}

export const FULL_TIMING: Timing = Object.freeze({ warmMs: 10_000, faultMs: 20_000, afterMs: 15_000 });
export const QUICK_TIMING: Timing = Object.freeze({ warmMs: 6_000, faultMs: 8_000, afterMs: 5_000 });

export const RATE = 200;
export const ENDPOINTS = 5;
const CALM: Baseline = Object.freeze({ medianMs: 5, sigma: 0.25, errorRate: 0 });

function oneFault(name: string, description: string, fault: Record<string, unknown>, t: Timing, o: { hard?: boolean; endsMs?: number | null; faulty?: number[]; baseline?: Baseline; schedule?: RateStep[] } = {}): Scenario {
  const start = t.warmMs;
  const end = o.endsMs === null ? null : start + t.faultMs;
  const faulty = o.faulty ?? [0];
  const steps: FaultStep[] = [{ atMs: start, endpoints: faulty, fault }];
  if (end !== null) steps.push({ atMs: end, endpoints: faulty, fault: { mode: 'none' } });
  return {
    name, description, endpoints: ENDPOINTS, baseline: o.baseline ?? CALM,
    schedule: o.schedule ?? [{ atMs: 0, rate: RATE }],
    durationMs: t.warmMs + t.faultMs + t.afterMs, faultStartMs: start, faultEndMs: end, faulty, steps, hard: o.hard ?? false,
  };
}

/** Every scenario of the catalogue, with the given timing. */
export function catalogue(t: Timing): Scenario[] {
  return [
    oneFault('crash', 'one of 5 endpoints refuses connections, then comes back', { mode: 'crash' }, t, { hard: true }),
    oneFault('black-hole', 'one of 5 accepts connections and never answers', { mode: 'blackhole' }, t, { hard: true }),
    oneFault('hard-5xx', 'one of 5 answers 500 to everything', { mode: '5xx', rate: 1, status: 500 }, t, { hard: true }),
    oneFault('partial-5xx-30', 'one of 5 answers 500 to 30 % of requests', { mode: '5xx', rate: 0.3, status: 500 }, t),
    oneFault('partial-5xx-10', 'one of 5 answers 500 to 10 % of requests', { mode: '5xx', rate: 0.1, status: 500 }, t),
    oneFault('gray-3x', 'one of 5 turns 3× slower, still answering 200', { mode: 'latency', factor: 3 }, t),
    oneFault('gray-10x', 'one of 5 turns 10× slower, still answering 200', { mode: 'latency', factor: 10 }, t),
    oneFault('drift-crash', 'one of 5 slows down steadily, then crashes', { mode: 'drift', factor: 1, driftPerSec: 0.5, crashAfterMs: Math.round(t.faultMs * 0.6) }, t),
    { ...oneFault('flapping', 'one of 5 goes down and up every 2 s', { mode: 'flap', upMs: 2000, downMs: 2000, down: 'crash' }, t), quietMs: 3000 },
    oneFault('zone-outage', 'two of 5 (one zone) refuse connections', { mode: 'crash' }, t, { hard: true, faulty: [3, 4] }),
    {
      // Latency rises on every endpoint with load: the right answer is to eject nothing.
      ...oneFault('overload', 'load doubles and every endpoint slows with it: must eject nothing', { mode: 'overload', perInflightMs: 4 }, t, { faulty: [0, 1, 2, 3, 4] }),
      faulty: [],
      schedule: [{ atMs: 0, rate: RATE }, { atMs: t.warmMs, rate: RATE * 2 }, { atMs: t.warmMs + t.faultMs, rate: RATE }],
      steps: [
        { atMs: t.warmMs, endpoints: [0, 1, 2, 3, 4], fault: { mode: 'overload', perInflightMs: 4 } },
        { atMs: t.warmMs + t.faultMs, endpoints: [0, 1, 2, 3, 4], fault: { mode: 'none' } },
      ],
    },
    {
      // Heavy-tailed latency and background errors everywhere, no fault: must eject nothing.
      ...oneFault('noise', 'fault-free, lognormal latency (σ 0.8) and 0.3 % background errors on all: must eject nothing', { mode: 'none' }, t,
        { baseline: { medianMs: 5, sigma: 0.8, errorRate: 0.003 } }),
      faulty: [],
      steps: [],
      faultEndMs: null,
    },
  ];
}

export const QUICK_SCENARIOS = ['crash', 'gray-3x'] as const;
