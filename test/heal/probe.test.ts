// Active probes of ejected endpoints: the prober against real loopback servers (HTTP path and TCP-only
// modes), and the policy's use of probe results (failing probes keep an endpoint out without raising its
// backoff level; passing probes readmit it after the minimum ejection time).
import t from 'tap';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { VirtualClock } from '../../src/core/clock.js';
import { endpointId, type EndpointSpec } from '../../src/core/types.js';
import { MeshState } from '../../src/mesh/state.js';
import { resolvePolicySettings } from '../../src/config/sections/healing.js';
import { EjectedEndpointProber } from '../../src/heal/component.js';
import { scenarioAt } from '../../src/sim/scenarios.js';
import { runScenario } from '../../src/sim/simulator.js';
import { refusingAddress } from '../helpers/refusing-address.js';

const listen = (s: Server | ReturnType<typeof createTcpServer>) => new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as AddressInfo).port)));
const closeSrv = (s: Server | ReturnType<typeof createTcpServer>) => new Promise<void>((r) => s.close(() => r()));

/** An endpoint on 127.0.0.1 by its port, or elsewhere on loopback as host:port. */
type At = number | `${string}:${number}`;

function meshWith(ports: At[]) {
  const clock = new VirtualClock(1_700_000_000_000);
  const mesh = new MeshState(clock);
  const specs: EndpointSpec[] = ports.map((at) => {
    const [host, port] = typeof at === 'number' ? ['127.0.0.1', at] : [at.slice(0, at.lastIndexOf(':')), Number(at.slice(at.lastIndexOf(':') + 1))];
    return { id: endpointId('svc', host, port), service: 'svc', host, port, locality: { region: '', zone: '', subzone: '' }, priority: 0, weight: 1, labels: {} };
  });
  mesh.setServices([{ spec: { name: 'svc', endpoints: specs } }]);
  return { clock, mesh, ids: specs.map((s) => s.id) };
}

/** A refusing endpoint on a port no other process can take meanwhile (see refusingAddress). */
async function refusing(t: { teardown(fn: () => unknown): void }): Promise<At> {
  const { host, port } = await refusingAddress(t);
  return `${host}:${port}`;
}

// Answers must never miss a probe's deadline by luck: the servers live in this process, so a starved
// machine can hold an answer past any short timeout. Probes that must pass or fail on an answer get this
// hang guard as their timeout; only the silent endpoint is probed with a short one, which it always misses.
const GUARD_MS = 20_000;

async function probeOnce(ports: At[], eject: number[], settings = resolvePolicySettings()) {
  const { clock, mesh, ids } = meshWith(ports);
  for (const i of eject) mesh.apply({ action: 'eject', target: ids[i]!, reason: 'test', source: 'local', at: clock.now(), evidence: {} });
  const got = new Map<string, boolean>();
  const prober = new EjectedEndpointProber(clock, mesh, { submitProbe: (id, ok) => (got.set(id, ok), true) }, () => settings);
  prober.scan();
  const deadline = Date.now() + GUARD_MS + 10_000;
  while (got.size < eject.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  await prober.stop();
  return { got, ids, sent: prober.sent };
}

t.test('HTTP probes: any answer below 500 passes; 5xx, refused and silent endpoints fail; rotation is never probed', async (t) => {
  const paths: string[] = [];
  const ok = createServer((req, res) => (paths.push(req.url ?? ''), res.writeHead(404).end()));
  const bad = createServer((_req, res) => res.writeHead(500).end());
  const silent = createServer(() => {}); // accepts, never answers
  const inRotation = createServer((_req, res) => res.end('x'));
  const [p1, p2, p3, p4] = [await listen(ok), await listen(bad), await listen(silent), await listen(inRotation)];
  t.teardown(async () => {
    silent.closeAllConnections();
    await Promise.all([ok, bad, silent, inRotation].map(closeSrv));
  });
  const dead = await refusing(t);
  const settings = resolvePolicySettings({ probe: { timeoutMs: GUARD_MS, path: '/ready' } });
  const { got, ids, sent } = await probeOnce([p1!, p2!, dead, p4!], [0, 1, 2], settings);
  t.equal(sent, 3, 'only the three ejected endpoints are probed');
  t.equal(got.get(ids[0]!), true, '404 passes: the process answers');
  t.equal(got.get(ids[1]!), false, '500 fails');
  t.equal(got.get(ids[2]!), false, 'connection refused fails');
  t.notOk(got.has(ids[3]!));
  t.same(paths, ['/ready'], 'the configured path');
  const quick = await probeOnce([p3!], [0], resolvePolicySettings({ probe: { timeoutMs: 300, path: '/ready' } }));
  t.equal(quick.got.get(quick.ids[0]!), false, 'no answer within the timeout fails');
});

t.test('TCP-only probes when the path is empty', async (t) => {
  const srv = createTcpServer((s) => s.destroy());
  const port = await listen(srv);
  const dead = await refusing(t);
  t.teardown(() => closeSrv(srv));
  const { got, ids } = await probeOnce([port, dead], [0, 1], resolvePolicySettings({ probe: { path: '', timeoutMs: GUARD_MS } }));
  t.equal(got.get(ids[0]!), true);
  t.equal(got.get(ids[1]!), false);
});

t.test('a bad probe path is rejected by the schema', async (t) => {
  const { validateConfig } = await import('../../src/config/load.js');
  const v = validateConfig({ healing: { probe: { path: 'healthz' } } });
  t.notOk(v.valid, 'a path must start with /');
  t.ok(validateConfig({ healing: { probe: { path: '' } } }).valid, 'empty = TCP connect');
});

t.test('policy: failing probes keep a crashed endpoint out without canaries or a higher level; passing ones readmit it fast', async (t) => {
  const spec = scenarioAt('crash-5', { warmMs: 30_000, faultMs: 40_000, afterMs: 20_000 })!;
  const probed = runScenario(spec, { policy: 'meshmedic', seed: 1 });
  const timer = runScenario(spec, { policy: 'meshmedic', seed: 1, probes: false });
  const ej = (r: typeof probed) => r.decisions.filter((d) => d.action === 'eject');
  t.equal(ej(probed).length, 1, 'one ejection for the whole 40 s fault: no probation while probes fail');
  t.ok(ej(timer).length > 1, 'without probes, the timer re-tests it with canaries during the fault');
  t.ok(probed.failed < timer.failed, `failed ${probed.failed} < ${timer.failed}`);
  const readmit = probed.decisions.find((d) => d.action === 'probation')!;
  t.equal(readmit.reason, 'probe_passed');
  t.ok(readmit.at - 1_700_000_000_000 >= spec.faults[0]!.endMs, 'not readmitted while the fault lasts');
  t.ok(probed.restoreMs <= 8000, `full weight ${probed.restoreMs} ms after the fault ended`);
  t.ok(Number.isNaN(timer.restoreMs) || timer.restoreMs > probed.restoreMs);
});

t.test('each ejected endpoint is probed once per interval, never twice at once', async (t) => {
  let hits = 0;
  const srv = createServer((_req, res) => (hits++, res.writeHead(200).end()));
  const port = await listen(srv);
  t.teardown(() => closeSrv(srv));
  const { clock, mesh, ids } = meshWith([port]);
  mesh.apply({ action: 'eject', target: ids[0]!, reason: 'test', source: 'local', at: clock.now(), evidence: {} });
  const results: boolean[] = [];
  const settings = resolvePolicySettings({ probe: { timeoutMs: GUARD_MS } });
  const prober = new EjectedEndpointProber(clock, mesh, { submitProbe: (_id, ok) => (results.push(ok), true) }, () => settings);
  t.teardown(() => prober.stop());
  const settle = async (n: number) => {
    const deadline = Date.now() + GUARD_MS + 10_000;
    while (results.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  };
  prober.scan();
  prober.scan(); // same instant, one in flight: nothing more
  await settle(1);
  const interval = settings.probe.intervalMs;
  clock.advance(interval - 1);
  prober.scan(); // within the interval
  t.equal(prober.sent, 1);
  clock.advance(1);
  prober.scan();
  await settle(2);
  t.equal(prober.sent, 2, 'the next probe after the interval');
  t.same(results, [true, true]);
  t.equal(hits, 2);
  mesh.apply({ action: 'restore', target: ids[0]!, reason: 'test', source: 'local', at: clock.now(), evidence: {} });
  clock.advance(1000);
  prober.scan();
  t.equal(prober.sent, 2, 'a restored endpoint is not probed');
});

t.test('policy: after a hard fault that probes saw end, the first clean canaries restore full weight without the ramp', async (t) => {
  const spec = scenarioAt('crash-5', { warmMs: 30_000, faultMs: 20_000, afterMs: 20_000 })!;
  const fast = runScenario(spec, { policy: 'meshmedic', seed: 1 });
  const slow = runScenario(spec, { policy: 'meshmedic', seed: 1, settings: { probation: { fastRequests: 0 } } });
  const clean = fast.decisions.find((d) => d.action === 'restore');
  t.equal(clean?.reason, 'probation_clean', 'restored by the fast path');
  const canaries = Number(clean!.evidence.canaryRequests);
  t.ok(canaries >= 5 && canaries < 20, `${canaries} clean canaries (fastRequests 5, minRequests 20)`);
  t.notOk(fast.decisions.some((d) => d.reason === 'ramp_up' || d.reason === 'probation_passed'), 'no ramp');
  t.ok(slow.decisions.some((d) => d.reason === 'probation_passed'), 'fastRequests 0: the full canary count and the ramp');
  t.ok(fast.restoreMs < slow.restoreMs, `full weight ${fast.restoreMs} ms after the fault vs ${slow.restoreMs} ms`);
  t.ok(fast.failed <= slow.failed + 2, `failed ${fast.failed} vs ${slow.failed}`);
});

t.test('policy: the fast path is refused to partial faults and repeat offenders', async (t) => {
  // Partial 5xx: statistical detectors eject it and a passing probe may be blind to it.
  const partial = runScenario(scenarioAt('partial-5xx-30-5', { warmMs: 30_000, faultMs: 30_000, afterMs: 20_000 })!, { policy: 'meshmedic', seed: 1 });
  t.ok(partial.decisions.some((d) => d.action === 'eject'), 'ejected during the partial fault');
  t.notOk(partial.decisions.some((d) => d.reason === 'probation_clean'), 'never restored by the fast path');
  // Flapping: after the first ejection the level is 2 and every readmission takes the full path.
  const flap = runScenario(scenarioAt('flapping-5', { warmMs: 30_000, faultMs: 40_000, afterMs: 20_000 })!, { policy: 'meshmedic', seed: 1 });
  const ejects = flap.decisions.filter((d) => d.action === 'eject');
  t.ok(ejects.length >= 2, `${ejects.length} ejections while it flaps`);
  for (const d of flap.decisions.filter((x) => x.reason === 'probation_clean')) {
    const before = ejects.filter((e) => e.at < d.at && e.target === d.target).pop();
    t.equal(before?.evidence.level, 1, 'a fast restore only ever follows a level-1 ejection');
  }
});
