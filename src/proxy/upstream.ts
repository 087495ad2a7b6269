// One forwarding target: an endpoint of a mesh service (or the local app behind the inbound listener),
// with its undici Pool (HTTP/1.1 keep-alive), its HTTP/2 client (h2c, for gRPC) and its stats windows.
import { Pool } from 'undici';
import type { ProxyConfig } from '../config/sections/proxy.js';
import type { EndpointWindows } from '../stats/window.js';
import { H2Client } from './h2client.js';

export type UpstreamProtocol = 'http1' | 'h2c';

export class Upstream {
  /** Endpoint id (`service/host:port`), or `inbound/host:port` for the local app. */
  readonly id: string;
  /** Mesh slot (index into stats and balancer load), or -1 for the local app. */
  readonly slot: number;
  readonly origin: string;
  readonly protocol: UpstreamProtocol;
  readonly windows: EndpointWindows;
  private readonly cfg: ProxyConfig;
  private pool: Pool | undefined;
  private h2: H2Client | undefined;
  private closed = false;

  constructor(id: string, slot: number, host: string, port: number, protocol: UpstreamProtocol, windows: EndpointWindows, cfg: ProxyConfig) {
    this.id = id;
    this.slot = slot;
    this.origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    this.protocol = protocol;
    this.windows = windows;
    this.cfg = cfg;
  }

  /** The HTTP/1.1 pool (created on first use: most endpoints of a large mesh are never called). */
  http1(): Pool {
    let p = this.pool;
    if (p === undefined) {
      const c = this.cfg;
      p = this.pool = new Pool(this.origin, {
        connections: c.connectionsPerEndpoint,
        pipelining: 1,
        keepAliveTimeout: c.keepAliveTimeoutMs,
        keepAliveMaxTimeout: Math.max(c.keepAliveTimeoutMs, c.idleTimeoutMs),
        headersTimeout: c.headersTimeoutMs,
        bodyTimeout: c.bodyTimeoutMs,
        maxHeaderSize: c.maxHeaderBytes,
        connect: { timeout: c.connectTimeoutMs, noDelay: true },
      });
      // A pool emits 'connectionError' for each failed connect; requests see the error themselves.
      p.on('connectionError', noop);
    }
    return p;
  }

  /** The HTTP/2 prior-knowledge client (created on first use). */
  http2(): H2Client {
    let h = this.h2;
    if (h === undefined) h = this.h2 = new H2Client(this.origin, this.cfg.connectTimeoutMs, this.cfg.idleTimeoutMs);
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
    await Promise.all([p ? p.close().catch(noop) : undefined, h ? h.close() : undefined]);
  }

  /** Close at once: in-flight requests fail. */
  async destroy(): Promise<void> {
    this.closed = true;
    const p = this.pool;
    const h = this.h2;
    if (h) h.destroy();
    if (p) await p.destroy().catch(noop);
  }
}

function noop(): void {}
