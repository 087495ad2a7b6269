// Command-line entry for the fault-injecting backend: `node dist/testing/backend-main.js --port 0 ...`.
// Prints one JSON line {"ready":true,...} on stdout once listening; SIGUSR1 crashes it, SIGUSR2 heals it.
import { parseArgs } from 'node:util';
import { startBackend, type BackendOptions } from './backend.js';

const USAGE = `usage: backend-main [--host 127.0.0.1] [--port 0] [--control-port 0] [--id NAME] [--seed 1]
  [--median-ms 0] [--sigma 0] [--error-rate 0] [--body-bytes 128] [--fault '{"mode":"none"}'] [--exit-with-stdin]
Control: POST /__fault {"mode":"crash"|"blackhole"|"5xx"|"latency"|"drift"|"flap"|"overload"|"none",...},
GET /__stats, GET /__log?since=EPOCH_MS, POST /__reset on the control port. Signals: SIGUSR1 crash, SIGUSR2 none.`;

function num(name: string, v: string | undefined, errors: string[]): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) { errors.push(`--${name}: got ${JSON.stringify(v)}, expected a number`); return undefined; }
  return n;
}

async function main(argv: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        host: { type: 'string' }, port: { type: 'string' }, 'control-port': { type: 'string' },
        id: { type: 'string' }, seed: { type: 'string' }, 'median-ms': { type: 'string' },
        sigma: { type: 'string' }, 'error-rate': { type: 'string' }, 'body-bytes': { type: 'string' },
        fault: { type: 'string' }, 'exit-with-stdin': { type: 'boolean' }, help: { type: 'boolean' },
      },
      strict: true,
    }));
  } catch (e) {
    process.stderr.write(`backend: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) { process.stdout.write(USAGE + '\n'); return 0; }
  const errors: string[] = [];
  const opts: BackendOptions = {
    host: values.host as string | undefined,
    port: num('port', values.port as string | undefined, errors),
    controlPort: num('control-port', values['control-port'] as string | undefined, errors),
    id: values.id as string | undefined,
    seed: num('seed', values.seed as string | undefined, errors),
    medianMs: num('median-ms', values['median-ms'] as string | undefined, errors),
    sigma: num('sigma', values.sigma as string | undefined, errors),
    errorRate: num('error-rate', values['error-rate'] as string | undefined, errors),
    bodyBytes: num('body-bytes', values['body-bytes'] as string | undefined, errors),
  };
  if (typeof values.fault === 'string') {
    try { opts.fault = JSON.parse(values.fault); } catch { errors.push(`--fault: not JSON: ${values.fault}`); }
  }
  if (errors.length) { process.stderr.write(`backend: ${errors.join('; ')}\n`); return 2; }

  let backend;
  try {
    backend = await startBackend(opts);
  } catch (e) {
    process.stderr.write(`backend: cannot start: ${(e as Error).message}\n`);
    return 1;
  }
  process.on('SIGUSR1', () => backend.setFault({ mode: 'crash' }));
  process.on('SIGUSR2', () => backend.setFault({ mode: 'none' }));
  const stop = (): void => { backend.close().finally(() => process.exit(0)); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  if (values['exit-with-stdin']) {
    // Exit with the parent (its end of our stdin closes): a benchmark that dies leaves no backend behind.
    process.stdin.on('end', stop);
    process.stdin.on('error', stop);
    process.stdin.resume();
  }
  process.stdout.write(JSON.stringify({ ready: true, id: backend.id, port: backend.port, controlPort: backend.controlPort, pid: process.pid }) + '\n');
  return -1;
}

main(process.argv.slice(2)).then((code) => { if (code >= 0) process.exit(code); });
