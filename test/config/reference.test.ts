import t from 'tap';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES } from '../../src/core/errors.js';
import { renderConfigReference, renderErrorReference } from '../../src/config/reference.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

t.test('docs/config.md is the reference generated from the schema (npm run docs)', async (t) => {
  t.equal(readFileSync(join(root, 'docs/config.md'), 'utf8'), renderConfigReference(), 'run `npm run docs` after changing the schema');
});

t.test('docs/errors.md lists every error code (npm run docs)', async (t) => {
  t.equal(readFileSync(join(root, 'docs/errors.md'), 'utf8'), renderErrorReference(), 'run `npm run docs` after adding an error code');
});

t.test('every MM_ERR_ code used in the sources is declared in src/core/errors.ts', async (t) => {
  const used = new Set<string>();
  const walk = (dir: string) => {
    for (const f of readdirSync(dir)) {
      const p = join(dir, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts')) for (const m of readFileSync(p, 'utf8').matchAll(/MM_ERR_[A-Z0-9_]+/g)) used.add(m[0]);
    }
  };
  walk(join(root, 'src'));
  const undeclared = [...used].filter((c) => !(c in ERROR_CODES));
  t.same(undeclared, [], 'declare these in src/core/errors.ts');
});
