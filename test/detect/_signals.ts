// Test helpers: endpoint signals over real stats windows, filled with crafted traffic.
import { Outcome, INITIAL_HEALTH, type EndpointHealth } from '../../src/core/types.js';
import { EndpointWindows } from '../../src/stats/window.js';
import { FeatureRing, OUTCOME_SCRATCH } from '../../src/detect/features.js';
import { newBaseline, newErrorRun, type EndpointSignals } from '../../src/detect/types.js';

export const WINDOW_MS = 1000;

export function signals(id: string, priority = 0, zone = 'a', health: EndpointHealth = INITIAL_HEALTH): EndpointSignals {
  return {
    id,
    spec: { id, service: 'svc', host: '127.0.0.1', port: 1, locality: { region: 'r', zone, subzone: '' }, priority, weight: 1, labels: {} },
    health,
    slot: 0,
    windows: new EndpointWindows({ windowMs: WINDOW_MS, windows: 10, maxLatencyUs: 60_000_000, significantDigits: 2 }),
    features: new FeatureRing(16),
    latencyStrikes: 0,
    latencyEjectStrikes: 0,
    usualLogRatio: 0,
    usualN: 0,
    latencyP50: newBaseline(),
    latencyP90: newBaseline(),
    errors: newBaseline(),
    errorRun: newErrorRun(),
    scope: String(priority),
  };
}

/** Record `n` requests into window `epoch`: `failures` of them with `outcome`, latency from `latencyUs(i)`. */
export function fill(s: EndpointSignals, epoch: number, n: number, failures: number, latencyUs: (i: number) => number, outcome: Outcome = Outcome.Error5xx): void {
  for (let i = 0; i < n; i++) s.windows!.record(i < failures ? outcome : Outcome.Success, latencyUs(i), epoch * WINDOW_MS + (i * WINDOW_MS) / (n + 1));
}

const scratch = OUTCOME_SCRATCH();
/** Close window `epoch` for every endpoint (push its figures into the feature rings). */
export function close(all: readonly EndpointSignals[], epoch: number): void {
  for (const s of all) s.features.push(epoch, s.windows, scratch);
}

/** Deterministic spread of latencies around a median (µs): i-th of n, ±spread. */
export function around(medianUs: number, spread = 0.2): (i: number) => number {
  return (i) => medianUs * (1 + spread * Math.sin(i * 1.7));
}
