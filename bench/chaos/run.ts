// npm run chaos: the multi-region mesh in network namespaces (bench/chaos/mesh.ts) through its scenarios;
// writes bench/results/chaos.json and its section of bench/README.md. Needs root and `ip netns`.
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderMarkdown, renderText, updateMarkdownFile, writeJson, type Table } from '../lib/report.js';
import { netnsUnavailable } from './netlab.js';
import { startMesh } from './mesh.js';
import { partition, regionOutage, warmUp } from './scenarios.js';

const quick = process.argv.includes('--quick');
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const why = netnsUnavailable();
if (why) {
  console.error(`chaos: cannot run here: ${why}`);
  process.exit(1);
}
const mesh = await startMesh();
const result: Record<string, unknown> = { quick, at: new Date().toISOString(), load: os.loadavg()[0] };
try {
  await warmUp(mesh);
  console.error('[chaos] region outage…');
  result.regionOutage = await regionOutage(mesh, quick ? 6000 : 15_000, quick ? 12_000 : 20_000);
  await warmUp(mesh);
  console.error('[chaos] partition a ↔ c…');
  result.partition = await partition(mesh, quick ? 10_000 : 30_000);
} finally {
  mesh.close();
}
result.leftovers = mesh.lab.leftovers();
const o = result.regionOutage as Awaited<ReturnType<typeof regionOutage>>;
const p = result.partition as Awaited<ReturnType<typeof partition>>;
const yes = (b: boolean) => (b ? 'yes' : 'no');
const table: Table = {
  columns: ['scenario', 'measure', 'result', 'target', 'met'],
  rows: [
    ['region outage (all 3 backends of region a, kill -9)', 'last host down → ≥ 99 % success at a\'s client, ms', o.failoverMs ?? 'never', '≤ 2,000', yes(o.failoverMs !== null && o.failoverMs <= 2000)],
    ['', 'region a back → ≥ 95 % of a\'s traffic home again, ms', o.failbackMs ?? 'never', '≤ 10,000', yes(o.failbackMs !== null && o.failbackMs <= 10_000)],
    ['', 'share of a\'s traffic served at home at the end', o.homeShareAfter.toFixed(3), '≥ 0.95', yes(o.homeShareAfter >= 0.95)],
    ['', 'lowest success of the other regions\' clients (per 250 ms)', o.otherRegionsMinSuccess.toFixed(3), '≥ 0.99', yes(o.otherRegionsMinSuccess >= 0.99)],
    ['', 'requests failed at a\'s client (100 req/s)', o.failedRequestsRegionA, '', ''],
    ['partition a ↔ c (both alive)', 'endpoints taken out of rotation (all healthy)', p.falseEjections, '0', yes(p.falseEjections === 0)],
    ['', '"everything ejected" seen', p.everythingEjected ? 'yes' : 'no', 'no', yes(!p.everythingEjected)],
    ['', 'lowest client success (per 250 ms)', p.minSuccess.toFixed(3), '', ''],
    ['', 'membership converged after the heal, ms', p.convergenceMs ?? 'not in 15 s', '≤ 5,000', yes(p.convergenceMs !== null && p.convergenceMs <= 5000)],
  ],
};
console.log(renderText(table));
writeJson(path.join(root, 'bench', 'results', `chaos${quick ? '-quick' : ''}.json`), result);
updateMarkdownFile(path.join(root, 'bench', 'README.md'), 'chaos', `\`npm run chaos${quick ? ' -- --quick' : ''}\`, ${result.at as string}, load average ${(result.load as number).toFixed(1)}: 9 hosts (3 regions × 3) in network namespaces on one bridge, each with a backend and a sidecar (gossip encrypted), a client per region at 100 req/s. Not yet measured here: loss, asymmetric and flapping links, sidecar restarts, key rotation, clock skew, WAN delay.\n\n${renderMarkdown(table)}\n`, '## Chaos: a multi-region mesh in network namespaces');
if ((result.leftovers as string[]).length) {
  console.error(`chaos: namespaces left behind: ${(result.leftovers as string[]).join(', ')}`);
  process.exit(1);
}
process.exit(0);
