// Learning-layer settings that are not per service: federated baselines shared over gossip
// (docs/learning.md). The learning module owns this file.
import { DEFAULT_FEDERATED_SETTINGS as D, type FederatedSettings } from '../../learn/federated.js';

const int = (def: number, min: number, max: number, description: string) => ({ type: 'integer' as const, minimum: min, maximum: max, default: def, description });
const num = (def: number, min: number, max: number, description: string) => ({ type: 'number' as const, minimum: min, maximum: max, default: def, description });

export const learningSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    federated: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'federated baselines: share what the self-baseline detectors learned (per service: location and scale of log p50 and p90, error rate; never requests) over gossip, signed with the node key, and seed endpoints without a warmed-up baseline from the robust mesh aggregate (needs gossip.enabled)',
      properties: {
        enabled: { type: 'boolean', default: false, description: 'share and adopt federated baselines' },
        adopt: { type: 'boolean', default: true, description: 'seed endpoints without a warmed-up baseline from the mesh aggregate (false: only share)' },
        intervalMs: int(2000, 100, 600_000, 'how often this sidecar sends its vector to a few peers (and asks for theirs while it has no aggregate)'),
        fanout: int(3, 1, 64, 'peers each send goes to'),
        maxAgeMs: int(D.maxAgeMs, 1000, 86_400_000, 'a contribution older than this no longer counts'),
        maxSkewMs: int(30_000, 0, 3_600_000, 'a vector stamped further than this from our clock (past or future) is refused'),
        sampleCap: int(D.sampleCap, 1, 1_000_000_000, "a contribution's weight is its sample count (windows), capped here and at the median contributor's count"),
        clipNorm: num(D.clipNorm, 0.01, 100, "per coordinate, contributions are pulled toward the median to within this many robust deviations (1.4826 × the contributors' median absolute deviation; scales compared as logarithms; floors 1 % for latency and scales, 0.05 points of error rate)"),
        trim: num(D.trim, 0, 0.49, 'share of the weight trimmed from each end, per coordinate, after the clip and before the weighted mean'),
        minContributors: int(D.minContributors, 1, 1000, 'fresh contributors needed for an aggregate (robustness needs an honest majority)'),
        maxServices: int(16, 1, 64, 'services in one vector (one UDP packet: the ones with most samples)'),
        maxContributors: int(1000, 1, 100_000, 'contributors remembered at most (the stalest are forgotten first)'),
        ratePerSecond: num(20, 0.1, 10_000, 'vectors accepted per second (token bucket); more are refused and counted'),
      },
    },
  },
} as const;

export interface FederatedConfig extends FederatedSettings {
  readonly enabled: boolean;
  readonly adopt: boolean;
  readonly intervalMs: number;
  readonly fanout: number;
  readonly maxSkewMs: number;
  readonly maxServices: number;
  readonly maxContributors: number;
  readonly ratePerSecond: number;
}

export interface LearningConfig {
  readonly federated: FederatedConfig;
}

/** The schema's defaults (tests, the simulator and the benchmark use them). */
export const DEFAULT_FEDERATED: FederatedConfig = Object.freeze(
  Object.fromEntries(Object.entries(learningSchema.properties.federated.properties).map(([k, v]) => [k, v.default])) as unknown as FederatedConfig,
);
