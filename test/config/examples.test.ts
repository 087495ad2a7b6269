import t from 'tap';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { loadConfigFile } from '../../src/config/load.js';

const dir = fileURLToPath(new URL('../../mesh-config/', import.meta.url));

t.test('every example sidecar config in mesh-config/ is valid', async (t) => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  t.ok(files.length >= 2, files.join(', '));
  for (const f of files) {
    const v = loadConfigFile(join(dir, f), {});
    t.ok(v.valid, `${f}: ${v.valid ? 'ok' : v.errors.join('; ')}`);
  }
});
