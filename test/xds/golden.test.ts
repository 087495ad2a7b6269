// Golden fixtures: the xDS snapshot for a sample mesh (both client flavors), the rendered Istio example in
// mesh-config/, and the Envoy bootstrap and IstioOperator examples checked against their schemas.
// Regenerate after an intended change with `npm run golden:xds` (UPDATE_GOLDEN=1); during npm test a missing
// fixture fails instead of being written.
import t, { type Test } from 'tap';
import { readFileSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { IstioOperator } from '@kubernetes-models/istio/install.istio.io/v1alpha1/IstioOperator';
import { systemClock } from '../../src/core/clock.js';
import { MeshState } from '../../src/mesh/state.js';
import { buildAll, DEFAULT_BUILD_OPTIONS } from '../../src/xds/resources.js';
import { renderIstio, DEFAULT_ISTIO_OPTIONS } from '../../src/xds/istio.js';
import { encodeMessage, loadProto, typeNameOf } from '../../src/xds/proto.js';
import { spec } from './helpers.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const update = process.env.UPDATE_GOLDEN === '1';

function sampleMesh(): MeshState {
  const m = new MeshState({ ...systemClock, now: () => 1_700_000_000_000 });
  m.setServices([
    { spec: { name: 'checkout', endpoints: [
      spec('checkout', { port: 8080, host: '10.0.0.1', locality: { region: 'eu-west', zone: 'eu-west-1a' } }),
      spec('checkout', { port: 8080, host: '10.0.0.2', locality: { region: 'eu-west', zone: 'eu-west-1b' } }),
      spec('checkout', { port: 8080, host: '10.1.0.1', priority: 1, locality: { region: 'eu-central', zone: 'eu-central-1a' } }),
    ] } },
    { spec: { name: 'reviews', endpoints: [
      spec('reviews', { port: 9080, host: '10.0.1.1', labels: { version: 'v1' }, locality: { region: 'eu-west', zone: 'eu-west-1a' } }),
      spec('reviews', { port: 9080, host: '10.0.1.2', labels: { version: 'v2' }, locality: { region: 'eu-west', zone: 'eu-west-1a' } }),
      spec('reviews', { port: 9080, host: '10.0.1.3', labels: { version: 'v2' }, locality: { region: 'eu-west', zone: 'eu-west-1b' } }),
    ] } },
  ]);
  const at = 1_700_000_000_000;
  m.apply({ action: 'eject', target: 'checkout/10.0.0.2:8080', reason: 'consecutive_5xx', source: 'local', at, evidence: {} });
  m.apply({ action: 'weight', target: 'reviews/10.0.1.3:9080', weight: 0.4, reason: 'latency_peer', source: 'local', at, evidence: {} });
  return m;
}

function golden(t: Test, file: string, actual: string): void {
  const full = path.join(root, file);
  // Fixtures are written only on request (npm run golden:xds), never during npm test: a missing one fails.
  if (update) {
    mkdirSync(path.dirname(full), { recursive: true });
    writeFileSync(full, actual);
  }
  if (!existsSync(full)) {
    t.fail(`${file} is missing: run \`npm run golden:xds\` (UPDATE_GOLDEN=1) to write it, then review and commit it`);
    return;
  }
  t.equal(readFileSync(full, 'utf8'), actual, `${file} matches the current output`);
}

t.test('xDS snapshot for a sample mesh, proxyless and Envoy', async (t) => {
  const snap = sampleMesh().snapshot();
  for (const flavor of ['grpc', 'envoy'] as const) {
    const all = buildAll(snap.services.values(), { ...DEFAULT_BUILD_OPTIONS, flavor, endpointLocalities: flavor === 'grpc' });
    const obj = Object.fromEntries([...all].map(([type, m]) => [type, Object.fromEntries(m)]));
    for (const [type, m] of all) for (const [, r] of m) encodeMessage(typeNameOf(type), r);
    golden(t, `test/xds/fixtures/snapshot-${flavor}.json`, JSON.stringify(obj, null, 2) + '\n');
  }
});

t.test('rendered Istio example in mesh-config/istio', async (t) => {
  golden(t, 'mesh-config/istio/rendered-example.yaml', '# meshmedic render istio, for the sample mesh of test/xds/golden.test.ts (checkout with one endpoint ejected,\n# reviews v1/v2 with one v2 endpoint de-weighted; VirtualServices shown, as with xds.istio.virtualServices: true).\n# Generated: do not edit by hand.\n' + renderIstio(sampleMesh().snapshot(), { ...DEFAULT_ISTIO_OPTIONS, hostSuffix: '.default.svc.cluster.local', virtualServices: true }));
});

t.test('the Envoy bootstrap example is a valid v3 Bootstrap', async (t) => {
  loadProto('envoy/config/bootstrap/v3/bootstrap.proto');
  // Envoy reads YAML through the proto3 JSON mapping, where a Duration is a string such as "1s".
  const durations = (v: unknown): unknown => {
    if (typeof v === 'string' && /^\d+(\.\d+)?s$/.test(v)) return { seconds: Math.floor(parseFloat(v)), nanos: Math.round((parseFloat(v) % 1) * 1e9) };
    if (Array.isArray(v)) return v.map(durations);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, durations(x)]));
    return v;
  };
  const doc = durations(parse(readFileSync(path.join(root, 'mesh-config/envoy/bootstrap.yaml'), 'utf8'))) as Record<string, unknown>;
  t.doesNotThrow(() => encodeMessage('envoy.config.bootstrap.v3.Bootstrap', doc), 'every field exists in envoy.config.bootstrap.v3.Bootstrap');
  t.throws(() => encodeMessage('envoy.config.bootstrap.v3.Bootstrap', { ...doc, dynamic_resourcez: {} }), /dynamic_resourcez/, 'a misspelt field would be caught');
});

t.test('the IstioOperator example passes the schema', async (t) => {
  const docs = parseAllDocuments(readFileSync(path.join(root, 'mesh-config/istio/meshconfig-configsources.yaml'), 'utf8')).map((d) => d.toJSON()).filter(Boolean);
  t.equal(docs.length, 1);
  t.doesNotThrow(() => new IstioOperator(docs[0]).validate());
  t.match(JSON.stringify(docs[0]), /xds:\/\/meshmedic/);
});
