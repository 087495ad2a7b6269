// Admin API settings.
import { hostPortSchema } from './common.js';

export const adminSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    enabled: { type: 'boolean', default: true, description: 'serve /healthz, /readyz, /metrics and the /v1 API' },
    listen: { ...hostPortSchema, default: '127.0.0.1:17000' },
    token: { type: 'string', default: '', description: 'bearer token for mutating calls (eject, restore, drain); off loopback the sidecar refuses to start without one of at least 16 characters (unless readOnly)' },
    readOnly: { type: 'boolean', default: false, description: 'refuse every mutating call (eject, restore, drain, log level); allows an off-loopback listener without a token' },
    allowedHosts: { type: 'array', items: { type: 'string', minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9.-]+$' }, maxItems: 32, default: [], description: 'host names (besides localhost and IP addresses of the listener) accepted in the Host header: a defence against DNS rebinding' },
    metrics: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        istioNames: { type: 'boolean', default: false, description: 'also export istio_requests_total and istio_request_duration_milliseconds (Istio\'s standard names and labels) so Kiali and Istio dashboards work unchanged' },
        perEndpointLatency: { type: 'boolean', default: false, description: 'latency histograms (meshmedic_request_duration_seconds) per endpoint instead of per service: 19 series per endpoint with traffic instead of 19 per service' },
      },
    },
  },
} as const;

export interface AdminConfig {
  readonly enabled: boolean;
  readonly listen: string;
  readonly token: string;
  readonly readOnly: boolean;
  readonly allowedHosts: readonly string[];
  readonly metrics: { readonly istioNames: boolean; readonly perEndpointLatency: boolean };
}
