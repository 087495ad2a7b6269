// The validated, frozen configuration object.
import type { Locality } from '../core/types.js';
import type { ListenersConfig, ProxyConfig } from './sections/proxy.js';
import type { PolicySettings } from './sections/healing.js';
import type { AdminConfig } from './sections/admin.js';
import type { GossipConfig } from './sections/gossip.js';
import type { LogConfig } from './sections/log.js';
import type { XdsConfig } from './sections/xds.js';
import type { AuditConfig } from './sections/audit.js';
import type { AlsConfig } from './sections/als.js';
import type { LearningConfig } from './sections/learning.js';

export interface EndpointConfig {
  readonly address: string;
  readonly locality: Locality;
  readonly priority: number;
  readonly weight: number;
  readonly labels: Readonly<Record<string, string>>;
}

export interface ServiceConfig {
  readonly name: string;
  readonly protocol: 'http1' | 'h2c';
  readonly endpoints: readonly EndpointConfig[];
  readonly routing: { readonly overprovisioningFactor: number; readonly panicThresholdPct: number };
  readonly healing?: PolicySettings;
}

export interface Config extends ListenersConfig {
  readonly node: { readonly id: string; readonly cluster: string; readonly workload: string; readonly locality: Locality };
  readonly admin: AdminConfig;
  readonly proxy: ProxyConfig;
  readonly stats: { readonly windowMs: number; readonly windows: number; readonly tickMs: number };
  readonly healing: PolicySettings;
  readonly services: readonly ServiceConfig[];
  readonly xds: XdsConfig;
  readonly als: AlsConfig;
  readonly gossip: GossipConfig;
  readonly log: LogConfig;
  readonly audit: AuditConfig;
  readonly learning: LearningConfig;
}
