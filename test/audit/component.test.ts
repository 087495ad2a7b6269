// The audit component in a sidecar whose log directory cannot be written: proxying state and readiness stay
// up, the outage is loud (metric, alert event, status), and the log resumes once the directory can be made.
// (Tests run as root, which ignores permission bits: the directory's parent is a regular file instead.)
// Also: entries served across rotated segments, refused admin mutations and gossip keyring reloads in the log.
import t, { type Test } from 'tap';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { validateConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/core/log.js';
import { startSidecar, type Sidecar } from '../../src/runtime/sidecar.js';
import { startAudit } from '../../src/audit/component.js';
import { startHealing } from '../../src/heal/component.js';
import { startGossip } from '../../src/gossip/component.js';
import { createHash, randomBytes } from 'node:crypto';
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
  const text = readFileSync(path.join(dir, 'seg-000001.log')).toString('latin1');
  t.match(text, /"kind":"decision"[^]*"target":"s\/127\.0\.0\.11:8080"/, 'the decision made during the outage is in the log');
  t.match(text, /"event":"resumed"/);
});

async function auditSidecar(t: Test, dir: string, admin: Record<string, unknown>, retention?: Record<string, number>): Promise<{ sc: Sidecar; admin: string }> {
  const v = validateConfig({
    admin: { enabled: true, listen: '127.0.0.1:0', ...admin },
    services: [{ name: 's', endpoints: [{ address: '127.0.0.11:8080' }, { address: '127.0.0.12:8080' }] }],
    audit: { enabled: true, dir, fsyncIntervalMs: 20, checkpointIntervalMs: 50, ...(retention ? { retention } : {}) },
  });
  if (!v.valid) throw new Error(v.errors.join('; '));
  const sc = await startSidecar(v.result, { log: silentLogger, components: [{ name: 'audit', factory: startAudit }] });
  t.teardown(() => sc.close(200));
  return { sc, admin: `http://${sc.addresses.admin}` };
}

type Page = { segment: number; from: number; size: number; complete: boolean; next: { segment: number; from: number }; entries: Record<string, unknown>[] };
const getJson = async (url: string): Promise<{ status: number; body: Record<string, unknown> }> => {
  const r = await request(url);
  return { status: r.statusCode, body: (await r.body.json()) as Record<string, unknown> };
};

t.test('GET /v1/audit/entries pages across rotated segments; bad parameters are named', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mm-audit-entries-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { sc, admin } = await auditSidecar(t, dir, {}, { maxSegmentEntries: 4, maxSegments: 100 });
  // Config entry + 12 decisions, 4 entries a segment (opening + 3): segments 1 to 5.
  for (let k = 0; k < 12; k++) sc.context.mesh.apply({ action: k % 2 ? 'restore' : 'eject', target: 's/127.0.0.11:8080', reason: `k${k}`, source: 'operator', at: Date.now(), evidence: {} });
  await waitForValue('every segment written', async () => {
    const st = (await getJson(`${admin}/v1/audit/status`)).body as { segment: number; durable: number; size: number };
    return st.segment === 5 && st.durable === st.size ? st : undefined;
  }, 15_000);
  const reasons: unknown[] = [];
  let cursor = { segment: 1, from: 0 };
  for (let pages = 0; pages < 30; pages++) {
    const r = await getJson(`${admin}/v1/audit/entries?segment=${cursor.segment}&from=${cursor.from}&limit=3`);
    t.equal(r.status, 200);
    const page = r.body as unknown as Page;
    for (const e of page.entries) if (e.kind === 'decision') reasons.push(e.reason);
    if (page.next.segment === cursor.segment && page.next.from === cursor.from) break;
    cursor = page.next;
  }
  t.same(reasons, Array.from({ length: 12 }, (_, k) => `k${k}`), 'every decision, across five segments, in order');
  const noSegment = await getJson(`${admin}/v1/audit/entries?segment=9`);
  t.equal(noSegment.status, 404);
  t.match(noSegment.body, { error: 'MM_ERR_NOT_FOUND', message: /^segment: segment 9 is not held: segments 1 to 5 are$/ });
  const beyond = await getJson(`${admin}/v1/audit/entries?segment=2&from=5`);
  t.equal(beyond.status, 400);
  t.match(beyond.body, { error: 'MM_ERR_BAD_REQUEST', message: /^from: from must be at most 4: segment 2 holds 4 entries/ });
  for (const [q, name] of [['segment=abc', 'segment'], ['segment=0', 'segment'], ['from=-1', 'from'], ['limit=0', 'limit'], ['limit=1001', 'limit']] as const) {
    const r = await getJson(`${admin}/v1/audit/entries?${q}`);
    t.equal(r.status, 400, q);
    t.match(r.body.message, new RegExp(`^${name} must be an integer`), `${q} names ${name}`);
  }
});

t.test('refused admin mutations are logged, without the token presented', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mm-audit-refused-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { sc, admin } = await auditSidecar(t, dir, { token: 'the-real-admin-token-0123' });
  const drain = `${admin}/v1/endpoints/${encodeURIComponent('s/127.0.0.11:8080')}/drain`;
  const wrong = await request(drain, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json', authorization: 'Bearer a-guessed-token-4567' } });
  t.equal(wrong.statusCode, 401);
  await wrong.body.dump();
  const form = await request(drain, { method: 'POST', body: 'a=1', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: 'Bearer the-real-admin-token-0123' } });
  t.equal(form.statusCode, 415, 'a cross-site form post');
  await form.body.dump();
  const entries = await waitForValue('both refusals logged and durable', async () => {
    const page = (await getJson(`${admin}/v1/audit/entries?limit=1000`)).body as unknown as Page;
    const ops = page.entries.filter((e) => e.kind === 'operator');
    return ops.length >= 2 ? ops : undefined;
  }, 15_000);
  t.match(entries[0], { method: 'POST', path: '/v1/endpoints/s%2F127.0.0.11%3A8080/drain', status: 401, refused: 'MM_ERR_UNAUTHORIZED', remote: /127\.0\.0\.1/, body: null });
  t.match(entries[1], { status: 415, refused: 'MM_ERR_UNSUPPORTED_MEDIA_TYPE', body: null });
  t.equal(sc.context.mesh.snapshot().endpoints.get('s/127.0.0.11:8080')?.health.state, 'healthy', 'nothing was drained');
  await sc.close(200);
  const bytes = readFileSync(path.join(dir, 'seg-000001.log')).toString('latin1');
  t.notMatch(bytes, /a-guessed-token-4567/, 'the presented token is not logged');
  t.notMatch(bytes, /the-real-admin-token-0123/, 'nor the configured one');
  t.match(bytes, /"refused":"MM_ERR_UNAUTHORIZED"/);
});

t.test('a read-only admin API: a refused mutation is logged with 403', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mm-audit-readonly-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { admin } = await auditSidecar(t, dir, { readOnly: true });
  const r = await request(`${admin}/v1/endpoints/${encodeURIComponent('s/127.0.0.11:8080')}/eject`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
  t.equal(r.statusCode, 403);
  await r.body.dump();
  const op = await waitForValue('the refusal logged', async () => {
    const page = (await getJson(`${admin}/v1/audit/entries?limit=1000`)).body as unknown as Page;
    return page.entries.find((e) => e.kind === 'operator');
  }, 15_000);
  t.match(op, { path: '/v1/endpoints/s%2F127.0.0.11%3A8080/eject', status: 403, refused: 'MM_ERR_ADMIN_READ_ONLY' });
});

t.test('a gossip keyring reload is a logged config change, without the keys', async (t) => {
  const base = mkdtempSync(path.join(tmpdir(), 'mm-audit-keyring-'));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const keysFile = path.join(base, 'keys');
  const k1 = randomBytes(32).toString('base64');
  const k2 = randomBytes(32).toString('base64');
  writeFileSync(keysFile, `${k1}\n`);
  const dir = path.join(base, 'audit');
  const v = validateConfig({
    node: { id: 'k' },
    admin: { enabled: true, listen: '127.0.0.1:0' },
    services: [{ name: 's', endpoints: [{ address: '127.0.0.11:8080' }] }],
    gossip: { enabled: true, listen: '127.0.0.1:0', keysFile, keysReloadMs: 100, health: { enabled: false } },
    audit: { enabled: true, dir, fsyncIntervalMs: 20, checkpointIntervalMs: 50 },
  });
  if (!v.valid) throw new Error(v.errors.join('; '));
  const sc = await startSidecar(v.result, { log: silentLogger, components: [{ name: 'audit', factory: startAudit }, { name: 'gossip', factory: startGossip }] });
  t.teardown(() => sc.close(200));
  const admin = `http://${sc.addresses.admin}`;
  const configEntries = async (event: string) => {
    const page = (await getJson(`${admin}/v1/audit/entries?limit=1000`)).body as unknown as Page;
    return page.entries.find((e) => e.kind === 'config' && e.event === event);
  };
  writeFileSync(keysFile, `${k2}\n${k1}\n`);
  const reloaded = await waitForValue('the reload logged', () => configEntries('gossip_keyring_reloaded'), 15_000);
  t.match(reloaded, { keys: 2, primaryChanged: true, primary: createHash('sha256').update(k2).digest('hex').slice(0, 16) });
  writeFileSync(keysFile, 'not a key\n');
  const failed = await waitForValue('the failed reload logged', () => configEntries('gossip_keyring_reload_failed'), 15_000);
  t.match(failed, { problem: /line 1: a gossip key must be 32 bytes/ });
  await sc.close(200);
  const bytes = readFileSync(path.join(dir, 'seg-000001.log')).toString('latin1');
  for (const k of [k1, k2]) t.notOk(bytes.includes(k), 'no key in the log');
});
