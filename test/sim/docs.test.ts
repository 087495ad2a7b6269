// docs/healing.md documents every healing setting (its table is generated from the schema) and every
// scenario of the catalogue.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { HEALING_GROUPS } from '../../src/config/sections/healing.js';
import { SCENARIOS } from '../../src/sim/scenarios.js';
import { parameterTable } from '../../src/sim/docs.js';

const doc = readFileSync(new URL('../../docs/healing.md', import.meta.url), 'utf8');

t.test('every setting is in the parameter table, with its current default', async (t) => {
  for (const [g, spec] of Object.entries(HEALING_GROUPS)) {
    for (const [k, p] of Object.entries(spec.properties)) {
      t.match(doc, `| \`${g}.${k}\` | ${JSON.stringify(p['x-default'])} |`, `${g}.${k}`);
    }
  }
  t.ok(doc.includes(parameterTable().trim()), 'the table is the generated one (npm run sim -- --parameters)');
});

t.test('every scenario appears in the comparison table', async (t) => {
  for (const s of SCENARIOS) t.match(doc, `| ${s.name} | meshmedic |`, s.name);
});
