// What every component of a running sidecar receives, and what it gives back.
import type { Registry } from '../admin/metrics-registry.js';
import type { ServiceDefinition, UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import type { Config } from '../config/types.js';
import type { MeshState } from '../mesh/state.js';
import type { StatsTable } from '../stats/window.js';

/** A JSON admin route handler: returns the status and body to send (body is JSON-encoded). */
export type AdminHandler = (req: AdminRequest) => Promise<AdminResponse> | AdminResponse;

export interface AdminRequest {
  readonly method: string;
  readonly path: string;
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  /** Parsed JSON body (undefined when none). */
  readonly body: unknown;
  /** The request's headers (lower-case names), for content negotiation. */
  readonly headers?: Readonly<Record<string, string | string[] | undefined>>;
}

export interface AdminResponse {
  readonly status: number;
  readonly body: unknown;
  readonly contentType?: string;
}

/** A mutating admin call as it was answered (the audit log records every one). */
export interface AdminCall {
  readonly method: string;
  readonly path: string;
  readonly body: unknown;
  readonly status: number;
  /** The error code when the call was refused before it ran (no or wrong token, read-only API, not JSON). */
  readonly refused?: string;
  /** The caller's address. */
  readonly remote?: string;
}

export interface AdminRoutes {
  /** Register a route; `path` may hold `{name}` segments (matched against the URL-decoded segment). */
  route(method: string, path: string, handler: AdminHandler, opts?: { mutating?: boolean }): void;
  /** Be told of every mutating call after it was answered, refused ones included; returns a function that stops it. */
  observeMutatingCalls?(fn: (call: AdminCall) => void): () => void;
}

export interface SidecarContext {
  readonly config: Config;
  readonly clock: Clock;
  readonly mesh: MeshState;
  readonly stats: StatsTable;
  readonly log: Logger;
  readonly metrics: Registry;
  readonly admin: AdminRoutes;
  /** Components started earlier, by name (e.g. the healing engine for the gossip health plane). */
  readonly components: ReadonlyMap<string, Component>;
}

export interface Component {
  readonly name: string;
  /** Addresses actually bound (port 0 resolved), by role, for logs and tests. */
  readonly addresses?: Readonly<Record<string, string>>;
  /** Stop accepting work, finish what is in flight up to `deadlineMs`, release everything. */
  close(deadlineMs?: number): Promise<void>;
}

export type ComponentFactory = (ctx: SidecarContext) => Promise<Component>;

/** A gRPC service that a component asks the sidecar's gRPC server (the xDS port) to carry. */
export interface GrpcServiceBinding {
  readonly definition: ServiceDefinition;
  readonly implementation: UntypedServiceImplementation;
}

/** Whether a started component brings gRPC services for the xDS port (e.g. the access-log service). */
export function providesGrpcServices(c: Component): c is Component & { readonly grpcServices: readonly GrpcServiceBinding[] } {
  return Array.isArray((c as { grpcServices?: unknown }).grpcServices);
}
