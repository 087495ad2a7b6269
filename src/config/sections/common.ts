// Small schema pieces shared by every section.
export const hostPortSchema = {
  type: 'string',
  minLength: 3,
  maxLength: 300,
  description: 'HOST:PORT with an IP literal host (IPv6 in brackets); port 0 picks a free port',
} as const;

export const localitySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    region: { type: 'string', maxLength: 128, default: '' },
    zone: { type: 'string', maxLength: 128, default: '' },
    subzone: { type: 'string', maxLength: 128, default: '' },
  },
  default: {},
} as const;

export const durationMs = (def: number, min = 0, max = 86_400_000) => ({ type: 'integer', minimum: min, maximum: max, default: def }) as const;
