// Runs the open-loop load generator in its own process (so the harness's work never delays the
// schedule): `loadgen-main.ts OPTIONS.json OUT.json`; writes every target's records to OUT.json.
import { readFileSync, writeFileSync } from 'node:fs';
import { runOpenLoop, type LoadOptions } from './loadgen.js';

const [optsFile, outFile] = process.argv.slice(2);
if (!optsFile || !outFile) {
  process.stderr.write('usage: loadgen-main OPTIONS.json OUT.json\n');
  process.exit(2);
}
const opts = JSON.parse(readFileSync(optsFile, 'utf8')) as LoadOptions;
process.on('SIGTERM', () => process.exit(143));
// The actual start (it may be later than asked on a busy machine): whoever times events against the
// load reads this line.
runOpenLoop(opts, (start) => process.stdout.write(JSON.stringify({ ready: true, start }) + '\n')).then(
  (records) => { writeFileSync(outFile, JSON.stringify(records)); process.exit(0); },
  (e: Error) => { process.stderr.write(`loadgen: ${e.stack ?? e.message}\n`); process.exit(1); },
);
