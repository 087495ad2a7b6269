// The configuration process's entry (load-isolated.ts): reads the request on stdin, validates with the
// environment it was started with, writes the answer as JSON on stdout and exits.
import { readFileSync } from 'node:fs';
import { checkAnnotations, loadRunConfig, type AnnotationsCheckRequest, type RunConfigRequest } from './run-config.js';

const req = JSON.parse(readFileSync(0, 'utf8')) as Omit<RunConfigRequest, 'env'> | AnnotationsCheckRequest;
process.stdout.write(JSON.stringify('kind' in req && req.kind === 'annotations' ? checkAnnotations(req) : loadRunConfig({ ...(req as Omit<RunConfigRequest, 'env'>), env: process.env })));
