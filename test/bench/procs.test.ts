// Every process a benchmark starts dies with it on Ctrl-C, process groups included, and its temp dir goes.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../../bench/lib/procs.js';

const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true; } catch { return false; } };

t.test('Ctrl-C kills every tracked process group and removes temp dirs', async (t) => {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/bench/fixtures/spawner.ts')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => { try { child.kill('SIGKILL'); } catch { /* gone */ } });
  const info = await new Promise<{ backend: number; leader: number; grandchild: number; dir: string }>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error('fixture not ready in 20 s')), 20_000);
    child.stdout.on('data', (c: Buffer) => {
      buf += c.toString();
      const line = buf.split('\n').find((l) => l.startsWith('{'));
      if (line) { clearTimeout(timer); resolve(JSON.parse(line)); }
    });
  });
  t.ok(alive(info.backend) && alive(info.leader) && alive(info.grandchild), 'all running');
  t.ok(existsSync(info.dir));
  child.kill('SIGINT');
  await new Promise((r) => child.once('exit', r));
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline && (alive(info.backend) || alive(info.leader) || alive(info.grandchild))) await new Promise((r) => setTimeout(r, 50));
  t.notOk(alive(info.backend), 'backend gone');
  t.notOk(alive(info.leader), 'group leader gone');
  t.notOk(alive(info.grandchild), 'grandchild in the group gone');
  t.notOk(existsSync(info.dir), 'temp dir removed');
});
