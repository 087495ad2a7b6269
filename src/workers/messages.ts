// The messages between the primary process (the one healing engine, admin, xDS, gossip...) and its proxy
// worker processes, over the cluster IPC channel: workers ship what they measured once per tick, the
// primary broadcasts the health every worker applies.
import type { EndpointHealth } from '../core/types.js';
import type { Config } from '../config/types.js';
import type { MeshSnapshot, ServiceInput } from '../mesh/state.js';
import type { WindowsDelta } from '../stats/window.js';

/** How workers share a listener port. */
export type SharingMode = 'reuseport' | 'primary-distributes';

/** Primary → worker, first message: what to run. */
export interface InitMessage {
  readonly t: 'init';
  readonly index: number;
  readonly config: Config;
  /** Listen addresses with port 0 already resolved (reuseport mode: every worker binds the same port). */
  readonly outboundListen: string;
  readonly inboundListen: string;
  readonly sharing: SharingMode;
  /** The services and health to start with (the primary's, which discovery may have changed). */
  readonly health: HealthMessage;
}

/** Primary → worker: the health every worker applies (and the services, when they changed). */
export interface HealthMessage {
  readonly t: 'health';
  /** The primary's mesh snapshot version (acknowledged by the worker once applied). */
  readonly version: number;
  readonly services?: readonly ServiceInput[];
  readonly health: readonly (readonly [string, EndpointHealth])[];
}

/** Primary → worker: stop accepting, drain up to the deadline, ship the last delta, exit. */
export interface CloseMessage {
  readonly t: 'close';
  readonly deadlineMs: number;
}

export type ToWorker = InitMessage | HealthMessage | CloseMessage;

/** Worker → primary: ready for the init message (messages sent before the worker listens are lost). */
export interface HelloMessage {
  readonly t: 'hello';
}

/** Worker → primary: listening (addresses bound), or could not start. */
export interface ReadyMessage {
  readonly t: 'ready';
  readonly addresses: Readonly<Record<string, string>>;
}

/** Worker → primary: the health of this primary snapshot version is what the worker routes by now. */
export interface AppliedMessage {
  readonly t: 'applied';
  readonly version: number;
}

export interface FailedMessage {
  readonly t: 'failed';
  readonly error: string;
}

/** Worker → primary, once per tick when anything was measured: the window deltas by endpoint id. */
export interface DeltaMessage {
  readonly t: 'delta';
  readonly endpoints: readonly (readonly [string, WindowsDelta])[];
  /** The local app behind the inbound listener (its id, its delta). */
  readonly inbound?: readonly [string, WindowsDelta];
  /** Open downstream connections per listener role, now. */
  readonly connections: Readonly<Record<string, number>>;
}

export type FromWorker = HelloMessage | AppliedMessage | ReadyMessage | FailedMessage | DeltaMessage;

/** The health message for a snapshot; services are included when `withServices`. */
export function healthMessage(snap: MeshSnapshot, withServices: boolean): HealthMessage {
  const health: [string, EndpointHealth][] = [];
  for (const [id, ev] of snap.endpoints) health.push([id, ev.health]);
  if (!withServices) return { t: 'health', version: snap.version, health };
  const services: ServiceInput[] = [];
  for (const s of snap.services.values()) services.push({ spec: { name: s.name, endpoints: s.endpoints.map((e) => e.spec) }, routing: s.routing });
  return { t: 'health', version: snap.version, services, health };
}

/** A key that changes when the set of services or of their endpoints changes (not on health changes). */
export function topologyKey(snap: MeshSnapshot): string {
  let key = '';
  for (const s of snap.services.values()) {
    key += `${s.name}:`;
    for (const e of s.endpoints) key += `${e.spec.id},${e.spec.priority},${e.spec.weight};`;
    key += '|';
  }
  return key;
}

/** JSON turns `undefined` into a missing key; health `until` must come back as undefined either way. */
export function reviveHealth(h: EndpointHealth): EndpointHealth {
  return { ...h, until: h.until ?? undefined };
}
