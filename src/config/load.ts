// Loading and validation: YAML/JSON text + environment overrides → one frozen, typed Config.
// Every problem is collected and named by its path, its value and what was expected.
import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { isLoopbackHost, parseHostPort } from '../core/address.js';
import { parseSeed } from '../gossip/seeds.js';

/** Shortest admin token accepted when the admin API listens off loopback. */
export const MIN_ADMIN_TOKEN = 16;
import type { Validated } from '../core/errors.js';
import { deepFreeze } from '../core/freeze.js';

export { deepFreeze };
import { configSchema } from './schema.js';
import type { Config } from './types.js';

// The compiled validator is large (tens of MB of generated code and caches for the whole schema) and is
// needed only when a config is loaded: built on first use, dropped by releaseConfigValidator().
let compiled: ValidateFunction | undefined;
function validator(): ValidateFunction {
  return (compiled ??= new Ajv({ allErrors: true, useDefaults: true, strict: false, verbose: true }).compile(configSchema));
}

/** Let the compiled schema be collected (a running sidecar validates again only on a pod-annotation change). */
export function releaseConfigValidator(): void {
  compiled = undefined;
}

export const ENV_PREFIX = 'MESHMEDIC_';

/** Validate a parsed configuration value (defaults are filled in); never throws. */
export function validateConfig(input: unknown): Validated<Config> {
  const value = structuredClone(input ?? {});
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { valid: false, errors: [`/: expected a mapping (object) at the top level, got ${describe(value)}`] };
  }
  const validateSchema = validator();
  const schemaOk = validateSchema(value);
  const errors = schemaOk ? [] : (validateSchema.errors ?? []).map((e: ErrorObject) => formatAjvError(e, value));
  // Cross-field checks run even when the schema failed, so that one run reports every problem.
  try {
    errors.push(...semanticErrors(value as Config));
  } catch {
    // The structure is too broken for cross-field checks; the schema errors say why.
  }
  if (errors.length) return { valid: false, errors };
  return { valid: true, result: deepFreeze(value as Config) };
}

/** Parse YAML (or JSON) text; syntax errors become validation errors with line numbers. */
export function parseConfigText(text: string, source = 'config'): Validated<unknown> {
  try {
    const doc = parseYaml(text, { prettyErrors: true, uniqueKeys: true, maxAliasCount: 100 });
    return { valid: true, result: doc };
  } catch (err) {
    // The whole message: the parser's line and column, the offending line and a caret under the spot.
    return { valid: false, errors: [`${source}: ${(err as Error).message.trimEnd()}`] };
  }
}

/** Read and parse a YAML/JSON file (an empty file is an empty mapping); errors name the file. */
export function readConfigDocument(file: string): Validated<unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return { valid: false, errors: [`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`] };
  }
  const parsed = parseConfigText(text, file);
  return parsed.valid ? { valid: true, result: parsed.result ?? {} } : parsed;
}

/** Read a file, apply environment overrides, validate. */
export function loadConfigFile(file: string | undefined, env: NodeJS.ProcessEnv = process.env, base: unknown = {}): Validated<Config> {
  let doc: unknown = base;
  if (file) {
    const parsed = readConfigDocument(file);
    if (!parsed.valid) return parsed;
    doc = parsed.result;
  }
  const fromEnv = new Map<string, string>();
  const withEnv = applyEnvOverrides(doc, env, fromEnv);
  if (!withEnv.valid) return withEnv;
  const v = validateConfig(withEnv.result);
  if (v.valid || fromEnv.size === 0) return v;
  return { valid: false, errors: v.errors.map((e) => nameEnvSource(e, fromEnv)) };
}

/** An error about a value set by an environment variable names that variable. */
function nameEnvSource(error: string, fromEnv: ReadonlyMap<string, string>): string {
  let best = '';
  for (const pointer of fromEnv.keys()) {
    if ((error.startsWith(`${pointer}:`) || error.startsWith(`${pointer}/`)) && pointer.length > best.length) best = pointer;
  }
  if (!best) return error;
  const rest = error.slice(best.length);
  const sub = rest.startsWith('/') ? rest.slice(0, rest.indexOf(':')) : '';
  return `${best}${sub} (set by ${fromEnv.get(best)})${rest.slice(sub.length)}`;
}

/**
 * Environment overrides: `MESHMEDIC_<PATH>` where path segments are joined by `__` and matched to the
 * schema's keys case-insensitively, e.g. `MESHMEDIC_ADMIN__LISTEN=127.0.0.1:9000`,
 * `MESHMEDIC_PROXY__CONNECTTIMEOUTMS=500`. Values are parsed as YAML scalars (numbers, booleans, lists).
 */
export function applyEnvOverrides(doc: unknown, env: NodeJS.ProcessEnv, applied?: Map<string, string>): Validated<unknown> {
  const out = (typeof doc === 'object' && doc !== null ? structuredClone(doc) : {}) as Record<string, unknown>;
  const errors: string[] = [];
  for (const [key, raw] of Object.entries(env)) {
    if (!key.startsWith(ENV_PREFIX) || raw === undefined) continue;
    const parts = key.slice(ENV_PREFIX.length).split('__');
    let schema: SchemaNode | undefined = configSchema as SchemaNode;
    const path: string[] = [];
    for (const p of parts) {
      const props: Record<string, SchemaNode> | undefined = schema?.properties;
      const match: string | undefined = props ? Object.keys(props).find((k) => k.toLowerCase() === p.toLowerCase()) : undefined;
      if (!match) {
        schema = undefined;
        break;
      }
      path.push(match);
      schema = props![match];
    }
    if (!schema) {
      if (parts.length > 1 || KNOWN_TOP.has(parts[0]!.toLowerCase())) errors.push(`${key}: no configuration key matches this variable`);
      continue; // other MESHMEDIC_* variables (not config paths) are left alone
    }
    if (schema.type === 'object' || schema.type === 'array' && !raw.trim().startsWith('[')) {
      if (schema.type === 'object') {
        errors.push(`${key}: "${path.join('.')}" is a section; set one of its keys (${Object.keys(schema.properties ?? {}).join(', ')})`);
        continue;
      }
    }
    let value: unknown;
    try {
      value = schema.type === 'string' || schema.enum ? raw : parseYaml(raw);
    } catch {
      value = raw;
    }
    if (schema.type === 'array' && typeof value === 'string') value = value.split(',').map((s) => s.trim()).filter(Boolean);
    let cur = out;
    for (let i = 0; i < path.length - 1; i++) {
      const k = path[i]!;
      if (typeof cur[k] !== 'object' || cur[k] === null) cur[k] = {};
      cur = cur[k] as Record<string, unknown>;
    }
    cur[path[path.length - 1]!] = value;
    applied?.set(`/${path.join('/')}`, key);
  }
  return errors.length ? { valid: false, errors } : { valid: true, result: out };
}

interface SchemaNode {
  type?: string | readonly string[];
  enum?: readonly unknown[];
  properties?: Record<string, SchemaNode>;
}

const KNOWN_TOP = new Set(Object.keys(configSchema.properties).map((k) => k.toLowerCase()));

function semanticErrors(cfg: Config): string[] {
  const errors: string[] = [];
  const names = new Set<string>();
  if (cfg.healing.policy === 'learned' && !cfg.healing.policyFile) errors.push('/healing/policyFile: required by policy learned (a file written by meshmedic learn train), got nothing');
  cfg.services.forEach((s, i) => {
    if (names.has(s.name)) errors.push(`/services/${i}/name: duplicate service name "${s.name}"`);
    names.add(s.name);
    if (s.healing?.policy === 'learned' && !(s.healing.policyFile ?? cfg.healing.policyFile)) errors.push(`/services/${i}/healing/policyFile: required by policy learned (a file written by meshmedic learn train), got nothing`);
    const addrs = new Set<string>();
    s.endpoints.forEach((e, j) => {
      const hp = parseHostPort(e.address);
      if (typeof hp === 'string') errors.push(`/services/${i}/endpoints/${j}/address: ${hp}`);
      else {
        const key = `${hp.host}:${hp.port}`;
        if (addrs.has(key)) errors.push(`/services/${i}/endpoints/${j}/address: duplicate endpoint "${e.address}" in service "${s.name}"`);
        addrs.add(key);
      }
    });
  });
  const listens: [string, string, boolean][] = [
    ['/admin/listen', cfg.admin.listen, cfg.admin.enabled],
    ['/outbound/listen', cfg.outbound.listen, cfg.outbound.enabled],
    ['/inbound/listen', cfg.inbound.listen, cfg.inbound.enabled],
    ['/xds/listen', cfg.xds.listen, cfg.xds.enabled],
    ['/gossip/listen', cfg.gossip.listen, cfg.gossip.enabled],
  ];
  for (const [path, value] of listens) {
    const hp = parseHostPort(value, { allowPortZero: true });
    if (typeof hp === 'string') errors.push(`${path}: ${hp}`);
  }
  const used = new Map<string, string>();
  for (const [path, value, enabled] of listens) {
    if (!enabled || value.endsWith(':0')) continue;
    const other = used.get(value);
    if (other) errors.push(`${path}: "${value}" is already used by ${other}`);
    used.set(value, path);
  }
  if (cfg.admin.enabled && !cfg.admin.readOnly) {
    const hp = parseHostPort(cfg.admin.listen, { allowPortZero: true });
    if (typeof hp !== 'string' && !isLoopbackHost(hp.host) && cfg.admin.token.length < MIN_ADMIN_TOKEN) {
      errors.push(`/admin/token: the admin API listens off loopback (${cfg.admin.listen}) and admin.token is ${cfg.admin.token ? `only ${cfg.admin.token.length} characters long` : 'not set'}: set a token of at least ${MIN_ADMIN_TOKEN} characters (MESHMEDIC_ADMIN__TOKEN), or admin.readOnly: true`);
    }
  }
  cfg.gossip.join.forEach((j, i) => {
    const seed = parseSeed(j);
    if (typeof seed === 'string') errors.push(`/gossip/join/${i}: ${seed}`);
  });
  if (cfg.gossip.keysFile && (cfg.gossip.keys ?? []).length > 0) errors.push('/gossip/keysFile: set either gossip.keys or gossip.keysFile, not both');
  if (cfg.inbound.enabled) {
    const hp = parseHostPort(cfg.inbound.app, { allowHostname: false });
    if (typeof hp === 'string') errors.push(`/inbound/app: ${hp}`);
  }
  if (cfg.als.enabled && !cfg.xds.enabled) errors.push('/als/enabled: true needs /xds/enabled: true (the access-log service is served on the xDS port)');
  return errors;
}

function formatAjvError(e: ErrorObject, root: unknown): string {
  const path = e.instancePath || '/';
  const value = valueAt(root, e.instancePath);
  switch (e.keyword) {
    case 'additionalProperties':
      return `${joinPath(path, (e.params as { additionalProperty: string }).additionalProperty)}: unknown key (allowed here: ${allowedKeys(e)})`;
    case 'required':
      return `${joinPath(path, (e.params as { missingProperty: string }).missingProperty)}: required key is missing`;
    case 'enum':
      return `${path}: ${describe(value)} is not one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'type':
      return `${path}: expected ${(e.params as { type: string }).type}, got ${describe(value)}`;
    case 'pattern':
      return `${path}: ${describe(value)} does not match ${(e.params as { pattern: string }).pattern}${schemaDescription(e)}`;
    default:
      return `${path}: ${describe(value)} ${e.message ?? 'is invalid'}`;
  }
}

function allowedKeys(e: ErrorObject): string {
  const props = (e.parentSchema as SchemaNode | undefined)?.properties;
  return props ? Object.keys(props).join(', ') : 'none';
}

function schemaDescription(e: ErrorObject): string {
  const d = (e.parentSchema as { description?: string } | undefined)?.description;
  return d ? ` (${d})` : '';
}

function joinPath(base: string, key: string): string {
  return base === '/' ? `/${key}` : `${base}/${key}`;
}

function valueAt(root: unknown, pointer: string): unknown {
  if (!pointer) return root;
  let cur: unknown = root;
  for (const raw of pointer.split('/').slice(1)) {
    const k = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  const s = JSON.stringify(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

