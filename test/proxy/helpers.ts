// Shared by the proxy tests: loopback backends, a proxy started from a config, and a raw HTTP client.
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { systemClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/log.js';
import { validateConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/types.js';
import { MeshState } from '../../src/mesh/state.js';
import { StatsTable } from '../../src/stats/window.js';
import { servicesFromConfig } from '../../src/runtime/sidecar.js';
import { createProxy, type CreateProxyOptions, type ProxyHandle } from '../../src/proxy/component.js';
import { refusingAddress } from '../helpers/refusing-address.js';

export interface Backend {
  readonly port: number;
  readonly server: http.Server;
  close(): Promise<void>;
}

export async function backend(handler: http.RequestListener): Promise<Backend> {
  const server = http.createServer({ keepAliveTimeout: 10_000 }, handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    server,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A TCP server that accepts and then does `onSocket` (black hole, reset, garbage...). */
export async function rawServer(onSocket: (s: net.Socket) => void): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    onSocket(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A port with nothing listening on it (bound, then closed). */
/**
 * A dead endpoint: `host:port` where every connection is refused and no other process can start
 * listening meanwhile (a closed listener's freed port could be taken by a test running alongside).
 */
export async function refusedEndpoint(t: { teardown(fn: () => unknown): void }): Promise<{ host: string; port: number; address: string }> {
  const a = await refusingAddress(t);
  return { ...a, address: `${a.host}:${a.port}` };
}

export interface TestProxy {
  readonly handle: ProxyHandle;
  readonly config: Config;
  readonly mesh: MeshState;
  readonly stats: StatsTable;
  readonly port: number;
  readonly inboundPort: number;
  close(): Promise<void>;
}

/**
 * The HTTP/1 engine the proxy tests run on: MESHMEDIC_HTTP1_ENGINE (native | portable | auto; `npm test`
 * runs this folder once per engine), unless a test's config names one.
 */
export const testEngine = process.env.MESHMEDIC_HTTP1_ENGINE ?? 'auto';

/** Start a proxy on 127.0.0.1:0 from a partial config document (validated like a real one). */
export async function startTestProxy(doc: Record<string, unknown>, opts: CreateProxyOptions = {}): Promise<TestProxy> {
  doc = { ...doc, proxy: { http1Engine: testEngine, ...((doc.proxy as object) ?? {}) } };
  const outbound = { listen: '127.0.0.1:0', ...((doc.outbound as object) ?? {}) };
  const inbound = doc.inbound ? { listen: '127.0.0.1:0', ...(doc.inbound as object) } : undefined;
  const v = validateConfig({ ...doc, outbound, ...(inbound ? { inbound } : {}), log: { level: 'silent' } });
  if (!v.valid) throw new Error(`test config invalid: ${v.errors.join('; ')}`);
  const config = v.result;
  const mesh = new MeshState(systemClock);
  mesh.setServices(servicesFromConfig(config));
  const stats = new StatsTable();
  const handle = await createProxy({ mesh, stats, config, clock: systemClock, log: silentLogger }, opts);
  const portOf = (a: string | undefined) => (a ? Number(a.slice(a.lastIndexOf(':') + 1)) : 0);
  return { handle, config, mesh, stats, port: portOf(handle.addresses.outbound), inboundPort: portOf(handle.addresses.inbound), close: () => handle.close(2000) };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: string;
}

/** One HTTP/1.1 request with node:http (no keep-alive agent), body read fully. */
export function request(port: number, opts: { method?: string; path?: string; headers?: http.OutgoingHttpHeaders | string[]; body?: string | Buffer; timeoutMs?: number } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: opts.method ?? 'GET', path: opts.path ?? '/', headers: opts.headers as http.OutgoingHttpHeaders, agent: false, timeout: opts.timeoutMs ?? 10_000 });
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.end(opts.body);
  });
}

/** Send raw bytes on a new connection; resolve with everything read until the server closes (or timeout). */
export function rawExchange(port: number, bytes: string | Buffer, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const done = () => {
      clearTimeout(timer);
      s.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    };
    const timer = setTimeout(done, timeoutMs);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', done);
    s.on('close', done);
    s.write(bytes);
  });
}

/** Poll until `fn` is true or `ms` elapse. */
export async function until(fn: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
