// The package version, read once from package.json (two levels up from both src/ and dist/ modules).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

export function packageVersion(): string {
  if (cached !== undefined) return cached;
  try {
    const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as { version: string };
    cached = pkg.version;
  } catch {
    cached = 'unknown';
  }
  return cached;
}
