// The README's quick-mode commands, run as written (only the ports are swapped for free ones): two
// backends, the proxy, a request through it, the endpoints call, the eject with its JSON body, and the
// status command. Every command must succeed; background processes are stopped in teardown.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The indented command block that follows "Quick mode sends every request" in README.md. */
function quickModeBlock(): string[] {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8').split('\n');
  const start = readme.findIndex((l) => l.startsWith('Quick mode sends every request'));
  const lines: string[] = [];
  for (let i = start + 1; i < readme.length; i++) {
    const l = readme[i]!;
    if (l.startsWith('    ')) lines.push(l.trim());
    else if (lines.length && l.trim() === '') break;
  }
  return lines;
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

t.test('README quick mode, followed literally', async (t) => {
  if (spawnSync('curl', ['--version']).error) throw new Error('curl is missing: run scripts/ensure-peers.sh');
  const block = quickModeBlock();
  t.ok(block.length >= 6, `found the quick-mode block:\n${block.join('\n')}`);
  const ports = new Map<string, string>();
  for (const p of ['8081', '8082', '17000', '17001']) ports.set(p, String(await freePort()));
  const swap = (cmd: string) => cmd.replace(/(?<!\d)(8081|8082|17000|17001)(?!\d)/g, (p) => ports.get(p)!);
  const background: ChildProcess[] = [];
  t.teardown(async () => {
    for (const c of background) if (c.exitCode === null) c.kill('SIGTERM');
    await Promise.all(background.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
  });
  const admin = `127.0.0.1:${ports.get('17000')}`;
  let waited = false;
  for (const raw of block) {
    const cmd = swap(raw);
    if (cmd.endsWith('&')) {
      const c = spawn('bash', ['-c', `exec ${cmd.slice(0, -1).trim()}`], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      c.stdout!.resume();
      c.stderr!.resume();
      background.push(c);
      continue;
    }
    if (!waited) {
      // The background processes start in parallel: wait until the proxy's admin API answers.
      for (let i = 0; i < 150; i++) {
        if (spawnSync('curl', ['-sf', `http://${admin}/readyz`]).status === 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      waited = true;
    }
    const r = spawnSync('bash', ['-c', cmd], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
    t.equal(r.status, 0, `${raw}\n${r.stdout}${r.stderr}`);
    t.ok(r.stdout.trim().length > 0, `${raw} printed something`);
    if (raw.includes('/eject')) t.match(JSON.parse(r.stdout), { applied: true, endpoint: { state: 'ejected' } }, 'the eject was applied');
    if (raw.includes(' endpoints --admin')) t.match(r.stdout, new RegExp(`default/127\\.0\\.0\\.1:${ports.get('8081')}\\s+ejected`), 'the CLI shows the ejection');
  }
});
