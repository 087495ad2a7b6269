// kubeconfig → API target: the current context's cluster and user (token, token file, client
// certificate, basic auth, CA), relative file paths, and a clear MM_ERR_K8S_CONFIG for what is missing or
// unsupported (exec plugins, auth providers).
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { readFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { kubeconfigTarget } from '../../src/k8s/kubeconfig.js';
import { startDiscovery } from '../../src/k8s/discovery.js';
import { systemClock } from '../../src/core/clock.js';
import { MeshState } from '../../src/mesh/state.js';
import { hasOpenssl, makeSelfSignedCert } from '../helpers/openssl.js';
import { endpointSlice, service } from './fake-apiserver.js';

const dir = mkdtempSync(join(tmpdir(), 'mm-kubeconfig-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, doc: unknown): string {
  const file = join(dir, name);
  writeFileSync(file, typeof doc === 'string' ? doc : stringify(doc));
  return file;
}

const config = (user: Record<string, unknown>, cluster: Record<string, unknown> = { server: 'https://api.example:6443' }, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'v1',
  kind: 'Config',
  'current-context': 'prod',
  contexts: [{ name: 'dev', context: { cluster: 'none', user: 'none' } }, { name: 'prod', context: { cluster: 'c', user: 'u' } }],
  clusters: [{ name: 'c', cluster }],
  users: [{ name: 'u', user }],
  ...extra,
});

t.test('token, CA data and the current context', async (t) => {
  const ca = Buffer.from('-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n');
  const target = kubeconfigTarget(write('token.yaml', config({ token: 'abc' }, { server: 'https://api.example:6443', 'certificate-authority-data': ca.toString('base64') })));
  t.equal(target.server, 'https://api.example:6443');
  t.equal(target.token?.(), 'abc');
  t.same(target.ca, ca);
  t.notOk(target.insecureSkipTlsVerify);
});

t.test('token file (re-read on each request), client certificate and CA files relative to the kubeconfig', async (t) => {
  writeFileSync(join(dir, 'tok'), 'first\n');
  writeFileSync(join(dir, 'client.crt'), 'CERT');
  writeFileSync(join(dir, 'client.key'), 'KEY');
  writeFileSync(join(dir, 'ca.crt'), 'CA');
  const target = kubeconfigTarget(write('files.yaml', config({ tokenFile: 'tok', 'client-certificate': 'client.crt', 'client-key': 'client.key' }, { server: 'https://x:1', 'certificate-authority': 'ca.crt', 'insecure-skip-tls-verify': true })));
  t.equal(target.token?.(), 'first');
  writeFileSync(join(dir, 'tok'), 'rotated');
  t.equal(target.token?.(), 'rotated', 'a rotated token is picked up');
  t.equal(target.cert?.toString(), 'CERT');
  t.equal(target.key?.toString(), 'KEY');
  t.equal(target.ca?.toString(), 'CA');
  t.equal(target.insecureSkipTlsVerify, true);
});

t.test('basic auth and an explicit context', async (t) => {
  const file = write('basic.yaml', config({ username: 'admin', password: 'pw' }, { server: 'https://b:1' }, { clusters: [{ name: 'c', cluster: { server: 'https://b:1' } }, { name: 'none', cluster: { server: 'https://dev:1' } }], users: [{ name: 'u', user: { username: 'admin', password: 'pw' } }, { name: 'none', user: {} }] }));
  t.same(kubeconfigTarget(file).basic, { username: 'admin', password: 'pw' });
  t.equal(kubeconfigTarget(file, 'dev').server, 'https://dev:1');
});

t.test('what is missing or unsupported is MM_ERR_K8S_CONFIG naming it', async (t) => {
  const cases: [string, unknown, RegExp][] = [
    ['exec.yaml', config({ exec: { command: 'aws', args: ['eks', 'get-token'] } }), /exec plugin/],
    ['provider.yaml', config({ 'auth-provider': { name: 'oidc' } }), /auth-provider/],
    ['nocontext.yaml', { ...config({}), 'current-context': '' }, /no current-context/],
    ['badcontext.yaml', { ...config({}), 'current-context': 'staging' }, /contexts: no entry named "staging"/],
    ['noserver.yaml', config({ token: 'x' }, {}), /cluster "c" has no server/],
    ['halfcert.yaml', config({ 'client-certificate-data': 'Q0VSVA==' }), /certificate without its key/],
    ['missingca.yaml', config({}, { server: 'https://x:1', 'certificate-authority': 'nope.crt' }), /certificate-authority nope\.crt cannot be read \(ENOENT\)/],
    ['notyaml.yaml', 'a: [unclosed', /is not YAML/],
    ['scalar.yaml', '42', /is not a mapping/],
  ];
  for (const [name, doc, message] of cases) t.throws(() => kubeconfigTarget(write(name, doc)), { code: 'MM_ERR_K8S_CONFIG', message }, name);
  t.throws(() => kubeconfigTarget(join(dir, 'absent.yaml')), { code: 'MM_ERR_K8S_CONFIG', message: /cannot be read \(ENOENT\)/ });
});

t.test('over TLS: the server verified with the kubeconfig CA, the client with its certificate; list then watch', async (t) => {
  if (!hasOpenssl()) throw new Error('openssl is missing: run scripts/ensure-peers.sh');
  const server = makeSelfSignedCert(dir, 'apiserver', 'kubernetes', 'IP:127.0.0.1');
  const client = makeSelfSignedCert(dir, 'client', 'meshmedic', 'DNS:meshmedic');
  const seen: { path: string; clientCn: string }[] = [];
  const svc = service('shop', 'reviews', [{ port: 9080 }]);
  const slice = endpointSlice('shop', 'reviews', 'a', [{ port: 8080 }], [{ ip: '10.1.0.1' }]);
  const https = createServer({ cert: readFileSync(server.cert), key: readFileSync(server.key), ca: readFileSync(client.cert), requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://x');
    seen.push({ path: url.pathname + (url.searchParams.get('watch') ? '?watch' : ''), clientCn: String((req.socket as TLSSocket).getPeerCertificate().subject?.CN) });
    const slices = url.pathname.endsWith('/endpointslices');
    if (url.searchParams.get('watch') !== 'true') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ metadata: { resourceVersion: '10' }, items: [slices ? slice : svc] }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    if (slices) {
      // One event split across two writes: the client must join the halves of a line.
      const line = JSON.stringify({ type: 'MODIFIED', object: { ...endpointSlice('shop', 'reviews', 'a', [{ port: 8080 }], [{ ip: '10.1.0.1' }, { ip: '10.1.0.2' }]), metadata: { ...slice.metadata, resourceVersion: '11' } } }) + '\n';
      res.write(line.slice(0, 40));
      setTimeout(() => res.write(line.slice(40)), 20);
    }
    req.on('close', () => res.destroy());
  });
  await new Promise<void>((r) => https.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => { https.closeAllConnections(); https.close(() => r()); }));
  const port = (https.address() as AddressInfo).port;
  const file = write('tls.yaml', config({ 'client-certificate': 'client.crt', 'client-key': 'client.key' }, { server: `https://127.0.0.1:${port}`, 'certificate-authority': 'apiserver.crt' }));
  const mesh = new MeshState(systemClock);
  const disco = startDiscovery({ kubeconfig: file, mesh, debounceMs: 10, rewatchMs: 0 });
  t.teardown(() => disco.close());
  await disco.synced;
  t.ok(mesh.snapshot().endpoints.has('reviews.shop/10.1.0.1:8080'), 'listed over TLS');
  const watched = () => mesh.snapshot().endpoints.has('reviews.shop/10.1.0.2:8080');
  if (!watched()) await new Promise<void>((resolve) => { const u = mesh.subscribe(() => { if (watched()) { u(); resolve(); } }); });
  t.ok(seen.length >= 4 && seen.every((s) => s.clientCn === 'meshmedic'), 'every request carried the client certificate');
  t.ok(seen.some((s) => s.path === '/apis/discovery.k8s.io/v1/endpointslices?watch'), 'and the watch ran over it');
  await disco.close();
});
