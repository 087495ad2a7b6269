// Endpoint ids: the canonical form (`service/host:port`, IPv6 hosts in brackets), and one flat string
// each — a sidecar keeps one per known endpoint, thousands in a cluster (docs/kubernetes.md, Memory budget).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { endpointId } from '../../src/core/types.js';

const here = path.dirname(fileURLToPath(import.meta.url));

t.test('the canonical form', async (t) => {
  t.equal(endpointId('pay', '10.0.0.7', 8080), 'pay/10.0.0.7:8080');
  t.equal(endpointId('pay', '::1', 8080), 'pay/[::1]:8080');
  t.equal(endpointId('pay', 'fd00::a:7', 443), 'pay/[fd00::a:7]:443');
  t.equal(endpointId('a-b.c', '127.0.0.1', 0), 'a-b.c/127.0.0.1:0');
});

t.test('an id is one flat string, not a tree of concatenated pieces', async (t) => {
  // 20,000 ids of distinct hosts: a concatenation kept ~129 B of V8 heap per id (three cons strings and
  // the "service/" prefix), a flat string of ~27 characters takes 48 B.
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', path.join(here, 'fixtures', 'id-bytes.ts'), '20000'], { encoding: 'utf8', timeout: 120_000 });
  t.equal(r.status, 0, r.stderr);
  const { perId } = JSON.parse(r.stdout.trim()) as { perId: number };
  t.ok(perId <= 64, `${perId} B of heap per id (a flat string: 16 B of header and one byte a character)`);
});
