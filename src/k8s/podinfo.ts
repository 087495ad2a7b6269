// The sidecar's configuration inside a pod: the mesh config file, environment overrides and the pod's
// annotations (read by downward.ts), validated. Runs in the configuration process (config/load-isolated.ts).
import { readFileSync } from 'node:fs';
import { loadConfigFile, validateConfig, parseConfigText } from '../config/load.js';
import type { Validated } from '../core/errors.js';
import type { Config } from '../config/types.js';
import { annotationsToConfigPatch, mergeConfigPatch } from './annotations.js';
import { parseDownwardAnnotations, readText } from './downward.js';

export { parseDownwardAnnotations, unquoteGo, formatDownwardAnnotations, quoteGo, watchAnnotationsFile, type ParsedAnnotations, type AnnotationsWatcher, type WatchOptions } from './downward.js';

export interface SidecarConfigResult {
  readonly config: Validated<Config>;
  /** Annotation warnings (bad values dropped, defaults kept). */
  readonly warnings: readonly string[];
}

/**
 * The sidecar's configuration inside a pod: the mesh config file (optional: a missing file means
 * defaults), environment overrides, then the pod's `meshmedic.io/*` annotations on top. Annotations
 * that fail the schema are dropped with a warning; they never stop the sidecar.
 */
export function loadSidecarConfig(opts: { configFile?: string; annotationsFile?: string; env?: NodeJS.ProcessEnv }): SidecarConfigResult {
  const env = opts.env ?? process.env;
  let baseDoc: unknown = {};
  if (opts.configFile) {
    let text: string | undefined;
    try {
      text = readFileSync(opts.configFile, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return { config: loadConfigFile(opts.configFile, env), warnings: [] };
    }
    if (text !== undefined) {
      const parsed = parseConfigText(text, opts.configFile);
      if (!parsed.valid) return { config: parsed, warnings: [] };
      baseDoc = parsed.result ?? {};
    }
  }
  const withEnv = loadConfigFile(undefined, env, baseDoc);
  if (!withEnv.valid || !opts.annotationsFile) return { config: withEnv, warnings: [] };
  const { annotations, errors } = parseDownwardAnnotations(readText(opts.annotationsFile));
  const res = annotationsToConfigPatch(annotations, withEnv.result);
  return { config: validateConfig(mergeConfigPatch(withEnv.result, res.patch)), warnings: [...errors, ...res.warnings] };
}
