// The sidecar's Kubernetes component: discovery into the mesh beside the config's static services,
// and pod-annotation changes handed to a reconfigurable healing component.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/log.js';
import { validateConfig } from '../../src/config/load.js';
import { MeshState } from '../../src/mesh/state.js';
import type { Component, SidecarContext } from '../../src/runtime/context.js';
import { discoveryNamespaces, kubernetesComponent, kubernetesEnabled } from '../../src/k8s/component.js';
import { formatDownwardAnnotations, loadSidecarConfig } from '../../src/k8s/podinfo.js';
import { FakeApiServer, endpointSlice, service } from './fake-apiserver.js';

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

t.test('enabled only when the injector asked for it', async (t) => {
  t.equal(kubernetesEnabled({}), false);
  t.equal(kubernetesEnabled({ MESHMEDIC_K8S_DISCOVERY: 'true' }), true);
  t.equal(kubernetesEnabled({ MESHMEDIC_POD_ANNOTATIONS: '/etc/meshmedic/podinfo/annotations' }), true);
});

t.test('discovery is scoped to the pod\'s namespace unless told otherwise', async (t) => {
  t.same(discoveryNamespaces({ POD_NAMESPACE: 'shop' }), ['shop'], 'default: own namespace only');
  t.same(discoveryNamespaces({ POD_NAMESPACE: 'shop', MESHMEDIC_K8S_NAMESPACES: 'payments, shop,ledger' }), ['shop', 'payments', 'ledger'], 'plus the listed ones, once each');
  t.same(discoveryNamespaces({ POD_NAMESPACE: 'shop', MESHMEDIC_K8S_NAMESPACES: 'payments,*' }), [], '* = cluster-wide');
  t.same(discoveryNamespaces({}), [], 'outside a pod with no list: cluster-wide');
  t.same(discoveryNamespaces({ MESHMEDIC_K8S_NAMESPACES: 'a' }), ['a']);
});

t.test('discovery and annotation changes in a running sidecar', { timeout: 60_000 }, async (t) => {
  const api = new FakeApiServer();
  await api.start();
  t.teardown(() => api.stop());
  api.upsert('services', service('shop', 'reviews', [{ port: 9080 }]));
  api.upsert('endpointslices', endpointSlice('shop', 'reviews', 'a', [{ port: 8080 }], [{ ip: '10.1.0.1' }]));
  const dir = mkdtempSync(join(tmpdir(), 'mm-k8s-comp-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'annotations');
  writeFileSync(file, formatDownwardAnnotations({ 'meshmedic.io/policy': 'meshmedic' }));

  // As `meshmedic run` loads it in a pod: mesh file, then the pod's annotations.
  writeFileSync(join(dir, 'mesh.yaml'), 'services:\n  - name: static\n    endpoints: [{address: "127.0.0.1:9"}]\n');
  const cfg = loadSidecarConfig({ configFile: join(dir, 'mesh.yaml'), annotationsFile: file, env: {} }).config;
  if (!cfg.valid) throw new Error(cfg.errors.join('; '));
  const mesh = new MeshState(systemClock);
  mesh.setServices([{ spec: { name: 'static', endpoints: [{ id: 'static/127.0.0.1:9', service: 'static', host: '127.0.0.1', port: 9, locality: { region: '', zone: '', subzone: '' }, priority: 0, weight: 1, labels: {} }] } }]);
  const reconfigured: unknown[] = [];
  const healing = { name: 'healing', close: async () => {}, reconfigure: (h: unknown) => reconfigured.push(h) };
  const ctx = { config: cfg.result, clock: systemClock, mesh, log: silentLogger, components: new Map<string, Component>([['healing', healing]]) } as unknown as SidecarContext;
  const comp = await kubernetesComponent({ env: { MESHMEDIC_K8S_DISCOVERY: 'true' }, server: api.url, annotationsFile: file, pollMs: 50 })(ctx);
  t.teardown(() => comp.close());
  await until('discovered', () => mesh.snapshot().services.has('reviews.shop'));
  t.same(reconfigured, [], 'start-time annotations already in the config: nothing to re-apply');
  t.ok(mesh.snapshot().endpoints.has('static/127.0.0.1:9'), 'static services kept');
  t.ok(mesh.snapshot().endpoints.has('reviews.shop/10.1.0.1:8080'));

  writeFileSync(join(dir, 'next'), formatDownwardAnnotations({ 'meshmedic.io/policy': 'envoy-default', 'meshmedic.io/consecutive-5xx': '0' }));
  renameSync(join(dir, 'next'), file);
  await until('reconfigured', () => reconfigured.length > 0);
  t.match(reconfigured[0], { policy: 'envoy-default' });
  t.notMatch(reconfigured[0], { consecutive: { errors5xx: 0 } }, 'the bad value was dropped');
  await comp.close();
  await until('watches closed', () => api.watchers('services') === 0);
});

t.test('start-time annotations the loader did not apply are applied at start', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mm-k8s-comp2-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'annotations');
  writeFileSync(file, formatDownwardAnnotations({ 'meshmedic.io/policy': 'none' }));
  const cfg = validateConfig({});
  if (!cfg.valid) throw new Error(cfg.errors.join('; '));
  const reconfigured: any[] = [];
  const healing = { name: 'healing', close: async () => {}, reconfigure: (h: unknown) => reconfigured.push(h) };
  const ctx = { config: cfg.result, clock: systemClock, mesh: new MeshState(systemClock), log: silentLogger, components: new Map<string, Component>([['healing', healing]]) } as unknown as SidecarContext;
  const comp = await kubernetesComponent({ env: {}, annotationsFile: file, pollMs: 50 })(ctx);
  t.teardown(() => comp.close());
  t.equal(reconfigured.length, 1);
  t.equal(reconfigured[0].policy, 'none');
});
