// Renders the healing parameter table (docs/healing.md) from the schema, so the docs cannot drift.
import { HEALING_GROUPS } from '../config/sections/healing.js';
import { cusumArl, cusumArlTwoSided, ewmaArl } from '../detect/arl.js';

export function parameterTable(): string {
  const lines = ['| setting | default | range | meaning |', '|---|---:|---|---|'];
  lines.push('| `policy` | `meshmedic` | meshmedic, envoy-default, none | healing policy of the service |');
  for (const [g, spec] of Object.entries(HEALING_GROUPS)) {
    for (const [k, p] of Object.entries(spec.properties)) {
      const range = p.type === 'boolean' ? 'true, false' : p.type === 'string' ? `path (≤ ${p.maxLength} characters) or empty` : `${p.minimum} – ${p.maximum}${p.type === 'integer' ? ' (integer)' : ''}`;
      lines.push(`| \`${g}.${k}\` | ${JSON.stringify(p['x-default'])} | ${range} | ${p.description.replace(/\|/g, '\\|')} |`);
    }
  }
  return lines.join('\n') + '\n';
}

/** False-alarm and detection run lengths of the default sequential tests (normal data, in windows). */
export function arlTable(): string {
  const rows = [
    ['CUSUM k 0.5, h 5 (textbook, two-sided)', cusumArlTwoSided(0.5, 5), cusumArlTwoSided(0.5, 5, 1), cusumArlTwoSided(0.5, 5, 2)],
    ['CUSUM k 0.5, h 5 (one-sided)', cusumArl(0.5, 5), cusumArl(0.5, 5, 1), cusumArl(0.5, 5, 2)],
    ['CUSUM k 0.5, h 12 (latency default, one-sided)', cusumArl(0.5, 12), cusumArl(0.5, 12, 1), cusumArl(0.5, 12, 2)],
    ['EWMA λ 0.2, L 3 (textbook, two-sided)', ewmaArl(0.2, 3), ewmaArl(0.2, 3, 1), ewmaArl(0.2, 3, 2)],
    ['EWMA λ 0.2, L 4 (errors default, one-sided)', ewmaArl(0.2, 4, 0, 1), ewmaArl(0.2, 4, 1, 1), ewmaArl(0.2, 4, 2, 1)],
  ] as const;
  const f = (x: number) => (x >= 1e4 ? x.toExponential(2) : x.toFixed(1));
  return ['| test | ARL₀ (false alarm) | ARL at 1σ | ARL at 2σ |', '|---|---:|---:|---:|', ...rows.map((r) => `| ${r[0]} | ${f(r[1])} | ${f(r[2])} | ${f(r[3])} |`)].join('\n') + '\n';
}
