// Command-line entry for the fault-injecting backend: `node dist/testing/backend-main.js --port 0 ...`.
// Prints one JSON line {"ready":true,...} on stdout once listening; SIGUSR1 crashes it, SIGUSR2 heals it.
// With --models '[{…},…]' it serves one backend per model in this process (a whole cluster for a benchmark).
import { parseArgs } from 'node:util';
import { startBackend, type Backend, type BackendOptions } from './backend.js';

const USAGE = `usage: backend-main [--host 127.0.0.1] [--port 0] [--control-port 0] [--id NAME] [--seed 1]
  [--median-ms 0] [--sigma 0] [--error-rate 0] [--capacity-rps 0] [--body-bytes 128] [--read-body] [--fault '{"kind":"crash"}']
  [--models '[{"medianMs":10,"sigma":0.5,"errorRate":0.001,"capacityRps":0,"seed":1},…]'] [--exit-with-stdin]
Control: POST /__fault {"kind":"crash"|"blackhole"|"errors"|"latency"|"flap",…} (one fault from now on) or
{"faults":[{…,"startMs":…,"endMs":…}],"t0":EPOCH_MS}; {"faults":[]} clears. GET /__stats, GET /__log?since=EPOCH_MS,
POST /__reset on the control port. Signals: SIGUSR1 crash, SIGUSR2 no fault.
--models: one backend per entry (keys medianMs, sigma, errorRate, capacityRps, seed, latencySeed, tail); the ready line lists them.
  latencySeed: a request with an x-load-seq: K header draws its latency from (latencySeed, K), the same in every copy.
--read-body: answer only after the whole request body arrived, as an upload handler does.`;

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
        'capacity-rps': { type: 'string' }, models: { type: 'string' }, 'read-body': { type: 'boolean' },
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
    capacityRps: num('capacity-rps', values['capacity-rps'] as string | undefined, errors),
    readBody: values['read-body'] === true,
  };
  let models: BackendOptions[] | undefined;
  if (typeof values.models === 'string') models = parseModels(values.models, opts, errors);
  if (typeof values.fault === 'string') {
    try { opts.fault = JSON.parse(values.fault); } catch { errors.push(`--fault: not JSON: ${values.fault}`); }
  }
  if (errors.length) { process.stderr.write(`backend: ${errors.join('; ')}\n`); return 2; }

  let backends: Backend[];
  try {
    backends = models ? await Promise.all(models.map((m) => startBackend(m))) : [await startBackend(opts)];
  } catch (e) {
    process.stderr.write(`backend: cannot start: ${(e as Error).message}\n`);
    return 1;
  }
  process.on('SIGUSR1', () => { for (const b of backends) b.setFault({ kind: 'crash' }); });
  process.on('SIGUSR2', () => { for (const b of backends) b.clearFault(); });
  const stop = (): void => { Promise.all(backends.map((b) => b.close())).finally(() => process.exit(0)); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  if (values['exit-with-stdin']) {
    // Exit with the parent (its end of our stdin closes): a benchmark that dies leaves no backend behind.
    process.stdin.on('end', stop);
    process.stdin.on('error', stop);
    process.stdin.resume();
  }
  const b0 = backends[0]!;
  const list = backends.map((b) => ({ id: b.id, port: b.port, controlPort: b.controlPort }));
  process.stdout.write(JSON.stringify({ ready: true, id: b0.id, port: b0.port, controlPort: b0.controlPort, pid: process.pid, backends: list }) + '\n');
  return -1;
}


const MODEL_KEYS = ['medianMs', 'sigma', 'errorRate', 'capacityRps', 'seed', 'latencySeed', 'tail'] as const;

/** The --models array: each entry layered over the single-backend options; every problem is named. */
function parseModels(text: string, base: BackendOptions, errors: string[]): BackendOptions[] | undefined {
  let list: unknown;
  try { list = JSON.parse(text); } catch { errors.push(`--models: not JSON: ${text.slice(0, 80)}`); return undefined; }
  if (!Array.isArray(list) || list.length === 0 || list.length > 256) { errors.push('--models: expected an array of 1 to 256 objects'); return undefined; }
  return list.map((m: unknown, i) => {
    const out: BackendOptions = { ...base, seed: (base.seed ?? 1) + i };
    if (typeof m !== 'object' || m === null || Array.isArray(m)) { errors.push(`--models[${i}]: expected an object`); return out; }
    for (const [k, v] of Object.entries(m as Record<string, unknown>)) {
      if (!(MODEL_KEYS as readonly string[]).includes(k)) errors.push(`--models[${i}].${k}: unknown key (known: ${MODEL_KEYS.join(', ')})`);
      else if (k === 'tail') {
        const t = v as { probability?: unknown; paretoAlpha?: unknown };
        if (typeof t !== 'object' || t === null || typeof t.probability !== 'number' || typeof t.paretoAlpha !== 'number' || t.probability < 0 || t.probability > 1 || t.paretoAlpha <= 0) {
          errors.push(`--models[${i}].tail: expected {"probability": 0..1, "paretoAlpha": > 0}`);
        } else out.tail = { probability: t.probability, paretoAlpha: t.paretoAlpha };
      } else if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) errors.push(`--models[${i}].${k}: got ${JSON.stringify(v)}, expected a number ≥ 0`);
      else (out as Record<string, unknown>)[k] = v;
    }
    return out;
  });
}

main(process.argv.slice(2)).then((code) => { if (code >= 0) process.exit(code); });
