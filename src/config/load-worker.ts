// The configuration process's entry (load-isolated.ts): reads the request on stdin, validates with the
// environment it was started with, writes the answer as JSON on stdout and exits.
import { readFileSync } from 'node:fs';
import { loadRunConfig, type RunConfigRequest } from './run-config.js';

const req = JSON.parse(readFileSync(0, 'utf8')) as Omit<RunConfigRequest, 'env'>;
process.stdout.write(JSON.stringify(loadRunConfig({ ...req, env: process.env })));
