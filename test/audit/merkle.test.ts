import t from 'tap';
import { MerkleTree, EMPTY_ROOT, hashLeaf, rootOf, verifyConsistency, verifyInclusion } from '../../src/audit/merkle.js';

// RFC 6962 §2.1.3 reference inputs (also Trillian's / transparency-dev's test data) and the roots of their prefixes.
const INPUTS = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map((h) => Buffer.from(h, 'hex'));
const ROOTS = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
const hex = (bs: Buffer[]) => bs.map((b) => b.toString('hex'));
const tree8 = () => {
  const tr = new MerkleTree();
  for (const e of INPUTS) tr.append(e);
  return tr;
};

t.test('tree hashes match the RFC 6962 vectors at every size, and every earlier size of a larger tree', async (t) => {
  t.equal(EMPTY_ROOT.toString('hex'), ROOTS[0]);
  for (let n = 0; n <= 8; n++) t.equal(rootOf(INPUTS.slice(0, n)).toString('hex'), ROOTS[n], `size ${n}`);
  const tr = tree8();
  for (let n = 0; n <= 8; n++) t.equal(tr.root(n).toString('hex'), ROOTS[n], `root(${n}) of the tree of 8`);
});

t.test('inclusion proofs match the reference paths', async (t) => {
  const tr = tree8();
  t.same(hex(tr.inclusionProof(0, 8)), ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']);
  t.same(hex(tr.inclusionProof(5, 8)), ['bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']);
  t.same(hex(tr.inclusionProof(2, 3)), ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125']);
  t.same(hex(tr.inclusionProof(1, 5)), ['6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b']);
  t.same(tr.inclusionProof(0, 1), []);
});

t.test('consistency proofs match the reference proofs', async (t) => {
  const tr = tree8();
  t.same(tr.consistencyProof(1, 1), []);
  t.same(hex(tr.consistencyProof(1, 8)), ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']);
  t.same(hex(tr.consistencyProof(6, 8)), ['0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']);
  t.same(hex(tr.consistencyProof(2, 5)), ['5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b']);
});

t.test('every proof up to size 70 verifies; any change to it fails', async (t) => {
  const tr = new MerkleTree();
  const entries: Buffer[] = [];
  for (let i = 0; i < 70; i++) {
    entries.push(Buffer.from(`entry-${i}`));
    tr.append(entries[i]!);
  }
  let checked = 0;
  for (let n = 1; n <= 70; n++) {
    const root = tr.root(n);
    for (let m = 0; m < n; m++) {
      const p = tr.inclusionProof(m, n);
      if (!verifyInclusion(hashLeaf(entries[m]!), m, n, p, root)) t.fail(`inclusion ${m} in ${n}`);
      if (verifyInclusion(hashLeaf(Buffer.from('other')), m, n, p, root)) t.fail(`wrong leaf accepted ${m}/${n}`);
      if (n > 1 && verifyInclusion(hashLeaf(entries[m]!), (m + 1) % n, n, p, root)) t.fail(`wrong index accepted ${m}/${n}`);
      if (p.length && verifyInclusion(hashLeaf(entries[m]!), m, n, p.slice(1), root)) t.fail(`short path accepted ${m}/${n}`);
      const c = tr.consistencyProof(m, n);
      if (!verifyConsistency(m, n, tr.root(m), root, c)) t.fail(`consistency ${m}→${n}`);
      if (m > 0 && verifyConsistency(m, n, hashLeaf(Buffer.from('x')), root, c)) t.fail(`consistency with a wrong old root accepted ${m}→${n}`);
      if (c.length && verifyConsistency(m, n, tr.root(m), root, c.slice(0, -1))) t.fail(`short consistency accepted ${m}→${n}`);
      checked++;
    }
  }
  t.equal(checked, (70 * 71) / 2);
  t.notOk(verifyInclusion(hashLeaf(entries[0]!), 5, 5, [], tr.root(5)), 'index outside the tree');
});

t.test('proof size is at most 32·ceil(log2 n) bytes', async (t) => {
  const tr = new MerkleTree();
  for (let i = 0; i < 1000; i++) tr.append(Buffer.from([i & 255, i >> 8]));
  for (const n of [2, 3, 17, 512, 513, 1000]) {
    const max = 32 * Math.ceil(Math.log2(n));
    for (const m of [0, n >> 1, n - 1]) t.ok(tr.inclusionProof(m, n).length * 32 <= max, `n=${n} m=${m}`);
  }
});
