// The chaos lab's short version (issue 14), run by `npm test` as its own step after the parallel tap run
// (and by `npm run test:chaos`): the 3-region mesh in network namespaces through a partition, a sidecar
// kill -9 and restart, and a region outage with fail-back; invariants asserted, timings asserted against
// generous bounds (the measured figure in each message; the targets are judged by `npm run chaos` on a quiet
// machine); then nothing of the lab may be left. Skips, saying why, only without root or network namespaces;
// a missing ip/nft/nice (scripts/ensure-peers.sh installs them) or any broken step fails.
import { execFileSync } from 'node:child_process';
import t from 'tap';
import { labReadiness } from '../../bench/chaos/netlab.js';
import { startMesh, until, type Mesh } from '../../bench/chaos/mesh.js';
import { partition, regionOutage, sidecarRestart, warmUp, type Ejection } from '../../bench/chaos/scenarios.js';

// About 80 s on an idle 2-core machine, 105 s at load 20; the wide deadlines below only run out
// when something is broken.
t.setTimeout(420_000);

/** Generous bounds (targets of issue 14 in brackets): they prove the property under load, not the target. */
// Measured at load 20–37 on 2 cores (other work, stress-ng): sidecar start up to 9.3 s (0.5 s idle),
// fail-back 2.6–46 s (5.3 s idle), convergence after the heal up to 9 s.
const BOUND = { convergeMs: 30_000 /* 5,000 */, servingMs: 25_000 /* 1,000 */, restartConvergeMs: 30_000 /* 3,000 */, failoverMs: 5_000 /* 2,000 */, failbackMs: 90_000 /* 10,000 */ };

/** What the lab must leave untouched in the machine's own namespace (other labs' namespaces, e.g. of a concurrent run, are not ours to judge). */
function rootState(): string {
  const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' });
  const links = run('ip', ['-o', 'link']).split('\n').map((l) => l.split(':')[1]?.trim() ?? '').filter(Boolean).sort();
  const netns = run('ip', ['netns', 'list']).split('\n').map((l) => l.split(' ')[0]!).filter((n) => n && !/^mm(probe)?\d+/.test(n)).sort();
  return JSON.stringify({ netns, links, nft: run('nft', ['list', 'tables']) });
}

const list = (xs: Ejection[]) => (xs.length ? xs.map((x) => `${x.observer}→${x.endpoint} (${x.source ?? '?'} ${x.reason ?? x.state})`).join(', ') : 'none');

const ready = labReadiness();
if (ready.skip) {
  process.stderr.write(`chaos-short: SKIPPED, the chaos lab cannot run here: ${ready.skip}\n`);
  t.plan(0, `skipped: the chaos lab needs root and network namespaces: ${ready.skip}`);
} else {
  t.notOk(ready.broken, `the lab's programs are installed: ${ready.broken ?? 'ip, nft, nice'}`);
  const before = rootState();
  let mesh: Mesh | undefined;
  t.teardown(() => mesh?.close());

  t.test('partition, sidecar restart and region outage on the lab mesh', { skip: ready.broken ? 'a program is missing (failed above)' : false }, async (t) => {
    // Latency detectors off: on this one shared CPU a backend's latency measures the CPU queue. With them on,
    // under stress-ng, a local latency ejection of a1 plus corroboration probes failing across the a ↔ c
    // partition made a mesh-wide quorum ejection of an alive backend (a gossip defect, reported; npm run
    // chaos runs with them on and counts such ejections as false).
    mesh = await startMesh({ latencyDetectors: false });
    const m = mesh;
    await warmUp(m);

    const p = await partition(m, 8000, BOUND.convergeMs);
    t.comment(`partition a ↔ c: ${JSON.stringify(p)}`);
    t.equal(p.falseEjections.length, 0, `no reachable, alive backend ejected (can't see ≠ dead): ${list(p.falseEjections)}; latency ejections (CPU contention, not asserted): ${list(p.latencyEjections)}`);
    t.notOk(p.everythingEjected, 'no sidecar had every endpoint ejected');
    t.not(p.convergenceMs, null, `membership converged after the heal within ${BOUND.convergeMs} ms: ${p.convergenceMs ?? 'not'} ms (target 5,000, judged by npm run chaos)`);

    await warmUp(m);
    const r = await sidecarRestart(m, 3000, 8000, Math.max(BOUND.servingMs, BOUND.restartConvergeMs));
    t.comment(`sidecar restart: ${JSON.stringify(r)}`);
    t.ok(r.servingMs !== null && r.servingMs <= BOUND.servingMs, `the restarted sidecar served its client within ${BOUND.servingMs} ms of spawn: ${r.servingMs ?? 'not'} ms (target 1,000; ready after ${r.readyMs} ms)`);
    t.not(r.convergenceMs, null, `every sidecar counted 9 members alive within ${BOUND.restartConvergeMs} ms of spawn: ${r.convergenceMs ?? 'not'} ms (target 3,000)`);
    t.equal(r.staleEjections.length, 0, `no stale ejection after the restart: ${list(r.staleEjections)}; latency ejections: ${list(r.latencyEjections)}`);

    await warmUp(m);
    const o = await regionOutage(m, 6000, BOUND.failbackMs + 5000);
    t.comment(`region outage: ${JSON.stringify(o)}`);
    t.ok(o.failoverMs !== null && o.failoverMs <= BOUND.failoverMs, `a's client failed over to ≥ 99 % success within ${BOUND.failoverMs} ms of the last backend's death: ${o.failoverMs ?? 'not within the 6 s outage'} ms (target 2,000)`);
    t.ok(o.failbackMs !== null && o.failbackMs <= BOUND.failbackMs, `a's client failed back home within ${BOUND.failbackMs} ms of a's backends' return: ${o.failbackMs ?? 'not'} ms (target 10,000)`);
    t.ok(o.homeShareAfter >= 0.95, `a's client stayed home after the fail-back: share served at home ${o.homeShareAfter.toFixed(3)} (≥ 0.95)`);
    // One request timing out on a starved loop costs a 250 ms sample 4 %: reported, judged by npm run chaos.
    t.comment(`b's and c's clients: lowest success ${o.otherRegionsMinSuccess.toFixed(3)} per 250 ms`);
    t.equal(o.falseEjections.length, 0, `no alive backend ejected: ${list(o.falseEjections)}; latency ejections: ${list(o.latencyEjections)}`);
  });

  t.test('nothing of the lab is left behind', async (t) => {
    if (ready.broken) return;
    t.ok(mesh, 'the lab ran');
    if (!mesh) return;
    mesh.close();
    await until(() => mesh!.lab.liveProcesses().length === 0, 10_000, 'lab processes to exit').catch(() => {});
    t.same(mesh.lab.liveProcesses(), [], 'no lab process left running');
    t.same(mesh.lab.leftovers(), [], 'no lab namespace left');
    t.equal(rootState(), before, 'the machine\'s own namespaces, links and nft tables are as before');
  });
}
