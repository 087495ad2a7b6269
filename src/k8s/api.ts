// A small Kubernetes API client on node:http(s) for the webhook's controllers, the sidecar's status
// patches and discovery's list+watch: JSON in and out, bounded time and size, in-cluster service-account
// or kubeconfig auth. The full @kubernetes/client-node costs ~56–70 MB of RSS in every pod.
import type { IncomingMessage } from 'node:http';
import { nodeHttp } from '../runtime/node-http.js';
import { request as httpsRequest } from 'node:https';
import { readFileSync } from 'node:fs';
import { MeshmedicError } from '../core/errors.js';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** A list page of 500 pods is a few MB; anything far larger is not an answer we asked for. */
export const MAX_RESPONSE_BYTES = 32 * 1024 * 1024;

export interface ApiTarget {
  /** https://host:port, or http://127.0.0.1:port (kubectl proxy, tests): plain http only to loopback. */
  readonly server: string;
  /** Read on every request: projected service-account tokens are rotated by the kubelet. */
  readonly token?: () => string | undefined;
  /** CA bundle (PEM) for an https server. */
  readonly ca?: Buffer;
  /** Client certificate and key (PEM), for kubeconfig users authenticated by certificate. */
  readonly cert?: Buffer;
  readonly key?: Buffer;
  /** HTTP basic credentials (a kubeconfig's username/password), when there is no token. */
  readonly basic?: { readonly username: string; readonly password: string };
  /** Do not verify the server's certificate (a kubeconfig's insecure-skip-tls-verify). */
  readonly insecureSkipTlsVerify?: boolean;
  /** Per-request deadline, ms (default 10 s). */
  readonly timeoutMs?: number;
}

export interface ApiAnswer {
  readonly status: number;
  /** Parsed JSON body (undefined when the body was empty or not JSON). */
  readonly body: unknown;
}

/** How a watch stream ended. */
export type WatchEnd =
  /** The server closed a 200 stream (its timeout, or after an ERROR event). */
  | { readonly kind: 'closed' }
  /** The server answered with an error status instead of a stream. */
  | { readonly kind: 'status'; readonly answer: ApiAnswer }
  /** abort() was called. */
  | { readonly kind: 'aborted' };

export interface WatchStream {
  /** Resolves when the stream ends; rejects (MM_ERR_K8S_API) on network errors or a line that is not JSON. */
  readonly done: Promise<WatchEnd>;
  abort(): void;
}

export interface KubeApi {
  readonly server: string;
  /** Send one request. Resolves with any HTTP status; rejects (MM_ERR_K8S_API) on network, timeout or size. */
  request(method: string, path: string, body?: unknown, contentType?: string): Promise<ApiAnswer>;
}

/** The client with watches (discovery's list+watch). */
export interface KubeWatchApi extends KubeApi {
  /**
   * GET a watch (newline-delimited JSON events) and hand each event to `onEvent` as it arrives. The
   * request deadline covers the answer's headers only; a watch then runs until the server, abort() or
   * an error ends it. A line longer than MAX_RESPONSE_BYTES ends it with an error.
   */
  watch(path: string, onEvent: (event: unknown) => void): WatchStream;
}

/** The in-cluster target: KUBERNETES_SERVICE_HOST/PORT and the mounted service-account token and CA. */
export function inClusterTarget(env: NodeJS.ProcessEnv = process.env, dir = SERVICE_ACCOUNT_DIR): ApiTarget | undefined {
  const host = env.KUBERNETES_SERVICE_HOST;
  if (!host) return undefined;
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  let ca: Buffer | undefined;
  try {
    ca = readFileSync(`${dir}/ca.crt`);
  } catch {
    ca = undefined; // the system CAs are tried; the TLS error will say so
  }
  return {
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    token: () => {
      try {
        return readFileSync(`${dir}/token`, 'utf8').trim();
      } catch {
        return undefined;
      }
    },
    ...(ca ? { ca } : {}),
  };
}

export function createKubeApi(target: ApiTarget): KubeWatchApi {
  const url = new URL(target.server);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new MeshmedicError('MM_ERR_USAGE', `${target.server}: the API server URL must be https:// (or http:// to a loopback address)`);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const loopback = host === 'localhost' || host === '::1' || /^127\./.test(host);
  if (url.protocol === 'http:' && !loopback) throw new MeshmedicError('MM_ERR_USAGE', `${target.server}: plain http is allowed only to a loopback address (kubectl proxy); use https`);
  const send = url.protocol === 'https:' ? httpsRequest : nodeHttp.request;
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  const timeoutMs = target.timeoutMs ?? 10_000;
  const tls = {
    ...(target.ca ? { ca: target.ca } : {}),
    ...(target.cert && target.key ? { cert: target.cert, key: target.key } : {}),
    ...(target.insecureSkipTlsVerify ? { rejectUnauthorized: false } : {}),
  };
  const headersFor = (): Record<string, string> => {
    const headers: Record<string, string> = { accept: 'application/json' };
    const token = target.token?.();
    if (token) headers.authorization = `Bearer ${token}`;
    else if (target.basic) headers.authorization = `Basic ${Buffer.from(`${target.basic.username}:${target.basic.password}`).toString('base64')}`;
    return headers;
  };
  return {
    server: target.server,
    request(method, path, body, contentType = 'application/json') {
      return new Promise<ApiAnswer>((resolve, reject) => {
        const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
        const headers = headersFor();
        if (payload) {
          headers['content-type'] = contentType;
          headers['content-length'] = String(payload.length);
        }
        const fail = (why: string) => reject(new MeshmedicError('MM_ERR_K8S_API', `${method} ${path.slice(0, 200)}: ${why}`));
        const req = send({ host, port, method, path, headers, agent: false, ...tls, timeout: timeoutMs }, (res: IncomingMessage) => {
          readAnswer(res, req, fail, resolve);
        });
        // A whole-request deadline, not only an idle one: a server trickling bytes must not hold a scan.
        const deadline = setTimeout(() => {
          req.destroy();
          fail(`no answer within ${timeoutMs} ms`);
        }, timeoutMs);
        deadline.unref();
        req.on('close', () => clearTimeout(deadline));
        req.on('timeout', () => {
          req.destroy();
          fail(`no answer within ${timeoutMs} ms`);
        });
        req.on('error', (err: NodeJS.ErrnoException) => fail(err.code ?? err.message));
        req.end(payload);
      });
    },
    watch(path, onEvent) {
      let aborted = false;
      let abort = () => {};
      const done = new Promise<WatchEnd>((resolve, reject) => {
        let settled = false;
        const finish = (end: WatchEnd | Error) => {
          if (settled) return;
          settled = true;
          clearTimeout(deadline);
          if (end instanceof Error) reject(end);
          else resolve(end);
        };
        const fail = (why: string) => finish(new MeshmedicError('MM_ERR_K8S_API', `watch ${path.slice(0, 200)}: ${why}`));
        const req = send({ host, port, method: 'GET', path, headers: headersFor(), agent: false, ...tls }, (res: IncomingMessage) => {
          clearTimeout(deadline);
          if (res.statusCode !== 200) {
            readAnswer(res, req, fail, (answer) => finish({ kind: 'status', answer }));
            return;
          }
          res.setEncoding('utf8');
          let buffered = '';
          res.on('data', (chunk: string) => {
            buffered += chunk;
            let nl: number;
            while ((nl = buffered.indexOf('\n')) >= 0) {
              const line = buffered.slice(0, nl).trim();
              buffered = buffered.slice(nl + 1);
              if (line === '' || settled) continue;
              let event: unknown;
              try {
                event = JSON.parse(line);
              } catch {
                req.destroy();
                fail(`an event is not JSON: ${line.slice(0, 80)}`);
                return;
              }
              onEvent(event);
            }
            if (buffered.length > MAX_RESPONSE_BYTES) {
              req.destroy();
              fail(`an event exceeds ${MAX_RESPONSE_BYTES} bytes`);
            }
          });
          res.on('end', () => finish({ kind: 'closed' }));
          res.on('error', (err) => fail(err.message));
          res.on('close', () => finish(aborted ? { kind: 'aborted' } : { kind: 'closed' }));
        });
        const deadline = setTimeout(() => {
          req.destroy();
          fail(`no answer within ${timeoutMs} ms`);
        }, timeoutMs);
        deadline.unref();
        req.on('error', (err: NodeJS.ErrnoException) => (aborted ? finish({ kind: 'aborted' }) : fail(err.code ?? err.message)));
        req.end();
        abort = () => {
          aborted = true;
          req.destroy();
          finish({ kind: 'aborted' });
        };
      });
      return { done, abort: () => abort() };
    },
  };
}

/** Read a whole (bounded) JSON answer. */
function readAnswer(res: IncomingMessage, req: { destroy(): void }, fail: (why: string) => void, resolve: (a: ApiAnswer) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  res.on('data', (c: Buffer) => {
    size += c.length;
    if (size > MAX_RESPONSE_BYTES) {
      req.destroy();
      fail(`the answer exceeds ${MAX_RESPONSE_BYTES} bytes`);
      return;
    }
    chunks.push(c);
  });
  res.on('end', () => {
    const text = Buffer.concat(chunks).toString('utf8');
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    resolve({ status: res.statusCode ?? 0, body: parsed });
  });
  res.on('error', (err) => fail(err.message));
}

/** The message of a Kubernetes Status body, or the HTTP status alone, for logs. */
export function describeFailure(answer: ApiAnswer): string {
  const b = answer.body as { message?: unknown; reason?: unknown } | undefined;
  const message = typeof b?.message === 'string' ? b.message.slice(0, 200) : '';
  const reason = typeof b?.reason === 'string' ? ` ${b.reason}` : '';
  return `HTTP ${answer.status}${reason}${message ? `: ${message}` : ''}`;
}

/**
 * Every item of a list, page by page (`limit` + `continue`), so a large cluster is never read in one
 * answer. Bounded: at most maxPages pages; a page that repeats its continue token ends the walk.
 * Returns (as the generator's return value) the list's resourceVersion, from which a watch resumes.
 */
export async function* listAll(api: KubeApi, path: string, query: Record<string, string>, pageSize = 500, maxPages = 200): AsyncGenerator<unknown[], string> {
  let token = '';
  for (let page = 0; page < maxPages; page++) {
    const q = new URLSearchParams({ ...query, limit: String(pageSize), ...(token ? { continue: token } : {}) });
    const answer = await api.request('GET', `${path}?${q}`);
    if (answer.status !== 200) throw new MeshmedicError('MM_ERR_K8S_API', `GET ${path}: ${describeFailure(answer)}`);
    const body = answer.body as { items?: unknown; metadata?: { continue?: unknown; resourceVersion?: unknown } } | undefined;
    if (!body || !Array.isArray(body.items)) throw new MeshmedicError('MM_ERR_K8S_API', `GET ${path}: the answer is not a list (no items array)`);
    yield body.items;
    const next = typeof body.metadata?.continue === 'string' ? body.metadata.continue : '';
    if (!next) return typeof body.metadata?.resourceVersion === 'string' ? body.metadata.resourceVersion : '';
    if (next === token) throw new MeshmedicError('MM_ERR_K8S_API', `GET ${path}: the server repeated its continue token; list abandoned`);
    token = next;
  }
  throw new MeshmedicError('MM_ERR_K8S_API', `GET ${path}: more than ${maxPages} pages of ${pageSize}; list abandoned`);
}
