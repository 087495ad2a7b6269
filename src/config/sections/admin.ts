// Admin API settings.
import { hostPortSchema } from './common.js';

export const adminSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    enabled: { type: 'boolean', default: true },
    listen: { ...hostPortSchema, default: '127.0.0.1:17000' },
    token: { type: 'string', default: '', description: 'bearer token required by mutating calls when bound off loopback' },
  },
} as const;

export interface AdminConfig {
  readonly enabled: boolean;
  readonly listen: string;
  readonly token: string;
}
