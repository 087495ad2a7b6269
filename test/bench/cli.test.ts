// The benchmark commands answer --help and reject bad options with exit 2 before starting anything.
import t from 'tap';
import path from 'node:path';
import { ROOT, runCommand } from '../../bench/lib/procs.js';

const run = (script: string, args: string[]) => runCommand(process.execPath, ['--import', 'tsx', path.join(ROOT, script), ...args], 60_000);

t.test('bench:proxy usage', async (t) => {
  const help = await run('bench/proxy/run.ts', ['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /--quick/);
  const bad = await run('bench/proxy/run.ts', ['--duration', 'zero']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--duration: expected a positive number/);
  t.equal((await run('bench/proxy/run.ts', ['--bogus'])).code, 2);
});

t.test('bench:scenarios usage', async (t) => {
  const help = await run('bench/scenarios/run.ts', ['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /gray-3x/, 'lists the scenarios');
  const bad = await run('bench/scenarios/run.ts', ['--only', 'meteor-strike']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /unknown scenario\(s\) meteor-strike/);
  const seed = await run('bench/scenarios/run.ts', ['--seed', '2,zero']);
  t.equal(seed.code, 2);
  t.match(seed.stderr, /--seed: expected integers 1\.\.20 separated by commas, got "2,zero"/);
  t.equal((await run('bench/scenarios/run.ts', ['--seed', '2', '--seeds', '3'])).code, 2, '--seed and --seeds together');
});

t.test('backend CLI usage', async (t) => {
  const r = await run('src/testing/backend-main.ts', ['--port', 'eighty']);
  t.equal(r.code, 2);
  t.match(r.stderr, /--port: got "eighty", expected a number/);
});
