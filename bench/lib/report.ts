// Result tables: rendered as Markdown, written as JSON to bench/results/, and placed by the benchmark
// itself between markers in bench/README.md (never edited by hand).
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';

export type Cell = string | number | null | undefined;

export interface Table {
  readonly columns: readonly string[];
  readonly rows: readonly (readonly Cell[])[];
  /** Columns to right-align (numbers); default: every column whose cells are all numbers or empty. */
  readonly alignRight?: readonly boolean[];
}

/** Format a number for a table: integers with thousands separators, others with `digits` decimals. */
export function fmt(v: Cell, digits = 2): string {
  if (v === null || v === undefined || (typeof v === 'number' && Number.isNaN(v))) return '–';
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return v > 0 ? '∞' : '-∞';
  if (Number.isInteger(v)) return v.toLocaleString('en-US');
  return v.toFixed(digits);
}

const esc = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function renderMarkdown(t: Table): string {
  const right = t.alignRight ?? t.columns.map((_, c) => t.rows.every((r) => r[c] === null || r[c] === undefined || typeof r[c] === 'number'));
  const head = `| ${t.columns.map(esc).join(' | ')} |`;
  const sep = `|${t.columns.map((_, c) => (right[c] ? '---:' : '---')).join('|')}|`;
  const body = t.rows.map((r) => `| ${t.columns.map((_, c) => esc(fmt(r[c]))).join(' | ')} |`);
  return [head, sep, ...body].join('\n');
}

/** A plain-text table for the terminal. */
export function renderText(t: Table): string {
  const cells = [t.columns.map(String), ...t.rows.map((r) => t.columns.map((_, c) => fmt(r[c])))];
  const width = t.columns.map((_, c) => Math.max(...cells.map((r) => r[c].length)));
  const right = t.alignRight ?? t.columns.map((_, c) => t.rows.every((r) => r[c] === null || r[c] === undefined || typeof r[c] === 'number'));
  const line = (r: string[]): string => r.map((v, c) => (right[c] ? v.padStart(width[c]) : v.padEnd(width[c]))).join('  ').trimEnd();
  return [line(cells[0]), width.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

export const markers = (name: string): { start: string; end: string } => ({
  start: `<!-- ${name}:start (written by the benchmark; do not edit by hand) -->`,
  end: `<!-- ${name}:end -->`,
});

/**
 * Replace the section between the markers named `name` in `doc` with `content`; append the section
 * (under `heading`) when the markers are absent. Returns the new document.
 */
export function replaceSection(doc: string, name: string, content: string, heading?: string): string {
  const { start, end } = markers(name);
  const block = `${start}\n${content.trim()}\n${end}`;
  const a = doc.indexOf(start);
  const b = doc.indexOf(end);
  if (a >= 0 && b > a) return doc.slice(0, a) + block + doc.slice(b + end.length);
  const sep = doc.length === 0 || doc.endsWith('\n\n') ? '' : doc.endsWith('\n') ? '\n' : '\n\n';
  return `${doc}${sep}${heading ? `${heading}\n\n` : ''}${block}\n`;
}

/** Update the marked section of a Markdown file in place (creating the file if needed). */
export function updateMarkdownFile(file: string, name: string, content: string, heading?: string): void {
  const doc = existsSync(file) ? readFileSync(file, 'utf8') : '';
  writeFileSync(file, replaceSection(doc, name, content, heading));
}

export function writeJson(file: string, value: unknown): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(value, null, 2) + '\n');
}

/** Ratio a/b rounded to two decimals, or null when either side is missing. */
export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a === null || a === undefined || b === null || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return null;
  return Math.round((a / b) * 100) / 100;
}
