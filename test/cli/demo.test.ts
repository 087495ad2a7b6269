// `npm start` runs this: the demo mesh comes up, the first fault (a crash at 8 s) is injected and
// detected, and the demo stops cleanly with exit 0 when its duration ends.
import t from 'tap';
import { spawn } from 'node:child_process';
import { BIN } from '../helpers/spawn.js';

t.test('meshmedic demo: a crash is injected, detected, and everything stops cleanly', async (t) => {
  const child = spawn(process.execPath, [BIN, 'demo', '--duration', '12', '--plain'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('exit', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  t.equal(code, 0, out.slice(-2000));
  t.match(out, /meshmedic demo — up \d+s/);
  t.match(out, /payments-1 +a +healthy/);
  t.match(out, /crash \(connection refused\) +on payments-2 +ACTIVE +detected in \d+ ms/, 'the crash was detected by a healing decision');
  t.match(out, /eject payments\/127\.0\.0\.1:\d+ \(/, 'the decision is shown with its reason');
});
