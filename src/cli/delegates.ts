// Subcommands implemented by their own modules (simulator, webhook, Istio render), loaded on demand.
import type { CliIo } from './main.js';

export async function runDelegated(cmd: string, _argv: string[], io: CliIo): Promise<number> {
  io.err(`meshmedic ${cmd}: not available in this build yet\n`);
  return 1;
}
