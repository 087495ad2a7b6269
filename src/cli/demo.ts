// The demo mesh (npm start).
import type { CliIo } from './main.js';

export async function demoCommand(_argv: string[], io: CliIo): Promise<number> {
  io.err('meshmedic demo: not built yet\n');
  return 1;
}
