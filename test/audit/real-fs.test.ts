// The audit log on a real full and a real read-only filesystem (the other tests simulate them, since root
// ignores permission bits): the sidecar runs in a private mount namespace on a small tmpfs. Full: it keeps
// proxying and stays ready, reports the outage, and the entries written before are intact. Restarted on it
// read-only, then writable again: outage, then the log resumes by itself and verifies.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { BIN, startMeshmedic } from '../helpers/spawn.js';
import { waitForValue } from '../helpers/wait-value.js';
import { backend } from '../proxy/helpers.js';

if (spawnSync('unshare', ['--version']).error || spawnSync('nsenter', ['--version']).error) throw new Error('unshare/nsenter (util-linux) are missing');

interface Status { state: string; size: number; signed: number }

async function setup(t: Test, sizeKb: number): Promise<{ admin: string; proxy: string; pid: number; dir: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'mm-audit-fs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const b = await backend((_req, res) => res.end('ok'));
  t.teardown(() => b.close());
  const run = await startMeshmedic(t, ['proxy', '--listen', '127.0.0.1:0', '--upstream', `http://127.0.0.1:${b.port}`, '--admin', '127.0.0.1:0', '--audit-dir', path.join(dir, 'audit'), '--log-level', 'error'], { tmpfs: { dir, sizeKb } });
  return { admin: `http://${run.addresses.admin}`, proxy: `http://${run.addresses.outbound}`, pid: run.child.pid!, dir };
}

const status = async (admin: string): Promise<Status> => (await (await request(`${admin}/v1/audit/status`)).body.json()) as Status;

async function operatorCall(admin: string, i: number): Promise<void> {
  const eps = (await (await request(`${admin}/v1/endpoints`)).body.json()) as { endpoints: { id: string }[] };
  const id = eps.endpoints[0]!.id;
  const r = await request(`${admin}/v1/endpoints/${encodeURIComponent(id)}/${i % 2 === 0 ? 'drain' : 'restore'}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ reason: `fill-${i}`.padEnd(200, 'x') }) });
  await r.body.dump();
}

t.test('a full filesystem: outage reported, still proxying and ready, nothing written before is lost', async (t) => {
  const { admin, proxy, pid, dir } = await setup(t, 128);
  await waitForValue('the audit log open', async () => ((await status(admin)).state === 'ok' ? true : undefined), 30_000);
  let calls = 0;
  // ~128 KiB at a few hundred bytes an entry: bounded at 5,000 calls.
  for (; calls < 5000 && (await status(admin)).state === 'ok'; calls++) await operatorCall(admin, calls);
  const st = await status(admin);
  t.equal(st.state, 'outage', `the log reports the outage after ${calls} operator calls (${st.size} entries, ${st.signed} signed)`);
  const metrics = await (await request(`${admin}/metrics`)).body.text();
  t.match(metrics, /^meshmedic_audit_outage 1$/m);
  t.equal((await request(`${admin}/readyz`)).statusCode, 200, 'readiness stays up');
  const r = await request(`${proxy}/`, { headers: { host: 'default' } });
  t.equal(r.statusCode, 200, 'still proxying');
  await r.body.dump();
  // What was signed before the disk filled verifies (read inside the sidecar's mount namespace).
  const v = spawnSync('nsenter', ['-t', String(pid), '-m', process.execPath, BIN, 'audit', 'verify', path.join(dir, 'audit')], { encoding: 'utf8', timeout: 60_000 });
  t.equal(v.status, 0, `audit verify on the full filesystem exits 0\n${v.stdout}${v.stderr}`);
});

t.test('a read-only filesystem, then writable again: outage, then the log resumes and verifies', async (t) => {
  // Linux refuses to remount a filesystem read-only while a file on it is open for writing (EBUSY), and a
  // running log keeps its segment open. So a process holds the tmpfs in its own mount namespace across
  // two sidecar runs: the first writes and signs entries, the filesystem is remounted read-only between
  // them, and the second starts on it (a node whose volume came back read-only). A log that turns
  // read-only under a running sidecar is covered by the injected-error tests (test/audit/log.test.ts).
  const dir = mkdtempSync(path.join(tmpdir(), 'mm-audit-ro-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const holder = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs -o size=4096k meshmedic-test "$0" && echo mounted && exec sleep 600', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  const holderExit = new Promise<void>((r) => holder.once('exit', () => r()));
  t.teardown(async () => {
    if (holder.exitCode === null && holder.signalCode === null) holder.kill('SIGKILL');
    await holderExit;
  });
  let holderOut = '';
  await new Promise<void>((resolve, reject) => {
    holder.stdout!.setEncoding('utf8').on('data', (d: string) => ((holderOut += d), holderOut.includes('mounted') && resolve()));
    holder.once('exit', (code) => reject(new Error(`the tmpfs holder exited with ${code} before mounting`)));
  });
  const ns = holder.pid!;
  const remount = (mode: 'ro' | 'rw'): void => {
    const r = spawnSync('nsenter', ['-t', String(ns), '-m', 'mount', '-o', `remount,${mode}`, dir], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`remount ${mode}: ${r.stderr}`);
  };
  const b = await backend((_req, res) => res.end('ok'));
  t.teardown(() => b.close());
  const args = ['proxy', '--listen', '127.0.0.1:0', '--upstream', `http://127.0.0.1:${b.port}`, '--admin', '127.0.0.1:0', '--audit-dir', path.join(dir, 'audit'), '--log-level', 'error'];

  const first = await startMeshmedic(t, args, { mountNamespaceOf: ns });
  const admin1 = `http://${first.addresses.admin}`;
  await operatorCall(admin1, 0);
  const before = await waitForValue('a checkpoint covering the first run', async () => {
    const s = await status(admin1);
    return s.state === 'ok' && s.size > 1 && s.signed >= s.size ? s : undefined;
  }, 30_000);
  first.child.kill('SIGTERM');
  t.equal(await first.exited, 0, 'the first run exits cleanly');
  remount('ro');

  const second = await startMeshmedic(t, args, { mountNamespaceOf: ns });
  const admin = `http://${second.addresses.admin}`;
  const proxy = `http://${second.addresses.outbound}`;
  const out = await waitForValue('the outage on the read-only filesystem', async () => {
    const s = await status(admin);
    if (s.state === 'outage') return s;
    await operatorCall(admin, 1);
    return undefined;
  }, 30_000);
  t.equal(out.state, 'outage', 'outage reported on EROFS');
  t.match(await (await request(`${admin}/metrics`)).body.text(), /^meshmedic_audit_outage 1$/m);
  t.equal((await request(`${admin}/readyz`)).statusCode, 200, 'readiness stays up');
  const r = await request(`${proxy}/`, { headers: { host: 'default' } });
  t.equal(r.statusCode, 200, 'still proxying');
  await r.body.dump();

  remount('rw');
  await operatorCall(admin, 2);
  const back = await waitForValue('the log to resume', async () => {
    const s = await status(admin);
    return s.state === 'ok' ? s : undefined;
  }, 30_000);
  t.equal(back.state, 'ok', 'resumed by itself');
  const after = await waitForValue('a checkpoint covering every entry', async () => {
    const s = await status(admin);
    return s.signed >= s.size && s.size > 0 ? s : undefined;
  }, 30_000);
  t.ok(after.size > before.size, `the log grew across the restart and the outage (${before.size} → ${after.size} entries)`);
  const v = spawnSync('nsenter', ['-t', String(ns), '-m', process.execPath, BIN, 'audit', 'verify', path.join(dir, 'audit')], { encoding: 'utf8', timeout: 60_000 });
  t.equal(v.status, 0, `audit verify exits 0 after the outage\n${v.stdout}${v.stderr}`);
});
