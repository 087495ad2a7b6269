// Self-signed test certificates made by openssl (installed by scripts/ensure-peers.sh): P-256 keys, one
// day, the given subject alternative names.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

export function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Writes `<dir>/<name>.crt` and `<dir>/<name>.key`; `san` like `DNS:a.svc,IP:127.0.0.1`. */
export function makeSelfSignedCert(dir: string, name: string, cn: string, san: string): { cert: string; key: string } {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.crt`), '-subj', `/CN=${cn}`, '-addext', `subjectAltName=${san}`], { stdio: 'ignore' });
  return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
}
