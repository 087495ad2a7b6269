// The scan for opted-in pods running without the sidecar: the pure check, then the controller against
// the local API server (pagination, Events, the gauge, once-per-pod logs, API errors rate-limited, and
// the scan loop started by `meshmedic webhook`).
import t from 'tap';
import { Registry } from '../../src/admin/metrics-registry.js';
import { FakeApiServer } from './fake-apiserver.js';
import { checkPodSidecar, namespaceOptIn, type NamespaceOptIn } from '../../src/k8s/sidecar-check.js';
import { createKubeApi, listAll, type KubeApi } from '../../src/k8s/api.js';
import { EVENT_REASON, sidecarMissingEvent, startMissingSidecarWatch } from '../../src/k8s/missing-sidecars.js';
import { createLogger } from '../../src/core/log.js';

const settings = { containerName: 'meshmedic', excludeNamespaces: ['kube-system', 'kube-public', 'kube-node-lease', 'meshmedic'] };

function pod(namespace: string, name: string, o: { labels?: Record<string, string>; annotations?: Record<string, string>; sidecar?: 'native' | 'classic'; hostNetwork?: boolean; phase?: string; deleting?: boolean } = {}): any {
  const sidecar = { name: 'meshmedic', image: 'meshmedic/meshmedic:0.1.0' };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace,
      uid: `uid-${namespace}-${name}`,
      labels: { app: name, ...o.labels },
      ...(o.annotations ? { annotations: o.annotations } : {}),
      ...(o.deleting ? { deletionTimestamp: '2026-12-06T10:00:00Z' } : {}),
    },
    spec: {
      ...(o.sidecar === 'native' ? { initContainers: [{ ...sidecar, restartPolicy: 'Always' }] } : {}),
      containers: [{ name: 'app', image: 'app:1' }, ...(o.sidecar === 'classic' ? [sidecar] : [])],
      ...(o.hostNetwork ? { hostNetwork: true } : {}),
    },
    status: { phase: o.phase ?? 'Running' },
  };
}

const namespace = (name: string, inject?: string) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, namespace: '', labels: { 'kubernetes.io/metadata.name': name, ...(inject === undefined ? {} : { 'meshmedic.io/inject': inject }) } } });

t.test('the check: opted in and bare, or why not', async (t) => {
  const cases: [string, unknown, NamespaceOptIn, boolean | RegExp][] = [
    ['namespace opted in, no sidecar', pod('shop', 'a'), 'in', true],
    ['native sidecar present', pod('shop', 'a', { sidecar: 'native' }), 'in', /has the sidecar/],
    ['classic sidecar present', pod('shop', 'a', { sidecar: 'classic' }), 'in', /has the sidecar/],
    ['pod label opt-in in an unlabelled namespace', pod('legacy', 'a', { labels: { 'meshmedic.io/inject': 'true' } }), 'unlabelled', true],
    ['pod label "enabled"', pod('legacy', 'a', { labels: { 'meshmedic.io/inject': 'enabled' } }), 'unlabelled', true],
    ['annotation alone does not opt in', pod('legacy', 'a', { annotations: { 'meshmedic.io/inject': 'true' } }), 'unlabelled', /not opted in/],
    ['nothing opts in', pod('legacy', 'a'), 'unlabelled', /not opted in/],
    ['namespace opted out wins over the pod label', pod('off', 'a', { labels: { 'meshmedic.io/inject': 'true' } }), 'out', /not opted in/],
    ['pod label "false"', pod('shop', 'a', { labels: { 'meshmedic.io/inject': 'false' } }), 'in', /opted out/],
    ['pod annotation "false"', pod('shop', 'a', { annotations: { 'meshmedic.io/inject': 'false' } }), 'in', /opted out/],
    ['hostNetwork', pod('shop', 'a', { hostNetwork: true }), 'in', /hostNetwork/],
    ['excluded namespace', pod('kube-system', 'a'), 'in', /excluded/],
    ['the webhook\'s own namespace', pod('meshmedic', 'a'), 'in', /excluded/],
    ['finished', pod('shop', 'a', { phase: 'Succeeded' }), 'in', /finished/],
    ['being deleted', pod('shop', 'a', { deleting: true }), 'in', /being deleted/],
  ];
  for (const [name, p, ns, want] of cases) {
    const v = checkPodSidecar(p, ns, settings);
    if (want === true) t.ok(v.missing, name);
    else t.match(v.missing ? 'missing' : v.reason, want as RegExp, name);
  }
  for (const odd of [null, 1, 'x', [], {}, { metadata: { name: 'a', namespace: 'b' } }, { metadata: { name: 'a', namespace: 'b', uid: 'u' }, spec: { containers: 'x', initContainers: [null, 1] } }]) {
    t.doesNotThrow(() => checkPodSidecar(odd, 'in', settings), `no throw on ${JSON.stringify(odd)}`);
  }
  t.equal(namespaceOptIn({ 'meshmedic.io/inject': 'true' }), 'in');
  t.equal(namespaceOptIn({ 'meshmedic.io/inject': 'enabled' }), 'in');
  t.equal(namespaceOptIn({ 'meshmedic.io/inject': 'disabled' }), 'out');
  t.equal(namespaceOptIn({ 'meshmedic.io/inject': 'TRUE' }), 'out', 'as the selector: case-sensitive, not selected');
  t.equal(namespaceOptIn({}), 'unlabelled');
  t.equal(namespaceOptIn(null), 'unlabelled');
});

t.test('the Event: valid name, on the pod, reason and type', async (t) => {
  const ev = sidecarMissingEvent({ namespace: 'shop', name: 'reviews-v1-5c7d9b-x2x9z', uid: '6F1C2A3B-0000-4000-8000-000000000001' }, 'meshmedic-webhook-7d9f-abcde', Date.UTC(2026, 11, 6, 10, 0, 0, 123)) as any;
  t.match(ev.metadata.name, /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
  t.equal(ev.metadata.name, 'reviews-v1-5c7d9b-x2x9z.meshmedic-6f1c2a3b0000');
  t.same(ev.involvedObject, { apiVersion: 'v1', kind: 'Pod', namespace: 'shop', name: 'reviews-v1-5c7d9b-x2x9z', uid: '6F1C2A3B-0000-4000-8000-000000000001' });
  t.equal(ev.reason, EVENT_REASON);
  t.equal(ev.type, 'Warning');
  t.equal(ev.firstTimestamp, '2026-12-06T10:00:00Z', 'RFC 3339 seconds');
  const long = sidecarMissingEvent({ namespace: 'shop', name: 'a'.repeat(253), uid: 'u' }, 'x', 0) as any;
  t.ok(long.metadata.name.length <= 253, 'a 253-character pod name still gives a valid Event name');
});

t.test('listAll: pages, and bounds on a server that never ends', async (t) => {
  const looping: KubeApi = { server: 'x', request: async () => ({ status: 200, body: { items: [1], metadata: { continue: 'same' } } }) };
  const pages: unknown[][] = [];
  await t.rejects(async () => { for await (const p of listAll(looping, '/api/v1/pods', {}, 10)) pages.push(p); }, /repeated its continue token/);
  t.equal(pages.length, 2, 'stopped at the repeat');
  let n = 0;
  const endless: KubeApi = { server: 'x', request: async () => ({ status: 200, body: { items: [], metadata: { continue: `c${n++}` } } }) };
  await t.rejects(async () => { for await (const _ of listAll(endless, '/api/v1/pods', {}, 10, 5)) void _; }, /more than 5 pages of 10/);
  const notList: KubeApi = { server: 'x', request: async () => ({ status: 200, body: { kind: 'Status' } }) };
  await t.rejects(async () => { for await (const _ of listAll(notList, '/api/v1/pods', {})) void _; }, /not a list/);
  const forbidden: KubeApi = { server: 'x', request: async () => ({ status: 403, body: { kind: 'Status', reason: 'Forbidden', message: 'pods is forbidden: User "system:serviceaccount:meshmedic:meshmedic-webhook" cannot list resource "pods"' } }) };
  await t.rejects(async () => { for await (const _ of listAll(forbidden, '/api/v1/pods', {})) void _; }, /HTTP 403 Forbidden: pods is forbidden/);
});

t.test('a scan against the API server: pagination, events once, the gauge, logs once per pod', async (t) => {
  const api = new FakeApiServer();
  await api.start();
  t.teardown(() => api.stop());
  api.putObject('namespaces', namespace('shop', 'true'));
  api.putObject('namespaces', namespace('cart', 'enabled'));
  api.putObject('namespaces', namespace('legacy'));
  api.putObject('namespaces', namespace('off', 'false'));
  api.putObject('namespaces', namespace('kube-system', 'true'));
  const pods = [
    pod('shop', 'bare-1'), pod('shop', 'bare-2'), pod('shop', 'injected', { sidecar: 'native' }), pod('shop', 'opted-out', { labels: { 'meshmedic.io/inject': 'false' } }),
    pod('shop', 'host', { hostNetwork: true }), pod('shop', 'done', { phase: 'Succeeded' }), pod('shop', 'labelled-too', { labels: { 'meshmedic.io/inject': 'true' } }),
    pod('cart', 'classic', { sidecar: 'classic' }), pod('cart', 'bare-3'),
    pod('legacy', 'labelled', { labels: { 'meshmedic.io/inject': 'true' } }), pod('legacy', 'plain'), pod('legacy', 'annotated', { annotations: { 'meshmedic.io/inject': 'true' } }),
    pod('off', 'labelled', { labels: { 'meshmedic.io/inject': 'true' } }), pod('kube-system', 'coredns'),
  ];
  for (const p of pods) api.putObject('pods', p);
  const lines: string[] = [];
  const registry = new Registry();
  const watch = startMissingSidecarWatch({
    api: createKubeApi({ server: api.url, token: () => 'sa-token' }),
    settings,
    intervalMs: 3_600_000,
    initialDelayMs: 3_600_000,
    pageSize: 2,
    registry,
    log: createLogger('info', (l) => lines.push(l)),
    reportingInstance: 'meshmedic-webhook-0',
  });
  t.teardown(() => watch.close());
  const expected = ['cart/bare-3', 'legacy/labelled', 'shop/bare-1', 'shop/bare-2', 'shop/labelled-too'];

  const first = await watch.scan();
  t.ok(first.ok, first.error ?? 'scan ok');
  t.same(first.missing.map((p) => `${p.namespace}/${p.name}`).sort(), expected);
  t.equal(first.newlyFound, 5);
  t.equal(first.eventsPosted, 5);
  const lists = api.requests.filter((r) => r.method === 'GET');
  t.ok(lists.every((r) => r.query.get('limit') === '2'), 'every list is paginated');
  t.ok(lists.some((r) => r.query.get('continue')), 'and follows continue tokens');
  t.ok(lists.every((r) => r.authorization === 'Bearer sa-token'), 'with the service-account token');
  t.notOk(lists.some((r) => r.path === '/api/v1/namespaces/kube-system/pods' || r.path === '/api/v1/namespaces/legacy/pods'), 'only opted-in namespaces are listed whole');
  t.ok(lists.some((r) => r.path === '/api/v1/pods' && r.query.get('labelSelector') === 'meshmedic.io/inject in (true,enabled)'), 'pods opted in by label, cluster-wide, by selector');

  const events = [...api.objects.events.values()] as any[];
  t.same(events.map((e) => `${e.involvedObject.namespace}/${e.involvedObject.name}`).sort(), expected, 'one Event per bare pod');
  for (const e of events) {
    t.equal(e.reason, 'MeshmedicSidecarMissing');
    t.equal(e.type, 'Warning');
    t.equal(e.involvedObject.uid, `uid-${e.involvedObject.namespace}-${e.involvedObject.name}`);
    t.equal(e.reportingInstance, 'meshmedic-webhook-0');
  }
  const warnings = () => lines.filter((l) => l.includes('runs without the meshmedic sidecar'));
  t.equal(warnings().length, 5, 'one warning per pod');
  t.match(await registry.metrics(), /meshmedic_webhook_pods_missing_sidecar 5\n/);

  const posts = api.requests.filter((r) => r.method === 'POST').length;
  const second = await watch.scan();
  t.equal(second.newlyFound, 0);
  t.equal(api.requests.filter((r) => r.method === 'POST').length, posts, 'no Event again for the same pods');
  t.equal(warnings().length, 5, 'no warning again');

  // Two are fixed (restarted with the sidecar, or deleted); a new bare pod appears, already reported by
  // another webhook replica (its Event exists).
  api.putObject('pods', pod('shop', 'bare-1', { sidecar: 'native' }));
  api.deleteObject('pods', 'cart', 'bare-3');
  const fresh = pod('shop', 'bare-4');
  api.putObject('pods', fresh);
  api.putObject('events', sidecarMissingEvent({ namespace: 'shop', name: 'bare-4', uid: fresh.metadata.uid }, 'meshmedic-webhook-1', Date.now()) as any);
  const third = await watch.scan();
  t.same(third.missing.map((p) => p.name).sort(), ['bare-2', 'bare-4', 'labelled', 'labelled-too']);
  t.equal(third.newlyFound, 1);
  t.match(await registry.metrics(), /meshmedic_webhook_pods_missing_sidecar 4\n/);
  t.match(await registry.metrics(), /meshmedic_webhook_missing_sidecar_events_total\{result="exists"\} 1/, 'a 409 counts as reported');
  t.equal((api.objects.events.get('shop/bare-4.meshmedic-uidshopbare4') as any)?.reportingInstance, 'meshmedic-webhook-1', 'the other replica\'s Event is left as it was');
  const fourth = await watch.scan();
  t.equal(fourth.eventsPosted, 0, 'and is not posted again');
});

t.test('API errors: logged with a rate limit, retried, never thrown; the gauge keeps its last value', async (t) => {
  const api = new FakeApiServer();
  await api.start();
  t.teardown(() => api.stop());
  api.putObject('namespaces', namespace('shop', 'true'));
  api.putObject('pods', pod('shop', 'bare'));
  const lines: string[] = [];
  let clock = 1_000_000;
  const registry = new Registry();
  const watch = startMissingSidecarWatch({
    api: createKubeApi({ server: api.url, timeoutMs: 2000 }),
    settings,
    intervalMs: 3_600_000,
    initialDelayMs: 3_600_000,
    registry,
    log: createLogger('info', (l) => lines.push(l)),
    errorLogIntervalMs: 60_000,
    now: () => clock,
  });
  t.teardown(() => watch.close());
  const errorLines = () => lines.filter((l) => l.includes('"level":"warn"') && !l.includes('runs without'));

  // The Event cannot be created (the API refuses, then the connection drops): retried at each scan.
  api.faults.push({ match: /^POST /, status: 500, count: 1 }, { match: /^POST /, status: 0, count: 1, reset: true });
  const a = await watch.scan();
  t.ok(a.ok, 'the scan itself worked');
  t.equal(api.objects.events.size, 0);
  t.equal(errorLines().length, 1, 'one error line');
  t.match(errorLines()[0], /cannot create the Event.*HTTP 500 InternalError: scripted failure/);
  const b = await watch.scan();
  t.equal(b.eventsPosted, 1, 'retried');
  t.equal(api.objects.events.size, 0);
  t.equal(errorLines().length, 1, 'the second failure within the minute is counted, not logged');
  const c = await watch.scan();
  t.equal(api.objects.events.size, 1, 'created once the API answers');
  t.equal(c.newlyFound, 0, 'the pod was logged once only');
  t.match(await registry.metrics(), /meshmedic_webhook_pods_missing_sidecar 1\n/);

  // Lists fail: 500, a reset, a 403; the scan reports not-ok and nothing is lost.
  api.faults.push({ match: /^GET \/api\/v1\/namespaces$/, status: 500, count: 1 }, { match: /^GET \/api\/v1\/namespaces\/shop\/pods$/, status: 0, count: 1, reset: true }, { match: /^GET \/api\/v1\/pods$/, status: 403, count: 1 });
  api.deleteObject('pods', 'shop', 'bare');
  for (const why of [/HTTP 500/, /ECONNRESET|socket hang up/, /HTTP 403/]) {
    const r = await watch.scan();
    t.equal(r.ok, false);
    t.match(r.error, why);
  }
  t.match(await registry.metrics(), /meshmedic_webhook_pods_missing_sidecar 1\n/, 'a failed scan does not clear the gauge');
  t.match(await registry.metrics(), /meshmedic_webhook_missing_sidecar_scans_total\{result="error"\} 3/);
  t.equal(errorLines().length, 1, 'still within the minute: no new line');
  clock += 61_000;
  api.faults.push({ match: /^GET \/api\/v1\/namespaces$/, status: 500, count: 1 });
  await watch.scan();
  t.equal(errorLines().length, 2, 'a minute later, one more line');
  t.match(errorLines()[1], /scan for pods missing the sidecar failed.*"suppressedSinceLast":4/, 'saying how many it held back');
  const d = await watch.scan();
  t.ok(d.ok);
  t.equal(d.missing.length, 0, 'the pod is gone');
  t.match(await registry.metrics(), /meshmedic_webhook_pods_missing_sidecar 0\n/);

  // Garbage in a list answer: skipped, no throw.
  api.putObject('pods', { metadata: { name: 'weird', namespace: 'shop' }, spec: 'x' } as any);
  const e = await watch.scan();
  t.ok(e.ok);
  t.equal(e.missing.length, 0);
});

t.test('the scan loop runs on its interval and stops on close', async (t) => {
  const api = new FakeApiServer();
  await api.start();
  t.teardown(() => api.stop());
  api.putObject('namespaces', namespace('shop', 'true'));
  api.putObject('pods', pod('shop', 'bare'));
  const watch = startMissingSidecarWatch({ api: createKubeApi({ server: api.url }), settings, intervalMs: 1000, initialDelayMs: 0 });
  const deadline = Date.now() + 20_000;
  // Two complete scans (each lists namespaces once) prove the loop re-arms itself.
  while (api.requests.filter((r) => r.path === '/api/v1/namespaces').length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  t.ok(api.requests.filter((r) => r.path === '/api/v1/namespaces').length >= 2, 'scanned twice');
  t.equal(api.objects.events.size, 1, 'reported once');
  await watch.close();
  const after = api.requests.length;
  await new Promise((r) => setTimeout(r, 1500));
  t.equal(api.requests.length, after, 'no scan after close');
});
