// Witnessing over gossip, on loopback: three sidecars with audit logs cosign each other's checkpoints (the
// checkpoint served on the admin API carries two cosignatures that verify); the frame codec refuses bad input.
import t from 'tap';
import { waitForValue } from '../helpers/wait-value.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { validateConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/core/log.js';
import { startSidecar, type Sidecar } from '../../src/runtime/sidecar.js';
import { startAudit, type AuditComponent } from '../../src/audit/component.js';
import { startGossip } from '../../src/gossip/component.js';
import { parseNote, parseVerifierKey, verifyCosignature } from '../../src/audit/note.js';
import { AUDIT_MSG, decodeAuditMessage, encodeAuditMessage, type AuditMessage } from '../../src/audit/witness-gossip.js';


t.test('three sidecars witness each other: cosigned checkpoints on the admin API', async (t) => {
  const base = mkdtempSync(path.join(tmpdir(), 'mm-audit-witness-'));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const sidecars: Sidecar[] = [];
  t.teardown(async () => { for (const s of sidecars.reverse()) await s.close(200); });
  let seed: string[] = [];
  for (const id of ['a', 'b', 'c']) {
    const v = validateConfig({
      node: { id },
      admin: { enabled: true, listen: '127.0.0.1:0' },
      services: [{ name: 's', endpoints: [{ address: '127.0.0.11:8080' }, { address: '127.0.0.12:8080' }] }],
      gossip: { enabled: true, listen: '127.0.0.1:0', join: seed, joinRetryMs: 200, probeIntervalMs: 200, probeTimeoutMs: 100, gossipIntervalMs: 50, health: { enabled: false } },
      audit: { enabled: true, dir: path.join(base, id), checkpointIntervalMs: 100, fsyncIntervalMs: 20 },
    });
    if (!v.valid) throw new Error(v.errors.join('; '));
    const s = await startSidecar(v.result, { log: silentLogger, components: [{ name: 'audit', factory: startAudit }, { name: 'gossip', factory: startGossip }] });
    sidecars.push(s);
    if (!seed.length) seed = [s.addresses.gossip!];
  }
  const [a] = sidecars as [Sidecar];
  // A decision on sidecar a: a new entry, a new checkpoint, sent to the witnesses.
  a.context.mesh.apply({ action: 'eject', target: 's/127.0.0.11:8080', reason: 'test', source: 'operator', at: Date.now(), evidence: { via: 'test' } });
  let poked = Date.now();
  const text = await waitForValue('two cosignatures on sidecar a\'s checkpoint', async () => {
    // Now and then a new entry, so that a new checkpoint goes out once the membership has formed (not on
    // every poll: each new checkpoint starts collecting cosignatures afresh).
    if (Date.now() - poked > 1500) {
      poked = Date.now();
      a.context.mesh.apply({ action: 'drain', target: 's/127.0.0.12:8080', reason: 'test', source: 'operator', at: Date.now(), durationMs: poked % 100_000 + 1, evidence: {} });
    }
    const r = await request(`http://${a.addresses.admin}/v1/audit/checkpoint`);
    const body = await r.body.text();
    return r.statusCode === 200 && body.split('\n').filter((l) => l.startsWith('\u2014 ')).length === 3 ? body : undefined;
  }, 30_000);
  const note = parseNote(text);
  t.equal(note.signatures.length, 3);
  const names = note.signatures.map((s) => s.name).sort();
  t.same(names, ['meshmedic.io/audit/a', 'meshmedic.io/witness/b', 'meshmedic.io/witness/c']);
  // Each cosignature verifies with the witness's key (the same Ed25519 key as its own log, another name).
  for (const s of sidecars.slice(1)) {
    const st = (await (await request(`http://${s.addresses.admin}/v1/audit/status`)).body.json()) as { key: string; witnessing: { cosigned: number } };
    t.ok(st.witnessing.cosigned >= 1);
    const logKey = parseVerifierKey(st.key);
    const wname = logKey.name.replace('/audit/', '/witness/');
    const wkey = { ...logKey, name: wname };
    t.type(verifyCosignature(note, wkey), 'number', `cosignature of ${wname} verifies`);
  }
});

t.test('witness frames: round trip, and malformed input is refused', async (t) => {
  const m: AuditMessage = { kind: AUDIT_MSG.AddCheckpoint, logKey: 'k+00000000+AA', checkpoint: 'o\n1\nx\n\n— o y\n', oldSize: 5, proof: [new Uint8Array(32).fill(7)] };
  const enc = encodeAuditMessage(m);
  t.same(decodeAuditMessage(enc), m);
  t.equal(decodeAuditMessage(enc.subarray(0, enc.length - 1)), undefined, 'truncated');
  t.equal(decodeAuditMessage(Buffer.concat([enc, Buffer.from([0])])), undefined, 'trailing bytes');
  t.equal(decodeAuditMessage(Buffer.from([99, 1, 2])), undefined, 'unknown kind');
  t.equal(decodeAuditMessage(Buffer.alloc(0)), undefined, 'empty');
  const c = encodeAuditMessage({ kind: AUDIT_MSG.Conflict, origin: 'o/1', size: 3 });
  c.writeDoubleBE(-1, c.length - 8);
  t.equal(decodeAuditMessage(c), undefined, 'negative size');
});
