// Logging settings.

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
