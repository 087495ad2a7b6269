// Logging settings.

export const logSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    level: { enum: ['debug', 'info', 'warn', 'error', 'silent'], default: 'info', description: 'structured JSON logs on stderr at this level and above' },
  },
} as const;

export interface LogConfig {
  readonly level: 'debug' | 'info' | 'warn' | 'error' | 'silent';
}
