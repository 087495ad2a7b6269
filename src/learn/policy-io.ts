// Reading and writing learned policy files: the adapter between the file system and the pure format of
// ./policy-file.ts. A file that cannot be used raises MM_ERR_LEARN_POLICY naming the file and the problem.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { MeshmedicError } from '../core/errors.js';
import { modelOf, parsePolicy, serializePolicy, type PolicyDocument } from './policy-file.js';
import type { LearnedModel } from './learned-policy.js';

/** Largest policy file read (the default layout is about 30 KB). */
const MAX_BYTES = 4 * 1024 * 1024;

export function readPolicyFile(file: string): PolicyDocument {
  let text: string;
  try {
    const buf = readFileSync(file);
    if (buf.length > MAX_BYTES) throw new Error(`${buf.length} bytes, more than the ${MAX_BYTES} a policy file may have`);
    text = buf.toString('utf8');
  } catch (err) {
    throw new MeshmedicError('MM_ERR_LEARN_POLICY', `learned policy file ${file}: cannot be read: ${(err as Error).message}`);
  }
  const v = parsePolicy(text);
  if (!v.valid) throw new MeshmedicError('MM_ERR_LEARN_POLICY', `learned policy file ${file}: ${v.errors.join('; ')}`, v.errors);
  return v.result;
}

export function loadPolicyFile(file: string): LearnedModel {
  return modelOf(readPolicyFile(file));
}

/** Write atomically (a temporary file renamed over the target): a reader never sees half a policy. */
export function writePolicyFile(file: string, doc: PolicyDocument): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, serializePolicy(doc));
  renameSync(tmp, file);
}
