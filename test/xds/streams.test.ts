// The stream state machine without sockets: a slow client (transport full) holds at most one pending
// recomputation, and gets only the latest state once it drains; failures end the stream once.
import t from 'tap';
import { systemClock } from '../../src/core/clock.js';
import { MeshState } from '../../src/mesh/state.js';
import { SnapshotCache } from '../../src/xds/cache.js';
import { XdsGenerator } from '../../src/xds/generator.js';
import { DEFAULT_BUILD_OPTIONS } from '../../src/xds/resources.js';
import { DEFAULT_LIMITS } from '../../src/xds/server.js';
import { SotwStream, type StreamEnv, type StreamTransport } from '../../src/xds/streams.js';
import { decodeMessage } from '../../src/xds/proto.js';
import { ENDPOINT_TYPE } from '../../src/xds/types.js';
import { spec } from './helpers.js';

function setup() {
  const mesh = new MeshState(systemClock);
  mesh.setServices([{ spec: { name: 's', endpoints: [1, 2, 3, 4, 5].map((port) => spec('s', { port })) } }]);
  const cache = new SnapshotCache();
  const gen = new XdsGenerator(cache, { build: { grpc: DEFAULT_BUILD_OPTIONS, envoy: { ...DEFAULT_BUILD_OPTIONS, flavor: 'envoy' } } });
  gen.update(mesh.snapshot());
  mesh.subscribe(() => gen.update(mesh.snapshot()));
  const frames: Buffer[] = [];
  const failures: string[] = [];
  let writable = true;
  let drain: (() => void) | undefined;
  const transport: StreamTransport = {
    write: (f) => {
      frames.push(f);
      return writable;
    },
    onDrain: (fn) => {
      drain = fn;
    },
    fail: (_code, details) => failures.push(details),
  };
  const env: StreamEnv = {
    cache, limits: DEFAULT_LIMITS, controlPlaneId: 'test', flavorOf: () => 'grpc', activate: (f) => gen.activate(f),
    hooks: { sent: () => {}, ack: () => {}, nack: () => {}, refused: () => {} }, now: () => Date.now(),
  };
  const stream = new SotwStream(env, transport, 'test-peer');
  return { mesh, stream, frames, failures, block: () => (writable = false), drain: () => { writable = true; const d = drain; drain = undefined; d?.(); } };
}

const healthOf = (frame: Buffer) => {
  const r = decodeMessage('envoy.service.discovery.v3.DiscoveryResponse', frame) as { resources: { endpoints: { lb_endpoints: { health_status: string; endpoint: { address: { socket_address: { port_value: number } } } }[] }[] }[] };
  return Object.fromEntries(r.resources[0]!.endpoints.flatMap((l) => l.lb_endpoints).map((e) => [e.endpoint.address.socket_address.port_value, e.health_status ?? 'UNKNOWN']));
};

t.test('a slow client gets the latest state once, not a queue of every change', async (t) => {
  const x = setup();
  x.stream.handle({ node: { id: 'n', cluster: '', user_agent_name: 'grpc' }, type_url: ENDPOINT_TYPE, resource_names: ['s'], version_info: '', response_nonce: '' });
  t.equal(x.frames.length, 1, 'first response');
  x.block();
  const eject = (port: number, action: 'eject' | 'restore') => x.mesh.apply({ action, target: `s/127.0.0.1:${port}`, reason: 't', source: 'operator', at: Date.now(), evidence: {} });
  // The first write after blocking still goes out (it is what reports the full buffer); later ones wait.
  x.stream.handle({ type_url: ENDPOINT_TYPE, resource_names: ['s'], version_info: 'x', response_nonce: '1' }); // stale nonce: ignored
  eject(1, 'eject');
  const afterFirst = x.frames.length;
  for (let i = 0; i < 50; i++) eject(2, i % 2 ? 'restore' : 'eject');
  eject(3, 'eject');
  t.equal(x.frames.length, afterFirst, `while blocked, 51 more changes write nothing (${afterFirst} frames so far)`);
  x.drain();
  t.equal(x.frames.length, afterFirst + 1, 'on drain: exactly one response');
  t.same(healthOf(x.frames.at(-1)!), { 1: 'UNHEALTHY', 2: 'HEALTHY', 3: 'UNHEALTHY', 4: 'HEALTHY', 5: 'HEALTHY' }, 'carrying the latest state (2 of 5 out: no panic)');
});

t.test('a failed stream fails once and ignores later requests', async (t) => {
  const x = setup();
  x.stream.handle({ type_url: '', resource_names: [], version_info: '', response_nonce: '' });
  x.stream.handle({ type_url: ENDPOINT_TYPE, resource_names: ['s'], version_info: '', response_nonce: '' });
  t.equal(x.failures.length, 1);
  t.equal(x.frames.length, 0, 'nothing is sent after the failure');
});
