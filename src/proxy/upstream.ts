// One forwarding target: an endpoint of a mesh service (or the local app behind the inbound listener),
// with its HTTP/1.1 keep-alive pool, its HTTP/2 client (h2c, for gRPC) and its stats windows.
import { H1Pool } from './h1pool.js';
import type { ProxyConfig } from '../config/sections/proxy.js';
import type { EndpointWindows } from '../stats/window.js';
import type { H2Client } from './h2client.js';
import type { Http1Engine } from './engine/types.js';

export type UpstreamProtocol = 'http1' | 'h2c';
export type H2ClientClass = new (origin: string, connectTimeoutMs: number, idleTimeoutMs: number) => H2Client;

export class Upstream {
  /** Endpoint id (`service/host:port`), or `inbound/host:port` for the local app. */
  readonly id: string;
  /** Mesh slot (index into stats and balancer load), or -1 for the local app. */
  readonly slot: number;
  readonly origin: string;
  /** `host:port` (IPv6 bracketed), as a Host header names it. */
  readonly authority: string;
  readonly protocol: UpstreamProtocol;
  readonly windows: EndpointWindows;
  private readonly cfg: ProxyConfig;
  private readonly http1Engine: Http1Engine;
  private pool: H1Pool | undefined;
  private readonly host: string;
  private readonly port: number;
  private h2: H2Client | undefined;
  private closed = false;

  constructor(id: string, slot: number, host: string, port: number, protocol: UpstreamProtocol, windows: EndpointWindows, cfg: ProxyConfig, http1Engine: Http1Engine) {
    this.id = id;
    this.slot = slot;
    this.host = host;
    this.port = port;
    this.authority = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    this.origin = `http://${this.authority}`;
    this.protocol = protocol;
    this.windows = windows;
    this.cfg = cfg;
    this.http1Engine = http1Engine;
  }

  /** The HTTP/1.1 keep-alive pool (created on first use: most endpoints of a large mesh are never called). */
  http1(): H1Pool {
    let p = this.pool;
    if (p === undefined) {
      const c = this.cfg;
      p = this.pool = new H1Pool(this.host, this.port, {
        engine: this.http1Engine,
        connections: c.connectionsPerEndpoint,
        connectTimeoutMs: c.connectTimeoutMs,
        headersTimeoutMs: c.headersTimeoutMs,
        bodyTimeoutMs: c.bodyTimeoutMs,
        keepAliveTimeoutMs: c.keepAliveTimeoutMs,
        maxHeaderSize: c.maxHeaderBytes,
        queueTimeoutMs: c.queueTimeoutMs,
        maxUploading: Math.max(1, Math.floor((c.connectionsPerEndpoint * c.uploadConnectionsPercent) / 100)),
      });
    }
    return p;
  }

  /**
   * The HTTP/2 prior-knowledge client (created on first use). The class comes from the h2c forwarding
   * (h2.ts), which loads node:http2 only when a client speaks HTTP/2 (see listener.ts).
   */
  http2(client: H2ClientClass): H2Client {
    let h = this.h2;
    if (h === undefined) h = this.h2 = new client(this.origin, this.cfg.connectTimeoutMs, this.cfg.idleTimeoutMs);
    return h;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Close gracefully: in-flight requests finish, new ones are refused. */
  async close(): Promise<void> {
    this.closed = true;
    const p = this.pool;
    const h = this.h2;
    await Promise.all([p ? p.close() : undefined, h ? h.close() : undefined]);
  }

  /** Close at once: in-flight requests fail. */
  async destroy(): Promise<void> {
    this.closed = true;
    const p = this.pool;
    const h = this.h2;
    if (h) h.destroy();
    if (p) await p.destroy();
  }
}

function noop(): void {}
