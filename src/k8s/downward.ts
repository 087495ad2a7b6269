// The pod's annotations as the kubelet writes them into a downward-API volume: `key="value"` lines
// (Go-quoted values), read at start and whenever the kubelet rewrites them. Free of the config validator,
// so that a sidecar watching them does not load it (docs/kubernetes.md, "Memory budget").
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { Logger } from '../core/log.js';
import { silentLogger } from '../core/log.js';

export interface ParsedAnnotations {
  readonly annotations: Record<string, string>;
  /** Lines that could not be read, with their line number and why. */
  readonly errors: readonly string[];
}

/**
 * Parse the kubelet's downward-API format (fieldpath.FormatMap): one `key="value"` per line, keys
 * sorted, values quoted as Go's %q does (strconv.Quote escapes). Bad lines are reported, not thrown.
 */
export function parseDownwardAnnotations(text: string): ParsedAnnotations {
  const annotations: Record<string, string> = Object.create(null);
  const errors: string[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    if (line.trim() === '') continue;
    const eq = line.indexOf('=');
    if (eq <= 0) {
      errors.push(`line ${i + 1}: expected key="value"`);
      continue;
    }
    const key = line.slice(0, eq);
    const value = unquoteGo(line.slice(eq + 1));
    if (typeof value !== 'string') {
      errors.push(`line ${i + 1} (${key.slice(0, 80)}): ${value.error}`);
      continue;
    }
    annotations[key] = value;
  }
  return { annotations: { ...annotations }, errors };
}

const SIMPLE_ESCAPES: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, '\\': 92, '"': 34, "'": 39 };

/** Undo Go's strconv.Quote: the whole input must be one double-quoted string. */
export function unquoteGo(s: string): string | { error: string } {
  if (s.length < 2 || s[0] !== '"' || s[s.length - 1] !== '"') return { error: 'value is not a double-quoted string' };
  const bytes: number[] = [];
  const body = s.slice(1, -1);
  for (let i = 0; i < body.length; ) {
    const c = body[i]!;
    if (c === '"') return { error: `unescaped quote at column ${i + 2}` };
    if (c !== '\\') {
      const cp = body.codePointAt(i)!;
      pushUtf8(bytes, cp);
      i += cp > 0xffff ? 2 : 1;
      continue;
    }
    const e = body[i + 1];
    if (e === undefined) return { error: 'value ends inside an escape' };
    if (e in SIMPLE_ESCAPES) {
      bytes.push(SIMPLE_ESCAPES[e]!);
      i += 2;
    } else if (e === 'x') {
      const h = body.slice(i + 2, i + 4);
      if (!/^[0-9a-fA-F]{2}$/.test(h)) return { error: `bad \\x escape at column ${i + 2}` };
      bytes.push(parseInt(h, 16)); // a raw byte: Go strings may hold invalid UTF-8
      i += 4;
    } else if (e === 'u' || e === 'U') {
      const n = e === 'u' ? 4 : 8;
      const h = body.slice(i + 2, i + 2 + n);
      const cp = /^[0-9a-fA-F]+$/.test(h) && h.length === n ? parseInt(h, 16) : NaN;
      if (!(cp <= 0x10ffff) || (cp >= 0xd800 && cp <= 0xdfff)) return { error: `bad \\${e} escape at column ${i + 2}` };
      pushUtf8(bytes, cp);
      i += 2 + n;
    } else if (e >= '0' && e <= '7') {
      const o = body.slice(i + 1, i + 4);
      if (!/^[0-7]{3}$/.test(o) || parseInt(o, 8) > 255) return { error: `bad octal escape at column ${i + 2}` };
      bytes.push(parseInt(o, 8));
      i += 4;
    } else {
      return { error: `unknown escape \\${e} at column ${i + 2}` };
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function pushUtf8(out: number[], cp: number): void {
  if (cp < 0x80) out.push(cp);
  else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 63));
  else if (cp < 0x10000) out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
  else out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 63), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
}

/** Format annotations the way the kubelet does (used by tests and by `meshmedic` tooling). */
export function formatDownwardAnnotations(annotations: Readonly<Record<string, string>>): string {
  return Object.keys(annotations)
    .sort()
    .map((k) => `${k}=${quoteGo(annotations[k]!)}`)
    .join('\n');
}

/** Go's strconv.Quote for valid UTF-8 input (printable characters kept, others escaped). */
export function quoteGo(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += '\\' + ch;
    else if (cp === 7) out += '\\a';
    else if (cp === 8) out += '\\b';
    else if (cp === 12) out += '\\f';
    else if (cp === 10) out += '\\n';
    else if (cp === 13) out += '\\r';
    else if (cp === 9) out += '\\t';
    else if (cp === 11) out += '\\v';
    else if (cp < 0x20 || cp === 0x7f) out += '\\x' + cp.toString(16).padStart(2, '0');
    else if ((cp >= 0x80 && cp < 0xa0) || cp === 0xad || cp === 0x2028 || cp === 0x2029 || cp === 0xfeff) out += '\\u' + cp.toString(16).padStart(4, '0');
    else out += ch;
  }
  return out + '"';
}

export interface AnnotationsWatcher {
  /** The annotations as last read. */
  current(): Readonly<Record<string, string>>;
  close(): void;
}

export interface WatchOptions {
  /** Poll interval, a fallback for file systems where fs.watch misses the kubelet's symlink swap. */
  readonly pollMs?: number;
  readonly log?: Logger;
}

/**
 * Watch a downward-API annotations file. The kubelet replaces the volume's `..data` symlink
 * atomically, so the directory is watched (not the file) and a poll backs it up. `onChange` runs
 * only when the parsed content changed. A missing or unreadable file reads as no annotations.
 */
export function watchAnnotationsFile(file: string, onChange: (annotations: Record<string, string>, errors: readonly string[]) => void, opts: WatchOptions = {}): AnnotationsWatcher {
  const log = opts.log ?? silentLogger;
  let lastText = readText(file);
  let current = parseDownwardAnnotations(lastText).annotations;
  let closed = false;
  let reading = false;
  let again = false;
  const check = async (): Promise<void> => {
    if (closed) return;
    if (reading) { again = true; return; }
    reading = true;
    try {
      do {
        again = false;
        let text = '';
        try {
          text = await readFile(file, 'utf8');
        } catch {
          text = '';
        }
        if (closed || text === lastText) continue;
        lastText = text;
        const parsed = parseDownwardAnnotations(text);
        current = parsed.annotations;
        if (parsed.errors.length) log.warn('pod annotations file has unreadable lines', { file, errors: parsed.errors.slice(0, 10) });
        try {
          onChange(parsed.annotations, parsed.errors);
        } catch (err) {
          log.error('annotation change handler failed', { err });
        }
      } while (again && !closed);
    } finally {
      reading = false;
    }
  };
  let watcher: FSWatcher | undefined;
  try {
    const name = basename(file);
    watcher = watch(dirname(file), { persistent: false }, (_ev, f) => {
      if (!f || f === name || f.startsWith('..')) void check();
    });
    watcher.on('error', (err) => {
      log.debug('fs.watch failed; polling only', { file, err });
      watcher?.close();
      watcher = undefined;
    });
  } catch (err) {
    log.debug('fs.watch unavailable; polling only', { file, err });
  }
  const poll = setInterval(() => void check(), Math.max(50, opts.pollMs ?? 5000));
  poll.unref();
  return {
    current: () => current,
    close() {
      closed = true;
      clearInterval(poll);
      watcher?.close();
    },
  };
}

/** The annotations file's text; a missing or unreadable file reads as empty (no annotations). */
export function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
