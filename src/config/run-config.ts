// The configuration of `meshmedic run`: the file (or, in a pod, the mounted file and the pod's
// annotations), environment overrides and --workers, validated. Runs in the configuration worker
// (load-isolated.ts), so the validator stays out of the sidecar's own heap.
import { workersFlag } from '../cli/quick.js';
import type { Validated } from '../core/errors.js';
import { loadSidecarConfig } from '../k8s/podinfo.js';
import { annotationsToConfigPatch, mergeConfigPatch, type AnnotationResult } from '../k8s/annotations.js';
import { loadConfigFile, validateConfig } from './load.js';
import type { Config } from './types.js';

export interface RunConfigRequest {
  readonly configFile?: string;
  /** In a pod: the downward-API annotations file; the config file is then optional. */
  readonly annotationsFile?: string;
  /** The --workers flag as given. */
  readonly workers?: string;
  readonly env: Readonly<Record<string, string | undefined>>;
}

export interface RunConfigResult {
  readonly config: Validated<Config>;
  /** Annotations ignored (each names the annotation and why). */
  readonly warnings: readonly string[];
  /** What the errors are about: the file, the annotations file or --workers. */
  readonly source: string;
}

export function loadRunConfig(req: RunConfigRequest): RunConfigResult {
  const env = req.env as NodeJS.ProcessEnv;
  let source = req.configFile ?? req.annotationsFile ?? '';
  let warnings: readonly string[] = [];
  let cfg: Validated<Config>;
  if (req.annotationsFile) {
    const loaded = loadSidecarConfig({ configFile: req.configFile, annotationsFile: req.annotationsFile, env });
    warnings = loaded.warnings;
    cfg = loaded.config;
  } else {
    cfg = loadConfigFile(req.configFile!, env);
  }
  if (cfg.valid && req.workers !== undefined) {
    source = '--workers';
    cfg = validateConfig({ ...structuredClone(cfg.result), proxy: { ...structuredClone(cfg.result.proxy), workers: workersFlag(req.workers) } });
    if (!cfg.valid) cfg = { valid: false, errors: cfg.errors.map((e) => e.replace(/^\/proxy\/workers/, '--workers')) };
  }
  return { config: cfg, warnings, source };
}

/** A pod's annotations changed: what they give over the running config (live tuning, src/k8s/component.ts). */
export interface AnnotationsCheckRequest {
  readonly kind: 'annotations';
  readonly annotations: Readonly<Record<string, string>>;
  /** The running config. */
  readonly base: Config;
}

export interface AnnotationsCheckResult {
  /** The patch, what it applies and the annotations it ignored (annotationsToConfigPatch). */
  readonly annotations: AnnotationResult;
  /** The running config with the patch, validated. */
  readonly merged: Validated<Config>;
}

export function checkAnnotations(req: AnnotationsCheckRequest): AnnotationsCheckResult {
  const annotations = annotationsToConfigPatch(req.annotations, req.base);
  return { annotations, merged: validateConfig(mergeConfigPatch(req.base, annotations.patch)) };
}
