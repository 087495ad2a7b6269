// Admin API settings.
import { hostPortSchema } from './common.js';

export const adminSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    enabled: { type: 'boolean', default: true, description: 'serve /healthz, /readyz, /metrics and the /v1 API' },
    listen: { ...hostPortSchema, default: '127.0.0.1:17000' },
    token: { type: 'string', default: '', description: 'bearer token for mutating calls (eject, restore, drain); required when listen is off loopback, where without a token they are refused' },
    metrics: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        istioNames: { type: 'boolean', default: false, description: 'also export istio_requests_total and istio_request_duration_milliseconds (Istio\'s standard names and labels) so Kiali and Istio dashboards work unchanged' },
      },
    },
  },
} as const;

export interface AdminConfig {
  readonly enabled: boolean;
  readonly listen: string;
  readonly token: string;
  readonly metrics: { readonly istioNames: boolean };
}
