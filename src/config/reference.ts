// Renders the configuration reference (docs/config.md) from the schema and the error reference
// (docs/errors.md) from the error table, so the docs cannot drift: a test compares the committed files
// with this output. Run: npm run docs
import { ERROR_CODES } from '../core/errors.js';
import { configSchema } from './schema.js';

interface Node {
  type?: string | readonly string[];
  enum?: readonly unknown[];
  properties?: Record<string, Node>;
  items?: Node;
  default?: unknown;
  'x-default'?: unknown;
  description?: string;
  minimum?: number;
  maximum?: number;
  pattern?: string;
  maxItems?: number;
  required?: readonly string[];
}

function typeOf(n: Node): string {
  if (n.enum) return n.enum.map((v) => `\`${String(v)}\``).join(' \\| ');
  if (n.type === 'array') return `list of ${n.items ? typeOf(n.items) : 'values'}`;
  let t: string = typeof n.type === 'string' ? n.type : (n.type?.join(' or ') ?? 'any');
  if (n.minimum !== undefined || n.maximum !== undefined) t += ` ${n.minimum ?? '…'}–${n.maximum ?? '…'}`;
  return t;
}

function defaultOf(n: Node): string {
  const d = n['x-default'] ?? n.default;
  if (d === undefined) return '';
  if (typeof d === 'object') return Object.keys(d as object).length ? `\`${JSON.stringify(d)}\`` : '';
  return `\`${String(d)}\``;
}

function rows(n: Node, path: string, out: string[]): void {
  for (const [k, child] of Object.entries(n.properties ?? {})) {
    const p = path ? `${path}.${k}` : k;
    const required = n.required?.includes(k) ? ' (required)' : '';
    if (child.type === 'object' && child.properties) {
      if (child.description) out.push(`| \`${p}\` | section | | ${child.description}${required} |`);
      rows(child, p, out);
    } else if (child.type === 'array' && child.items?.type === 'object') {
      out.push(`| \`${p}[]\` | list | | ${child.description ?? ''}${required} |`);
      rows(child.items, `${p}[]`, out);
    } else {
      const desc = (child.description ?? '') + (child.pattern ? ` (pattern \`${child.pattern}\`)` : '') + required;
      out.push(`| \`${p}\` | ${typeOf(child)} | ${defaultOf(child)} | ${desc.replace(/\|/g, '\\|')} |`);
    }
  }
}

export function renderConfigReference(): string {
  const out: string[] = [
    '# Configuration reference',
    '',
    'Generated from the schema (`src/config/schema.ts` and `src/config/sections/`) by `npm run docs`; a test',
    'keeps this file in step with the code. Unknown keys are rejected; every error names its path, its value and what',
    'was expected (exit code 2). `healing` holds mesh-wide defaults; `services[].healing` overrides them per service',
    '(and Kubernetes annotations override both, see docs/kubernetes.md).',
    '',
    'Environment overrides: `MESHMEDIC_<PATH>` with path segments joined by `__`, matched case-insensitively, values',
    'parsed as YAML scalars: `MESHMEDIC_ADMIN__LISTEN=127.0.0.1:9000`, `MESHMEDIC_HEALING__EJECTION__BASEMS=5000`.',
    '',
    '| key | type | default | meaning |',
    '|---|---|---|---|',
  ];
  rows(configSchema as unknown as Node, '', out);
  return out.join('\n') + '\n';
}

export function renderErrorReference(): string {
  const out = [
    '# Error codes',
    '',
    'Generated from `src/core/errors.ts` by `npm run docs`. Every error meshmedic reports to a client, an operator',
    'or a log carries one of these stable codes: in the JSON body of a 4xx/5xx answer (`{"error": CODE, "message": …}`),',
    'in a gRPC status message, in AdmissionReview warnings, or in a log line. Codes never change meaning; new ones',
    'are only added.',
    '',
    '| code | meaning |',
    '|---|---|',
    ...Object.entries(ERROR_CODES).map(([code, meaning]) => `| \`${code}\` | ${meaning} |`),
  ];
  return out.join('\n') + '\n';
}

const isMain = process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/').split('/').pop()!);
if (isMain && process.argv[2]) {
  const { writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  writeFileSync(join(process.argv[2], 'config.md'), renderConfigReference());
  writeFileSync(join(process.argv[2], 'errors.md'), renderErrorReference());
}
