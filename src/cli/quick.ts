// Quick mode: `meshmedic proxy --listen HOST:PORT --upstream URL[,URL...]` → a validated Config, no file.
import { parseHostPort } from '../core/address.js';
import type { Validated } from '../core/errors.js';
import { applyEnvOverrides, validateConfig } from '../config/load.js';
import type { Config } from '../config/types.js';

export interface QuickFlags {
  listen?: string;
  upstream?: string;
  service?: string;
  admin?: string;
  policy?: string;
  'policy-file'?: string;
  xds?: string;
  gossip?: string;
  join?: string;
  'node-id'?: string;
  protocol?: string;
  'log-level'?: string;
  'audit-dir'?: string;
  workers?: string;
}

/** `--workers N|auto` as the proxy.workers value (anything else goes to validation, which names it). */
export function workersFlag(v: string): number | string {
  return /^[0-9]+$/.test(v) ? Number(v) : v;
}

export function quickConfig(flags: QuickFlags, env: NodeJS.ProcessEnv = {}): Validated<Config> {
  const errors: string[] = [];
  if (!flags.listen) errors.push('--listen HOST:PORT is required');
  if (!flags.upstream) errors.push('--upstream URL[,URL...] is required');
  if (errors.length) return { valid: false, errors };
  const service = flags.service ?? 'default';
  const endpoints = flags.upstream!.split(',').map((u) => u.trim()).filter(Boolean).map((u) => {
    const bad = upstreamUrlProblem(u);
    if (bad) {
      errors.push(`--upstream "${u}": ${bad}`);
      return { address: '0.0.0.0:1' };
    }
    const hp = parseHostPort(u);
    if (typeof hp === 'string') return { address: u }; // reported by validation, with its position
    return { address: hp.host.includes(':') ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}` };
  });
  if (endpoints.length === 0) errors.push('--upstream: no URL given');
  const doc: Record<string, unknown> = {
    // Quick mode sends every request to the one service, whatever its Host.
    outbound: { enabled: true, listen: flags.listen, defaultService: service },
    admin: flags.admin ? { enabled: true, listen: flags.admin } : { enabled: false },
    services: [{ name: service, endpoints, ...(flags.protocol ? { protocol: flags.protocol } : {}) }],
    healing: { ...(flags.policy ? { policy: flags.policy } : {}), ...(flags['policy-file'] !== undefined ? { policyFile: flags['policy-file'] } : {}) },
  };
  if (flags.xds) doc.xds = { enabled: true, listen: flags.xds };
  if (flags.gossip) doc.gossip = { enabled: true, listen: flags.gossip, join: flags.join ? flags.join.split(',').map((s) => s.trim()).filter(Boolean) : [] };
  else if (flags.join) errors.push('--join needs --gossip HOST:PORT');
  if (flags['node-id']) doc.node = { id: flags['node-id'] };
  if (flags.workers !== undefined) doc.proxy = { workers: workersFlag(flags.workers) };
  if (flags['log-level']) doc.log = { level: flags['log-level'] };
  if (flags['audit-dir'] !== undefined) {
    if (flags['audit-dir'] === '') errors.push('--audit-dir: give a directory');
    else doc.audit = { enabled: true, dir: flags['audit-dir'] };
  }
  if (errors.length) return { valid: false, errors };
  const withEnv = applyEnvOverrides(doc, env);
  if (!withEnv.valid) return withEnv;
  const v = validateConfig(withEnv.result);
  if (!v.valid) return { valid: false, errors: v.errors.map(flagName) };
  return v;
}

/** Name the flag behind a config path in quick-mode errors. */
function flagName(e: string): string {
  return e
    .replace(/^\/outbound\/listen/, '--listen')
    .replace(/^\/admin\/listen/, '--admin')
    .replace(/^\/healing\/policyFile/, '--policy-file')
    .replace(/^\/healing\/policy/, '--policy')
    .replace(/^\/xds\/listen/, '--xds')
    .replace(/^\/gossip\/listen/, '--gossip')
    .replace(/^\/gossip\/join\/(\d+)/, (_m, i: string) => `--join #${Number(i) + 1}`)
    .replace(/^\/services\/0\/name/, '--service')
    .replace(/^\/services\/0\/protocol/, '--protocol')
    .replace(/^\/services\/0\/endpoints\/(\d+)\/address/, (_m, i: string) => `--upstream #${Number(i) + 1}`)
    .replace(/^\/node\/id/, '--node-id')
    .replace(/^\/proxy\/workers/, '--workers')
    .replace(/^\/audit\/dir/, '--audit-dir');
}

/**
 * What is wrong with an --upstream URL that parseHostPort would accept by dropping part of it: a scheme
 * other than http (the proxy speaks plain HTTP/1 or h2c to endpoints), or a path, query or fragment
 * (requests keep their own path; an upstream's path would be silently ignored).
 */
export function upstreamUrlProblem(u: string): string | undefined {
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(u)?.[1]?.toLowerCase();
  if (scheme === undefined) return undefined;
  if (scheme !== 'http') return `scheme "${scheme}" is not supported: endpoints are reached over plain HTTP (http://HOST:PORT; for gRPC add --protocol h2c)`;
  let url: URL;
  try {
    url = new URL(u);
  } catch {
    return undefined; // parseHostPort reports it
  }
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash || u.replace(/^http:\/\/[^/?#]*/, '').length > 1) {
    return `the path "${u.replace(/^http:\/\/[^/?#]*/, '')}" would be ignored: requests keep their own path; give http://HOST:PORT only`;
  }
  if (url.username || url.password) return 'credentials in the URL are not supported';
  return undefined;
}
