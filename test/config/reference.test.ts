import t from 'tap';
import { readFileSync } from 'node:fs';
import { renderConfigReference } from '../../src/config/reference.js';

t.test('docs/config.md is the reference generated from the schema (npm run docs:config)', async (t) => {
  const committed = readFileSync(new URL('../../docs/config.md', import.meta.url), 'utf8');
  t.equal(committed, renderConfigReference(), 'run `npm run docs:config` after changing the schema');
});
