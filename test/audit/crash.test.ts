// Crash safety: kill -9 a heavy appender 20 times in a row at random moments (seeded); every entry covered by a
// checkpoint it had published must be intact, the log must reopen and `verify` must pass after every kill.
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { verifyDir } from '../../src/audit/verify.js';
import { Rng } from '../../src/sim/rng.js';

const WRITER = fileURLToPath(new URL('../../dist/testing/audit-writer-main.js', import.meta.url));
const SEED = Number(process.env.AUDIT_CRASH_SEED ?? 20261206);

t.setTimeout(600_000); // 20 process starts on a shared, loaded machine (about 2 s of CPU per round)

t.test(`kill -9 during heavy appending, 20 times (seed ${SEED})`, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mm-audit-crash-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const rng = new Rng(SEED);
  let published = 0;
  for (let round = 0; round < 20; round++) {
    const child = spawn(process.execPath, [WRITER, dir, '--fsync-ms', '5', '--checkpoint-ms', '20', '--batch', '200'], { stdio: ['ignore', 'pipe', 'pipe'] });
    t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    // Wait for two fresh checkpoints (the writer is appending hard by then), then kill at a random moment.
    const seen = await new Promise<number>((resolve, reject) => {
      let buf = '';
      let fresh = 0;
      let max = 0;
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const m = /^checkpoint (\d+)$/.exec(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
          if (!m) continue;
          max = Math.max(max, Number(m[1]));
          if (++fresh === 2) {
            setTimeout(() => { child.kill('SIGKILL'); }, Math.floor(rng.next() * 60));
          }
        }
      });
      child.once('exit', (code, signal) => (signal === 'SIGKILL' ? resolve(max) : reject(new Error(`writer exited ${code}: ${stderr}`))));
    });
    t.ok(seen > published, `round ${round}: checkpoints published up to ${seen}`);
    published = seen;
    const r = verifyDir(dir);
    if (!r.ok) t.fail(`round ${round} (seed ${SEED}): ${r.problems.join('; ')}`);
    const seg = r.segments[r.segments.length - 1]!;
    t.ok(seg.entries >= seen && seg.signed >= seen, `round ${round}: ${seg.entries} entries, signed ${seg.signed} ≥ published ${seen}`);
  }
  t.equal(verifyDir(dir).segments.length, 1, 'one segment, reopened 19 times');
});
