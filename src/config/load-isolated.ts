// Loads and validates the configuration of `meshmedic run` — and in a pod, the config its changed
// annotations give — in a short-lived child process: the validator (ajv, the YAML parser, the compiled
// schema and the memory compiling it leaves behind) never loads into the sidecar's own process
// (docs/kubernetes.md, "Memory budget"). A worker thread was measured and is worse: the memory its
// allocations leave in the C allocator stays with the process after it exits.
import { execFile } from 'node:child_process';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freezeSharingLeaves } from '../core/share.js';
import type { AnnotationsCheckRequest, AnnotationsCheckResult, RunConfigRequest, RunConfigResult } from './run-config.js';
import type { Config } from './types.js';

export type { AnnotationsCheckResult, RunConfigRequest, RunConfigResult };

/** Compiled: load-worker.js next to this file; from the sources (tests, under tsx): load-worker.ts. */
const ENTRY = fileURLToPath(new URL(`./load-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url));
const MAX_ANSWER_BYTES = 256 * 1024 * 1024;

export async function loadRunConfigIsolated(req: RunConfigRequest): Promise<RunConfigResult> {
  const { env, ...rest } = req;
  const answer = await ask<RunConfigResult>(rest, env as NodeJS.ProcessEnv, 'the configuration could not be loaded');
  // Frozen with equal leaf objects shared: 2,000 endpoints repeat the same locality and empty labels.
  if (answer.config.valid) freezeSharingLeaves(answer.config.result);
  return answer;
}

/** What a pod's annotations give over the running config (run-config.ts checkAnnotations), in the child. */
export async function checkAnnotationsIsolated(annotations: Readonly<Record<string, string>>, base: Config): Promise<AnnotationsCheckResult> {
  const req: AnnotationsCheckRequest = { kind: 'annotations', annotations, base };
  const answer = await ask<AnnotationsCheckResult>(req, process.env, 'the pod annotations could not be checked');
  if (answer.merged.valid) freezeSharingLeaves(answer.merged.result);
  return answer;
}

/** Run the configuration process on one request (JSON on its stdin) and parse its answer. */
function ask<T>(request: unknown, env: NodeJS.ProcessEnv, what: string): Promise<T> {
  // From the sources the child needs tsx's loader, as this process has it.
  const args = ENTRY.endsWith('.ts') ? [`--import=${import.meta.resolve('tsx')}`, ENTRY] : [ENTRY];
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { env, maxBuffer: MAX_ANSWER_BYTES, encoding: 'utf8' }, (err, stdout, stderr) => {
      let answer: T | undefined;
      try {
        answer = err ? undefined : (JSON.parse(stdout) as T);
      } catch { /* reported below */ }
      if (answer === undefined) return reject(new Error(`${what}: ${(err?.message ?? 'no answer from the configuration process').trim()}${stderr ? `: ${stderr.trim().slice(0, 2000)}` : ''}`));
      resolve(answer);
    }).stdin!.end(JSON.stringify(request));
  });
}
