// `meshmedic webhook`: argument parsing and lifecycle of the injection webhook. Exit codes follow the
// CLI contract: 0 stopped cleanly, 1 runtime error, 2 usage or configuration error.
import { parseArgs } from 'node:util';
import { createLogger, type LogLevel } from '../core/log.js';
import { MeshmedicError } from '../core/errors.js';
import { loadInjectorConfig } from './injector-config.js';
import { startWebhook } from './webhook.js';

export const WEBHOOK_USAGE = `Usage: meshmedic webhook --listen HOST:PORT --tls-cert FILE --tls-key FILE [--config FILE] [--log-level LEVEL]

Runs the sidecar injection webhook (AdmissionReview v1 over HTTPS).
  POST /inject            pods in namespaces labelled meshmedic.io/inject=true (or =enabled)
  POST /inject/pod        pods labelled meshmedic.io/inject=true in namespaces without that label
  POST /inject/annotated  deprecated (old registrations): pods annotated meshmedic.io/inject: "true"
  GET  /healthz           liveness/readiness
  GET  /metrics           Prometheus metrics of the webhook
A pod labelled or annotated meshmedic.io/inject: "false" is never injected.

Options:
  --listen HOST:PORT   address to listen on (IP literal; default 0.0.0.0:17443)
  --tls-cert FILE      PEM certificate (reloaded when the file changes)
  --tls-key FILE       PEM private key
  --config FILE        injector settings (YAML/JSON; see docs/kubernetes.md)
  --log-level LEVEL    debug | info | warn | error (default info)
  -h, --help           show this help
`;

export interface CliIo {
  readonly out: (s: string) => void;
  readonly err: (s: string) => void;
  /** Resolves when the process is asked to stop (SIGTERM/SIGINT by default). */
  readonly stopSignal?: Promise<unknown>;
}

export async function runWebhookCli(argv: readonly string[], io: CliIo = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) }): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        listen: { type: 'string', default: '0.0.0.0:17443' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        config: { type: 'string' },
        'log-level': { type: 'string', default: 'info' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    io.err(`meshmedic webhook: ${(err as Error).message}\n\n${WEBHOOK_USAGE}`);
    return 2;
  }
  if (values.help) {
    io.out(WEBHOOK_USAGE);
    return 0;
  }
  const problems: string[] = [];
  if (!values['tls-cert']) problems.push('--tls-cert FILE is required');
  if (!values['tls-key']) problems.push('--tls-key FILE is required');
  const level = String(values['log-level']);
  if (!['debug', 'info', 'warn', 'error', 'silent'].includes(level)) problems.push(`--log-level ${level} is not one of debug, info, warn, error, silent`);
  if (problems.length) {
    io.err(`meshmedic webhook: ${problems.join('; ')}\n\n${WEBHOOK_USAGE}`);
    return 2;
  }
  const cfg = loadInjectorConfig(values.config as string | undefined);
  if (!cfg.valid) {
    io.err(`meshmedic webhook: invalid configuration:\n${cfg.errors.map((e) => `  ${e}`).join('\n')}\n`);
    return 2;
  }
  const log = createLogger(level as LogLevel, io.err).child({ component: 'webhook' });
  let server;
  try {
    server = await startWebhook({ listen: String(values.listen), tlsCert: String(values['tls-cert']), tlsKey: String(values['tls-key']), config: cfg.result, log });
  } catch (err) {
    if (err instanceof MeshmedicError && (err.code === 'MM_ERR_USAGE' || err.code === 'MM_ERR_ADDRESS')) {
      io.err(`meshmedic webhook: ${err.message}\n`);
      return 2;
    }
    io.err(`meshmedic webhook: cannot start: ${(err as Error).message}\n`);
    return 1;
  }
  await (io.stopSignal ?? signalled());
  log.info('stopping');
  await server.close();
  return 0;
}

function signalled(): Promise<string> {
  return new Promise((resolve) => {
    const on = (sig: string) => {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      resolve(sig);
    };
    const onTerm = () => on('SIGTERM');
    const onInt = () => on('SIGINT');
    process.once('SIGTERM', onTerm);
    process.once('SIGINT', onInt);
  });
}
