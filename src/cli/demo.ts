// The demo mesh (npm start).
import { parseFlags, type CliIo } from './main.js';

export async function demoCommand(argv: string[], io: CliIo): Promise<number> {
  const p = parseFlags('demo', argv, { duration: { type: 'string' }, 'no-faults': { type: 'boolean' }, plain: { type: 'boolean' } }, io);
  if (p.code !== undefined) return p.code;
  io.err('meshmedic demo: not built yet\n');
  return 1;
}
