// The admin HTTP server: health, readiness, Prometheus metrics and the JSON /v1 API.
// Components add their own routes (xDS status, gossip members) through AdminRoutes.
import type http from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import { nodeHttp } from '../runtime/node-http.js';
import { isLoopbackHost } from '../core/address.js';
import type { ErrorCode } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { AdminCall, AdminHandler, AdminRequest, AdminResponse, AdminRoutes } from '../runtime/context.js';

interface Route {
  method: string;
  segments: string[];
  handler: AdminHandler;
  mutating: boolean;
  /** Writes the response itself (event streams, static files, redirects). */
  raw?: RawHandler;
}

/** A route that answers on the raw response: for streams and static files, not JSON. */
export type RawHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

const MAX_BODY = 1 << 20;

export function apiError(status: number, code: ErrorCode, message: string): AdminResponse {
  return { status, body: { error: code, message } };
}

export class AdminServer implements AdminRoutes {
  private readonly routes: Route[] = [];
  private server: http.Server | undefined;
  private readonly token: string;
  private readonly log: Logger;
  private tokenRequired = false;
  private readonly callObservers = new Set<(call: AdminCall) => void>();
  private readonly readOnly: boolean;
  /** Host names accepted in the Host header besides localhost and the listener's IP addresses. */
  private readonly allowedHosts: ReadonlySet<string>;
  private boundHost = '';

  constructor(opts: { token: string; log: Logger; readOnly?: boolean; allowedHosts?: readonly string[] }) {
    this.token = opts.token;
    this.log = opts.log;
    this.readOnly = opts.readOnly ?? false;
    this.allowedHosts = new Set((opts.allowedHosts ?? []).map((h) => h.toLowerCase()));
  }

  route(method: string, path: string, handler: AdminHandler, opts: { mutating?: boolean } = {}): void {
    const segments = path.split('/').filter(Boolean);
    this.routes.push({ method: method.toUpperCase(), segments, handler, mutating: opts.mutating ?? method.toUpperCase() !== 'GET' });
  }

  /** Register a route that writes its own response (same matching and token rules as route()). */
  rawRoute(method: string, path: string, raw: RawHandler, opts: { mutating?: boolean } = {}): void {
    this.route(method, path, () => ({ status: 500, body: null }), opts);
    this.routes[this.routes.length - 1]!.raw = raw;
  }

  observeMutatingCalls(fn: (call: AdminCall) => void): () => void {
    this.callObservers.add(fn);
    return () => this.callObservers.delete(fn);
  }

  private notify(call: AdminCall): void {
    for (const fn of this.callObservers) {
      try {
        fn(call);
      } catch (err) {
        this.log.warn('admin call observer failed', { err });
      }
    }
  }

  async listen(host: string, port: number): Promise<string> {
    // Off loopback, mutating calls need the bearer token; without one configured they are refused.
    this.tokenRequired = this.token !== '' || !isLoopbackHost(host);
    this.boundHost = host.replace(/^\[|\]$/g, '');
    if (this.readOnly) this.log.warn('the admin API is read-only (admin.readOnly): eject, drain, restore and other changes are refused', { listen: `${host}:${port}` });
    const server = nodeHttp.createServer({ maxHeaderSize: 16_384, requestTimeout: 30_000 }, (req, res) => {
      this.handle(req, res).catch((err) => {
        this.log.error('admin handler failed', { err, url: req.url });
        if (!res.headersSent) send(res, 500, { error: 'MM_ERR_INTERNAL', message: (err as Error).message });
        else res.destroy();
      });
    });
    server.on('clientError', (_err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      else socket.destroy();
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const a = server.address() as AddressInfo;
    return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
  }

  async close(): Promise<void> {
    const s = this.server;
    if (!s) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
  }

  /** Undefined when the Host header names this listener, else why it does not. */
  private checkHost(header: string | undefined): string | undefined {
    if (header === undefined || header === '' || hostAllowed(header, this.boundHost, this.allowedHosts)) return undefined;
    return `Host "${header.slice(0, 100)}" does not name this admin listener: use its address, localhost, or add the name to admin.allowedHosts`;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    const method = (req.method ?? 'GET').toUpperCase();
    let segments: string[];
    try {
      segments = url.pathname.split('/').filter(Boolean).map((s) => decodeURIComponent(s));
    } catch {
      return send(res, 400, { error: 'MM_ERR_BAD_REQUEST', message: 'bad percent-encoding in path' });
    }
    const hostProblem = this.checkHost(req.headers.host);
    if (hostProblem) return send(res, 421, { error: 'MM_ERR_ADMIN_HOST', message: hostProblem });
    let pathMatched = false;
    for (const r of this.routes) {
      const params = match(r.segments, segments);
      if (!params) continue;
      pathMatched = true;
      if (r.method !== method && !(r.method === 'GET' && method === 'HEAD')) continue;
      // A refused mutation is reported too (never with the credentials presented), then answered.
      const refuse = (status: number, error: ErrorCode, message: string): void => {
        if (r.mutating) this.notify({ method, path: url.pathname, body: null, status, refused: error, remote: req.socket.remoteAddress });
        send(res, status, { error, message });
      };
      if (r.mutating && this.readOnly) {
        return refuse(403, 'MM_ERR_ADMIN_READ_ONLY', 'the admin API is read-only (admin.readOnly: true): changes are refused');
      }
      if (r.mutating && this.tokenRequired) {
        const auth = req.headers.authorization ?? '';
        if (this.token === '' || auth !== `Bearer ${this.token}`) {
          return refuse(401, 'MM_ERR_UNAUTHORIZED', this.token === '' ? 'the admin API is bound off loopback and no admin.token is configured: mutating calls are refused' : 'missing or wrong bearer token');
        }
      }
      if (method !== 'GET' && method !== 'HEAD') {
        // Also without a body: a browser sends a cross-site POST with text/plain or a form type, or no
        // body at all, without a CORS preflight; requiring JSON forces the preflight, which we never grant.
        const ct = req.headers['content-type'] ?? '';
        if (!/^application\/json\s*(;|$)/i.test(ct)) {
          return refuse(415, 'MM_ERR_UNSUPPORTED_MEDIA_TYPE', `${method} needs content-type: application/json (also without a body), got ${ct ? `"${ct.slice(0, 100)}"` : 'none'}`);
        }
      }
      if (r.raw) return r.raw(req, res);
      let body: unknown;
      if (method !== 'GET' && method !== 'HEAD') {
        const parsed = await readJson(req);
        if (!parsed.ok) return send(res, parsed.status, { error: 'MM_ERR_BAD_REQUEST', message: parsed.message });
        body = parsed.value;
      }
      const request: AdminRequest = { method, path: url.pathname, params, query: url.searchParams, body, headers: req.headers };
      const out = await r.handler(request);
      if (r.mutating) this.notify({ method, path: url.pathname, body, status: out.status, remote: req.socket.remoteAddress });
      if (out.contentType && (typeof out.body === 'string' || out.body instanceof Uint8Array)) {
        res.writeHead(out.status, { 'content-type': out.contentType, 'content-length': typeof out.body === 'string' ? Buffer.byteLength(out.body) : out.body.length });
        res.end(method === 'HEAD' ? undefined : out.body);
        return;
      }
      return send(res, out.status, out.body, method === 'HEAD');
    }
    if (pathMatched) return send(res, 405, { error: 'MM_ERR_BAD_REQUEST', message: `method ${method} is not allowed on ${url.pathname}` });
    send(res, 404, { error: 'MM_ERR_NOT_FOUND', message: `no admin route ${url.pathname}` });
  }
}

/**
 * DNS rebinding defence: a page on evil.example whose name is made to resolve to this listener sends
 * `Host: evil.example`. Accepted: no Host (no browser omits it), localhost, loopback addresses, the bound
 * address (any IP address when bound to every interface: kubelet probes use the pod IP), and the names
 * in admin.allowedHosts. An IP literal cannot be rebound: the browser's origin is then that address.
 */
function hostAllowed(header: string, bound: string, allowed: ReadonlySet<string>): boolean {
  let name = header.trim().toLowerCase();
  if (name.startsWith('[')) name = name.slice(1, name.indexOf(']') > 0 ? name.indexOf(']') : undefined);
  else if (name.lastIndexOf(':') > 0 && name.indexOf(':') === name.lastIndexOf(':')) name = name.slice(0, name.lastIndexOf(':'));
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (name === 'localhost' || allowed.has(name)) return true;
  if (isIP(name) === 0) return false;
  return isLoopbackHost(name) || name === bound.toLowerCase() || bound === '0.0.0.0' || bound === '::';
}

function match(pattern: string[], actual: string[]): Record<string, string> | undefined {
  if (pattern.length !== actual.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p.startsWith('{') && p.endsWith('}')) params[p.slice(1, -1)] = actual[i]!;
    else if (p !== actual[i]) return undefined;
  }
  return params;
}

function send(res: http.ServerResponse, status: number, body: unknown, headOnly = false): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(headOnly ? undefined : text);
}

async function readJson(req: http.IncomingMessage): Promise<{ ok: true; value: unknown } | { ok: false; status: number; message: string }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) return { ok: false, status: 413, message: `body larger than ${MAX_BODY} bytes` };
    chunks.push(c as Buffer);
  }
  if (size === 0) return { ok: true, value: undefined };
  try {
    return { ok: true, value: JSON.parse(Buffer.concat(chunks).toString('utf8')) };
  } catch (err) {
    return { ok: false, status: 400, message: `body is not valid JSON: ${(err as Error).message}` };
  }
}
