// Federated baselines through real sidecars over gossip on loopback: three sidecars that have learned a
// service's baseline, a fourth that just started adopts their aggregate within seconds; hostile vectors
// sent to it are refused and counted, and it keeps working.
import t from 'tap';
import { createSocket } from 'node:dgram';
import { generateKeyPairSync, sign } from 'node:crypto';
import { validateConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/core/log.js';
import { Outcome } from '../../src/core/types.js';
import { encodePacket, MsgType } from '../../src/gossip/codec.js';
import type { HealingEngine } from '../../src/heal/engine.js';
import { encodeVector } from '../../src/learn/federated-codec.js';
import { Rng } from '../../src/sim/rng.js';
import { startSidecar, type Sidecar } from '../../src/runtime/sidecar.js';
import { waitFor } from '../gossip/udp-helpers.js';

const SEED = Number(process.env.MESHMEDIC_TEST_SEED ?? 20261206);
const SERVICE = 'svc';

async function sidecar(id: string, join: string[]): Promise<Sidecar> {
  const v = validateConfig({
    node: { id },
    admin: { listen: '127.0.0.1:0' },
    outbound: { enabled: false },
    services: [{ name: SERVICE, endpoints: [{ address: '127.0.0.1:9' }, { address: '127.0.0.1:10' }] }],
    gossip: { enabled: true, listen: '127.0.0.1:0', join, probeIntervalMs: 200, gossipIntervalMs: 50 },
    learning: { federated: { enabled: true, intervalMs: 500 } },
  });
  if (!v.valid) throw new Error(v.errors.join('; '));
  return startSidecar(v.result, { log: silentLogger });
}

const engineOf = (s: Sidecar): HealingEngine => (s.components.get('healing') as unknown as { engine: HealingEngine }).engine;

interface LearnBody {
  federated: { enabled: boolean; aggregate: { service: string; params: { p50Loc: number }; contributors: string[] }[]; rejected: Record<string, number>; accepted: number; baselinesSeeded: number };
}
/**
 * One request to each endpoint of the service, recorded as the proxy records it: the engine keeps signals
 * (and seeds baselines) only for services in use.
 */
const use = (s: Sidecar): void => {
  for (const ev of s.context.mesh.snapshot().services.get(SERVICE)!.endpoints) s.context.stats.ensure(ev.slot).record(Outcome.Success, 10_000, s.context.clock.now(), 200);
};
const learn = async (s: Sidecar): Promise<LearnBody> => (await (await fetch(`http://${s.addresses.admin}/v1/learn`)).json()) as LearnBody;

t.test('a freshly started sidecar adopts the mesh aggregate over gossip; hostile vectors are refused', async (t) => {
  const sidecars: Sidecar[] = [];
  const sock = createSocket('udp4');
  t.teardown(async () => {
    sock.close();
    for (const s of sidecars.reverse()) await s.close(200);
  });
  const rng = new Rng(SEED);
  // Three sidecars that have learned the service: ~10 ms, their own warmed-up baselines (set as their
  // detectors would have learned them after a minute of traffic).
  for (const id of ['a', 'b', 'c']) {
    const s = await sidecar(id, sidecars.length ? [sidecars[0]!.addresses.gossip!] : []);
    sidecars.push(s);
    const engine = engineOf(s);
    use(s);
    t.ok(await waitFor(() => engine.signalsOf(SERVICE).length === 2, 10_000) >= 0, `${id}: engine sees the service`);
    for (const sig of engine.signalsOf(SERVICE)) {
      Object.assign(sig.latencyP50, { n: 60, mean: Math.log(10_000) + 0.02 * rng.normal(), variance: 0.01 });
      Object.assign(sig.latencyP90, { n: 60, mean: Math.log(19_000) + 0.02 * rng.normal(), variance: 0.012 });
      Object.assign(sig.errors, { n: 60, mean: 0.001 });
    }
  }
  const t0 = Date.now();
  const fresh = await sidecar('fresh', [sidecars[0]!.addresses.gossip!]);
  sidecars.push(fresh);
  use(fresh);
  const engine = engineOf(fresh);
  const adopted = () => engine.signalsOf(SERVICE).length === 2 && engine.signalsOf(SERVICE).every((s) => s.latencyP50.seedN >= 0);
  const waited = await waitFor(adopted, 15_000, 50);
  t.ok(waited >= 0 && adopted(), `fresh sidecar adopted the aggregate (${Date.now() - t0} ms after it started; seed ${SEED})`);
  for (const s of engine.signalsOf(SERVICE)) {
    t.ok(Math.abs(s.latencyP50.mean - Math.log(10_000)) < 0.1, `${s.id}: seeded p50 baseline ${Math.round(Math.exp(s.latencyP50.mean))} µs`);
    t.equal(s.latencyP50.n, 30, 'trusted at once (warmupWindows)');
  }
  const body = await learn(fresh);
  const agg = body.federated.aggregate.find((a) => a.service === SERVICE);
  t.ok(agg, '/v1/learn shows the aggregate');
  t.ok(agg && ['a', 'b', 'c'].every((n) => agg.contributors.includes(n)), `contributors ${agg?.contributors}`);
  t.ok(body.federated.baselinesSeeded >= 2);

  // Hostile vectors straight to the fresh sidecar's gossip port: junk, a future version, a vector in a's
  // name signed with another key, NaN parameters (signed by that other key: refused before the signature).
  const [host, port] = [fresh.addresses.gossip!.split(':')[0]!, Number(fresh.addresses.gossip!.split(':')[1])];
  const other = generateKeyPairSync('ed25519');
  const forged = encodeVector({ node: 'a', issuedAt: Date.now(), seq: Date.now() * 1000 + 5e9, services: new Map([[SERVICE, { samples: 1e6, p50Loc: 20, p50Scale: 0, p90Loc: 20, p90Scale: 0, errorRate: 1 }]]) }, (d) => new Uint8Array(sign(null, d, other.privateKey)));
  const future = Buffer.from(forged);
  future[1] = 9;
  const nan = Buffer.from(forged);
  nan.writeFloatBE(NaN, 2 + 2 + 8 + 8 + 1 + 4 + 1 + 4);
  const before = (await learn(fresh)).federated.rejected;
  const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
  for (const body of [Buffer.from([1, 1, 200, 3]), future, forged, nan]) {
    await new Promise<void>((resolve, reject) => sock.send(encodePacket([{ type: MsgType.Learn, body }]), port, host, (err) => (err ? reject(err) : resolve())));
  }
  let after = before;
  for (let i = 0; i < 100 && sum(after) < sum(before) + 4; i++) {
    await new Promise((r) => setTimeout(r, 50));
    after = (await learn(fresh)).federated.rejected;
  }
  t.equal(after.malformed - before.malformed, 1, 'junk: malformed');
  t.equal(after.version - before.version, 1, 'future version');
  t.equal(after.bad_signature - before.bad_signature, 1, 'forged in a member\'s name: bad signature');
  t.equal(after.invalid_value - before.invalid_value, 1, 'NaN parameter');
  const still = (await learn(fresh)).federated.aggregate.find((a) => a.service === SERVICE)!;
  t.ok(Math.abs(still.params.p50Loc - Math.log(10_000)) < 0.1, 'the aggregate did not move');
  const metrics = await (await fetch(`http://${fresh.addresses.admin}/metrics`)).text();
  t.match(metrics, /meshmedic_learn_federated_vectors_total\{result="refused"\} [1-9]/);
  t.match(metrics, /meshmedic_learn_federated_contributors [3-9]/);
});
