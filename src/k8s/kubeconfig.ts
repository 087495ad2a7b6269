// A kubeconfig file → an API target for the small client (api.ts): the current context's cluster (server,
// CA, insecure-skip-tls-verify) and user (token, token file, client certificate, basic auth).
// Exec plugins and auth providers are refused with a clear error: they run programs.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { parse as parseYaml } from 'yaml';
import { MeshmedicError } from '../core/errors.js';
import type { ApiTarget } from './api.js';

type Named<T> = { name?: unknown; [k: string]: unknown } & Partial<Record<'cluster' | 'user' | 'context', T>>;

interface Cluster { server?: unknown; 'certificate-authority'?: unknown; 'certificate-authority-data'?: unknown; 'insecure-skip-tls-verify'?: unknown }
interface User {
  token?: unknown;
  tokenFile?: unknown;
  'client-certificate'?: unknown;
  'client-certificate-data'?: unknown;
  'client-key'?: unknown;
  'client-key-data'?: unknown;
  username?: unknown;
  password?: unknown;
  exec?: unknown;
  'auth-provider'?: unknown;
}

/**
 * The YAML parser, loaded on first use: discovery imports this module, and in a pod (in-cluster target, no
 * kubeconfig) the parser's ~70 modules would only sit in the sidecar's heap. The package's `node` export is
 * its CommonJS build, the same instance an `import` gets.
 */
let yamlParser: typeof parseYaml | undefined;
function yamlParse(): typeof parseYaml {
  return (yamlParser ??= (createRequire(import.meta.url)('yaml') as { parse: typeof parseYaml }).parse);
}

const fail = (file: string, why: string) => new MeshmedicError('MM_ERR_K8S_CONFIG', `kubeconfig ${file}: ${why}`);

/** Read `file` and build the target of its current context (or of `context`). */
export function kubeconfigTarget(file: string, context?: string): ApiTarget {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw fail(file, `cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  let doc: unknown;
  try {
    doc = yamlParse()(text);
  } catch (err) {
    throw fail(file, `is not YAML (${(err as Error).message.split('\n')[0]})`);
  }
  if (typeof doc !== 'object' || doc === null) throw fail(file, 'is not a mapping');
  const d = doc as Record<string, unknown>;
  const current = context ?? d['current-context'];
  if (typeof current !== 'string' || current === '') throw fail(file, 'has no current-context');
  const find = <T>(list: string, name: unknown, key: 'cluster' | 'user' | 'context'): T => {
    const entries = Array.isArray(d[list]) ? (d[list] as Named<T>[]) : [];
    const hit = entries.find((e) => e?.name === name);
    if (!hit || typeof hit[key] !== 'object' || hit[key] === null) throw fail(file, `${list}: no entry named ${JSON.stringify(name)}`);
    return hit[key] as T;
  };
  const ctx = find<{ cluster?: unknown; user?: unknown }>('contexts', current, 'context');
  const cluster = find<Cluster>('clusters', ctx.cluster, 'cluster');
  const user: User = ctx.user === undefined || ctx.user === '' ? {} : find<User>('users', ctx.user, 'user');
  if (typeof cluster.server !== 'string' || cluster.server === '') throw fail(file, `cluster ${JSON.stringify(ctx.cluster)} has no server`);
  if (user.exec !== undefined) throw fail(file, `user ${JSON.stringify(ctx.user)} authenticates with an exec plugin, which meshmedic does not run; use a token, a token file or a client certificate`);
  if (user['auth-provider'] !== undefined) throw fail(file, `user ${JSON.stringify(ctx.user)} uses an auth-provider, which meshmedic does not support; use a token, a token file or a client certificate`);
  const dir = path.dirname(file);
  // Data fields are base64 PEM; file fields are relative to the kubeconfig's directory.
  const pem = (data: unknown, fileField: unknown, what: string): Buffer | undefined => {
    if (typeof data === 'string' && data !== '') return Buffer.from(data, 'base64');
    if (typeof fileField === 'string' && fileField !== '') {
      try {
        return readFileSync(path.resolve(dir, fileField));
      } catch (err) {
        throw fail(file, `${what} ${fileField} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
      }
    }
    return undefined;
  };
  const ca = pem(cluster['certificate-authority-data'], cluster['certificate-authority'], 'certificate-authority');
  const cert = pem(user['client-certificate-data'], user['client-certificate'], 'client-certificate');
  const key = pem(user['client-key-data'], user['client-key'], 'client-key');
  if ((cert === undefined) !== (key === undefined)) throw fail(file, `user ${JSON.stringify(ctx.user)} has a client certificate without its key, or a key without its certificate`);
  const tokenFile = typeof user.tokenFile === 'string' && user.tokenFile !== '' ? path.resolve(dir, user.tokenFile) : undefined;
  const token = typeof user.token === 'string' && user.token !== '' ? user.token : undefined;
  const basic = typeof user.username === 'string' && typeof user.password === 'string' ? { username: user.username, password: user.password } : undefined;
  return {
    server: cluster.server,
    ...(token !== undefined ? { token: () => token } : tokenFile !== undefined ? { token: () => readToken(tokenFile) } : {}),
    ...(ca ? { ca } : {}),
    ...(cert && key ? { cert, key } : {}),
    ...(basic ? { basic } : {}),
    ...(cluster['insecure-skip-tls-verify'] === true ? { insecureSkipTlsVerify: true } : {}),
  };
}

/** A token file is re-read on every request (rotated tokens); unreadable = no token (the API answers 401). */
function readToken(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}
