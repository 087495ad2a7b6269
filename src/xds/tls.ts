// TLS for the xDS port (ADS, ALS and MCP share it): the certificate and key files of a mounted Secret
// (cert-manager's tls.crt/tls.key), checked once at start so a wrong path fails loudly, then re-read by
// grpc-js's file watcher so a renewed certificate is served without a restart.
import { readFileSync } from 'node:fs';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { MeshmedicError } from '../core/errors.js';

export interface XdsTlsConfig {
  readonly certFile: string;
  readonly keyFile: string;
  readonly reloadMs: number;
}

/**
 * Server credentials for the xDS port: plaintext when both files are empty. Resolves once the watcher has
 * read the files, so that the port never accepts a connection it cannot yet serve TLS on.
 */
export async function xdsServerCredentials(tls: XdsTlsConfig): Promise<grpc.ServerCredentials> {
  if (!tls.certFile && !tls.keyFile) return grpc.ServerCredentials.createInsecure();
  if (!tls.certFile || !tls.keyFile) {
    throw new MeshmedicError('MM_ERR_CONFIG_INVALID', `xds.tls: certFile and keyFile go together (got certFile "${tls.certFile}", keyFile "${tls.keyFile}")`);
  }
  const read = (key: 'certFile' | 'keyFile'): Buffer => {
    try {
      return readFileSync(tls[key]);
    } catch (err) {
      throw new MeshmedicError('MM_ERR_CONFIG_INVALID', `xds.tls.${key} "${tls[key]}": cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  const cert = read('certFile');
  const key = read('keyFile');
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch {
    throw new MeshmedicError('MM_ERR_CONFIG_INVALID', `xds.tls.certFile "${tls.certFile}": not a PEM certificate`);
  }
  try {
    if (!leaf.checkPrivateKey(createPrivateKey(key))) throw new Error('mismatch');
  } catch (err) {
    const why = (err as Error).message === 'mismatch' ? 'does not match the certificate' : 'not a PEM private key';
    throw new MeshmedicError('MM_ERR_CONFIG_INVALID', `xds.tls.keyFile "${tls.keyFile}": ${why}`);
  }
  // The watcher stops when the server shuts down (its last listener goes away).
  const files = new grpc.experimental.FileWatcherCertificateProvider({ certificateFile: tls.certFile, privateKeyFile: tls.keyFile, refreshIntervalMs: tls.reloadMs });
  await new Promise<void>((resolve, reject) => {
    const first = (update: unknown) => {
      files.removeIdentityCertificateListener(first);
      if (update) resolve();
      else reject(new MeshmedicError('MM_ERR_CONFIG_INVALID', `xds.tls: could not load ${tls.certFile} and ${tls.keyFile}`));
    };
    files.addIdentityCertificateListener(first);
  });
  // grpc-js's factory passes its first argument on as the identity provider; no CA: clients are not asked
  // for certificates (the NetworkPolicy decides who may connect).
  return grpc.experimental.createCertificateProviderServerCredentials(files, null, false);
}
