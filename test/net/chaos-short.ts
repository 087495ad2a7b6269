// The chaos lab's short version (issue 14), `npm run test:chaos`: the 3-region mesh in network namespaces
// through a partition, a sidecar kill -9 and restart, and a region outage (fail-over asserted, fail-back
// reported), invariants asserted and timing figures printed; then nothing of the lab may be left. Not yet in
// `npm test`: once in five loaded runs membership did not converge within 15 s after the partition's heal.
// Skips, saying why, only without root or network namespaces; a missing nft (ensure-peers installs it) fails.
import { execFileSync } from 'node:child_process';
import t from 'tap';
import { netnsUnavailable } from '../../bench/chaos/netlab.js';
import { startMesh, until, type Mesh } from '../../bench/chaos/mesh.js';
import { partition, regionOutage, sidecarRestart, warmUp, type Ejection } from '../../bench/chaos/scenarios.js';

t.setTimeout(420_000); // about 100 s on an idle 2-core machine; process starts are slow on a loaded one

/** What the lab must leave untouched in the machine's own namespace. */
function rootState(): string {
  const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' });
  const links = run('ip', ['-o', 'link']).split('\n').map((l) => l.split(':')[1]?.trim() ?? '').filter(Boolean).sort();
  return JSON.stringify({ netns: run('ip', ['netns', 'list']).split('\n').filter(Boolean).sort(), links, nft: run('nft', ['list', 'tables']) });
}

const list = (xs: Ejection[]) => (xs.length ? xs.map((x) => `${x.observer}→${x.endpoint} (${x.source ?? '?'} ${x.reason ?? x.state})`).join(', ') : 'none');

const why = netnsUnavailable();
if (why && !why.startsWith('nft')) {
  t.plan(0, `skipped: the chaos lab needs root and network namespaces: ${why}`);
} else {
  t.notOk(why, `nft must be installed (scripts/ensure-peers.sh): ${why ?? ''}`);
  const before = rootState();
  let mesh: Mesh | undefined;
  t.teardown(() => mesh?.close());

  t.test('partition, sidecar restart and region outage on the lab mesh', async (t) => {
    mesh = await startMesh();
    const m = mesh;
    await warmUp(m);

    const p = await partition(m, 8000);
    t.comment(`partition a ↔ c: ${JSON.stringify(p)}`);
    t.equal(p.falseEjections.length, 0, `no reachable, alive backend ejected (can't see ≠ dead): ${list(p.falseEjections)}; latency ejections (CPU contention, not asserted): ${list(p.latencyEjections)}`);
    t.notOk(p.everythingEjected, 'no sidecar had every endpoint ejected');
    t.not(p.convergenceMs, null, `membership converged after the heal: ${p.convergenceMs} ms (target 5,000, measured by npm run chaos)`);

    await warmUp(m);
    const r = await sidecarRestart(m, 3000, 8000);
    t.comment(`sidecar restart: ${JSON.stringify(r)}`);
    t.not(r.servingMs, null, `the restarted sidecar served its client again: ${r.servingMs} ms after spawn (target 1,000; ready after ${r.readyMs} ms)`);
    t.not(r.convergenceMs, null, `every sidecar counted 9 members alive again: ${r.convergenceMs} ms after spawn (target 3,000)`);
    t.equal(r.staleEjections.length, 0, `no stale ejection after the restart: ${list(r.staleEjections)}; latency ejections: ${list(r.latencyEjections)}`);

    await warmUp(m);
    const o = await regionOutage(m, 6000, 12_000);
    t.comment(`region outage: ${JSON.stringify(o)}`);
    t.not(o.failoverMs, null, `a's client failed over to ≥ 99 % success: ${o.failoverMs} ms after the last backend died (target 2,000)`);
    // Fail-back is reported, not yet asserted: it misses its target today (a re-admitted endpoint is ejected
    // again on peers' failure reports made while it was down, see the chaos section of bench/README.md).
    t.comment(`fail-back: ${o.failbackMs ?? 'not within 12 s'} ms after a's backends returned (target 10,000); home share at the end ${o.homeShareAfter.toFixed(3)}`);
    t.equal(o.falseEjections.length, 0, `no alive backend ejected: ${list(o.falseEjections)}; latency ejections: ${list(o.latencyEjections)}`);
  });

  t.test('nothing of the lab is left behind', async (t) => {
    t.ok(mesh, 'the lab ran');
    if (!mesh) return;
    mesh.close();
    await until(() => mesh!.lab.liveProcesses().length === 0, 10_000, 'lab processes to exit').catch(() => {});
    t.same(mesh.lab.liveProcesses(), [], 'no lab process left running');
    t.same(mesh.lab.leftovers(), [], 'no lab namespace left');
    t.equal(rootState(), before, 'the machine\'s own namespaces, links and nft tables are as before');
  });
}
