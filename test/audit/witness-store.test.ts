// A witness remembers what it cosigned across restarts (witness.json): a fork or rewrite that spans the
// restart is still an alert; an unreadable or inconsistent state file is named, set aside, and never fatal.
import t, { type Test } from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { MerkleTree } from '../../src/audit/merkle.js';
import { generateNoteKey, signCheckpoint, verifierKey, type NoteKey } from '../../src/audit/note.js';
import { Witness } from '../../src/audit/witness.js';
import { loadWitness, witnessStatePath, WitnessStateWriter } from '../../src/audit/witness-store.js';
import { AUDIT_MSG, decodeAuditMessage, encodeAuditMessage, type Address, type WitnessChannel } from '../../src/audit/witness-gossip.js';
import { validateConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/core/log.js';
import { startSidecar, type Sidecar } from '../../src/runtime/sidecar.js';
import { startAudit } from '../../src/audit/component.js';
import type { Component, ComponentFactory } from '../../src/runtime/context.js';
import { waitForValue } from '../helpers/wait-value.js';

const LOG = 'meshmedic.io/audit/node-a';
const ORIGIN = `${LOG}/1`;
const NOW = () => 1_765_000_000_000;

function tree(prefix: string, n: number, from = 0): MerkleTree {
  const tr = new MerkleTree();
  for (let i = 0; i < n; i++) tr.append(Buffer.from(`${i < from ? 'base' : prefix}-${i}`));
  return tr;
}

const checkpoint = (tr: MerkleTree, size: number, key: NoteKey) => signCheckpoint({ origin: ORIGIN, size, root: tr.root(size) }, key);

function tmp(t: Test): string {
  const d = mkdtempSync(path.join(tmpdir(), 'mm-witness-state-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

t.test('a restarted witness detects a rewrite and a split view that span its restart', async (t) => {
  const file = witnessStatePath(tmp(t));
  const logKey = generateNoteKey(LOG);
  const vkey = verifierKey(logKey);
  const wkey = generateNoteKey('meshmedic.io/witness/w1');
  const honest = tree('a', 10);
  const first = loadWitness(file, wkey, NOW);
  t.equal(first.problem, undefined, 'no file yet: an empty witness, no complaint');
  t.equal(first.witness.add({ checkpoint: checkpoint(honest, 10, logKey), logKey: vkey, oldSize: 0, proof: [] }).kind, 'cosigned');
  const errors: Error[] = [];
  await new WitnessStateWriter(file, first.witness, (e) => errors.push(e)).save();
  t.same(errors, []);
  t.notOk(existsSync(`${file}.tmp`), 'the temporary file was renamed into place');

  // Restart: the key holder has truncated to 6 entries and re-signed a longer history.
  const rewritten = tree('b', 12, 6);
  const rewrite = { checkpoint: checkpoint(rewritten, 12, logKey), logKey: vkey, oldSize: 10, proof: rewritten.consistencyProof(10, 12) };
  const restarted = loadWitness(file, wkey, NOW);
  t.equal(restarted.problem, undefined);
  t.same(restarted.witness.known(ORIGIN), { size: 10, root: honest.root(10) });
  const a = restarted.witness.add(rewrite);
  t.equal(a.kind, 'fork');
  if (a.kind === 'fork') t.match(a.message, /checkpoint of size 12 is not consistent with the checkpoint of size 10 this witness cosigned/);
  // The same-size split view, to another restart of the same stored state.
  const again = loadWitness(file, wkey, NOW).witness.add({ checkpoint: checkpoint(tree('c', 10, 3), 10, logKey), logKey: vkey, oldSize: 10, proof: [] });
  t.equal(again.kind, 'fork');
  // Control: without the stored state, the rewrite would have been cosigned.
  t.equal(new Witness(wkey, NOW).add({ ...rewrite, oldSize: 0, proof: [] }).kind, 'cosigned', 'a witness without memory cannot tell');

  // A fork is remembered too: after another restart nothing more is cosigned for that log.
  await new WitnessStateWriter(file, restarted.witness, (e) => errors.push(e)).save();
  t.equal(loadWitness(file, wkey, NOW).witness.add({ checkpoint: checkpoint(honest, 10, logKey), logKey: vkey, oldSize: 10, proof: [] }).kind, 'refused');
  // And the pinned key: a new key for the log after a restart is still a replaced key.
  const mallory = generateNoteKey(LOG);
  t.equal(loadWitness(file, wkey, NOW).witness.add({ checkpoint: checkpoint(honest, 10, mallory), logKey: verifierKey(mallory), oldSize: 0, proof: [] }).kind, 'fork');
});

t.test('an unusable state file: named, set aside, an empty witness, never a crash', async (t) => {
  const dir = tmp(t);
  const file = witnessStatePath(dir);
  const wkey = generateNoteKey('meshmedic.io/witness/w1');
  const logKey = generateNoteKey(LOG);
  const good = new Witness(wkey, NOW);
  good.add({ checkpoint: checkpoint(tree('a', 4), 4, logKey), logKey: verifierKey(logKey), oldSize: 0, proof: [] });
  const goodText = JSON.stringify({ format: 'meshmedic-witness/1', state: good.state() });
  const other = generateNoteKey(LOG);
  const cases: [string, string, RegExp][] = [
    ['not JSON', '{"format": "meshmedic-witness/1", "sta', /is not usable \(.*JSON/],
    ['wrong format', JSON.stringify({ format: 'something/2', state: { keys: {}, logs: {} } }), /expected "format": "meshmedic-witness\/1"/],
    ['no state', JSON.stringify({ format: 'meshmedic-witness/1' }), /expected a "state" object/],
    ['a checkpoint not signed by the pinned key', goodText.replace(JSON.stringify(verifierKey(logKey)), JSON.stringify(verifierKey(other))), /logs\["meshmedic\.io\/audit\/node-a\/1"\]: .*signature/],
    ['a log without a pinned key', JSON.stringify({ format: 'meshmedic-witness/1', state: { keys: {}, logs: good.state().logs } }), /no pinned key for log "meshmedic\.io\/audit\/node-a"/],
    ['a bad key', JSON.stringify({ format: 'meshmedic-witness/1', state: { keys: { [LOG]: 'garbage' }, logs: {} } }), /keys\["meshmedic\.io\/audit\/node-a"\]/],
  ];
  for (const [what, text, re] of cases) {
    writeFileSync(file, text);
    const r = loadWitness(file, wkey, NOW);
    t.match(r.problem, re, what);
    t.match(r.problem, new RegExp(`witness state "${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}"`), `${what}: the file is named`);
    t.match(r.problem, /moved to .*witness\.json\.unreadable/, `${what}: set aside`);
    t.equal(readFileSync(`${file}.unreadable`, 'utf8'), text, `${what}: kept for inspection`);
    t.notOk(existsSync(file));
    t.equal(r.witness.known(ORIGIN), undefined, `${what}: no state`);
  }
  // A directory where the file should be: unreadable, reported, not fatal.
  const { mkdirSync } = await import('node:fs');
  mkdirSync(file);
  t.match(loadWitness(file, wkey, NOW).problem, /witness state ".*witness\.json" (cannot be read|is not usable)/);
  rmSync(file, { recursive: true });
  // A save that cannot write reports the error and resolves.
  const errors: Error[] = [];
  await new WitnessStateWriter(path.join(dir, 'missing', 'witness.json'), good, (e) => errors.push(e)).save();
  t.equal(errors.length, 1);
  t.match(errors[0]!.message, /ENOENT/);
});

t.test('saves coalesce and each resolves once the state asked for is on disk', async (t) => {
  const file = witnessStatePath(tmp(t));
  const wkey = generateNoteKey('meshmedic.io/witness/w1');
  const logKey = generateNoteKey(LOG);
  const w = new Witness(wkey, NOW);
  const writer = new WitnessStateWriter(file, w, (e) => t.fail(e.message));
  const tr = tree('a', 40);
  const saves: Promise<void>[] = [];
  for (let n = 1; n <= 40; n++) {
    w.add({ checkpoint: checkpoint(tr, n, logKey), logKey: verifierKey(logKey), oldSize: n - 1, proof: n > 1 ? tr.consistencyProof(n - 1, n) : [] });
    saves.push(writer.save().then(() => {
      t.ok((loadWitness(file, wkey, NOW).witness.known(ORIGIN)?.size ?? 0) >= n, `save after size ${n} resolved with it on disk`);
    }));
  }
  await Promise.all(saves);
  t.equal(loadWitness(file, wkey, NOW).witness.known(ORIGIN)?.size, 40);
});

/** A gossip stand-in carrying only the audit channel: the test plays the peer log. */
function fakeGossip(): { factory: (ctx: unknown) => Promise<Component>; deliver(body: Buffer): void; sent: Buffer[]; subscribed: () => boolean } {
  const handlers = new Set<(body: Uint8Array, from: Address) => void>();
  const sent: Buffer[] = [];
  const peer = { id: 'node-a', host: '127.0.0.1', port: 9 };
  const channel: WitnessChannel = {
    send: (_to, body) => { sent.push(Buffer.from(body)); },
    subscribe: (fn) => { handlers.add(fn); return () => handlers.delete(fn); },
    peers: () => [],
  };
  return {
    factory: async () => ({ name: 'gossip', auditChannel: channel, close: async () => {} }) as Component,
    deliver: (body) => { for (const h of handlers) h(body, peer); },
    sent,
    subscribed: () => handlers.size > 0,
  };
}

/** A sidecar with the audit log in `dir` (and the given extra components), closed in teardown. */
async function witnessSidecar(t: Test, dir: string, extra: { name: string; factory: ComponentFactory }[]): Promise<Sidecar> {
  const v = validateConfig({
    node: { id: 'w1' },
    admin: { enabled: true, listen: '127.0.0.1:0' },
    services: [{ name: 's', endpoints: [{ address: '127.0.0.11:8080' }] }],
    audit: { enabled: true, dir, checkpointIntervalMs: 50, fsyncIntervalMs: 20 },
  });
  if (!v.valid) throw new Error(v.errors.join('; '));
  const sc = await startSidecar(v.result, { log: silentLogger, components: [{ name: 'audit', factory: startAudit }, ...extra] });
  t.teardown(() => sc.close(200));
  return sc;
}

t.test('sidecar: a witness restarted on the same audit directory alerts on a rewrite spanning the restart', async (t) => {
  const dir = tmp(t);
  const logKey = generateNoteKey(LOG);
  const vkey = verifierKey(logKey);
  const start = async (): Promise<{ sc: Sidecar; gossip: ReturnType<typeof fakeGossip> }> => {
    const gossip = fakeGossip();
    const sc = await witnessSidecar(t, dir, [{ name: 'gossip', factory: gossip.factory as never }]);
    await waitForValue('the witness to listen', async () => (gossip.subscribed() ? true : undefined), 10_000);
    return { sc, gossip };
  };
  const honest = tree('a', 10);
  const first = await start();
  first.gossip.deliver(encodeAuditMessage({ kind: AUDIT_MSG.AddCheckpoint, logKey: vkey, checkpoint: checkpoint(honest, 10, logKey), oldSize: 0, proof: [] }));
  // The cosignature goes out only once the state is stored.
  await waitForValue('a cosignature', async () => (first.gossip.sent.some((b) => decodeAuditMessage(b)?.kind === AUDIT_MSG.Cosignature) ? true : undefined), 10_000);
  t.ok(existsSync(witnessStatePath(dir)), 'witness.json written before the cosignature was sent');
  await first.sc.close(200);

  const second = await start();
  const rewritten = tree('b', 12, 6);
  second.gossip.deliver(encodeAuditMessage({ kind: AUDIT_MSG.AddCheckpoint, logKey: vkey, checkpoint: checkpoint(rewritten, 12, logKey), oldSize: 10, proof: rewritten.consistencyProof(10, 12) }));
  const admin = `http://${second.sc.addresses.admin}`;
  const st = await waitForValue('the fork alert', async () => {
    const s = (await (await request(`${admin}/v1/audit/status`)).body.json()) as { events: { event: string; message: string }[] };
    return s.events.some((e) => e.event === 'fork') ? s : undefined;
  }, 10_000);
  t.match(st.events.find((e) => e.event === 'fork')!.message, /node-a\/1": checkpoint of size 12 is not consistent with the checkpoint of size 10 this witness cosigned/);
  t.match(await (await request(`${admin}/metrics`)).body.text(), /^meshmedic_audit_alerts_total\{event="fork"\} 1$/m);
  t.notOk(second.gossip.sent.some((b) => decodeAuditMessage(b)?.kind === AUDIT_MSG.Cosignature), 'the rewrite is not cosigned');
});

t.test('sidecar: an unusable witness.json is a loud alert at start, and the sidecar runs', async (t) => {
  const dir = tmp(t);
  writeFileSync(witnessStatePath(dir), 'not json');
  const sc = await witnessSidecar(t, dir, []);
  const admin = `http://${sc.addresses.admin}`;
  const st = (await (await request(`${admin}/v1/audit/status`)).body.json()) as { state: string; events: { event: string; message: string }[] };
  t.equal(st.state, 'ok');
  t.match(st.events[0], { event: 'witness_state', message: /witness state ".*witness\.json" is not usable .*JSON.*a fork spanning this restart goes unseen/ });
  t.match(await (await request(`${admin}/metrics`)).body.text(), /^meshmedic_audit_alerts_total\{event="witness_state"\} 1$/m);
  const ready = await request(`${admin}/readyz`);
  await ready.body.dump();
  t.equal(ready.statusCode, 200);
});
