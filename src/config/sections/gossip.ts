// Gossip (SWIM + Lifeguard) settings. The gossip module owns this file.
import { hostPortSchema } from './common.js';

export const gossipSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    enabled: { type: 'boolean', default: false },
    listen: { ...hostPortSchema, default: '127.0.0.1:17946' },
    join: { type: 'array', items: hostPortSchema, default: [], maxItems: 64 },
  },
} as const;

export interface GossipConfig {
  readonly enabled: boolean;
  readonly listen: string;
  readonly join: readonly string[];
}
