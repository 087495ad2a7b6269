// The ADS server on @grpc/grpc-js: StreamAggregatedResources (SotW) and DeltaAggregatedResources over the
// snapshot cache, with stream limits, per-node ACK/NACK status (CSDS-like) and Prometheus metrics.
import * as grpc from '@grpc/grpc-js';
import { Counter, Gauge, type Registry } from '../admin/metrics-registry.js';
import type { Logger } from '../core/log.js';
import { silentLogger } from '../core/log.js';
import { SnapshotCache } from './cache.js';
import { decodeDeltaRequest, decodeSotwRequest, type DeltaRequest, type NodeInfo, type SotwRequest } from './requests.js';
import type { ClientFlavor } from './resources.js';
import { AdsStream, Code, DeltaStream, SotwStream, type StreamHooks, type StreamLimits, type StreamStatus, type StreamTransport } from './streams.js';
import { ADS_ORDER, isIstioTypeUrl } from './types.js';

export interface AdsServerLimits extends StreamLimits {
  /** Most concurrent streams (SotW + Delta); more are refused with RESOURCE_EXHAUSTED. */
  readonly maxStreams: number;
  /** Largest request message accepted, bytes. */
  readonly maxRequestBytes: number;
  /** Largest response message a client is expected to accept, bytes. */
  readonly maxResponseBytes: number;
  /** A stream that sends nothing for this long after opening is closed. */
  readonly firstRequestTimeoutMs: number;
}

export const DEFAULT_LIMITS: AdsServerLimits = Object.freeze({
  maxStreams: 10_000,
  maxNamesPerRequest: 10_000,
  maxSubscribedNames: 100_000,
  maxTypesPerStream: 32,
  maxNameLength: 1024,
  maxSubscribedNamesPerStream: 100_000,
  maxSubscriptionBytesPerStream: 16 * 1024 * 1024,
  maxRequestBytes: 4 * 1024 * 1024,
  maxResponseBytes: 64 * 1024 * 1024,
  firstRequestTimeoutMs: 30_000,
});

export interface AdsServerOptions {
  /** Transport security of the port (default: plaintext). */
  readonly credentials?: grpc.ServerCredentials;
  /** More gRPC services to serve on the same port (the access-log service). */
  readonly extraServices?: readonly { definition: grpc.ServiceDefinition; implementation: grpc.UntypedServiceImplementation }[];
  readonly cache: SnapshotCache;
  readonly limits?: Partial<AdsServerLimits>;
  readonly controlPlaneId?: string;
  /** Client flavor for a node: proxyless gRPC or Envoy (from the user agent, else `defaultFlavor`). */
  readonly defaultFlavor?: ClientFlavor;
  readonly activate?: (flavor: ClientFlavor) => void;
  readonly metrics?: Registry;
  readonly log?: Logger;
  readonly now?: () => number;
}

export interface NackRecord {
  readonly at: number;
  readonly node: string;
  readonly typeUrl: string;
  readonly error: string;
}

/** At most this many NACK warnings per period; the rest are counted (metrics, status) and summarised. */
const NACK_LOG_LINES = 10;
const NACK_LOG_PERIOD_MS = 60_000;

/** A fixed-window log budget: `admit` returns how many lines were suppressed since the last one, or -1 to suppress. */
export class LogBudget {
  private windowStart = -Infinity;
  private used = 0;
  private suppressed = 0;
  constructor(private readonly lines: number, private readonly periodMs: number) {}

  admit(now: number): number {
    if (now - this.windowStart >= this.periodMs) {
      this.windowStart = now;
      this.used = 0;
    }
    if (this.used >= this.lines) {
      this.suppressed++;
      return -1;
    }
    this.used++;
    const n = this.suppressed;
    this.suppressed = 0;
    return n;
  }
}

const ADS_SERVICE_NAME = 'envoy.service.discovery.v3.AggregatedDiscoveryService';
const passThrough = (b: Buffer) => b;

/** The service definition with our own (de)serializers: responses are pre-assembled bytes. */
export const ADS_SERVICE_DEFINITION = {
  StreamAggregatedResources: {
    path: `/${ADS_SERVICE_NAME}/StreamAggregatedResources`,
    requestStream: true,
    responseStream: true,
    requestSerialize: passThrough,
    requestDeserialize: decodeSotwRequest,
    responseSerialize: passThrough,
    responseDeserialize: passThrough,
  },
  DeltaAggregatedResources: {
    path: `/${ADS_SERVICE_NAME}/DeltaAggregatedResources`,
    requestStream: true,
    responseStream: true,
    requestSerialize: passThrough,
    requestDeserialize: decodeDeltaRequest,
    responseSerialize: passThrough,
    responseDeserialize: passThrough,
  },
} as const;

/** Known type URLs keep their label; anything a client invents is `other` (bounded label cardinality). */
function typeLabel(t: string): string {
  if (ADS_ORDER.includes(t)) return t;
  if (isIstioTypeUrl(t)) return /\/(DestinationRule|VirtualService)$/.test(t) ? t.replace(/\/v[0-9a-z]+\//, '/') : 'istio_other';
  return 'other';
}

export function flavorOfNode(node: NodeInfo | undefined, fallback: ClientFlavor): ClientFlavor {
  const ua = node?.user_agent_name.toLowerCase() ?? '';
  if (ua.includes('envoy')) return 'envoy';
  if (ua.includes('grpc')) return 'grpc';
  return fallback;
}

/** A metric from the registry if a previous server (restart in the same process) registered it already. */
function metric<T>(registry: Registry | undefined, name: string, make: () => T): T {
  return ((registry?.getSingleMetric(name) as T | undefined) ?? make());
}

export class AdsServer {
  readonly cache: SnapshotCache;
  private readonly limits: AdsServerLimits;
  private readonly log: Logger;
  private readonly streams = new Map<AdsStream, () => void>();
  private readonly nacks: NackRecord[] = [];
  private server: grpc.Server | undefined;
  private readonly now: () => number;
  private readonly hooks: StreamHooks;
  private readonly m: {
    pushes: Counter<'type_url' | 'result'>;
    streams: Gauge<'mode'>;
    bytes: Counter<'mode'>;
    refused: Counter<'reason'>;
  };
  private readonly counts = { sotw: 0, delta: 0 };
  private readonly nackLog = new LogBudget(NACK_LOG_LINES, NACK_LOG_PERIOD_MS);

  constructor(private readonly opts: AdsServerOptions) {
    this.cache = opts.cache;
    this.limits = { ...DEFAULT_LIMITS, ...(opts.limits ?? {}) };
    this.log = opts.log ?? silentLogger;
    this.now = opts.now ?? Date.now;
    const registers = opts.metrics ? [opts.metrics] : [];
    this.m = {
      pushes: metric(opts.metrics, 'meshmedic_xds_pushes_total', () => new Counter({ name: 'meshmedic_xds_pushes_total', help: 'xDS responses sent and their outcome at the client (sent, ack, nack), by type URL', labelNames: ['type_url', 'result'], registers })),
      streams: metric(opts.metrics, 'meshmedic_xds_streams', () => new Gauge({ name: 'meshmedic_xds_streams', help: 'Open ADS streams by mode (sotw, delta)', labelNames: ['mode'], registers })),
      bytes: metric(opts.metrics, 'meshmedic_xds_sent_bytes_total', () => new Counter({ name: 'meshmedic_xds_sent_bytes_total', help: 'Bytes of xDS responses sent, by mode', labelNames: ['mode'], registers })),
      refused: metric(opts.metrics, 'meshmedic_xds_refused_requests_total', () => new Counter({ name: 'meshmedic_xds_refused_requests_total', help: 'ADS requests refused or ignored, by reason (stale_nonce, unknown_type, limit, invalid)', labelNames: ['reason'], registers })),
    };
    this.m.streams.set({ mode: 'sotw' }, 0);
    this.m.streams.set({ mode: 'delta' }, 0);
    this.hooks = {
      sent: (t, mode, bytes) => {
        this.m.pushes.inc({ type_url: typeLabel(t), result: 'sent' });
        this.m.bytes.inc({ mode }, bytes);
      },
      ack: (t) => this.m.pushes.inc({ type_url: typeLabel(t), result: 'ack' }),
      nack: (stream, t, error) => {
        this.m.pushes.inc({ type_url: typeLabel(t), result: 'nack' });
        this.nacks.push({ at: this.now(), node: stream.nodeId(), typeUrl: t, error });
        if (this.nacks.length > 100) this.nacks.shift();
        // A client can NACK every response it gets: the log gets a bounded share of them.
        const suppressed = this.nackLog.admit(this.now());
        if (suppressed >= 0) this.log.warn('xDS client rejected a response', { node: stream.nodeId().slice(0, 256), typeUrl: t.slice(0, 256), error, stream: stream.id, ...(suppressed > 0 ? { nacksNotLogged: suppressed } : {}) });
      },
      refused: (reason) => this.m.refused.inc({ reason }),
    };
  }

  /** Bind on host:port (port 0 = any free port); resolves with the bound `host:port`. */
  async listen(host: string, port: number): Promise<string> {
    const server = new grpc.Server({
      'grpc.max_receive_message_length': this.limits.maxRequestBytes,
      'grpc.max_send_message_length': this.limits.maxResponseBytes,
      'grpc.max_concurrent_streams': this.limits.maxStreams + 16,
      // Vanished clients are found by keepalive and their streams released.
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
    });
    server.addService(ADS_SERVICE_DEFINITION as unknown as grpc.ServiceDefinition, {
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<SotwRequest, Buffer>) => this.serve(call, 'sotw'),
      DeltaAggregatedResources: (call: grpc.ServerDuplexStream<DeltaRequest, Buffer>) => this.serve(call, 'delta'),
    });
    for (const s of this.opts.extraServices ?? []) server.addService(s.definition, s.implementation);
    const addr = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    const bound = await new Promise<number>((resolve, reject) =>
      server.bindAsync(addr, this.opts.credentials ?? grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    this.server = server;
    return host.includes(':') ? `[${host}]:${bound}` : `${host}:${bound}`;
  }

  private serve(call: grpc.ServerDuplexStream<SotwRequest | DeltaRequest, Buffer>, mode: 'sotw' | 'delta'): void {
    let ended = false;
    const transport: StreamTransport = {
      write: (frame) => (ended ? true : call.write(frame)),
      onDrain: (fn) => call.once('drain', fn),
      fail: (code, details) => {
        if (ended) return;
        ended = true;
        call.emit('error', Object.assign(new Error(details), { code, details }));
      },
    };
    if (this.streams.size >= this.limits.maxStreams) {
      this.m.refused.inc({ reason: 'limit' });
      transport.fail(Code.RESOURCE_EXHAUSTED, `the xDS server already has ${this.streams.size} streams; the limit is ${this.limits.maxStreams} (xds.limits.maxStreams)`);
      return;
    }
    const env = {
      cache: this.cache,
      limits: this.limits,
      controlPlaneId: this.opts.controlPlaneId ?? 'meshmedic',
      flavorOf: (n: NodeInfo | undefined) => flavorOfNode(n, this.opts.defaultFlavor ?? 'grpc'),
      activate: (f: ClientFlavor) => this.opts.activate?.(f),
      hooks: this.hooks,
      now: this.now,
    };
    const stream = mode === 'sotw' ? new SotwStream(env, transport, call.getPeer()) : new DeltaStream(env, transport, call.getPeer());
    this.streams.set(stream, () => {
      if (!ended) {
        ended = true;
        call.end();
      }
    });
    this.counts[mode]++;
    this.m.streams.set({ mode }, this.counts[mode]);
    let gotRequest = false;
    const idle = setTimeout(() => {
      if (!gotRequest) transport.fail(Code.INVALID_ARGUMENT, `no request within ${this.limits.firstRequestTimeoutMs} ms`);
    }, this.limits.firstRequestTimeoutMs);
    idle.unref();
    const cleanup = () => {
      clearTimeout(idle);
      if (!this.streams.delete(stream)) return;
      stream.close();
      this.counts[mode]--;
      this.m.streams.set({ mode }, this.counts[mode]);
    };
    call.on('data', (req: SotwRequest | DeltaRequest) => {
      gotRequest = true;
      try {
        if (stream instanceof SotwStream) stream.handle(req as SotwRequest);
        else (stream as DeltaStream).handle(req as DeltaRequest);
      } catch (err) {
        // A bug in one stream must not take the server down: end that stream, keep serving the rest.
        this.log.error('xDS stream failed', { err, peer: stream.peer });
        transport.fail(Code.UNAVAILABLE, 'internal error handling the request');
      }
      if (ended) cleanup();
    });
    call.on('end', () => {
      cleanup();
      if (!ended) {
        ended = true;
        call.end();
      }
    });
    call.on('cancelled', cleanup);
    call.on('error', cleanup);
    call.on('close', cleanup);
  }

  /** Open streams right now. */
  streamCount(): { sotw: number; delta: number } {
    return { ...this.counts };
  }

  /**
   * CSDS-like view for the admin API: per node, its streams with per-type ACK/NACK state. `node` selects
   * one node id; otherwise at most `maxNodes` nodes are listed (with the count left out).
   */
  status(opts: { node?: string; maxNodes?: number } = {}): {
    nodes: Record<string, StreamStatus[]>;
    nodesNotShown: number;
    cache: ReturnType<SnapshotCache['describe']>;
    recentNacks: NackRecord[];
    streams: { sotw: number; delta: number };
  } {
    const max = opts.maxNodes ?? 200;
    const nodes: Record<string, StreamStatus[]> = {};
    const hidden = new Set<string>();
    let shown = 0;
    for (const s of this.streams.keys()) {
      const key = s.nodeId() || '(unknown)';
      if (opts.node !== undefined && key !== opts.node) continue;
      if (!nodes[key]) {
        if (shown >= max) {
          hidden.add(key);
          continue;
        }
        nodes[key] = [];
        shown++;
      }
      nodes[key]!.push(s.status());
    }
    return { nodes, nodesNotShown: hidden.size, cache: this.cache.describe(), recentNacks: [...this.nacks], streams: this.streamCount() };
  }

  async close(deadlineMs = 1000): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const [s, end] of [...this.streams]) {
      s.close();
      end();
    }
    if (!server) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, Math.max(0, deadlineMs));
      t.unref();
      server.tryShutdown(() => {
        clearTimeout(t);
        resolve();
      });
      // Streams never end on their own: cancel them so tryShutdown can finish.
      if (deadlineMs <= 0) server.forceShutdown();
    });
    this.streams.clear();
    this.counts.sotw = this.counts.delta = 0;
  }
}
