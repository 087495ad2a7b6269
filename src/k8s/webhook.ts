// The injection webhook's HTTPS server: POST /inject (namespace opted in by label), POST /inject/pod
// (pod opted in by label), POST /inject/annotated (deprecated: pod opted in by annotation), GET /healthz,
// GET /metrics. Certificates are reloaded when their files change, so cert-manager rotations need no restart.
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readFileSync, statSync } from 'node:fs';
import { Counter, Histogram, Registry } from '../admin/metrics-registry.js';
import type { AddressInfo } from 'node:net';
import { parseHostPort, formatHostPort } from '../core/address.js';
import { MeshmedicError, type ErrorCode } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { silentLogger } from '../core/log.js';
import { reviewAdmission } from './admission.js';
import { DEFAULT_INJECTOR_CONFIG, type InjectorConfig } from './injector-config.js';
import type { OptInRoute, planInjection } from './inject.js';

export const INJECT_PATH = '/inject';
export const INJECT_POD_PATH = '/inject/pod';
/** Deprecated: the entry that called it matched every pod of unlabelled namespaces. Kept for old registrations. */
export const INJECT_ANNOTATED_PATH = '/inject/annotated';
/** Each path and the opt-in its webhook entry selects on. */
export const INJECT_ROUTES: ReadonlyMap<string, OptInRoute> = new Map([
  [INJECT_PATH, 'namespace-label'],
  [INJECT_POD_PATH, 'pod-label'],
  [INJECT_ANNOTATED_PATH, 'pod-annotation'],
]);
/** The API server caps admission bodies well below this; anything larger is not a real review. */
export const MAX_BODY_BYTES = 3 * 1024 * 1024;

export interface WebhookOptions {
  /** HOST:PORT (IP literal; port 0 picks one). */
  readonly listen: string;
  /** PEM files. */
  readonly tlsCert: string;
  readonly tlsKey: string;
  readonly config?: InjectorConfig;
  readonly log?: Logger;
  /** How often to look for renewed certificate files (ms). */
  readonly certCheckMs?: number;
  /** Test hook: replaces the planner. */
  readonly plan?: typeof planInjection;
}

export interface WebhookServer {
  /** The bound address, HOST:PORT. */
  readonly address: string;
  readonly port: number;
  /** The webhook's own metrics (also served on GET /metrics). */
  readonly metrics: Registry;
  close(): Promise<void>;
}

/** What the webhook counts: every answer by outcome, and how long a review took. */
interface WebhookMetrics {
  readonly registry: Registry;
  readonly reviews: Counter<'outcome'>;
  readonly duration: Histogram;
  readonly certReloads: Counter<'result'>;
}

function createMetrics(): WebhookMetrics {
  const registry = new Registry();
  return {
    registry,
    reviews: new Counter({ name: 'meshmedic_webhook_reviews_total', help: 'Answers of the injection webhook by outcome (injected, skipped, failed_open, rejected, refused)', labelNames: ['outcome'], registers: [registry] }),
    duration: new Histogram({ name: 'meshmedic_webhook_review_duration_seconds', help: 'Time to answer an AdmissionReview, body read included', buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers: [registry] }),
    certReloads: new Counter({ name: 'meshmedic_webhook_certificate_reloads_total', help: 'Certificate reloads after the files changed, by result', labelNames: ['result'], registers: [registry] }),
  };
}

export async function startWebhook(opts: WebhookOptions): Promise<WebhookServer> {
  const log = opts.log ?? silentLogger;
  const config = opts.config ?? DEFAULT_INJECTOR_CONFIG;
  const hp = parseHostPort(opts.listen, { allowPortZero: true });
  if (typeof hp === 'string') throw new MeshmedicError('MM_ERR_ADDRESS', `--listen: ${hp}`);
  const tls = readTls(opts.tlsCert, opts.tlsKey);
  const metrics = createMetrics();
  const handler: Handler = { config, log, metrics, ...(opts.plan ? { plan: opts.plan } : {}), deprecatedPathSeen: false };
  const server: Server = createServer({ cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' }, (req, res) => {
    handle(req, res, handler).catch((err) => {
      log.error('webhook request failed', { err });
      if (!res.headersSent) send(res, 500, { code: 'MM_ERR_INTERNAL', message: 'internal error' });
      else res.destroy();
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 30_000;
  server.on('tlsClientError', (err) => log.debug('TLS handshake failed', { err }));
  server.on('clientError', (_err, socket) => socket.destroy());

  let certStamp = tls.stamp;
  const certTimer = setInterval(() => {
    try {
      const stamp = fileStamp(opts.tlsCert, opts.tlsKey);
      if (stamp === certStamp) return;
      const next = readTls(opts.tlsCert, opts.tlsKey);
      server.setSecureContext({ cert: next.cert, key: next.key });
      certStamp = next.stamp;
      metrics.certReloads.inc({ result: 'ok' });
      log.info('webhook certificate reloaded', { cert: opts.tlsCert });
    } catch (err) {
      metrics.certReloads.inc({ result: 'failed' });
      log.warn('webhook certificate reload failed; keeping the previous one', { err });
    }
  }, Math.max(100, opts.certCheckMs ?? 10_000));
  certTimer.unref();

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(hp.port, hp.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const address = formatHostPort(addr.address, addr.port);
  log.info('webhook listening', { address, paths: [...INJECT_ROUTES.keys()] });
  let closing: Promise<void> | undefined;
  return {
    address,
    port: addr.port,
    metrics: metrics.registry,
    close() {
      closing ??= new Promise<void>((resolve) => {
        clearInterval(certTimer);
        server.close(() => resolve());
        server.closeIdleConnections();
        // Reviews are short; anything still open after a moment is a stuck client.
        setTimeout(() => server.closeAllConnections(), 2000).unref();
      });
      return closing;
    },
  };
}

/** What one server's requests share. */
interface Handler {
  readonly config: InjectorConfig;
  readonly log: Logger;
  readonly metrics: WebhookMetrics;
  readonly plan?: typeof planInjection;
  /** The deprecated path is logged once per process, not once per pod. */
  deprecatedPathSeen: boolean;
}

async function handle(req: IncomingMessage, res: ServerResponse, h: Handler): Promise<void> {
  const { config, log, metrics, plan } = h;
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q >= 0 ? url.slice(0, q) : url;
  if (path === '/healthz' || path === '/readyz' || path === '/metrics') {
    if (req.method !== 'GET' && req.method !== 'HEAD') return methodNotAllowed(req, res, 'GET, HEAD');
    req.resume();
    if (path !== '/metrics') return send(res, 200, { status: 'ok' });
    const text = await metrics.registry.metrics();
    res.writeHead(200, { 'content-type': metrics.registry.contentType, 'content-length': Buffer.byteLength(text) });
    res.end(text);
    return;
  }
  const optIn = INJECT_ROUTES.get(path);
  if (!optIn) {
    req.resume();
    return send(res, 404, { code: 'MM_ERR_NOT_FOUND', message: `no such path ${JSON.stringify(path.slice(0, 100))}; the webhook serves POST ${[...INJECT_ROUTES.keys()].join(', ')}` });
  }
  if (req.method !== 'POST') return methodNotAllowed(req, res, 'POST');
  if (optIn === 'pod-annotation' && !h.deprecatedPathSeen) {
    h.deprecatedPathSeen = true;
    log.warn(`${INJECT_ANNOTATED_PATH} is deprecated: its webhook entry makes the API server call the webhook for every pod of unlabelled namespaces; re-apply the current manifests (pods opt in by the label meshmedic.io/inject=true, served on ${INJECT_POD_PATH})`);
  }
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') {
    req.resume();
    metrics.reviews.inc({ outcome: 'refused' });
    return send(res, 415, { code: 'MM_ERR_UNSUPPORTED_MEDIA_TYPE', message: `content-type ${JSON.stringify(type || '(none)')} is not application/json` });
  }
  const started = process.hrtime.bigint();
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > MAX_BODY_BYTES) {
    metrics.reviews.inc({ outcome: 'refused' });
    return tooLarge(req, res);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let over = false;
  await new Promise<void>((resolve, reject) => {
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        over = true;
        chunks.length = 0;
        resolve(); // answer now; what is still coming is discarded
        return;
      }
      chunks.push(c);
    });
    req.on('end', resolve);
    req.on('error', reject);
    req.on('aborted', () => reject(new Error('client aborted')));
  });
  if (over) {
    metrics.reviews.inc({ outcome: 'refused' });
    return tooLarge(req, res);
  }
  const result = reviewAdmission(Buffer.concat(chunks, size), { config, optIn, log, ...(plan ? { plan } : {}) });
  if (result.outcome === 'rejected') log.warn('admission review rejected', { reason: result.reason });
  send(res, result.status, result.body);
  metrics.reviews.inc({ outcome: result.outcome.replace('-', '_') });
  metrics.duration.observe(Number(process.hrtime.bigint() - started) / 1e9);
}

function tooLarge(req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('connection', 'close');
  send(res, 413, { code: 'MM_ERR_PAYLOAD_TOO_LARGE', message: `the body exceeds ${MAX_BODY_BYTES} bytes` });
  // Discard the rest for a moment (closing with unread data would reset the connection before the client
  // reads the answer), then cut a client that keeps sending.
  req.resume();
  const cut = setTimeout(() => req.socket.destroy(), 5000);
  cut.unref();
  req.socket.once('close', () => clearTimeout(cut));
}

function methodNotAllowed(req: IncomingMessage, res: ServerResponse, allow: string): void {
  req.resume();
  res.setHeader('allow', allow);
  send(res, 405, { code: 'MM_ERR_METHOD_NOT_ALLOWED', message: `method ${req.method} is not allowed here (allowed: ${allow})` });
}

function send(res: ServerResponse, status: number, body: { code?: ErrorCode; [k: string]: unknown }): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function readTls(certFile: string, keyFile: string): { cert: Buffer; key: Buffer; stamp: string } {
  let cert: Buffer;
  let key: Buffer;
  try {
    cert = readFileSync(certFile);
  } catch (err) {
    throw new MeshmedicError('MM_ERR_USAGE', `--tls-cert ${certFile}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    key = readFileSync(keyFile);
  } catch (err) {
    throw new MeshmedicError('MM_ERR_USAGE', `--tls-key ${keyFile}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (!cert.includes('-----BEGIN CERTIFICATE-----')) throw new MeshmedicError('MM_ERR_USAGE', `--tls-cert ${certFile}: not a PEM certificate`);
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key.toString('latin1'))) throw new MeshmedicError('MM_ERR_USAGE', `--tls-key ${keyFile}: not a PEM private key`);
  return { cert, key, stamp: fileStamp(certFile, keyFile) };
}

function fileStamp(certFile: string, keyFile: string): string {
  const a = statSync(certFile);
  const b = statSync(keyFile);
  return `${a.mtimeMs}:${a.size}:${a.ino}|${b.mtimeMs}:${b.size}:${b.ino}`;
}
