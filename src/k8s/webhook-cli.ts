// `meshmedic webhook`: argument parsing and lifecycle of the injection webhook. Exit codes follow the
// CLI contract: 0 stopped cleanly, 1 runtime error, 2 usage or configuration error.
import { parseArgs } from 'node:util';
import { createLogger, type LogLevel } from '../core/log.js';
import { MeshmedicError } from '../core/errors.js';
import { CONTROL_NAMESPACE, loadInjectorConfig } from './injector-config.js';
import { startWebhook } from './webhook.js';
import { parseDurationMs } from './annotations.js';
import { createKubeApi, inClusterTarget, type ApiTarget } from './api.js';
import { DEFAULT_SCAN_INTERVAL_MS, startMissingSidecarWatch, type MissingSidecarWatch } from './missing-sidecars.js';

export const WEBHOOK_USAGE = `Usage: meshmedic webhook --listen HOST:PORT --tls-cert FILE --tls-key FILE [--config FILE]
                         [--missing-sidecar-interval DURATION] [--kube-api URL] [--log-level LEVEL]

Runs the sidecar injection webhook (AdmissionReview v1 over HTTPS).
  POST /inject            pods in namespaces labelled meshmedic.io/inject=true (or =enabled)
  POST /inject/pod        pods labelled meshmedic.io/inject=true in namespaces without that label
  POST /inject/annotated  deprecated (old registrations): pods annotated meshmedic.io/inject: "true"
  GET  /healthz           liveness/readiness
  GET  /metrics           Prometheus metrics of the webhook
A pod labelled or annotated meshmedic.io/inject: "false" is never injected.

In a cluster, it also looks for opted-in pods running without the sidecar (started while the webhook
was unreachable: it fails open) and reports each once: a warning log line, a Kubernetes Event
(reason MeshmedicSidecarMissing) on the pod, and the gauge meshmedic_webhook_pods_missing_sidecar.

Options:
  --listen HOST:PORT   address to listen on (IP literal; default 0.0.0.0:17443)
  --tls-cert FILE      PEM certificate (reloaded when the file changes)
  --tls-key FILE       PEM private key
  --config FILE        injector settings (YAML/JSON; see docs/kubernetes.md)
  --missing-sidecar-interval DURATION
                       pause between scans for pods missing the sidecar (default 60s; at least 1s;
                       0 turns the scan off). Needs list on pods and namespaces, create on events.
  --kube-api URL       API server for the scan (default: in-cluster service account; http:// only to
                       a loopback address, such as kubectl proxy)
  --log-level LEVEL    debug | info | warn | error (default info)
  -h, --help           show this help
`;

export interface CliIo {
  readonly out: (s: string) => void;
  readonly err: (s: string) => void;
  /** Resolves when the process is asked to stop (SIGTERM/SIGINT by default). */
  readonly stopSignal?: Promise<unknown>;
  /** The environment (in-cluster detection, POD_NAME, POD_NAMESPACE); default process.env. */
  readonly env?: NodeJS.ProcessEnv;
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
        'missing-sidecar-interval': { type: 'string', default: `${DEFAULT_SCAN_INTERVAL_MS / 1000}s` },
        'kube-api': { type: 'string' },
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
  const rawInterval = String(values['missing-sidecar-interval']);
  const intervalMs = parseDurationMs(rawInterval);
  if (intervalMs === undefined || (intervalMs !== 0 && intervalMs < 1000)) problems.push(`--missing-sidecar-interval ${JSON.stringify(rawInterval)} is not 0 or a duration of at least 1s (such as 30s, 5m)`);
  let target: ApiTarget | undefined;
  if (values['kube-api'] !== undefined) {
    try {
      target = { server: String(values['kube-api']) };
      createKubeApi(target);
    } catch (err) {
      problems.push(`--kube-api: ${(err as Error).message}`);
    }
  }
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
  let watch: MissingSidecarWatch | undefined;
  target ??= inClusterTarget(io.env ?? process.env);
  if (intervalMs === 0) log.info('the scan for pods missing the sidecar is off (--missing-sidecar-interval 0)');
  else if (!target) log.info('not in a cluster and no --kube-api: the scan for pods missing the sidecar is off');
  else {
    watch = startMissingSidecarWatch({
      api: createKubeApi(target),
      settings: { containerName: cfg.result.containerName, excludeNamespaces: [...cfg.result.excludeNamespaces, (io.env ?? process.env).POD_NAMESPACE || CONTROL_NAMESPACE] },
      intervalMs: intervalMs!,
      registry: server.metrics,
      log: log.child({ component: 'missing-sidecars' }),
      reportingInstance: (io.env ?? process.env).POD_NAME || 'meshmedic-webhook',
    });
  }
  await (io.stopSignal ?? signalled());
  log.info('stopping');
  await watch?.close();
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
