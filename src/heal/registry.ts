// Healing policies registered by name (meshmedic, envoy-default, none); others, such as a learned
// policy, register themselves the same way.
import type { PolicyFactory } from './policy.js';
import { createMeshmedicPolicy } from './meshmedic.js';
import { createEnvoyDefaultPolicy } from './envoy-default.js';
import { createNonePolicy } from './none.js';
import { createLearnedPolicy } from '../learn/learned-policy.js';

const policies = new Map<string, PolicyFactory>([
  ['meshmedic', createMeshmedicPolicy],
  ['envoy-default', createEnvoyDefaultPolicy],
  ['none', createNonePolicy],
  ['learned', createLearnedPolicy],
]);

export function registerPolicy(name: string, factory: PolicyFactory): void {
  if (policies.has(name)) throw new Error(`a healing policy named "${name}" is already registered`);
  policies.set(name, factory);
}

export function getPolicy(name: string): PolicyFactory | undefined {
  return policies.get(name);
}

export function policyNames(): string[] {
  return [...policies.keys()];
}
