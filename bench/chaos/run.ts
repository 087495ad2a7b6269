// npm run chaos [-- --quick] [--only NAME,…]: the multi-region mesh in network namespaces (bench/chaos/mesh.ts)
// through its scenarios; writes bench/results/chaos(-quick).json and its section of bench/README.md. Needs root.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderMarkdown, renderText, updateMarkdownFile, writeJson, type Cell, type Table } from '../lib/report.js';
import { LAB_NICE, netnsUnavailable } from './netlab.js';
import { sleep, startMesh } from './mesh.js';
import { asymmetric, clockSkew, flapping, gossipBytesPerHost, keyRotation, loss, minority, partition, regionOutage, sidecarRestart, wanSteady, warmUp, type DeadBackendFigures, type Ejection, type FaultFigures, type WanFigures } from './scenarios.js';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const onlyAt = argv.indexOf('--only');
/** Development aid: run only the named scenarios and write nothing. */
const only = onlyAt >= 0 ? new Set((argv[onlyAt + 1] ?? '').split(',')) : undefined;
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const why = netnsUnavailable();
if (why) {
  console.error(`chaos: cannot run here: ${why}`);
  process.exit(1);
}
const started = Date.now();
const mesh = await startMesh();
const loads: number[] = [os.loadavg()[0]!];
const results: Record<string, unknown> = {};
const hold = (q: number, full: number) => (quick ? q : full);
const scenarios: [string, () => Promise<unknown>][] = [
  ['outage', () => regionOutage(mesh, hold(6000, 15_000), hold(12_000, 20_000))],
  ['partition', () => partition(mesh, hold(8000, 20_000))],
  ['minority', () => minority(mesh, hold(8000, 15_000))],
  ['asymmetric', () => asymmetric(mesh, hold(8000, 15_000))],
  ['loss5', () => loss(mesh, 5, hold(8000, 20_000))],
  ['loss20', () => loss(mesh, 20, hold(8000, 20_000))],
  ['flapping', () => flapping(mesh, hold(2, 4))],
  ['restart', () => sidecarRestart(mesh, 3000, 8000)],
  ['rotation', () => keyRotation(mesh)],
  ['skew', () => clockSkew(mesh, CLOCK_OFFSET_MS)],
];
/** The skewed host's wall clock is this far ahead (issue 14: 30 s off). */
const CLOCK_OFFSET_MS = 30_000;
/** One-way delay between regions in the WAN mesh (issue 14: 50–100 ms). */
const WAN_ONE_WAY_MS = 75;
const wanWanted = !only || only.has('wan');
try {
  await warmUp(mesh);
  for (const [name, run] of scenarios) {
    if (only && !only.has(name)) continue;
    await warmUp(mesh);
    console.error(`[chaos] ${name}…`);
    results[name] = await run();
    loads.push(os.loadavg()[0]!);
    console.error(`[chaos] ${name}: ${JSON.stringify(results[name])}`);
  }
  // Gossip cost at rest: 10 s of a warm mesh (clients still sending, nothing failing).
  await warmUp(mesh);
  await sleep(10_000);
  results.gossipBytes = gossipBytesPerHost(mesh, 10_000);
} finally {
  mesh.close();
}
let leftovers = mesh.lab.leftovers();
// The WAN: a second mesh, its regions WAN_ONE_WAY_MS apart through the lab's delay relay, gossip in its
// WAN profile; nothing failing, then a region outage and a sidecar restart.
if (wanWanted) {
  const wan = await startMesh({ wanDelayMs: WAN_ONE_WAY_MS });
  try {
    const tStart = Date.now();
    const warmMs = await warmUp(wan);
    console.error('[chaos] wan…');
    const steady = await wanSteady(wan, WAN_ONE_WAY_MS, hold(8000, 20_000));
    await warmUp(wan);
    const outage = await regionOutage(wan, hold(6000, 15_000), hold(20_000, 30_000));
    await warmUp(wan);
    const restart = await sidecarRestart(wan, 3000, 8000, 30_000);
    results.wan = { warmMs, startMs: Date.now() - tStart, steady, outage, restart };
    loads.push(os.loadavg()[0]!);
    console.error(`[chaos] wan: ${JSON.stringify(results.wan)}`);
  } finally {
    wan.close();
  }
  leftovers = [...leftovers, ...wan.lab.leftovers()];
}
const durationS = Math.round((Date.now() - started) / 1000);

const yes = (b: boolean) => (b ? 'yes' : 'no');
const ej = (xs: Ejection[]) => (xs.length === 0 ? 0 : `${xs.length}: ${xs.map((x) => `${x.observer}→${x.endpoint} (${x.source ?? '?'} ${x.reason ?? x.state})`).join(', ')}`);
const rows: Cell[][] = [];
const o = results.outage as Awaited<ReturnType<typeof regionOutage>> | undefined;
if (o) {
  rows.push(
    ['region outage (all 3 backends of region a, kill -9)', 'last one down → ≥ 99 % success at a\'s client (4 samples of 250 ms in a row), ms', o.failoverMs ?? 'never', '≤ 2,000', yes(o.failoverMs !== null && o.failoverMs <= 2000)],
    ['', 'a\'s backends back → ≥ 95 % of a\'s traffic home (4 samples in a row), ms', o.failbackMs ?? 'never', '≤ 10,000', yes(o.failbackMs !== null && o.failbackMs <= 10_000)],
    ['', 'share of a\'s traffic served at home at the end', o.homeShareAfter.toFixed(3), '≥ 0.95', yes(o.homeShareAfter >= 0.95)],
    ['', 'lowest success of b\'s and c\'s clients (per 250 ms)', o.otherRegionsMinSuccess.toFixed(3), '≥ 0.99', yes(o.otherRegionsMinSuccess >= 0.99)],
    ['', 'false ejections (alive backends)', ej(o.falseEjections), '0', yes(o.falseEjections.length === 0)],
    ['', 'latency ejections of alive backends (slower than peers: CPU contention)', ej(o.latencyEjections), '', ''],
    ['', 'requests failed at a\'s client (100 req/s)', o.failedRequestsRegionA, '', ''],
  );
}
const fault = (label: string, f: FaultFigures | undefined) => {
  if (!f) return;
  rows.push(
    [label, 'false ejections (reachable, alive backends), any sidecar', ej(f.falseEjections), '0', yes(f.falseEjections.length === 0)],
    ['', 'latency ejections of reachable backends (slower than peers: CPU contention)', ej(f.latencyEjections), '', ''],
    ['', '"everything ejected" seen', yes(f.everythingEjected), 'no', yes(!f.everythingEjected)],
    ['', 'membership converged after the heal, ms (1 s polls)', f.convergenceMs ?? 'not in 15 s', '≤ 5,000', yes(f.convergenceMs !== null && f.convergenceMs <= 5000)],
    ['', 'ejections of backends the sidecar could not reach (allowed) / reachable ones de-weighted', `${f.justifiedEjections} / ${f.falseDegraded}`, '', ''],
    ['', 'lowest client success per 250 ms during the fault; requests failed', `${f.minSuccess.toFixed(3)}; ${f.failedRequests}`, '', ''],
  );
};
fault('partition a ↔ c (both alive)', results.partition as FaultFigures | undefined);
fault('minority: host b2 cut off from all', results.minority as FaultFigures | undefined);
fault('asymmetric: a → b passes, b → a dropped', results.asymmetric as FaultFigures | undefined);
fault('5 % loss on every host', results.loss5 as FaultFigures | undefined);
fault('20 % loss on every host', results.loss20 as FaultFigures | undefined);
fault(`flapping a ↔ c (down 2 s / up 3 s × ${hold(2, 4)})`, results.flapping as FaultFigures | undefined);
const r = results.restart as Awaited<ReturnType<typeof sidecarRestart>> | undefined;
if (r) {
  rows.push(
    ['sidecar of a1 kill -9, restarted 3 s later', 'spawn → a\'s client served (end of its 250 ms sample), ms', r.servingMs ?? 'never', '≤ 1,000', yes(r.servingMs !== null && r.servingMs <= 1000)],
    ['', 'spawn → "ready", ms', r.readyMs, '', ''],
    ['', 'spawn → every sidecar counts 9 alive, ms (1 s polls)', r.convergenceMs ?? 'not in 15 s', '≤ 3,000', yes(r.convergenceMs !== null && r.convergenceMs <= 3000)],
    ['', 'stale ejections after the restart', ej(r.staleEjections), '0', yes(r.staleEjections.length === 0)],
    ['', 'latency ejections after the restart (CPU contention)', ej(r.latencyEjections), '', ''],
  );
}
const k = results.rotation as Awaited<ReturnType<typeof keyRotation>> | undefined;
if (k) {
  rows.push(
    ['gossip key rotation under traffic (add, promote, drop)', 'fewest members any sidecar counted alive', k.minAlive, '9', yes(k.minAlive === 9)],
    ['', 'requests failed; lowest client success per 250 ms', `${k.failedRequests}; ${k.minSuccess.toFixed(3)}`, '0', yes(k.failedRequests === 0)],
    ['', 'false ejections', ej(k.falseEjections), '0', yes(k.falseEjections.length === 0)],
    ['', 'latency ejections (CPU contention)', ej(k.latencyEjections), '', ''],
  );
}
const s = results.skew as Awaited<ReturnType<typeof clockSkew>> | undefined;
if (s) {
  const obs = (d: DeadBackendFigures) => Object.entries(d.observationsAtPeers).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
  const ejected = (d: DeadBackendFigures) => d.meshWideEjectionMs ?? 'not in 15 s';
  rows.push(
    [`clock skew: c1's sidecar ${s.offsetMs / 1000} s ahead; backend c2 killed, c1 alone sends it traffic`, 'kill → every sidecar holds c2 ejected, ms: clocks right / c1 skewed', `${ejected(s.baseline)} / ${ejected(s.skewed)}`, 'ejected in both', yes(s.skewed.meshWideEjectionMs !== null)],
    ['', 'observations received by the 8 other sidecars, by result: clocks right', obs(s.baseline), '', ''],
    ['', 'the same with c1 skewed (c1\'s observations must not be refused)', obs(s.skewed), 'no future/stale', yes(!s.skewed.observationsAtPeers.future && !s.skewed.observationsAtPeers.stale)],
    ['', 'skewed spawn → every sidecar counts 9 alive, ms (1 s polls)', s.convergenceMs ?? 'not in 15 s', '≤ 3,000', yes(s.convergenceMs !== null && s.convergenceMs <= 3000)],
    ['', 'false ejections (alive backends)', ej(s.falseEjections), '0', yes(s.falseEjections.length === 0)],
  );
}
const w = results.wan as { warmMs: number; steady: WanFigures; outage: Awaited<ReturnType<typeof regionOutage>>; restart: Awaited<ReturnType<typeof sidecarRestart>> } | undefined;
if (w) {
  const label = `WAN: regions ${w.steady.oneWayMs} ms apart one way (userspace relay), gossip WAN profile`;
  rows.push(
    [label, 'HTTP request a1 → backend in a2 / in c1 (curl, new connection, median of 5), ms', `${Math.round(w.steady.httpSameRegionMs)} / ${Math.round(w.steady.httpCrossRegionMs)}`, `cross ≥ ${3 * w.steady.oneWayMs}`, yes(w.steady.httpCrossRegionMs >= 3 * w.steady.oneWayMs)],
    ['', 'nothing failing: false ejections; "everything ejected"', `${ej(w.steady.falseEjections)}; ${yes(w.steady.everythingEjected)}`, '0; no', yes(w.steady.falseEjections.length === 0 && !w.steady.everythingEjected)],
    ['', 'nothing failing: lowest client success per 250 ms; requests failed', `${w.steady.minSuccess.toFixed(3)}; ${w.steady.failedRequests}`, '', ''],
    ['', 'region a\'s backends down → ≥ 99 % success at a\'s client, ms', w.outage.failoverMs ?? 'never', '≤ 2,000', yes(w.outage.failoverMs !== null && w.outage.failoverMs <= 2000)],
    ['', 'a\'s backends back → ≥ 95 % of a\'s traffic home, ms; share home at the end', `${w.outage.failbackMs ?? 'never'}; ${w.outage.homeShareAfter.toFixed(3)}`, '≤ 10,000; ≥ 0.95', yes(w.outage.failbackMs !== null && w.outage.failbackMs <= 10_000 && w.outage.homeShareAfter >= 0.95)],
    ['', 'region outage: false ejections (alive backends)', ej(w.outage.falseEjections), '0', yes(w.outage.falseEjections.length === 0)],
    ['', 'sidecar a1 kill -9, restarted: spawn → served, ms; spawn → every sidecar counts 9 alive, ms', `${w.restart.servingMs ?? 'never'}; ${w.restart.convergenceMs ?? 'not in 30 s'}`, '≤ 1,000; ≤ 3,000', yes(w.restart.servingMs !== null && w.restart.servingMs <= 1000 && w.restart.convergenceMs !== null && w.restart.convergenceMs <= 3000)],
    ['', 'start → warm (every client home, 9/9 members everywhere, nothing ejected), ms', w.warmMs, '', ''],
  );
}
const g = results.gossipBytes as { mean: number; max: number } | undefined;
if (g) rows.push(['gossip traffic, 9 hosts, warm mesh, nothing failing', 'UDP bytes sent per host per second: mean / max', `${Math.round(g.mean)} / ${Math.round(g.max)}`, 'reported', '']);
/** The simulator's idle figures at 9 and 1,000 members from bench:gossip's last results (bench/results/gossip.json). */
function gossip1000(): string {
  try {
    const g = JSON.parse(readFileSync(path.join(root, 'bench', 'results', 'gossip.json'), 'utf8')) as { generatedAt: string; quick: boolean; bandwidth: { label: string; n: number; bytes: number }[] };
    const at = (n: number) => g.bandwidth.find((b) => b.n === n && b.label === 'idle membership')?.bytes;
    const f = (x: number | undefined) => (x === undefined ? 'not in that run' : `${Math.round(x)} B/s`);
    return `Gossip bytes per host, simulator (\`npm run bench:gossip\`${g.quick ? ' -- --quick' : ''}, ${g.generatedAt}; unencrypted, no health-plane traffic): ${f(at(9))} at 9 members, ${f(at(1000))} at 1,000 idle members; see its section.`;
  } catch {
    return 'Gossip bytes per host at 1,000 simulated hosts: run `npm run bench:gossip` (no results file yet).';
  }
}
const table: Table = { columns: ['scenario', 'measure', 'result', 'target', 'met'], rows };
console.log(renderText(table));
console.log(`chaos: ${durationS} s; load average ${loads.map((l) => l.toFixed(1)).join(' → ')}`);
if (!only) {
  const at = new Date().toISOString();
  writeJson(path.join(root, 'bench', 'results', `chaos${quick ? '-quick' : ''}.json`), { quick, at, durationS, loads, results });
  updateMarkdownFile(path.join(root, 'bench', 'README.md'), 'chaos', [
    `\`npm run chaos${quick ? ' -- --quick' : ''}\`, ${at}, ${durationS} s, load average (1 min) ${loads.map((l) => l.toFixed(1)).join(' → ')} over the run (${os.cpus().length} cores).`,
    '9 hosts (3 regions × 3) as network namespaces on one bridge, each with a backend and a sidecar (gossip encrypted, LAN timings); a client per region at 100 req/s through its local sidecar, polling every sidecar of its region once a second. The lab\'s processes run at nice ' + LAB_NICE + ': they stand for separate machines, which unrelated work on this one should not starve.',
    'Faults are nftables rules inside the hosts\' namespaces; every scenario starts from a warm mesh (every client at home, 9/9 members everywhere, nothing ejected). A false ejection is an ejection, by any sidecar, of an alive backend that sidecar could reach.',
    `Clock skew: one sidecar restarted with its wall clock ${CLOCK_OFFSET_MS / 1000} s ahead (its test-only knob MESHMEDIC_TEST_CLOCK_SKEW_MS). WAN: a second mesh whose hosts DNAT backend and gossip traffic for other regions to a userspace relay in a router namespace (bench/chaos/netlab.ts, src/testing/wan-relay.ts) that forwards every datagram and TCP chunk after ${WAN_ONE_WAY_MS} ms (the kernel has no netem); gossip in its WAN profile (probe 5 s / 3 s).`,
    gossip1000(),
    '',
    renderMarkdown(table),
  ].join('\n'), '## Chaos: a multi-region mesh in network namespaces');
}
if (leftovers.length) {
  console.error(`chaos: namespaces left behind: ${leftovers.join(', ')}`);
  process.exit(1);
}
process.exit(0);
