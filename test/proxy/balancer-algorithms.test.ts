// proxy.balancer: Envoy's ROUND_ROBIN and LEAST_REQUEST next to the default Peak-EWMA choice (used by
// the benchmark's Envoy-faithful lanes), and the config value validated.
import t from 'tap';
import { VirtualClock } from '../../src/core/clock.js';
import { endpointId, NO_LOCALITY, type EndpointSpec } from '../../src/core/types.js';
import { MeshState, type ServiceView } from '../../src/mesh/state.js';
import { Balancer, type BalancerAlgorithm } from '../../src/proxy/balancer.js';
import { validateConfig } from '../../src/config/load.js';
import { seededRandom } from '../../src/core/random.js';

const ep = (port: number): EndpointSpec => ({ id: endpointId('svc', '127.0.0.1', port), service: 'svc', host: '127.0.0.1', port, locality: NO_LOCALITY, priority: 0, weight: 1, labels: {} });

function setup(n: number, algorithm: BalancerAlgorithm) {
  const clock = new VirtualClock();
  const mesh = new MeshState(clock);
  mesh.setServices([{ spec: { name: 'svc', endpoints: Array.from({ length: n }, (_, i) => ep(9000 + i)) } }]);
  const bal = new Balancer(clock, { algorithm, random: seededRandom(7) });
  const view = (): ServiceView => mesh.snapshot().services.get('svc')!;
  return { bal, view };
}

t.test('round-robin: every endpoint in turn, exactly evenly, whatever the latency seen', async (t) => {
  const { bal, view } = setup(5, 'round-robin');
  const v = view();
  const counts = new Map<number, number>();
  let prev = -1;
  for (let i = 0; i < 1000; i++) {
    const e = bal.pick(v)!;
    t.not(e.spec.port, prev, 'never the same endpoint twice in a row');
    prev = e.spec.port;
    counts.set(e.spec.port, (counts.get(e.spec.port) ?? 0) + 1);
    bal.begin(e.slot);
    bal.observe(e.slot, e.spec.port === 9000 ? 500 : 5); // a slow endpoint is not avoided
    bal.end(e.slot);
  }
  t.same([...counts.values()], [200, 200, 200, 200, 200]);
  const avoided = bal.pick(v, v.endpoints[(prev - 9000 + 1) % 5]!.slot)!;
  t.not(avoided.spec.port, (prev - 9000 + 1) % 5 + 9000, 'an endpoint that just failed to connect is skipped');
});

t.test('least-request: of two choices, the one with fewer requests in flight', async (t) => {
  const { bal, view } = setup(2, 'least-request');
  const v = view();
  bal.begin(v.endpoints[0]!.slot);
  bal.begin(v.endpoints[0]!.slot);
  for (let i = 0; i < 50; i++) t.equal(bal.pick(v)!.spec.port, 9001);
  // Latency plays no part: the slow endpoint with nothing in flight still wins.
  bal.observe(v.endpoints[1]!.slot, 1000);
  t.equal(bal.pick(v)!.spec.port, 9001);
});

t.test('proxy.balancer: the default is p2c-peak-ewma; an unknown value is named', async (t) => {
  const ok = validateConfig({});
  t.ok(ok.valid && ok.result.proxy.balancer === 'p2c-peak-ewma');
  const bad = validateConfig({ proxy: { balancer: 'random' } });
  t.notOk(bad.valid);
  if (!bad.valid) t.match(bad.errors.join("\n"), /proxy\/balancer.*random/);
});
