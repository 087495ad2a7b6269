// Live: the peers started by the benchmarks proxy to real backends, report the ejection of a crashed
// one, and leave no process behind; the open-loop generator keeps its rate and records failures.
import t from 'tap';
import { request } from 'undici';
import { startBackend, type Backend } from '../../src/testing/backend.js';
import { haproxy, nginx, type RunningSut } from '../../bench/lib/systems.js';
import { HAPROXY_HEALING, NGINX_HEALING } from '../../bench/lib/peers.js';
import { findBinary, tempDir } from '../../bench/lib/procs.js';
import { runOpenLoop, summarize } from '../../bench/lib/loadgen.js';
import { refusingAddress } from '../helpers/refusing-address.js';

// Generous: a health check that times out on a loaded machine would mark a healthy server down.
const timeouts = { connectMs: 2000, serverMs: 5000, clientMs: 10_000 };
// Hang guards only: on a starved machine a loopback request can take seconds, and that is not what is tested.
const REQUEST_GUARD_MS = 30_000;
const EJECTION_GUARD_MS = 60_000;

async function backends(t: { teardown(fn: () => unknown): void }, n: number): Promise<Backend[]> {
  const list = await Promise.all(Array.from({ length: n }, (_, i) => startBackend({ controlPort: null, seed: i + 1 })));
  t.teardown(() => Promise.all(list.map((b) => b.close())));
  return list;
}

async function hit(url: string): Promise<{ status: number; backend?: string }> {
  try {
    const r = await request(url, { headersTimeout: REQUEST_GUARD_MS, bodyTimeout: REQUEST_GUARD_MS });
    await r.body.dump();
    return { status: r.statusCode, backend: r.headers['x-backend'] as string | undefined };
  } catch { return { status: 0 }; }
}

function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try { process.kill(pid, 0); return true; } catch { return false; }
}

/** Crash backend 0, send traffic until the system reports its ejection (bounded). */
async function crashAndWatch(sut: RunningSut, bs: Backend[]): Promise<string[]> {
  bs[0].setFault({ kind: 'crash' });
  const deadline = Date.now() + EJECTION_GUARD_MS;
  while (Date.now() < deadline) {
    await Promise.all(Array.from({ length: 4 }, () => hit(`${sut.url}/`)));
    const ej = await sut.ejections!();
    if (ej.length > 0) return ej.map((e) => e.address);
    await new Promise((r) => setTimeout(r, 100));
  }
  return [];
}

t.test('haproxy with health checks: proxies, reports a crashed server, stops cleanly', { skip: findBinary('haproxy') ? false : 'haproxy is not installed (scripts/ensure-peers.sh)' }, async (t) => {
  const bs = await backends(t, 2);
  const tmp = tempDir('mm-test-ha');
  t.teardown(tmp.remove);
  const sut = await haproxy({ healing: HAPROXY_HEALING }).start({ upstreams: bs.map((b) => ({ host: b.host, port: b.port })), dir: tmp.dir, timeouts });
  t.teardown(() => sut.stop());
  const seen = new Set<string>();
  for (let i = 0; i < 6; i++) { const a = await hit(`${sut.url}/`); t.equal(a.status, 200); if (a.backend) seen.add(a.backend); }
  t.equal(seen.size, 2, 'both backends served');
  const ejected = await crashAndWatch(sut, bs);
  t.same(ejected, [bs[0].id], 'the crashed server, and only it, is reported down');
  const pid = sut.proc?.child.pid;
  await sut.stop();
  t.notOk(alive(pid), 'haproxy is gone after stop');
});

t.test('nginx with max_fails: proxies, reports a crashed server, stops cleanly', { skip: findBinary('nginx') ? false : 'nginx is not installed (scripts/ensure-peers.sh)' }, async (t) => {
  const bs = await backends(t, 2);
  const tmp = tempDir('mm-test-ng');
  t.teardown(tmp.remove);
  const sut = await nginx({ workers: 1, healing: NGINX_HEALING }).start({ upstreams: bs.map((b) => ({ host: b.host, port: b.port })), dir: tmp.dir, timeouts });
  t.teardown(() => sut.stop());
  const seen = new Set<string>();
  for (let i = 0; i < 6; i++) { const a = await hit(`${sut.url}/`); t.equal(a.status, 200); if (a.backend) seen.add(a.backend); }
  t.equal(seen.size, 2, 'both backends served');
  const ejected = await crashAndWatch(sut, bs);
  t.ok(ejected.length > 0 && ejected.every((a) => a === bs[0].id), `only the crashed server is disabled (${ejected.join(', ')})`);
  const pid = sut.proc?.child.pid;
  await sut.stop();
  t.notOk(alive(pid), 'nginx master is gone after stop');
});

t.test('open-loop generator: holds the rate, records statuses and transport failures', async (t) => {
  const [ok] = await backends(t, 1);
  // Refused on a held port: a crashed backend's freed port was once taken by a test running alongside,
  // which answered 7 of the 50 requests.
  const dead = await refusingAddress(t);
  const deadUrl = `http://${dead.host}:${dead.port}`;
  // The schedule, not the clock, decides what is sent: 100/s for 500 ms then 200/s for 500 ms is exactly
  // 50 + 100 requests at fixed offsets however late the generator runs. The request timeout is a hang
  // guard: on a starved machine an answer can take seconds, and every one must still count as a success.
  const [a, b] = await runOpenLoop({
    targets: [{ name: 'ok', url: ok.url, schedule: [{ atMs: 0, rate: 100 }, { atMs: 500, rate: 200 }] }, { name: 'dead', url: deadUrl, schedule: [{ atMs: 0, rate: 50 }] }],
    durationMs: 1000, timeoutMs: REQUEST_GUARD_MS, connections: 8,
  });
  const want = [...Array.from({ length: 50 }, (_, i) => i * 10), ...Array.from({ length: 100 }, (_, i) => 500 + i * 5)];
  t.same(a.sched, want, 'rate steps honoured: 50 requests 10 ms apart, then 100 requests 5 ms apart');
  const sa = summarize(a);
  t.equal(sa.count, 150);
  t.equal(sa.failed, 0, `every request to the live backend answered (p99 ${sa.p99} ms from its scheduled time)`);
  t.ok(a.status.every((s) => s === 200), 'statuses recorded');
  t.same(a.backends, [ok.id]);
  t.same(b.sched, Array.from({ length: 50 }, (_, i) => i * 20), 'the dead target keeps its own schedule');
  t.equal(summarize(b).failed, b.sched.length, `every request to a dead backend failed (answered by ${JSON.stringify(b.backends)})`);
  t.ok((b.errors.ECONNREFUSED ?? 0) > 0, `errors by code (${JSON.stringify(b.errors)})`);
});
