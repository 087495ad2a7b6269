// xDS management-server settings. The xDS module owns this file.
import { hostPortSchema } from './common.js';

export const xdsSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    enabled: { type: 'boolean', default: false },
    listen: { ...hostPortSchema, default: '127.0.0.1:17010' },
  },
} as const;

export interface XdsConfig {
  readonly enabled: boolean;
  readonly listen: string;
}
