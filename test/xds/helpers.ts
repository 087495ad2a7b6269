// Shared test fixtures for the xDS tests: real gRPC backends on loopback, an xDS component over a real
// MeshState, a raw ADS client on the proto-loader definition, and call-distribution helpers.
import * as grpc from '@grpc/grpc-js';
import { Registry } from '../../src/admin/metrics-registry.js';
import { systemClock } from '../../src/core/clock.js';
import { silentLogger, type Logger } from '../../src/core/log.js';
import { endpointId, NO_LOCALITY, type EndpointSpec, type Locality } from '../../src/core/types.js';
import { validateConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/types.js';
import { MeshState } from '../../src/mesh/state.js';
import type { AdminHandler, Component, SidecarContext } from '../../src/runtime/context.js';
import { StatsTable } from '../../src/stats/window.js';
import { startXds } from '../../src/xds/component.js';
import { xdsPackageDefinition, decodeAny } from '../../src/xds/proto.js';

export const ECHO_PATH = '/meshmedic.test.Echo/Hello';

export interface Backend {
  readonly port: number;
  readonly address: string;
  calls: number;
  close(): Promise<void>;
}

/** A gRPC server answering ECHO_PATH with its own port, counting calls. */
export async function startBackend(): Promise<Backend> {
  const server = new grpc.Server();
  const b = { port: 0, address: '', calls: 0, close: async () => {} } as Backend;
  server.addService(
    { Hello: { path: ECHO_PATH, requestStream: false, responseStream: false, requestSerialize: (x: Buffer) => x, requestDeserialize: (x: Buffer) => x, responseSerialize: (x: Buffer) => x, responseDeserialize: (x: Buffer) => x } } as unknown as grpc.ServiceDefinition,
    {
      Hello: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        b.calls++;
        cb(null, Buffer.from(String(b.port)));
      },
    },
  );
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  Object.assign(b, { port, address: `127.0.0.1:${port}` });
  // tryShutdown waits for clients to hang up; a client pool may keep a connection: force after a moment.
  b.close = () =>
    new Promise<void>((res) => {
      const t = setTimeout(() => {
        server.forceShutdown();
        res();
      }, 300);
      server.tryShutdown(() => {
        clearTimeout(t);
        res();
      });
    });
  return b;
}

/** One unary call on a channel; resolves with the answering backend's port. */
export function callOnce(client: grpc.Client, deadlineMs = 5000): Promise<number> {
  return new Promise((res, rej) => {
    client.makeUnaryRequest(ECHO_PATH, (x: Buffer) => x, (x: Buffer) => x, Buffer.alloc(0), { deadline: Date.now() + deadlineMs }, (err, v) => (err ? rej(err) : res(Number(v!.toString()))));
  });
}

export interface EndpointInput {
  readonly port: number;
  readonly host?: string;
  readonly priority?: number;
  readonly weight?: number;
  readonly locality?: Partial<Locality>;
  readonly labels?: Record<string, string>;
}

export function spec(service: string, e: EndpointInput): EndpointSpec {
  const host = e.host ?? '127.0.0.1';
  return { id: endpointId(service, host, e.port), service, host, port: e.port, locality: { ...NO_LOCALITY, ...(e.locality ?? {}) }, priority: e.priority ?? 0, weight: e.weight ?? 1, labels: e.labels ?? {} };
}

export interface XdsFixture {
  readonly mesh: MeshState;
  readonly component: Component;
  readonly address: string;
  readonly port: number;
  readonly metrics: Registry;
  readonly routes: Map<string, AdminHandler>;
  readonly config: Config;
  close(): Promise<void>;
}

/** Start the xds component for a mesh of services on 127.0.0.1 (port 0 unless given). */
export async function startXdsFixture(services: Record<string, EndpointInput[]>, xds: Record<string, unknown> = {}, mesh?: MeshState, log: Logger = silentLogger): Promise<XdsFixture> {
  const v = validateConfig({ xds: { enabled: true, listen: '127.0.0.1:0', ...xds }, services: Object.entries(services).map(([name, eps]) => ({ name, protocol: 'h2c', endpoints: eps.map((e) => ({ address: `${e.host ?? '127.0.0.1'}:${e.port}` })) })) });
  if (!v.valid) throw new Error(v.errors.join('\n'));
  const config = v.result;
  const m = mesh ?? new MeshState(systemClock);
  if (!mesh) m.setServices(Object.entries(services).map(([name, eps]) => ({ spec: { name, endpoints: eps.map((e) => spec(name, e)) } })));
  const routes = new Map<string, AdminHandler>();
  const metrics = new Registry();
  const ctx: SidecarContext = {
    config,
    clock: systemClock,
    mesh: m,
    stats: new StatsTable({ windowMs: 1000, windows: 10, maxLatencyUs: 60_000_000, significantDigits: 2 }),
    log,
    metrics,
    admin: { route: (method, path, h) => routes.set(`${method} ${path}`, h) },
    components: new Map(),
  };
  const component = await startXds(ctx);
  const address = component.addresses!.xds!;
  return { mesh: m, component, address, port: Number(address.slice(address.lastIndexOf(':') + 1)), metrics, routes, config, close: () => component.close(500) };
}

/** Bootstrap for grpc-js-xds pointing at our server (set before the first xds:/// channel is made). */
export function setBootstrap(xdsAddress: string, nodeId = 'test-node'): void {
  process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify({
    xds_servers: [{ server_uri: xdsAddress, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: { id: nodeId, cluster: 'test', locality: { region: 'r1', zone: 'z1', sub_zone: '' } },
  });
}

/** Calls `n` times, returns counts by backend port (failed calls under key 0). */
export async function distribution(client: grpc.Client, n: number): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    let port = 0;
    try {
      port = await callOnce(client);
    } catch {
      port = 0;
    }
    out.set(port, (out.get(port) ?? 0) + 1);
  }
  return out;
}

/** Poll `fn` until true or the deadline passes. */
export async function waitFor(fn: () => boolean | Promise<boolean>, timeoutMs = RESPONSE_GUARD_MS, stepMs = 20): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await fn()) return true;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return fn();
}

// ---- raw ADS client on the proto-loader definition (independent of the server's hand-made frames) ----

type AnyMsg = { type_url: string; value: Buffer };
export interface SotwResponse { version_info: string; resources: AnyMsg[]; type_url: string; nonce: string }
export interface DeltaResponse { system_version_info: string; resources: { name: string; version: string; resource: AnyMsg }[]; type_url: string; removed_resources: string[]; nonce: string }

interface AdsClientCtor {
  new (address: string, creds: grpc.ChannelCredentials, options?: object): grpc.Client & {
    StreamAggregatedResources(): grpc.ClientDuplexStream<object, SotwResponse>;
    DeltaAggregatedResources(): grpc.ClientDuplexStream<object, DeltaResponse>;
  };
}

export function adsClient(address: string, credentials = grpc.credentials.createInsecure(), options: grpc.ChannelOptions = {}) {
  const pkg = grpc.loadPackageDefinition(xdsPackageDefinition()) as unknown as { envoy: { service: { discovery: { v3: { AggregatedDiscoveryService: AdsClientCtor } } } } };
  return new pkg.envoy.service.discovery.v3.AggregatedDiscoveryService(address, credentials, { 'grpc.max_receive_message_length': 256 * 1024 * 1024, ...options });
}

/** How long a scripted stream waits for a response or its end before failing the test. */
export const RESPONSE_GUARD_MS = 30_000;

/** A scripted stream: send requests, await responses one at a time, assert silence. */
export class Scripted<Res extends { nonce: string }> {
  readonly received: Res[] = [];
  private waiters: ((r: Res) => void)[] = [];
  status: grpc.StatusObject | undefined;
  error: grpc.ServiceError | undefined;
  private readonly statusWaiters: (() => void)[] = [];
  constructor(readonly call: grpc.ClientDuplexStream<object, Res>) {
    call.on('data', (r: Res) => {
      const w = this.waiters.shift();
      if (w) w(r);
      else this.received.push(r);
    });
    call.on('status', (s: grpc.StatusObject) => {
      this.status = s;
      for (const w of this.statusWaiters.splice(0)) w();
    });
    call.on('error', (e: grpc.ServiceError) => {
      this.error = e;
    });
  }
  send(req: object): void {
    this.call.write(req);
  }
  /** The next response; `timeoutMs` is a hang guard (a loaded machine can take seconds), not a bound. */
  next(timeoutMs = RESPONSE_GUARD_MS): Promise<Res> {
    const r = this.received.shift();
    if (r) return Promise.resolve(r);
    return new Promise((res, rej) => {
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        rej(new Error(`no response within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (x: Res) => {
        clearTimeout(t);
        res(x);
      };
      this.waiters.push(done);
    });
  }
  /** Resolves true if nothing arrives within `ms`. */
  async silent(ms = 150): Promise<boolean> {
    await new Promise((r) => setTimeout(r, ms));
    return this.received.length === 0;
  }
  ended(timeoutMs = RESPONSE_GUARD_MS): Promise<grpc.StatusObject | undefined> {
    if (this.status) return Promise.resolve(this.status);
    return new Promise((res) => {
      const t = setTimeout(() => res(undefined), timeoutMs);
      this.statusWaiters.push(() => {
        clearTimeout(t);
        res(this.status);
      });
    });
  }
  close(): void {
    this.call.cancel();
  }
}

export function decodeResources(r: SotwResponse): Record<string, unknown>[] {
  return r.resources.map((a) => decodeAny(a.type_url, a.value));
}

export const GRPC_NODE = { id: 'raw-node', cluster: 'test', user_agent_name: 'grpc-node-js', locality: { region: 'r1', zone: 'z1' } };
export const ENVOY_NODE = { id: 'raw-envoy', cluster: 'test', user_agent_name: 'envoy', locality: { region: 'r1', zone: 'z1' } };

/** Make timers of at least `minMs` not hold the process open (client libraries' long retention timers). */
export function unrefLongTimers(minMs: number): void {
  const orig = globalThis.setTimeout;
  const patched = ((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const t = orig(fn, ms, ...args);
    if ((ms ?? 0) >= minMs) t.unref();
    return t;
  }) as typeof setTimeout;
  globalThis.setTimeout = Object.assign(patched, orig);
}
