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
    region: { type: 'string', maxLength: 128, default: '', description: 'region (topology.kubernetes.io/region)' },
    zone: { type: 'string', maxLength: 128, default: '', description: 'zone (topology.kubernetes.io/zone)' },
    subzone: { type: 'string', maxLength: 128, default: '', description: 'subzone (e.g. node or rack)' },
  },
  default: {},
} as const;

export const durationMs = (def: number, min = 0, max = 86_400_000, description = '') => ({ type: 'integer', minimum: min, maximum: max, default: def, description }) as const;
