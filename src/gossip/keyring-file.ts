// The gossip keyring loaded from a mounted file or directory (a Kubernetes Secret) and re-read while the
// sidecar runs, so keys rotate without a restart: install the new key everywhere, make it first, remove
// the old one (the memberlist sequence in docs/gossip.md), each step one edit of the Secret.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Keyring } from './keyring.js';

/**
 * Keys from `path`: a file holds base64 keys one per line (blank lines and `#` comments ignored); a
 * directory contributes every regular file not starting with `.` (Secret mounts add `..data` links), in
 * name order. The first key encrypts. Returns the keys or a message naming what is wrong.
 */
export function readKeysFrom(path: string): string[] | string {
  let files: string[];
  try {
    files = statSync(path).isDirectory()
      ? readdirSync(path).filter((f) => !f.startsWith('.')).sort().map((f) => join(path, f)).filter((f) => statSync(f).isFile())
      : [path];
  } catch (err) {
    return `gossip.keysFile "${path}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
  }
  const keys: string[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch (err) {
      return `gossip.keysFile "${f}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
    }
    const lines = text.split(/\r?\n/);
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.trim();
      if (!line || line.startsWith('#')) continue;
      const k = Keyring.parseKey(line);
      if (typeof k === 'string') return `gossip.keysFile "${f}" line ${i + 1}: ${k}`;
      if (!keys.includes(line)) keys.push(line);
    }
  }
  if (keys.length === 0) return `gossip.keysFile "${path}" holds no key`;
  return keys;
}

/** Make `ring` hold exactly `keys`, `keys[0]` first, without a moment in which a listed key is missing. */
export function applyKeys(ring: Keyring, keys: readonly string[]): void {
  for (const k of keys) ring.install(k);
  ring.use(keys[0]!);
  for (const old of ring.list()) if (!keys.includes(old)) ring.remove(old);
}
