// The webhook over real HTTPS with a certificate made by openssl for this test: reviews, bad input,
// limits, fail-open, certificate reload, and the CLI entry point.
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { X509Certificate, randomBytes } from 'node:crypto';
import { connect } from 'node:tls';
import fjp from 'fast-json-patch';
import { hasOpenssl, makeSelfSignedCert } from '../helpers/openssl.js';
import { startWebhook, MAX_BODY_BYTES, type WebhookServer } from '../../src/k8s/webhook.js';
import { runWebhookCli } from '../../src/k8s/webhook-cli.js';
import { createLogger } from '../../src/core/log.js';
import { FakeApiServer } from './fake-apiserver.js';

const fixtures = fileURLToPath(new URL('./fixtures/inject/', import.meta.url));


if (!hasOpenssl()) {
  t.fail('openssl is not installed; the HTTPS webhook tests need it to make a certificate (scripts/ensure-peers.sh installs it)');
} else {
  const dir = mkdtempSync(join(tmpdir(), 'mm-webhook-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const makeCert = (name: string, cn: string) => makeSelfSignedCert(dir, name, cn, 'DNS:meshmedic-webhook.meshmedic.svc,IP:127.0.0.1');
  const first = makeCert('a', 'meshmedic-webhook-a');
  const second = makeCert('b', 'meshmedic-webhook-b');
  const ca = [readFileSync(first.cert), readFileSync(second.cert)];
  const certFile = join(dir, 'tls.crt');
  const keyFile = join(dir, 'tls.key');
  writeFileSync(certFile, readFileSync(first.cert));
  writeFileSync(keyFile, readFileSync(first.key));

  interface Reply { status: number; headers: Record<string, unknown>; body: any; raw: string }
  const post = (port: number, path: string, body: Buffer | string, headers: Record<string, string> = { 'content-type': 'application/json' }, method = 'POST'): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, method, headers, ca, servername: 'meshmedic-webhook.meshmedic.svc', agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const raw = Buffer.concat(chunks).toString();
          let parsed: unknown;
          try { parsed = JSON.parse(raw); } catch { parsed = undefined; }
          resolve({ status: res.statusCode!, headers: res.headers, body: parsed, raw });
        });
        res.on('error', reject);
      });
      req.setTimeout(20_000, () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end(body);
    });

  const review = (name: string) => readFileSync(`${fixtures}${name}.review.json`, 'utf8');

  let server: WebhookServer;
  t.before(async () => {
    server = await startWebhook({ listen: '127.0.0.1:0', tlsCert: certFile, tlsKey: keyFile, certCheckMs: 100 });
  });
  t.teardown(() => server?.close());

  t.test('injects over HTTPS with a verified certificate, then not again', async (t) => {
    t.match(server.address, /^127\.0\.0\.1:\d+$/);
    const r = await post(server.port, '/inject', review('plain-pod'));
    t.equal(r.status, 200);
    t.equal(r.headers['content-type'], 'application/json');
    t.equal(r.body.response.uid, '0f9d2d3a-1b7e-4a52-8a3c-000000000001');
    t.equal(r.body.response.allowed, true);
    const patch = JSON.parse(Buffer.from(r.body.response.patch, 'base64').toString());
    const rev = JSON.parse(review('plain-pod'));
    const patched = fjp.applyPatch(rev.request.object, patch).newDocument as any;
    const all = [...(patched.spec.initContainers ?? []), ...patched.spec.containers];
    t.equal(all.filter((c: any) => c.name === 'meshmedic').length, 1);
    rev.request.object = patched;
    // The API server appends ?timeout=…s to the configured path.
    const again = await post(server.port, '/inject?timeout=5s', JSON.stringify(rev), { 'content-type': 'application/json; charset=utf-8' });
    t.equal(again.status, 200);
    t.equal(again.body.response.patch, undefined, 'idempotent');
  });

  t.test('the pod-label path injects only pods labelled meshmedic.io/inject=true', async (t) => {
    const yes = await post(server.port, '/inject/pod', review('label-opt-in'));
    t.equal(yes.status, 200);
    t.ok(yes.body.response.patch);
    for (const name of ['plain-pod', 'annotated-opt-in', 'label-opt-out']) {
      const no = await post(server.port, '/inject/pod?timeout=5s', review(name));
      t.equal(no.body.response.allowed, true, `${name} admitted`);
      t.equal(no.body.response.patch, undefined, `${name} not injected on the pod-label path`);
    }
  });

  t.test('the deprecated annotated path still injects opted-in pods, and says once that it is deprecated', async (t) => {
    const lines: string[] = [];
    const old = await startWebhook({ listen: '127.0.0.1:0', tlsCert: certFile, tlsKey: keyFile, log: createLogger('info', (l) => lines.push(l)) });
    t.teardown(() => old.close());
    const yes = await post(old.port, '/inject/annotated', review('annotated-opt-in'));
    t.ok(yes.body.response.patch);
    const no = await post(old.port, '/inject/annotated', review('plain-pod'));
    t.equal(no.body.response.allowed, true);
    t.equal(no.body.response.patch, undefined);
    const deprecations = lines.filter((l) => l.includes('/inject/annotated is deprecated'));
    t.equal(deprecations.length, 1, 'one warning per process, not one per pod');
    t.match(deprecations[0], /"level":"warn".*meshmedic\.io\/inject=true/);
  });

  t.test('malformed and non-v1 reviews are refused clearly', async (t) => {
    const bad = await post(server.port, '/inject', '{"apiVersion": "admission.k8s.io/v1", ');
    t.equal(bad.status, 400);
    t.equal(bad.body.code, 'MM_ERR_ADMISSION_REVIEW');
    t.match(bad.body.message, /not JSON/);
    const v1beta1 = JSON.parse(review('plain-pod'));
    v1beta1.apiVersion = 'admission.k8s.io/v1beta1';
    const old = await post(server.port, '/inject', JSON.stringify(v1beta1));
    t.equal(old.status, 400);
    t.equal(old.body.code, 'MM_ERR_ADMISSION_VERSION');
    t.match(old.body.message, /admission\.k8s\.io\/v1beta1.*not supported.*admissionReviewVersions/);
    const noUid = JSON.parse(review('plain-pod'));
    delete noUid.request.uid;
    const r = await post(server.port, '/inject', JSON.stringify(noUid));
    t.equal(r.status, 400);
    t.match(r.body.message, /uid/);
    for (const body of ['null', '[]', '"x"', '{"kind":"Pod"}', '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}']) {
      const x = await post(server.port, '/inject', body);
      t.equal(x.status, 400, `400 for ${body}`);
    }
  });

  t.test('random bytes never crash the server', async (t) => {
    for (let i = 0; i < 25; i++) {
      const r = await post(server.port, '/inject', randomBytes(1 + ((i * 397) % 4000)));
      t.equal(r.status, 400);
    }
    // A non-pod object and an UPDATE are admitted unchanged.
    const rev = JSON.parse(review('plain-pod'));
    rev.request.operation = 'UPDATE';
    const upd = await post(server.port, '/inject', JSON.stringify(rev));
    t.equal(upd.body.response.allowed, true);
    t.equal(upd.body.response.patch, undefined);
    rev.request.operation = 'CREATE';
    rev.request.kind = { group: 'apps', version: 'v1', kind: 'Deployment' };
    const dep = await post(server.port, '/inject', JSON.stringify(rev));
    t.equal(dep.body.response.patch, undefined);
    const still = await post(server.port, '/inject', review('plain-pod'));
    t.equal(still.status, 200, 'still serving');
  });

  t.test('concurrent reviews each get their own uid back', async (t) => {
    const base = JSON.parse(review('plain-pod'));
    const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => {
      const r = structuredClone(base);
      r.request.uid = `uid-${i}`;
      if (i % 3 === 0) r.request.object.metadata.annotations = { 'meshmedic.io/inject': 'false' };
      return post(server.port, '/inject', JSON.stringify(r)).then((x) => ({ i, x }));
    }));
    for (const { i, x } of replies) {
      t.equal(x.body.response.uid, `uid-${i}`);
      t.equal(Boolean(x.body.response.patch), i % 3 !== 0, `uid-${i} ${i % 3 === 0 ? 'opted out' : 'injected'}`);
    }
  });

  t.test('IPv6 loopback listen address', async (t) => {
    let v6: WebhookServer;
    try {
      v6 = await startWebhook({ listen: '[::1]:0', tlsCert: certFile, tlsKey: keyFile });
    } catch (err) {
      t.comment(`no IPv6 loopback here (${(err as Error).message}); skipped`);
      return;
    }
    t.teardown(() => v6.close());
    t.match(v6.address, /^\[::1\]:\d+$/);
  });

  t.test('HTTP-level refusals', async (t) => {
    const ct = await post(server.port, '/inject', review('plain-pod'), { 'content-type': 'text/plain' });
    t.equal(ct.status, 415);
    t.equal(ct.body.code, 'MM_ERR_UNSUPPORTED_MEDIA_TYPE');
    const none = await post(server.port, '/inject', review('plain-pod'), {});
    t.equal(none.status, 415);
    const big = Buffer.alloc(MAX_BODY_BYTES + 1, 0x20);
    const tooBig = await post(server.port, '/inject', big);
    t.equal(tooBig.status, 413);
    t.equal(tooBig.body.code, 'MM_ERR_PAYLOAD_TOO_LARGE');
    // A body streamed without content-length: read the raw answer from the socket, whatever happens to our writes.
    const chunked = await new Promise<string>((resolve) => {
      const sock = connect({ host: '127.0.0.1', port: server.port, ca, servername: 'meshmedic-webhook.meshmedic.svc' }, () => {
        sock.write('POST /inject HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n');
        const chunk = Buffer.alloc(256 * 1024, 0x20);
        let sent = 0;
        const pump = () => {
          while (sent < 14) { // 3.5 MiB
            sent++;
            sock.write(`${chunk.length.toString(16)}\r\n`);
            sock.write(chunk);
            if (!sock.write('\r\n')) { sock.once('drain', pump); return; }
          }
          // No terminating chunk: a client that never stops must still get its answer.
        };
        pump();
      });
      let answer = '';
      sock.on('data', (d) => {
        answer += d.toString('latin1');
        if (answer.includes('MM_ERR_PAYLOAD_TOO_LARGE')) sock.destroy(); // got it; stop sending
      });
      sock.on('error', () => {}); // EPIPE/ECONNRESET are expected once the server has answered and closed
      sock.on('close', () => resolve(answer));
      sock.setTimeout(20_000, () => sock.destroy());
    });
    t.match(chunked, /^HTTP\/1\.1 413 /, 'streamed body over the limit refused with 413');
    t.match(chunked, /MM_ERR_PAYLOAD_TOO_LARGE/);
    const wrong = await post(server.port, '/mutate', review('plain-pod'));
    t.equal(wrong.status, 404);
    t.match(wrong.body.message, /serves POST \/inject, \/inject\/pod, \/inject\/annotated/, 'the 404 names the paths served');
    const sub = await post(server.port, '/inject/pod/x', review('plain-pod'));
    t.equal(sub.status, 404, 'no prefix matching');
    const get = await post(server.port, '/inject', '', {}, 'GET');
    t.equal(get.status, 405);
    t.equal(get.headers.allow, 'POST');
    const health = await post(server.port, '/healthz', '', {}, 'GET');
    t.equal(health.status, 200);
  });

  t.test('the webhook counts its answers on /metrics', async (t) => {
    const m = await post(server.port, '/metrics', '', {}, 'GET');
    t.equal(m.status, 200);
    t.match(m.headers['content-type'], /text\/plain/);
    const count = (outcome: string) => Number(new RegExp(`meshmedic_webhook_reviews_total\\{outcome="${outcome}"\\} (\\d+)`).exec(m.raw)?.[1] ?? 0);
    t.ok(count('injected') >= 3, `injected counted (${count('injected')})`);
    t.ok(count('skipped') >= 2, 'skipped counted');
    t.ok(count('rejected') >= 25, 'rejected (bad reviews, random bytes) counted');
    t.ok(count('refused') >= 3, 'refused (415, 413) counted');
    t.match(m.raw, /meshmedic_webhook_review_duration_seconds_count \d+/);
    const direct = await server.metrics.getSingleMetricAsString('meshmedic_webhook_reviews_total');
    t.match(direct, /outcome="injected"/);
  });

  t.test('an internal error fails open with a warning', async (t) => {
    const failing = await startWebhook({ listen: '127.0.0.1:0', tlsCert: certFile, tlsKey: keyFile, plan: () => { throw new Error('boom'); } });
    t.teardown(() => failing.close());
    const r = await post(failing.port, '/inject', review('plain-pod'));
    t.equal(r.status, 200);
    t.equal(r.body.response.allowed, true);
    t.equal(r.body.response.uid, '0f9d2d3a-1b7e-4a52-8a3c-000000000001');
    t.equal(r.body.response.patch, undefined);
    t.match(r.body.response.warnings[0], /internal error \(boom\).*admitted unchanged/);
  });

  t.test('a renewed certificate is picked up without a restart', async (t) => {
    const served = () => new Promise<string>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: server.port, ca, servername: 'meshmedic-webhook.meshmedic.svc' }, () => {
        const c = s.getPeerX509Certificate();
        s.end();
        resolve(c?.subject ?? '');
      });
      s.on('error', reject);
    });
    t.match(await served(), /meshmedic-webhook-a/);
    // Rename into place, as Kubernetes secret volumes do (atomic swap).
    writeFileSync(join(dir, 'new.crt'), readFileSync(second.cert));
    writeFileSync(join(dir, 'new.key'), readFileSync(second.key));
    renameSync(join(dir, 'new.key'), keyFile);
    renameSync(join(dir, 'new.crt'), certFile);
    const deadline = Date.now() + 10_000;
    let subject = '';
    while (Date.now() < deadline) {
      subject = await served();
      if (subject.includes('meshmedic-webhook-b')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    t.match(subject, /meshmedic-webhook-b/);
    t.ok(new X509Certificate(readFileSync(certFile)).subject.includes('meshmedic-webhook-b'));
  });

  t.test('CLI: usage errors exit 2, a running webhook stops cleanly with 0', async (t) => {
    const err: string[] = [];
    const io = { out: (s: string) => err.push(s), err: (s: string) => err.push(s) };
    t.equal(await runWebhookCli(['--listen', '127.0.0.1:0'], io), 2);
    t.match(err.join(''), /--tls-cert FILE is required/);
    t.equal(await runWebhookCli(['--bogus'], io), 2);
    t.equal(await runWebhookCli(['--help'], io), 0);
    t.equal(await runWebhookCli(['--listen', 'localhost-ish:1', '--tls-cert', certFile, '--tls-key', keyFile], io), 2);
    t.equal(await runWebhookCli(['--listen', '127.0.0.1:0', '--tls-cert', join(dir, 'missing.crt'), '--tls-key', keyFile], io), 2);
    writeFileSync(join(dir, 'bad.yaml'), 'mode: sidecar\n');
    err.length = 0;
    t.equal(await runWebhookCli(['--listen', '127.0.0.1:0', '--tls-cert', certFile, '--tls-key', keyFile, '--config', join(dir, 'bad.yaml')], io), 2);
    t.match(err.join(''), /\/mode/);

    for (const [args, why] of [
      [['--missing-sidecar-interval', '10ms'], /--missing-sidecar-interval "10ms" is not 0 or a duration of at least 1s/],
      [['--missing-sidecar-interval', 'soon'], /--missing-sidecar-interval "soon"/],
      [['--kube-api', 'http://10.0.0.1:8080'], /--kube-api: .*plain http is allowed only to a loopback address/],
      [['--kube-api', 'ftp://127.0.0.1'], /--kube-api: .*must be https/],
    ] as const) {
      err.length = 0;
      t.equal(await runWebhookCli(['--listen', '127.0.0.1:0', '--tls-cert', certFile, '--tls-key', keyFile, ...args], io), 2, args.join(' '));
      t.match(err.join(''), why);
    }

    writeFileSync(join(dir, 'good.yaml'), 'injector:\n  mode: classic\n');
    let stop!: () => void;
    const stopSignal = new Promise<void>((r) => (stop = r));
    const lines: string[] = [];
    const running = runWebhookCli(['--listen', '127.0.0.1:0', '--tls-cert', certFile, '--tls-key', keyFile, '--config', join(dir, 'good.yaml')], { out: () => {}, err: (s) => lines.push(s), stopSignal });
    const deadline = Date.now() + 10_000;
    let address: string | undefined;
    while (!address && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      for (const l of lines.join('').split('\n')) {
        if (l.includes('webhook listening')) address = JSON.parse(l).address;
      }
    }
    t.ok(address, 'logged its address');
    const port = Number(address!.split(':').pop());
    const r = await post(port, '/inject', review('plain-pod'));
    const patch = JSON.parse(Buffer.from(r.body.response.patch, 'base64').toString());
    t.equal(patch[0].path, '/spec/containers/-', 'config file selected classic mode');
    stop();
    t.equal(await running, 0);
  });

  t.test('CLI: the webhook scans for pods missing the sidecar and reports them (Event, gauge, log)', async (t) => {
    const api = new FakeApiServer();
    await api.start();
    t.teardown(() => api.stop());
    api.putObject('namespaces', { metadata: { name: 'shop', namespace: '', labels: { 'meshmedic.io/inject': 'true' } } });
    api.putObject('pods', { metadata: { name: 'bare', namespace: 'shop', uid: 'u-1' }, spec: { containers: [{ name: 'app' }] }, status: { phase: 'Running' } });
    let stop!: () => void;
    const stopSignal = new Promise<void>((r) => (stop = r));
    const lines: string[] = [];
    const running = runWebhookCli(['--listen', '127.0.0.1:0', '--tls-cert', certFile, '--tls-key', keyFile, '--kube-api', api.url, '--missing-sidecar-interval', '1s'],
      { out: () => {}, err: (s) => lines.push(s), stopSignal, env: { POD_NAME: 'meshmedic-webhook-abc', POD_NAMESPACE: 'meshmedic' } });
    const deadline = Date.now() + 20_000;
    while (api.objects.events.size === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    const ev = [...api.objects.events.values()][0] as any;
    t.equal(ev?.reason, 'MeshmedicSidecarMissing');
    t.equal(ev?.reportingInstance, 'meshmedic-webhook-abc');
    const text = lines.join('');
    t.match(text, /"msg":"pod runs without the meshmedic sidecar.*"namespace":"shop","pod":"bare"/);
    const address = /"msg":"webhook listening","address":"([^"]+)"/.exec(text)?.[1];
    const m = await post(Number(address!.split(':').pop()), '/metrics', '', {}, 'GET');
    t.match(m.raw, /meshmedic_webhook_pods_missing_sidecar 1\n/, 'the gauge on the webhook\'s /metrics');
    stop();
    t.equal(await running, 0);
  });

  t.test('acceptance: `meshmedic webhook` as a process, stopped by SIGTERM', { timeout: 90_000 }, async (t) => {
    const root = fileURLToPath(new URL('../../', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', '-e', `import('./src/cli/main.ts').then((m) => m.main(process.argv.slice(1))).then((c) => { process.exitCode = c; })`,
      'webhook', '--listen', '127.0.0.1:0', '--tls-cert', certFile, '--tls-key', keyFile], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
    const deadline = Date.now() + 60_000;
    let address: string | undefined;
    while (!address && Date.now() < deadline && child.exitCode === null) {
      await new Promise((r) => setTimeout(r, 50));
      const m = /"msg":"webhook listening","address":"([^"]+)"/.exec(out);
      if (m) address = m[1];
    }
    t.ok(address, `listening (output: ${out.slice(0, 300)})`);
    if (!address) return;
    const port = Number(address.split(':').pop());
    const rev = JSON.parse(review('generate-name'));
    rev.request.namespace = 'default';
    rev.request.object.metadata.annotations = { 'meshmedic.io/inject': 'true' };
    const r = await post(port, '/inject', JSON.stringify(rev));
    t.equal(r.body.response.uid, rev.request.uid);
    t.equal(r.body.response.allowed, true);
    const patched = fjp.applyPatch(rev.request.object, JSON.parse(Buffer.from(r.body.response.patch, 'base64').toString())).newDocument as any;
    t.equal([...(patched.spec.initContainers ?? []), ...patched.spec.containers].filter((c: any) => c.name === 'meshmedic').length, 1, 'exactly one sidecar');
    rev.request.object = patched;
    const again = await post(port, '/inject', JSON.stringify(rev));
    t.equal(again.body.response.patch, undefined, 'no second sidecar');
    child.kill('SIGTERM');
    t.equal(await exited, 0, 'exit 0 after SIGTERM');
  });
}
