// Detectors registered by name: policies pick them by name, and new ones (learned, predicted) plug in.
import { peerErrorCusum } from './error-cusum.js';
import { consecutive5xx, consecutiveGateway, consecutiveLocalOrigin, consecutiveRefused } from './consecutive.js';
import { envoyFailurePercentage, envoySuccessRate } from './envoy.js';
import { peerLatency, peerSuccess } from './peer.js';
import { errorBaseline, latencyBaseline } from './baseline.js';
import { starvedLatency } from './starved.js';
import type { Detector } from './types.js';

const registry = new Map<string, Detector>();

export function registerDetector(d: Detector): void {
  if (registry.has(d.name)) throw new Error(`a detector named "${d.name}" is already registered`);
  registry.set(d.name, d);
}

export function getDetector(name: string): Detector | undefined {
  return registry.get(name);
}

export function detectorNames(): string[] {
  return [...registry.keys()];
}

for (const d of [consecutive5xx, consecutiveGateway, consecutiveLocalOrigin, consecutiveRefused, envoySuccessRate, envoyFailurePercentage, peerSuccess, peerErrorCusum, peerLatency, starvedLatency, latencyBaseline, errorBaseline]) registerDetector(d);
