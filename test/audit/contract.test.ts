// The audit contract end to end with real processes: `meshmedic proxy --audit-dir DIR` logs operator calls and
// automatic decisions; GET /v1/audit/checkpoint answers the signed note; `meshmedic audit verify DIR` exits 0 on
// the untouched directory and 1, naming the entry, after one byte of a record is changed; prove/verify-proof.
import t from 'tap';
import { waitForValue } from '../helpers/wait-value.js';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import { startBackend } from '../../src/testing/backend.js';
import { BIN, startMeshmedic } from '../helpers/spawn.js';
import { main } from '../../src/cli/main.js';
import { readMeta, segmentLogName } from '../../src/audit/files.js';
import { SEGMENT_MAGIC, scanRecords } from '../../src/audit/record.js';
import { openCheckpoint, parseVerifierKey } from '../../src/audit/note.js';

/** The CLI in this process (same code as the binary; saves a process start on a loaded machine). */
const runHere = async (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { out: (s) => (stdout += s), err: (s) => (stderr += s), env: {} });
  return { code, stdout, stderr };
};

const run = async (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
  try {
    const r = await promisify(execFile)(process.execPath, [BIN, ...args], { timeout: 30_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
};


t.setTimeout(420_000); // process starts on a shared, loaded machine

t.test('proxy --audit-dir: operator and automatic decisions logged, checkpoint served, verify catches a changed byte', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mm-audit-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const good = await startBackend({ port: 0, controlPort: null, id: 'good' });
  t.teardown(() => good.close());
  const bad = await startBackend({ port: 0, controlPort: null, id: 'bad', fault: { kind: 'errors', status: 500, fraction: 1 } });
  t.teardown(() => bad.close());
  const mm = await startMeshmedic(t, ['proxy', '--listen', '127.0.0.1:0', '--upstream', `http://127.0.0.1:${good.port},http://127.0.0.1:${bad.port}`, '--admin', '127.0.0.1:0', '--log-level', 'warn', '--audit-dir', dir]);
  const proxy = `http://${mm.addresses.outbound}`;
  const admin = `http://${mm.addresses.admin}`;
  const goodId = `default/127.0.0.1:${good.port}`;
  const badId = `default/127.0.0.1:${bad.port}`;
  // Automatic: the failing endpoint gets ejected by the healing engine. How many requests reach it first
  // depends on the balancer's latency measurements, so traffic goes on until the ejection shows (bounded).
  await waitForValue('the healing engine to eject the failing endpoint', async () => {
    for (let i = 0; i < 10; i++) {
      const r = await request(`${proxy}/x`);
      await r.body.dump();
    }
    const eps = (await (await request(`${admin}/v1/endpoints`)).body.json()) as { endpoints: { id: string; state: string }[] };
    return eps.endpoints.some((e) => e.id === badId && e.state === 'ejected') ? true : undefined;
  }, 120_000);
  // Operator: a drain through the admin API (forced: with the bad endpoint ejected, the guards would refuse
  // taking the last healthy one out).
  const op = await request(`${admin}/v1/endpoints/${encodeURIComponent(goodId)}/drain`, { method: 'POST', body: JSON.stringify({ reason: 'maintenance', durationMs: 1000, force: true }), headers: { 'content-type': 'application/json' } });
  t.equal(op.statusCode, 200);
  await op.body.dump();

  const text = await waitForValue('a checkpoint covering the decisions', async () => {
    const r = await request(`${admin}/v1/audit/checkpoint`);
    const body = await r.body.text();
    if (r.statusCode !== 200 || !/^text\/plain/.test(String(r.headers['content-type']))) return undefined;
    const entries = (await (await request(`${admin}/v1/audit/entries?from=0&limit=1000`)).body.json()) as { entries: { i: number; kind: string; source?: string; target?: string; path?: string }[] };
    const auto = entries.entries.find((e) => e.kind === 'decision' && e.source === 'local' && e.target === badId);
    const opDecision = entries.entries.find((e) => e.kind === 'decision' && e.source === 'operator' && e.target === goodId);
    const opCall = entries.entries.find((e) => e.kind === 'operator' && e.path?.endsWith('/drain'));
    if (!auto || !opDecision || !opCall) return undefined;
    // Signed: the checkpoint covers all three.
    return Number(body.split('\n')[1]) > Math.max(auto.i, opDecision.i, opCall.i) ? body : undefined;
  }, 60_000);
  t.match(text, /^meshmedic\.io\/audit\/[^\n]+\/1\n\d+\n[A-Za-z0-9+/]{43}=\n\n\u2014 meshmedic\.io\/audit\/\S+ [A-Za-z0-9+/]+=*\n$/);
  const key = parseVerifierKey(readMeta(dir).keys[0]!);
  const cp = openCheckpoint(text, key);
  const proof = (await (await request(`${admin}/v1/audit/proof?index=1`)).body.json()) as object;
  const proofFile = join(dir, '..', `${dir.split('/').pop()}-proof.json`);
  writeFileSync(proofFile, JSON.stringify(proof));
  t.teardown(() => rmSync(proofFile, { force: true }));
  const vp = await runHere(['audit', 'verify-proof', proofFile, '--key', readMeta(dir).keys[0]!]);
  t.equal(vp.code, 0, vp.stderr);

  mm.child.kill('SIGTERM');
  t.equal(await mm.exited, 0);

  const ok = await run(['audit', 'verify', dir]);
  t.equal(ok.code, 0, ok.stderr);
  t.match(ok.stdout, /audit log intact/);
  t.ok(cp.size > 2);

  const prove = await runHere(['audit', 'prove', dir, '--from', '2']);
  t.equal(prove.code, 0, prove.stderr);
  const tail = await runHere(['audit', 'tail', dir, '-n', '3']);
  t.equal(tail.stdout.trim().split('\n').length, 3);

  // Change one byte in the middle of a logged record: verify fails and names the entry.
  const seg = join(dir, segmentLogName(1));
  const buf = readFileSync(seg);
  const rec = scanRecords(buf, SEGMENT_MAGIC).records[2]!;
  buf[rec.offset + 4 + Math.floor(rec.payload.length / 2)] ^= 0x20;
  writeFileSync(seg, buf);
  const broken = await run(['audit', 'verify', dir]);
  t.equal(broken.code, 1);
  t.match(broken.stderr, /MM_ERR_AUDIT_TAMPERED: segment 1 entry 2: checksum mismatch/);
});
