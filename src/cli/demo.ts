// `meshmedic demo` (what npm start runs): the local demo mesh until Ctrl-C or --duration.
import { runDemo } from '../demo/demo.js';
import { parseFlags, type CliIo } from './main.js';

export async function demoCommand(argv: string[], io: CliIo): Promise<number> {
  const p = parseFlags('demo', argv, { duration: { type: 'string' }, 'no-faults': { type: 'boolean' }, plain: { type: 'boolean' } }, io);
  if (p.code !== undefined) return p.code;
  const duration = p.values.duration === undefined ? 0 : Number(p.values.duration);
  if (!Number.isFinite(duration) || duration < 0) {
    io.err(`meshmedic demo: --duration must be a number of seconds, got "${p.values.duration}"\n`);
    return 2;
  }
  let stop!: () => void;
  const stopSignal = new Promise<void>((r) => (stop = r));
  const onSignal = () => stop();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await runDemo({ durationS: duration, faults: !p.values['no-faults'], plain: Boolean(p.values.plain) || !process.stdout.isTTY, out: io.out, stopSignal });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
