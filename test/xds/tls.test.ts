// xDS over TLS (xds.tls): a certificate made by openssl for this test is served to a TLS ADS client, a
// plaintext client is refused, a renewed certificate is served without a restart, and bad settings fail
// at start with an error naming the key and the file.
import t from 'tap';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { xdsServerCredentials } from '../../src/xds/tls.js';
import { hasOpenssl, makeSelfSignedCert } from '../helpers/openssl.js';
import { CLUSTER_TYPE } from '../../src/xds/types.js';
import { adsClient, GRPC_NODE, Scripted, startXdsFixture, type SotwResponse } from './helpers.js';

const SERVICE_NAME = 'meshmedic-xds.meshmedic.svc';


if (!hasOpenssl()) {
  t.fail('openssl is not installed; the xDS TLS tests need it to make certificates (scripts/ensure-peers.sh installs it)');
} else {
  const dir = mkdtempSync(join(tmpdir(), 'mm-xds-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const makeCert = (name: string) => makeSelfSignedCert(dir, name, `xds-${name}`, `DNS:${SERVICE_NAME},IP:127.0.0.1`);
  const a = makeCert('a');
  const b = makeCert('b');
  const certFile = join(dir, 'tls.crt');
  const keyFile = join(dir, 'tls.key');
  // As a Secret volume updates: the new file appears whole (rename), never half-written.
  const install = (c: { cert: string; key: string }) => {
    writeFileSync(`${keyFile}.new`, readFileSync(c.key));
    renameSync(`${keyFile}.new`, keyFile);
    writeFileSync(`${certFile}.new`, readFileSync(c.cert));
    renameSync(`${certFile}.new`, certFile);
  };
  install(a);
  const ca = Buffer.concat([readFileSync(a.cert), readFileSync(b.cert)]);

  // The CN of the certificate the server presents now (a fresh TLS connection, h2 as gRPC clients ask).
  const servedCn = (port: number) =>
    new Promise<string>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port, servername: SERVICE_NAME, ca, ALPNProtocols: ['h2'] }, () => {
        const cn = s.getPeerCertificate().subject?.CN ?? '';
        s.end();
        resolve(String(cn));
      });
      s.on('error', reject);
      s.setTimeout(5000, () => s.destroy(new Error('TLS handshake timed out')));
    });

  t.test('ADS over TLS: served to a TLS client, refused to a plaintext one, renewed without a restart', async (t) => {
    const fx = await startXdsFixture({ api: [{ port: 1001 }] }, { tls: { certFile, keyFile, reloadMs: 1000 } });
    t.teardown(() => fx.close());
    const c = adsClient(fx.address, grpc.credentials.createSsl(ca), { 'grpc.ssl_target_name_override': SERVICE_NAME, 'grpc.default_authority': SERVICE_NAME });
    const s = new Scripted<SotwResponse>(c.StreamAggregatedResources());
    t.teardown(() => {
      s.close();
      c.close();
    });
    s.send({ node: GRPC_NODE, type_url: CLUSTER_TYPE });
    const r = await s.next();
    t.ok(r.resources.length >= 1, 'a TLS client gets its resources');
    t.equal(await servedCn(fx.port), 'xds-a', 'the configured certificate is served');

    const plain = adsClient(fx.address);
    t.teardown(() => plain.close());
    const refused = await new Promise<Error | undefined>((resolve) => plain.waitForReady(Date.now() + 2000, resolve));
    t.ok(refused, 'a plaintext client never gets a working channel');

    install(b);
    // Wait on the event (the served certificate changes), bounded well above reloadMs.
    const deadline = Date.now() + 20_000;
    let cn = '';
    while (Date.now() < deadline && (cn = await servedCn(fx.port)) !== 'xds-b') await new Promise((res) => setTimeout(res, 200));
    t.equal(cn, 'xds-b', 'the renewed certificate is served by the same process');
  });

  t.test('bad TLS settings fail at start, naming the key and the file', async (t) => {
    const codeAndMessage = async (tls: { certFile: string; keyFile: string }) => {
      try {
        await xdsServerCredentials({ ...tls, reloadMs: 1000 });
        return 'no error';
      } catch (err) {
        return `${(err as { code?: string }).code}: ${(err as Error).message}`;
      }
    };
    t.match(await codeAndMessage({ certFile, keyFile: '' }), /^MM_ERR_CONFIG_INVALID: xds\.tls: certFile and keyFile go together/);
    t.match(await codeAndMessage({ certFile: join(dir, 'nope.crt'), keyFile }), /^MM_ERR_CONFIG_INVALID: xds\.tls\.certFile ".*nope\.crt": cannot read: ENOENT/);
    t.match(await codeAndMessage({ certFile: keyFile, keyFile }), /^MM_ERR_CONFIG_INVALID: xds\.tls\.certFile .*: not a PEM certificate/);
    t.match(await codeAndMessage({ certFile: a.cert, keyFile: b.key }), /^MM_ERR_CONFIG_INVALID: xds\.tls\.keyFile .*: does not match the certificate/);
    t.match(await codeAndMessage({ certFile: a.cert, keyFile: a.cert }), /xds\.tls\.keyFile .*: not a PEM private key/);
    t.equal(await codeAndMessage({ certFile: '', keyFile: '' }), 'no error', 'both empty: plaintext');
  });
}
