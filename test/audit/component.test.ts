// The audit component in a sidecar whose log directory cannot be written: proxying state and readiness stay
// up, the outage is loud (metric, alert event, status), and the log resumes once the directory can be made.
// (Tests run as root, which ignores permission bits: the directory's parent is a regular file instead.)
import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { validateConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/core/log.js';
import { startSidecar } from '../../src/runtime/sidecar.js';
import { startAudit } from '../../src/audit/component.js';
import { startHealing } from '../../src/heal/component.js';
import { verifyDir } from '../../src/audit/verify.js';
import { waitForValue } from '../helpers/wait-value.js';

t.test('unwritable audit directory: ready, loud, decisions still applied; resumes and verifies', async (t) => {
  const base = mkdtempSync(path.join(tmpdir(), 'mm-audit-comp-'));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const blocker = path.join(base, 'blocker');
  writeFileSync(blocker, 'a file where a directory should be');
  const dir = path.join(blocker, 'audit');
  const v = validateConfig({
    admin: { enabled: true, listen: '127.0.0.1:0' },
    services: [{ name: 's', endpoints: [{ address: '127.0.0.11:8080' }, { address: '127.0.0.12:8080' }] }],
    audit: { enabled: true, dir, fsyncIntervalMs: 20, checkpointIntervalMs: 50, keyFile: path.join(base, 'key.pem') },
  });
  if (!v.valid) throw new Error(v.errors.join('; '));
  const sc = await startSidecar(v.result, { log: silentLogger, components: [{ name: 'audit', factory: startAudit }, { name: 'healing', factory: startHealing }] });
  t.teardown(() => sc.close(200));
  const admin = `http://${sc.addresses.admin}`;
  t.equal((await request(`${admin}/readyz`)).statusCode, 200, 'readiness stays up');
  const metrics = await (await request(`${admin}/metrics`)).body.text();
  t.match(metrics, /^meshmedic_audit_outage 1$/m);
  t.match(metrics, /^meshmedic_audit_alerts_total\{event="outage"\} 1$/m);
  const st = (await (await request(`${admin}/v1/audit/status`)).body.json()) as { state: string; events: { event: string; message: string }[] };
  t.equal(st.state, 'outage');
  t.match(st.events[0]!.message, /cannot be written: .*ENOTDIR.*proxying and healing continue/);
  // Healing decisions still apply while the log is down.
  const rec = sc.context.mesh.apply({ action: 'eject', target: 's/127.0.0.11:8080', reason: 'test', source: 'operator', at: Date.now(), evidence: {} });
  t.ok(rec.applied);
  const cp = await request(`${admin}/v1/audit/checkpoint`);
  t.equal(cp.statusCode, 503);
  await cp.body.dump();
  // The directory becomes possible: the log resumes by itself and writes what was queued.
  rmSync(blocker);
  mkdirSync(blocker);
  await waitForValue('the audit log to resume', async () => {
    const s = (await (await request(`${admin}/v1/audit/status`)).body.json()) as { state: string; signed: number };
    return s.state === 'ok' && s.signed >= 4 ? s : undefined;
  }, 15_000);
  const m2 = await (await request(`${admin}/metrics`)).body.text();
  t.match(m2, /^meshmedic_audit_outage 0$/m);
  await sc.close(200);
  const r = verifyDir(dir);
  t.same(r.problems, []);
  const { readFileSync } = await import('node:fs');
  const text = readFileSync(path.join(dir, 'seg-000001.log')).toString('latin1');
  t.match(text, /"kind":"decision"[^]*"target":"s\/127\.0\.0\.11:8080"/, 'the decision made during the outage is in the log');
  t.match(text, /"event":"resumed"/);
});
