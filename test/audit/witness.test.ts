import t from 'tap';
import { MerkleTree } from '../../src/audit/merkle.js';
import { generateNoteKey, parseNote, signCheckpoint, verifierKey, verifyCosignature, type NoteKey } from '../../src/audit/note.js';
import { Witness } from '../../src/audit/witness.js';

const LOG = 'meshmedic.io/audit/node-a';
const ORIGIN = `${LOG}/1`;

function tree(prefix: string, n: number, from = 0): MerkleTree {
  const tr = new MerkleTree();
  for (let i = 0; i < n; i++) tr.append(Buffer.from(`${i < from ? 'base' : prefix}-${i}`));
  return tr;
}

function checkpoint(tr: MerkleTree, size: number, key: NoteKey): string {
  return signCheckpoint({ origin: ORIGIN, size, root: tr.root(size) }, key);
}

function witnesses(): [Witness, NoteKey][] {
  return ['w1', 'w2'].map((n) => {
    const k = generateNoteKey(`meshmedic.io/witness/${n}`);
    return [new Witness(k, () => 1_765_000_000_000), k];
  });
}

t.test('an honest log: both witnesses cosign its growing checkpoints; cosignatures verify (tlog-cosignature v1)', async (t) => {
  const key = generateNoteKey(LOG);
  const vkey = verifierKey(key);
  const tr = tree('a', 20);
  for (const [w, wk] of witnesses()) {
    const a1 = w.add({ checkpoint: checkpoint(tr, 10, key), logKey: vkey, oldSize: 0, proof: [] });
    t.equal(a1.kind, 'cosigned');
    const cosigned = `${checkpoint(tr, 10, key)}${a1.kind === 'cosigned' ? a1.line : ''}`;
    t.equal(verifyCosignature(parseNote(cosigned), wk), 1_765_000_000);
    // Without a proof from the size it knows, the witness says which size it needs.
    const c = w.add({ checkpoint: checkpoint(tr, 20, key), logKey: vkey, oldSize: 5, proof: [] });
    t.same(c, { kind: 'conflict', origin: ORIGIN, size: 10 });
    const a2 = w.add({ checkpoint: checkpoint(tr, 20, key), logKey: vkey, oldSize: 10, proof: tr.consistencyProof(10, 20) });
    t.equal(a2.kind, 'cosigned');
    t.equal(w.known(ORIGIN)?.size, 20);
    t.equal(w.add({ checkpoint: checkpoint(tr, 15, key), logKey: vkey, oldSize: 20, proof: [] }).kind, 'conflict', 'an older checkpoint is not cosigned (stale or rolled back)');
  }
});

t.test('a rewrite below a cosigned size, shown to two witnesses: each detects and names it', async (t) => {
  const key = generateNoteKey(LOG);
  const vkey = verifierKey(key);
  const honest = tree('a', 10);
  const ws = witnesses();
  for (const [w] of ws) t.equal(w.add({ checkpoint: checkpoint(honest, 10, key), logKey: vkey, oldSize: 0, proof: [] }).kind, 'cosigned');
  // The key holder truncates to 6 entries, appends others and re-signs at size 12: no proof can link it to 10.
  const rewritten = tree('b', 12, 6);
  for (const [w] of ws) {
    const a = w.add({ checkpoint: checkpoint(rewritten, 12, key), logKey: vkey, oldSize: 10, proof: rewritten.consistencyProof(10, 12) });
    t.equal(a.kind, 'fork');
    if (a.kind === 'fork') {
      t.match(a.message, /log "meshmedic\.io\/audit\/node-a\/1": checkpoint of size 12 is not consistent with the checkpoint of size 10 this witness cosigned/);
      t.equal(a.evidence.length, 2, 'both signed checkpoints kept as evidence');
    }
    t.equal(w.add({ checkpoint: checkpoint(honest, 10, key), logKey: vkey, oldSize: 10, proof: [] }).kind, 'refused', 'nothing more is cosigned for a forked log');
  }
});

t.test('a split view (same size, two roots) shown to two witnesses: detected directly and across witnesses', async (t) => {
  const key = generateNoteKey(LOG);
  const vkey = verifierKey(key);
  const a = tree('a', 8);
  const b = tree('b', 8, 4);
  const [[w1], [w2]] = witnesses();
  t.equal(w1.add({ checkpoint: checkpoint(a, 8, key), logKey: vkey, oldSize: 0, proof: [] }).kind, 'cosigned');
  t.equal(w2.add({ checkpoint: checkpoint(b, 8, key), logKey: vkey, oldSize: 0, proof: [] }).kind, 'cosigned', 'each witness alone sees a consistent log');
  // Witnesses compare what they cosigned over gossip.
  const f1 = w1.compare(checkpoint(b, 8, key), vkey);
  const f2 = w2.compare(checkpoint(a, 8, key), vkey);
  t.equal(f1?.kind, 'fork');
  t.equal(f2?.kind, 'fork');
  if (f1?.kind === 'fork') t.match(f1.message, /split view/);
  // And the log showing the other branch to a witness directly is a fork too.
  const [[w3]] = witnesses();
  w3.add({ checkpoint: checkpoint(a, 8, key), logKey: vkey, oldSize: 0, proof: [] });
  const d = w3.add({ checkpoint: checkpoint(b, 8, key), logKey: vkey, oldSize: 8, proof: [] });
  t.equal(d.kind, 'fork');
  if (d.kind === 'fork') t.match(d.message, /two checkpoints of size 8 with different root hashes/);
});

t.test('forged checkpoints and replaced keys are refused or reported', async (t) => {
  const key = generateNoteKey(LOG);
  const mallory = generateNoteKey(LOG);
  const tr = tree('a', 4);
  const [[w]] = witnesses();
  t.equal(w.add({ checkpoint: checkpoint(tr, 4, mallory), logKey: verifierKey(key), oldSize: 0, proof: [] }).kind, 'refused', 'signature by another key');
  t.equal(w.add({ checkpoint: checkpoint(tr, 4, key), logKey: verifierKey(key), oldSize: 0, proof: [] }).kind, 'cosigned');
  const r = w.add({ checkpoint: checkpoint(tr, 4, mallory), logKey: verifierKey(mallory), oldSize: 4, proof: [] });
  t.equal(r.kind, 'fork');
  if (r.kind === 'fork') t.match(r.message, /key other than the one this witness pinned/);
  t.equal(w.add({ checkpoint: 'garbage', logKey: verifierKey(key), oldSize: 0, proof: [] }).kind, 'refused');
  t.equal(w.add({ checkpoint: checkpoint(tr, 4, key), logKey: 'not a key', oldSize: 0, proof: [] }).kind, 'refused');
});
