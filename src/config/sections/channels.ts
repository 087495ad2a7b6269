// Settings of the channels that carry decisions out: admin API, xDS, gossip, logging.
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

export const logSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    level: { enum: ['debug', 'info', 'warn', 'error', 'silent'], default: 'info' },
  },
} as const;

export interface LogConfig {
  readonly level: 'debug' | 'info' | 'warn' | 'error' | 'silent';
}
