// `meshmedic control`: the healing engine without a local proxy, for a mesh that already runs Envoy. It
// learns from Envoy's access-log stream (ALS) and pushes its decisions back over xDS, both on one port.
import { applyEnvOverrides, readConfigDocument, validateConfig } from '../config/load.js';
import type { Validated } from '../core/errors.js';
import type { Config } from '../config/types.js';
import { parseFlags, serve, type CliIo } from './main.js';


export interface ControlFlags {
  xds?: string;
  admin?: string;
  config?: string;
  policy?: string;
  'learn-endpoints'?: boolean;
  'log-level'?: string;
}

type Doc = Record<string, unknown>;
const section = (doc: Doc, key: string): Doc => (doc[key] && typeof doc[key] === 'object' && !Array.isArray(doc[key]) ? (doc[key] as Doc) : {});

/** The validated configuration of control mode: the file (if any), the flags on top, no proxy listeners. */
export function controlConfig(flags: ControlFlags, env: NodeJS.ProcessEnv = {}): Validated<Config> {
  if (!flags.xds) return { valid: false, errors: ['--xds HOST:PORT is required'] };
  let doc: Doc = {};
  if (flags.config) {
    const read = readConfigDocument(flags.config);
    if (!read.valid) return read;
    if (read.result !== null && read.result !== undefined) {
      if (typeof read.result !== 'object' || Array.isArray(read.result)) return { valid: false, errors: [`${flags.config}: the configuration must be a mapping`] };
      doc = { ...(read.result as Doc) };
    }
  }
  // No data plane here: Envoy is the proxy. xDS and ALS are what control mode is.
  doc.outbound = { ...section(doc, 'outbound'), enabled: false };
  doc.inbound = { ...section(doc, 'inbound'), enabled: false };
  doc.xds = { ...section(doc, 'xds'), enabled: true, listen: flags.xds };
  doc.als = { ...section(doc, 'als'), enabled: true, ...(flags['learn-endpoints'] ? { learnEndpoints: true } : {}) };
  if (flags.admin) doc.admin = { ...section(doc, 'admin'), enabled: true, listen: flags.admin };
  if (flags.policy) doc.healing = { ...section(doc, 'healing'), policy: flags.policy };
  if (flags['log-level']) doc.log = { ...section(doc, 'log'), level: flags['log-level'] };
  const withEnv = applyEnvOverrides(doc, env);
  if (!withEnv.valid) return withEnv;
  const v = validateConfig(withEnv.result);
  if (!v.valid) {
    return { valid: false, errors: v.errors.map((e) => e.replace(/^\/xds\/listen/, '--xds').replace(/^\/admin\/listen/, '--admin').replace(/^\/healing\/policy/, '--policy')) };
  }
  return v;
}

export async function controlCommand(argv: string[], io: CliIo): Promise<number> {
  const s = { type: 'string' } as const;
  const p = parseFlags('control', argv, { xds: s, admin: s, config: s, policy: s, 'learn-endpoints': { type: 'boolean' }, 'log-level': s }, io);
  if (p.code !== undefined) return p.code;
  const cfg = controlConfig(p.values as ControlFlags, io.env);
  if (!cfg.valid) {
    io.err(`meshmedic: invalid configuration (${p.values.config ?? 'flags'}):\n${cfg.errors.map((e) => `  - ${e}`).join('\n')}\n`);
    return 2;
  }
  return serve(cfg.result, io);
}
