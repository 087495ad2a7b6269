// A small Kubernetes API client on node:http(s) for the webhook's controllers and the sidecar's status
// patches: JSON in and out, bounded time and size, in-cluster service-account auth. The full
// @kubernetes/client-node costs ~70 MB of RSS, more than the webhook's whole memory limit.
import { request as httpRequest, type IncomingMessage } from 'node:http';
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
  /** Per-request deadline, ms (default 10 s). */
  readonly timeoutMs?: number;
}

export interface ApiAnswer {
  readonly status: number;
  /** Parsed JSON body (undefined when the body was empty or not JSON). */
  readonly body: unknown;
}

export interface KubeApi {
  readonly server: string;
  /** Send one request. Resolves with any HTTP status; rejects (MM_ERR_K8S_API) on network, timeout or size. */
  request(method: string, path: string, body?: unknown, contentType?: string): Promise<ApiAnswer>;
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

export function createKubeApi(target: ApiTarget): KubeApi {
  const url = new URL(target.server);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new MeshmedicError('MM_ERR_USAGE', `${target.server}: the API server URL must be https:// (or http:// to a loopback address)`);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const loopback = host === 'localhost' || host === '::1' || /^127\./.test(host);
  if (url.protocol === 'http:' && !loopback) throw new MeshmedicError('MM_ERR_USAGE', `${target.server}: plain http is allowed only to a loopback address (kubectl proxy); use https`);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  const timeoutMs = target.timeoutMs ?? 10_000;
  return {
    server: target.server,
    request(method, path, body, contentType = 'application/json') {
      return new Promise<ApiAnswer>((resolve, reject) => {
        const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
        const headers: Record<string, string> = { accept: 'application/json' };
        const token = target.token?.();
        if (token) headers.authorization = `Bearer ${token}`;
        if (payload) {
          headers['content-type'] = contentType;
          headers['content-length'] = String(payload.length);
        }
        const fail = (why: string) => reject(new MeshmedicError('MM_ERR_K8S_API', `${method} ${path.slice(0, 200)}: ${why}`));
        const req = send({ host, port, method, path, headers, agent: false, ...(target.ca ? { ca: target.ca } : {}), timeout: timeoutMs }, (res: IncomingMessage) => {
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
  };
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
 */
export async function* listAll(api: KubeApi, path: string, query: Record<string, string>, pageSize = 500, maxPages = 200): AsyncGenerator<unknown[]> {
  let token = '';
  for (let page = 0; page < maxPages; page++) {
    const q = new URLSearchParams({ ...query, limit: String(pageSize), ...(token ? { continue: token } : {}) });
    const answer = await api.request('GET', `${path}?${q}`);
    if (answer.status !== 200) throw new MeshmedicError('MM_ERR_K8S_API', `GET ${path}: ${describeFailure(answer)}`);
    const body = answer.body as { items?: unknown; metadata?: { continue?: unknown } } | undefined;
    if (!body || !Array.isArray(body.items)) throw new MeshmedicError('MM_ERR_K8S_API', `GET ${path}: the answer is not a list (no items array)`);
    yield body.items;
    const next = typeof body.metadata?.continue === 'string' ? body.metadata.continue : '';
    if (!next) return;
    if (next === token) throw new MeshmedicError('MM_ERR_K8S_API', `GET ${path}: the server repeated its continue token; list abandoned`);
    token = next;
  }
  throw new MeshmedicError('MM_ERR_K8S_API', `GET ${path}: more than ${maxPages} pages of ${pageSize}; list abandoned`);
}
