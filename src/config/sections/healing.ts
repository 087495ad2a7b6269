// Detection and healing settings, per service (with mesh-wide defaults).
// The detection/healing engine owns this file: every detector and guard parameter is declared here.

export const POLICIES = ['meshmedic', 'envoy-default', 'none'] as const;
export type PolicyName = (typeof POLICIES)[number];

export const policySettingsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    policy: { enum: POLICIES },
  },
} as const;

export interface PolicySettings {
  readonly policy?: PolicyName;
}
