// The meshmedic command: parses the subcommand and its flags, validates configuration once, and runs.
// Exit codes: 0 ok, 1 runtime error, 2 usage or configuration error.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { skewedClock, systemClock } from '../core/clock.js';
import { logLine } from '../core/log.js';
import { MeshmedicError } from '../core/errors.js';
import { ENV_POD_ANNOTATIONS } from '../k8s/component.js';
import { loadRunConfigIsolated } from '../config/load-isolated.js';
import type { Config } from '../config/types.js';
import { startSidecar } from '../runtime/sidecar.js';
import { packageVersion } from '../runtime/version.js';
import type { QuickFlags } from './quick.js';

type Out = (s: string) => void;

export interface CliIo {
  readonly out: Out;
  readonly err: Out;
  readonly env: NodeJS.ProcessEnv;
}

const defaultIo: CliIo = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s), env: process.env };

const HELP: Record<string, string> = {
  main: `meshmedic — a self-healing sidecar for service meshes

Usage: meshmedic <command> [flags]

Commands:
  run      --config FILE            the sidecar, with everything its config enables
  proxy    --listen H:P --upstream URL[,URL...]   quick mode: one service, no config file
  control  --xds H:P [--config FILE]  heal an existing Envoy mesh: access logs in, xDS decisions out
  demo                              a local demo mesh that gets hurt and heals (what npm start runs)
  sim                               the virtual-time simulator over the scenario catalogue
  learn    train|verify             train the learned recovery policy in the simulator; check a policy file
  webhook  --listen H:P --tls-cert F --tls-key F  the Kubernetes sidecar-injection webhook
  render   istio --config FILE      print Istio DestinationRule/VirtualService YAML
  audit    verify|tail|prove|verify-proof DIR   check and read the tamper-evident decision log
  version                           print the version

Against a running sidecar's admin API (--admin HOST:PORT or MESHMEDIC_ADMIN, default 127.0.0.1:17000):
  status                            node, version, components, endpoints per state
  endpoints [--service S] [-o wide|json]   each endpoint's state, weight, rps, errors, p50/p99
  events [--follow]                 healing decisions with their evidence
  eject|drain|restore ID [--for 30s] [--reason TEXT]   operator decisions
  top                               a live per-endpoint table
  config-dump                       the effective configuration, secrets redacted

Every command takes --help. Exit codes: 0 ok, 1 runtime error, 2 usage or configuration error.
`,
  run: `Usage: meshmedic run --config FILE [--check]

Runs the sidecar with the given YAML (or JSON) configuration; environment variables
MESHMEDIC_<SECTION>__<KEY> override single values (e.g. MESHMEDIC_ADMIN__LISTEN=127.0.0.1:9000).
In a pod (MESHMEDIC_POD_ANNOTATIONS names the downward-API annotations file) the config file is
optional and the pod's meshmedic.io/* annotations tune it; MESHMEDIC_K8S_DISCOVERY=true also
discovers services from EndpointSlices.
  --config FILE   the configuration file (see mesh-config/ for examples)
  --check         validate the configuration, print it with defaults filled in, and exit
  --workers N|auto  proxy worker processes (overrides proxy.workers; auto = one per core)
`,
  proxy: `Usage: meshmedic proxy --listen HOST:PORT --upstream URL[,URL...] [flags]

Quick mode: every request arriving on --listen goes to one service whose endpoints are the upstreams.
  --listen HOST:PORT        outbound listener (port 0 picks a free one)
  --upstream URL[,URL...]   endpoints, e.g. http://127.0.0.1:8081,http://127.0.0.1:8082 (IP literals)
  --service NAME            the service name (default "default")
  --admin HOST:PORT         admin API and /metrics (off unless given)
  --policy NAME             meshmedic | envoy-default | none | learned (default meshmedic)
  --policy-file FILE        the trained policy for --policy learned (meshmedic learn train)
  --protocol P              http1 | h2c (h2c for gRPC upstreams)
  --xds HOST:PORT           also serve the service over xDS (ADS) for Envoy and proxyless gRPC
  --gossip HOST:PORT        gossip with peer sidecars (UDP + TCP)
  --join HOST:PORT[,...]    gossip seeds
  --node-id ID              this sidecar's id in the mesh (default: generated)
  --log-level LEVEL         debug | info | warn | error | silent
  --audit-dir DIR           append every decision and operator call to a signed Merkle log in DIR
  --workers N|auto          proxy worker processes (default 1; auto = one per core), see docs/proxy.md
`,
  control: `Usage: meshmedic control --xds HOST:PORT [--admin HOST:PORT] [--config FILE] [flags]

Heals a mesh you already run, without replacing its proxies: Envoy (or any ALS client) streams every
request's outcome to envoy.service.accesslog.v3.AccessLogService on the xDS port; meshmedic records them
per endpoint, runs the same detectors and policies as the sidecar, and serves the decisions over ADS
(EDS health, weights, priority failover) to the same Envoys and proxyless gRPC clients.
Services and their endpoints come from the config file (services:, als.clusters for cluster names that
differ from service names) or, in Kubernetes, from EndpointSlice discovery.
  --xds HOST:PORT       ADS and ALS on one gRPC port (port 0 picks a free one)
  --admin HOST:PORT     admin API and /metrics (default from the config: 127.0.0.1:17000)
  --config FILE         YAML or JSON configuration (services, healing, als, gossip...)
  --policy NAME         meshmedic | envoy-default | none
  --learn-endpoints     add upstream hosts first seen in the log to their service
  --log-level LEVEL     debug | info | warn | error | silent
`,
  render: `Usage: meshmedic render istio --config FILE [--from-admin HOST:PORT] [--namespace NS]
`,
  demo: `Usage: meshmedic demo [--duration SECONDS] [--no-faults] [--plain]

Starts a local demo mesh on loopback: several services with several instances each, a sidecar per
instance, a traffic generator, faults injected on a schedule (once every endpoint has been healthy on
every client for 3 s), and a live view of each endpoint. Ctrl-C stops everything cleanly.
  --duration SECONDS   stop this long after the fault schedule starts (default: run until Ctrl-C)
  --no-faults          do not inject faults
  --plain              print periodic tables instead of redrawing the screen
`,
};

export async function main(argv: string[], io: CliIo = defaultIo): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.out(HELP.main!);
        return cmd === undefined ? 2 : 0;
      case 'version':
      case '--version':
        io.out(`${version()}\n`);
        return 0;
      case 'run':
        return await runCommand(rest, io);
      case 'proxy':
        return await proxyCommand(rest, io);
      case 'control': {
        const { controlCommand } = await import('./control.js');
        return await controlCommand(rest, io);
      }
      case 'demo': {
        const { demoCommand } = await import('./demo.js');
        return await demoCommand(rest, io);
      }
      case 'audit': {
        const { auditCommand } = await import('../audit/cli.js');
        return await auditCommand(rest, io);
      }
      case 'learn': {
        const { learnCommand } = await import('../learn/cli.js');
        return await learnCommand(rest, io);
      }
      case 'sim':
      case 'webhook':
      case 'render':
        return await delegated(cmd, rest, io);
      case 'status':
      case 'endpoints':
      case 'events':
      case 'eject':
      case 'drain':
      case 'restore':
      case 'top':
      case 'config-dump': {
        const { adminCommand } = await import('./status.js');
        return await adminCommand(cmd, rest, io);
      }
      default:
        {
          const guess = didYouMean(cmd, ['run', 'proxy', 'demo', 'sim', 'learn', 'webhook', 'render', 'version', 'status', 'endpoints', 'events', 'eject', 'drain', 'restore', 'top', 'config-dump']);
          io.err(`meshmedic: unknown command "${cmd}"${guess ? ` — did you mean "${guess}"?` : ''}\n\n${HELP.main}`);
        }
        return 2;
    }
  } catch (err) {
    // An unusable learned policy file is bad input, like a bad config: exit 2.
    if (err instanceof MeshmedicError && (err.code === 'MM_ERR_LEARN_POLICY' || err.code === 'MM_ERR_WORKER_SHARING')) {
      io.err(`meshmedic ${cmd}: ${err.code}: ${err.message}\n`);
      return 2;
    }
    io.err(`meshmedic ${cmd}: ${err instanceof MeshmedicError && err.code === 'MM_ERR_WORKER_START' ? `${err.code}: ` : ''}${(err as Error).message}\n`);
    return 1;
  }
}

/**
 * Parse flags strictly. `code` is set after printing help (0) or a usage error (2); an unknown flag gets
 * a "did you mean" from the command's flags. Up to `positionals` positional arguments are accepted.
 */
export function parseFlags<T extends ParseArgsConfig['options']>(
  cmd: string,
  argv: string[],
  options: T,
  io: CliIo,
  opts: { positionals?: number; help?: string } = {},
): { values: Record<string, string | boolean | undefined>; positionals: string[]; code?: number } {
  const help = opts.help ?? HELP[cmd] ?? '';
  try {
    const parsed = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: true });
    const values = parsed.values as Record<string, string | boolean | undefined>;
    const positionals = parsed.positionals;
    if (values.help) {
      io.out(help || HELP.main!);
      return { values, positionals, code: 0 };
    }
    if (positionals.length > (opts.positionals ?? 0)) {
      io.err(`meshmedic ${cmd}: unexpected argument "${positionals[opts.positionals ?? 0]}"\n\n${help}`);
      return { values, positionals, code: 2 };
    }
    return { values, positionals };
  } catch (err) {
    const e = err as Error & { code?: string };
    let msg = e.message;
    const unknown = e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? /Unknown option '(--?[^']+)'/.exec(msg)?.[1] : undefined;
    if (unknown) {
      const guess = didYouMean(unknown.replace(/^-+/, ''), Object.keys(options ?? {}).concat('help'));
      msg = `unknown flag ${unknown}${guess ? ` — did you mean --${guess}?` : ''}`;
    }
    io.err(`meshmedic ${cmd}: ${msg}\n\n${help}`);
    return { values: {}, positionals: [], code: 2 };
  }
}

/** The closest candidate within edit distance 2 (or a prefix match), for "did you mean". */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const c of candidates) {
    const d = c.startsWith(word) && word.length >= 3 ? 1 : editDistance(word, c);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  // Damerau–Levenshtein (optimal string alignment): a swap of two letters counts as one edit.
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

function configErrors(io: CliIo, where: string, errors: string[]): number {
  io.err(`meshmedic: invalid configuration (${where}):\n${errors.map((e) => `  - ${e}`).join('\n')}\n`);
  return 2;
}

async function runCommand(argv: string[], io: CliIo): Promise<number> {
  const p = parseFlags('run', argv, { config: { type: 'string', short: 'c' }, check: { type: 'boolean' }, workers: { type: 'string' } }, io);
  if (p.code !== undefined) return p.code;
  const file = p.values.config as string | undefined;
  const annotationsFile = io.env[ENV_POD_ANNOTATIONS];
  if (!file && !annotationsFile) {
    io.err(`meshmedic run: --config FILE is required\n\n${HELP.run}`);
    return 2;
  }
  // Validated in a short-lived child process: the validator never loads into the sidecar's heap.
  const loaded = await loadRunConfigIsolated({
    ...(file ? { configFile: file } : {}),
    ...(annotationsFile ? { annotationsFile } : {}),
    ...(typeof p.values.workers === 'string' ? { workers: p.values.workers } : {}),
    env: io.env,
  });
  // In a pod the pod's meshmedic.io/* annotations tune the config; a bad one is a warning and its default stays.
  for (const w of loaded.warnings) io.err(logLine('warn', 'annotation ignored', { detail: w }));
  const cfg = loaded.config;
  if (!cfg.valid) return configErrors(io, loaded.source, cfg.errors);
  if (p.values.check) {
    io.out(`${JSON.stringify(cfg.result, null, 2)}\n`);
    return 0;
  }
  return serve(cfg.result, io);
}

async function proxyCommand(argv: string[], io: CliIo): Promise<number> {
  const s = { type: 'string' } as const;
  const p = parseFlags('proxy', argv, { listen: s, upstream: s, service: s, admin: s, policy: s, 'policy-file': s, xds: s, gossip: s, join: s, 'node-id': s, protocol: s, 'log-level': s, 'audit-dir': s, workers: s }, io);
  if (p.code !== undefined) return p.code;
  const [{ quickConfig }, { releaseConfigValidator }] = await Promise.all([import('./quick.js'), import('../config/load.js')]);
  const cfg = quickConfig(p.values as QuickFlags, io.env);
  // Validated; drop the compiled schema.
  releaseConfigValidator();
  if (!cfg.valid) return configErrors(io, 'flags', cfg.errors);
  return serve(cfg.result, io);
}

/**
 * Test-only knob (the chaos lab's clock-skew scenario): moves this process's wall clock, as every part
 * of the sidecar sees it, by the given integer ms (±1 day at most). Never set it in production.
 */
export const ENV_TEST_CLOCK_SKEW = 'MESHMEDIC_TEST_CLOCK_SKEW_MS';

/** The skew asked for by ENV_TEST_CLOCK_SKEW (0 if unset), or an error message naming the bad value. */
export function testClockSkewMs(env: NodeJS.ProcessEnv): number | string {
  const raw = env[ENV_TEST_CLOCK_SKEW];
  if (raw === undefined || raw.trim() === '') return 0;
  const v = Number(raw.trim());
  if (!Number.isInteger(v) || Math.abs(v) > 86_400_000) return `${ENV_TEST_CLOCK_SKEW}=${JSON.stringify(raw)}: expected an integer number of ms between -86400000 and 86400000`;
  return v;
}

/** Run a sidecar until SIGTERM/SIGINT: then stop accepting, drain up to the deadline, exit 0. */
export async function serve(config: Config, io: CliIo): Promise<number> {
  const skew = testClockSkewMs(io.env);
  if (typeof skew === 'string') {
    io.err(logLine('error', skew));
    return 2;
  }
  if (skew !== 0) io.err(logLine('warn', `TEST ONLY: this sidecar's wall clock is moved by ${skew} ms (${ENV_TEST_CLOCK_SKEW})`, { skewMs: skew }));
  const sidecar = await startSidecar(config, skew !== 0 ? { clock: skewedClock(systemClock, skew) } : {});
  io.out(logLine('info', 'meshmedic ready', { addresses: sidecar.addresses }));
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        // A second signal: stop now.
        process.exit(1);
      }
      stopping = true;
      io.err(logLine('info', 'draining', { signal, deadlineMs: config.proxy.drainTimeoutMs }));
      sidecar.close(config.proxy.drainTimeoutMs).then(
        () => resolve(0),
        (err) => {
          io.err(`meshmedic: shutdown failed: ${(err as Error).message}\n`);
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

async function delegated(cmd: string, argv: string[], io: CliIo): Promise<number> {
  const { runDelegated } = await import('./delegates.js');
  return runDelegated(cmd, argv, io);
}

export function version(): string {
  return packageVersion();
}
