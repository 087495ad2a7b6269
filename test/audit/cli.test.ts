// `meshmedic audit …` in process: on bad input every problem is named, with exit 1 (verification or runtime)
// or 2 (usage), and nothing throws; tail reads across rotated segments.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { main } from '../../src/cli/main.js';
import { VirtualClock } from '../../src/core/clock.js';
import { AuditLog } from '../../src/audit/log.js';

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(['audit', ...args], { out: (s) => (out += s), err: (s) => (err += s), env: {} });
  return { code, out, err };
}

t.test('bad input is named', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mm-audit-clibad-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  let r = await run(['verify', path.join(dir, 'missing')]);
  t.equal(r.code, 1);
  t.match(r.err, /MM_ERR_AUDIT_TAMPERED: cannot read the log description: ENOENT/);
  writeFileSync(path.join(dir, 'log.json'), '{"format":"nope"}');
  r = await run(['verify', dir]);
  t.equal(r.code, 1);
  t.match(r.err, /log\.json is not a meshmedic-audit\/1 description/);
  r = await run(['verify', dir, '--key', 'garbage']);
  t.equal(r.code, 2);
  t.match(r.err, /--key: a verifier key is name\+keyid\+base64 key/);
  r = await run(['verify']);
  t.equal(r.code, 2);
  r = await run(['prove', dir]);
  t.equal(r.code, 2);
  t.match(r.err, /exactly one of --index N or --from SIZE/);
  r = await run(['prove', dir, '--index', '-1']);
  t.equal(r.code, 2);
  r = await run(['tail', dir, '-n', 'x']);
  t.equal(r.code, 2);
  writeFileSync(path.join(dir, 'proof.json'), 'not json');
  r = await run(['verify-proof', path.join(dir, 'proof.json'), '--key', 'a+00000000+AQ==']);
  t.equal(r.code, 2, 'a malformed key is a usage error');
  r = await run(['verify-proof', path.join(dir, 'proof.json')]);
  t.equal(r.code, 2);
  t.match(r.err, /--key VKEY or --dir DIR/);
  r = await run(['frobnicate']);
  t.equal(r.code, 2);
  t.match(r.err, /unknown subcommand "frobnicate"/);
  r = await run(['--help']);
  t.equal(r.code, 0);
  t.match(r.out, /verify DIR/);
});

t.test('tail -n N takes the newest entries across a rotation', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mm-audit-clitail-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const clock = new VirtualClock();
  const log = AuditLog.open({
    dir, origin: 'meshmedic.io/audit/test', privateKey: generateKeyPairSync('ed25519').privateKey, clock, fsyncIntervalMs: 100,
    checkpointIntervalMs: 1000, retention: { maxSegmentEntries: 5, maxSegmentAgeMs: 86_400_000, maxSegments: 10 },
  });
  // Segments of 5: opening + 4 decisions each; 10 decisions end in segment 3 (opening + 2).
  for (let n = 0; n < 10; n++) log.append({ kind: 'decision', at: clock.now(), n });
  await log.close();
  const r = await run(['tail', dir, '-n', '6']);
  t.equal(r.code, 0, r.err);
  const lines = r.out.trim().split('\n').map((l) => JSON.parse(l) as { kind: string; n?: number; segment?: number });
  t.same(lines.map((e) => e.n ?? `segment ${e.segment}`), [5, 6, 7, 'segment 3', 8, 9]);
});
