// Turns decoded access-log entries into observations of mesh endpoints: the same per-endpoint windows the
// proxy writes, so the same detectors and policies decide. Lookups are by service, host and port in maps
// rebuilt when the mesh changes; recording an entry allocates nothing.
import type { Clock } from '../core/clock.js';
import { endpointId, OUTCOME_COUNT, type EndpointSpec, type Locality } from '../core/types.js';
import type { MeshSnapshot, MeshState, ServiceInput } from '../mesh/state.js';
import type { StatsTable } from '../stats/window.js';
import type { AlsConfig } from '../config/sections/als.js';
import { classifyEntry, latencyOf } from './classify.js';
import type { AlsEntry } from './decode.js';

/** Reasons an entry or message is not recorded (the `reason` label of meshmedic_als_dropped_total). */
export const DROP_REASONS = ['no_upstream_host', 'local_reply', 'unknown_cluster', 'unknown_endpoint', 'batch_too_large', 'malformed', 'invalid_sample_rate'] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export interface AlsIngestorOptions {
  readonly mesh: MeshState;
  readonly stats: StatsTable;
  readonly clock: Clock;
  readonly config: AlsConfig;
  /** Locality given to endpoints learned from the log. */
  readonly locality: Locality;
}

type PortSlots = Map<number, number>;

export class AlsIngestor {
  /** Recorded entries by outcome (index = Outcome). */
  readonly recorded = new Float64Array(OUTCOME_COUNT);
  /** Dropped entries by reason (index in DROP_REASONS). */
  readonly dropped = new Float64Array(DROP_REASONS.length);
  private services = new Map<string, Map<string, PortSlots>>();
  private readonly aliases: Map<string, string>;
  private readonly pending = new Map<string, EndpointSpec>();
  private learned = 0;
  private epoch = 0;
  private readonly unsubscribe: () => void;
  private readonly windowMs: number;

  constructor(private readonly opts: AlsIngestorOptions) {
    this.aliases = new Map(Object.entries(opts.config.clusters));
    this.windowMs = opts.stats.opts.windowMs;
    this.rebuild(opts.mesh.snapshot());
    this.unsubscribe = opts.mesh.subscribe((snap) => this.rebuild(snap));
  }

  close(): void {
    this.unsubscribe();
  }

  /** Call once per received message, before its entries: fixes the window the entries are recorded in. */
  beginBatch(): void {
    this.epoch = Math.floor(this.opts.clock.now() / this.windowMs);
  }

  drop(reason: DropReason, n = 1): void {
    this.dropped[DROP_REASONS.indexOf(reason)]! += n;
  }

  /** Record one entry (the decoder's reused object). */
  ingest(e: AlsEntry): void {
    if (e.sampleRate < 0 || e.sampleRate > 1 || Number.isNaN(e.sampleRate)) return this.drop('invalid_sample_rate');
    const outcome = classifyEntry(e);
    if (typeof outcome === 'string') return this.drop(outcome);
    const service = this.serviceOf(e.cluster);
    if (service === undefined) return this.drop('unknown_cluster');
    const slot = service.get(e.host)?.get(e.port);
    if (slot === undefined) {
      if (this.opts.config.learnEndpoints) this.learn(e);
      return this.drop('unknown_endpoint');
    }
    this.opts.stats.ensure(slot).recordEpoch(outcome, latencyOf(e), this.epoch);
    this.recorded[outcome]! += 1;
  }

  /**
   * Add the endpoints learned since the last call to their services (one mesh update for all of them).
   * Returns how many were added. Called on a timer, not per entry.
   */
  flushLearned(): number {
    if (this.pending.size === 0) return 0;
    const snap = this.opts.mesh.snapshot();
    const inputs: ServiceInput[] = [...snap.services.values()].map((s) => ({
      spec: { name: s.name, endpoints: s.endpoints.map((ev) => ev.spec) },
      routing: s.routing,
    }));
    let added = 0;
    for (const spec of this.pending.values()) {
      const input = inputs.find((i) => i.spec.name === spec.service);
      if (!input || snap.endpoints.has(spec.id)) continue;
      (input.spec.endpoints as EndpointSpec[]).push(spec);
      added++;
    }
    this.pending.clear();
    if (added > 0) this.opts.mesh.setServices(inputs);
    return added;
  }

  private learn(e: AlsEntry): void {
    if (this.learned >= this.opts.config.maxLearnedEndpoints || e.port === 0) return;
    const name = this.serviceNameOf(e.cluster);
    if (name === undefined) return;
    const id = endpointId(name, e.host, e.port);
    if (this.pending.has(id)) return;
    this.learned++;
    this.pending.set(id, Object.freeze({ id, service: name, host: e.host, port: e.port, locality: this.opts.locality, priority: 0, weight: 1, labels: Object.freeze({ source: 'access-log' }) }));
  }

  private serviceNameOf(cluster: string): string | undefined {
    if (this.services.has(cluster)) return cluster;
    const alias = this.aliases.get(cluster);
    if (alias !== undefined) return this.services.has(alias) ? alias : undefined;
    // Subset clusters that meshmedic's own xDS serves are named `service|value`.
    const bar = cluster.indexOf('|');
    if (bar > 0) {
      const base = cluster.slice(0, bar);
      if (this.services.has(base)) {
        this.aliases.set(cluster, base); // remember: the next entry of this cluster allocates nothing
        return base;
      }
    }
    return undefined;
  }

  private serviceOf(cluster: string): Map<string, PortSlots> | undefined {
    const direct = this.services.get(cluster);
    if (direct !== undefined) return direct;
    const name = this.serviceNameOf(cluster);
    return name === undefined ? undefined : this.services.get(name);
  }

  private rebuild(snap: MeshSnapshot): void {
    const services = new Map<string, Map<string, PortSlots>>();
    for (const s of snap.services.values()) {
      const hosts = new Map<string, PortSlots>();
      for (const ev of s.endpoints) {
        let ports = hosts.get(ev.spec.host);
        if (!ports) hosts.set(ev.spec.host, (ports = new Map()));
        ports.set(ev.spec.port, ev.slot);
      }
      services.set(s.name, hosts);
    }
    this.services = services;
  }
}
