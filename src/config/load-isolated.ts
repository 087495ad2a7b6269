// Loads and validates the configuration of `meshmedic run` in a short-lived child process: the validator
// (ajv, the YAML parser, the compiled schema and the memory compiling it leaves behind) never loads into
// the sidecar's own process (docs/kubernetes.md, "Memory budget"). A worker thread was measured and is
// worse: the memory its allocations leave in the C allocator stays with the process after it exits.
import { execFile } from 'node:child_process';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deepFreeze } from '../core/freeze.js';
import type { RunConfigRequest, RunConfigResult } from './run-config.js';

export type { RunConfigRequest, RunConfigResult };

/** Compiled: load-worker.js next to this file; from the sources (tests, under tsx): load-worker.ts. */
const ENTRY = fileURLToPath(new URL(`./load-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url));
const MAX_ANSWER_BYTES = 256 * 1024 * 1024;

export function loadRunConfigIsolated(req: RunConfigRequest): Promise<RunConfigResult> {
  // From the sources the child needs tsx's loader, as this process has it.
  const args = ENTRY.endsWith('.ts') ? [`--import=${import.meta.resolve('tsx')}`, ENTRY] : [ENTRY];
  const { env, ...rest } = req;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { env: env as NodeJS.ProcessEnv, maxBuffer: MAX_ANSWER_BYTES, encoding: 'utf8' }, (err, stdout, stderr) => {
      let answer: RunConfigResult | undefined;
      try {
        answer = err ? undefined : (JSON.parse(stdout) as RunConfigResult);
      } catch { /* reported below */ }
      if (!answer) return reject(new Error(`the configuration could not be loaded: ${(err?.message ?? 'no answer from the configuration process').trim()}${stderr ? `: ${stderr.trim().slice(0, 2000)}` : ''}`));
      if (answer.config.valid) deepFreeze(answer.config.result);
      resolve(answer);
    }).stdin!.end(JSON.stringify(rest));
  });
}
