// Consecutive-failure detectors (Envoy's consecutive_5xx / gateway / local-origin): read the counters the
// stats windows keep per response. Cheap enough to run right after every failure.
import type { DetectionInput, Detector, Verdict } from './types.js';

function make(name: string, read: (i: DetectionInput, k: number) => { count: number; threshold: number } | undefined): Detector {
  return {
    name,
    cadence: 'request',
    detect(input, out) {
      if (!input.settings.consecutive.enabled) return;
      for (let k = 0; k < input.endpoints.length; k++) {
        const r = read(input, k);
        if (r && r.count >= r.threshold) {
          out.push({ target: input.endpoints[k]!.id, detector: name, kind: 'failure', severity: 'eject', evidence: { consecutive: r.count, threshold: r.threshold } });
        }
      }
    },
  };
}

export const consecutive5xx = make('consecutive_5xx', (i, k) => {
  const w = i.endpoints[k]!.windows;
  return w && { count: w.consecutive5xx, threshold: i.settings.consecutive.errors5xx };
});

export const consecutiveGateway = make('consecutive_gateway', (i, k) => {
  const w = i.endpoints[k]!.windows;
  return w && { count: w.consecutiveGateway, threshold: i.settings.consecutive.gateway };
});

/**
 * Refused connections in a row (ECONNREFUSED on connect): nothing listens at the endpoint, so one is
 * enough by default, where a timeout (overload, packet loss) must not eject on its first occurrence.
 * The active probes readmit it as soon as something listens again (a restarted pod).
 */
export const consecutiveRefused = make('consecutive_refused', (i, k) => {
  const w = i.endpoints[k]!.windows;
  const threshold = i.settings.consecutive.refused;
  return w && threshold > 0 ? { count: w.consecutiveRefused, threshold } : undefined;
});

export const consecutiveLocalOrigin = make('consecutive_local_origin', (i, k) => {
  const w = i.endpoints[k]!.windows;
  return w && { count: w.consecutiveLocalOrigin, threshold: i.settings.consecutive.localOrigin };
});

/** Most specific first: a refusal is also a local-origin failure, a gateway error also a 5xx. */
const MOST_SPECIFIC_FIRST: readonly Detector[] = [consecutiveRefused, consecutiveLocalOrigin, consecutiveGateway, consecutive5xx];

/** Names of the consecutive-failure detectors: a run of failures in a row, a fault a probe can see whole. */
export const CONSECUTIVE_DETECTORS: ReadonlySet<string> = new Set(MOST_SPECIFIC_FIRST.map((d) => d.name));

/** The most specific consecutive verdict per endpoint: refused, then local-origin, then gateway, then any 5xx. */
export function consecutiveVerdicts(input: DetectionInput, out: Verdict[]): void {
  const seen = new Set<string>();
  for (const detector of MOST_SPECIFIC_FIRST) {
    const from = out.length;
    detector.detect(input, out);
    for (let i = from; i < out.length; i++) {
      if (seen.has(out[i]!.target)) out.splice(i--, 1);
      else seen.add(out[i]!.target);
    }
  }
}
