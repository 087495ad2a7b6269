// `meshmedic audit verify|tail|prove|verify-proof`: check an audit directory, read it, and make or check
// RFC 9162 proofs. Exit codes: 0 ok, 1 verification failed or runtime error, 2 usage error.
import { parseArgs } from 'node:util';
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { CliIo } from '../cli/main.js';
import { checkProofDoc, consistencyProofDoc, inclusionProofDoc, loadSegmentTree, verifyDir } from './verify.js';
import { listSegments, metaKeys, readMeta, segmentLogName } from './files.js';
import { parseVerifierKey, type NoteKey } from './note.js';
import { SEGMENT_MAGIC } from './record.js';

const HELP = `Usage: meshmedic audit <verify|tail|prove|verify-proof> ...

  verify DIR [--key VKEY] [--json]
      Recompute every entry, tree and checkpoint. Exit 0 when intact; exit 1 naming the first bad entry
      (altered, reordered) or the checkpoint a truncation or rewrite contradicts. --key pins the log's
      verifier key (name+id+key, see DIR/log.json) instead of trusting the directory's own copy.
  tail DIR [-n N] [--follow]
      Print the newest N entries (default 20) as JSON lines, across rotated segments; --follow keeps printing
      new ones until interrupted.
  prove DIR --index N [--segment S]      inclusion proof of entry N in the latest signed checkpoint
  prove DIR --from SIZE [--segment S]    consistency proof from tree size SIZE to the latest checkpoint
      Both print a JSON document (RFC 9162 field names) with the signed checkpoint inside.
  verify-proof FILE|- (--key VKEY | --dir DIR)
      Check a proof document: the checkpoint signature, then the inclusion or consistency proof.
`;

function parse(argv: string[], options: Record<string, { type: 'string' | 'boolean'; short?: string }>, io: CliIo): { values: Record<string, string | boolean | undefined>; positionals: string[] } | number {
  try {
    const p = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: true });
    if (p.values.help) {
      io.out(HELP);
      return 0;
    }
    return { values: p.values as Record<string, string | boolean | undefined>, positionals: p.positionals };
  } catch (err) {
    io.err(`meshmedic audit: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
}

function keyArg(v: string | boolean | undefined): NoteKey | undefined {
  if (typeof v !== 'string') return undefined;
  return parseVerifierKey(v);
}

export async function auditCommand(argv: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'verify':
      return verifyCommand(rest, io);
    case 'tail':
      return tailCommand(rest, io);
    case 'prove':
      return proveCommand(rest, io);
    case 'verify-proof':
      return verifyProofCommand(rest, io);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      io.out(HELP);
      return sub === undefined ? 2 : 0;
    default:
      io.err(`meshmedic audit: unknown subcommand "${sub}"\n\n${HELP}`);
      return 2;
  }
}

function oneDir(p: { positionals: string[] }, io: CliIo): string | undefined {
  if (p.positionals.length !== 1) {
    io.err(`meshmedic audit: expected one directory, got ${p.positionals.length} arguments\n\n${HELP}`);
    return undefined;
  }
  return p.positionals[0]!;
}

function verifyCommand(argv: string[], io: CliIo): number {
  const p = parse(argv, { key: { type: 'string' }, json: { type: 'boolean' } }, io);
  if (typeof p === 'number') return p;
  const dir = oneDir(p, io);
  if (!dir) return 2;
  let key: NoteKey | undefined;
  try {
    key = keyArg(p.values.key);
  } catch (err) {
    io.err(`meshmedic audit verify: --key: ${(err as Error).message}\n`);
    return 2;
  }
  const r = verifyDir(dir, key);
  if (p.values.json) {
    io.out(`${JSON.stringify(r, null, 2)}\n`);
    return r.ok ? 0 : 1;
  }
  for (const s of r.segments) io.out(`segment ${s.segment} (${s.origin}): ${s.entries} entries, ${s.checkpoints} checkpoints, signed up to ${s.signed}\n`);
  for (const n of r.notes) io.out(`note: ${n}\n`);
  if (r.ok) {
    io.out(`audit log intact: ${dir}\n`);
    return 0;
  }
  io.err(`MM_ERR_AUDIT_TAMPERED: ${r.problems[0]}\n`);
  for (const x of r.problems.slice(1, 20)) io.err(`  also: ${x}\n`);
  if (r.problems.length > 20) io.err(`  … and ${r.problems.length - 20} more\n`);
  return 1;
}

/** Entries of segment `n` from byte `offset` on; returns them and the offset after the last complete one. */
function readFrom(path: string, offset: number): { entries: string[]; next: number } {
  const size = statSync(path).size;
  if (size <= offset) return { entries: [], next: offset };
  const buf = Buffer.allocUnsafe(size - offset);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, buf, 0, buf.length, offset);
  } finally {
    closeSync(fd);
  }
  const entries: string[] = [];
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = buf.readUInt32BE(off);
    if (off + 8 + len > buf.length) break;
    entries.push(buf.subarray(off + 4, off + 4 + len).toString('utf8'));
    off += len + 8;
  }
  return { entries, next: offset + off };
}

async function tailCommand(argv: string[], io: CliIo): Promise<number> {
  const p = parse(argv, { n: { type: 'string', short: 'n' }, follow: { type: 'boolean', short: 'f' } }, io);
  if (typeof p === 'number') return p;
  const dir = oneDir(p, io);
  if (!dir) return 2;
  const count = p.values.n === undefined ? 20 : Number(p.values.n);
  if (!Number.isInteger(count) || count < 0) {
    io.err('meshmedic audit tail: -n must be a non-negative integer\n');
    return 2;
  }
  let segs: number[];
  try {
    segs = listSegments(dir);
  } catch (err) {
    io.err(`meshmedic audit tail: ${(err as Error).message}\n`);
    return 1;
  }
  let seg = segs[segs.length - 1];
  if (seg === undefined) {
    io.err(`meshmedic audit tail: no segment in ${dir}\n`);
    return 1;
  }
  let r = readFrom(join(dir, segmentLogName(seg)), SEGMENT_MAGIC.length);
  // The newest entries may span a rotation: take what is missing from the segments before.
  const older: string[][] = [];
  let missing = count - r.entries.length;
  for (let k = segs.length - 2; k >= 0 && missing > 0; k--) {
    const prev = readFrom(join(dir, segmentLogName(segs[k]!)), SEGMENT_MAGIC.length).entries;
    older.unshift(prev.slice(Math.max(0, prev.length - missing)));
    missing -= prev.length;
  }
  for (const e of [...older.flat(), ...r.entries.slice(Math.max(0, r.entries.length - count))]) io.out(`${e}\n`);
  if (!p.values.follow) return 0;
  let offset = r.next;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      try {
        const latest = listSegments(dir);
        const newest = latest[latest.length - 1]!;
        r = readFrom(join(dir, segmentLogName(seg!)), offset);
        for (const e of r.entries) io.out(`${e}\n`);
        offset = r.next;
        if (newest !== seg && r.entries.length === 0) {
          seg = newest; // rotated: continue in the new segment
          offset = SEGMENT_MAGIC.length;
        }
      } catch (err) {
        io.err(`meshmedic audit tail: ${(err as Error).message}\n`);
      }
    }, 200);
    const stop = () => {
      clearInterval(timer);
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}

function proveCommand(argv: string[], io: CliIo): number {
  const p = parse(argv, { index: { type: 'string' }, from: { type: 'string' }, segment: { type: 'string' } }, io);
  if (typeof p === 'number') return p;
  const dir = oneDir(p, io);
  if (!dir) return 2;
  const num = (name: string): number | undefined | string => {
    const v = p.values[name];
    if (v === undefined) return undefined;
    return typeof v === 'string' && /^\d{1,16}$/.test(v) ? Number(v) : `--${name} must be a non-negative integer`;
  };
  const index = num('index');
  const from = num('from');
  const segment = num('segment');
  for (const x of [index, from, segment]) {
    if (typeof x === 'string') {
      io.err(`meshmedic audit prove: ${x}\n`);
      return 2;
    }
  }
  if ((index === undefined) === (from === undefined)) {
    io.err(`meshmedic audit prove: give exactly one of --index N or --from SIZE\n\n${HELP}`);
    return 2;
  }
  try {
    const s = loadSegmentTree(dir, segment as number | undefined);
    const latest = s.checkpoints.reduce<(typeof s.checkpoints)[number] | undefined>((a, c) => (!a || c.size >= a.size ? c : a), undefined);
    if (!latest) throw new Error(`segment ${s.n} has no signed checkpoint yet`);
    if (latest.size > s.tree.size) throw new Error(`the latest checkpoint signs ${latest.size} entries but only ${s.tree.size} are readable: run audit verify`);
    if (!s.tree.root(latest.size).equals(latest.root)) throw new Error('the entries do not match the latest checkpoint: run audit verify');
    const doc = index !== undefined ? inclusionProofDoc(s.tree, s.entries, latest, index as number) : consistencyProofDoc(s.tree, s.checkpoints, latest, from as number);
    io.out(`${JSON.stringify(doc, null, 2)}\n`);
    return 0;
  } catch (err) {
    io.err(`meshmedic audit prove: ${(err as Error).message}\n`);
    return 1;
  }
}

function verifyProofCommand(argv: string[], io: CliIo): number {
  const p = parse(argv, { key: { type: 'string' }, dir: { type: 'string' } }, io);
  if (typeof p === 'number') return p;
  if (p.positionals.length !== 1) {
    io.err(`meshmedic audit verify-proof: give one proof file (or - for stdin)\n\n${HELP}`);
    return 2;
  }
  let keys: NoteKey[];
  try {
    if (typeof p.values.key === 'string') keys = [parseVerifierKey(p.values.key)];
    else if (typeof p.values.dir === 'string') keys = metaKeys(readMeta(p.values.dir));
    else {
      io.err('meshmedic audit verify-proof: --key VKEY or --dir DIR names the key to trust\n');
      return 2;
    }
  } catch (err) {
    io.err(`meshmedic audit verify-proof: key: ${(err as Error).message}\n`);
    return 2;
  }
  let doc: unknown;
  try {
    const file = p.positionals[0]!;
    doc = JSON.parse(readFileSync(file === '-' ? 0 : file, 'utf8'));
  } catch (err) {
    io.err(`meshmedic audit verify-proof: cannot read the proof: ${(err as Error).message}\n`);
    return 1;
  }
  let problem: string | undefined = 'no key';
  for (const k of keys) {
    problem = checkProofDoc(doc, k);
    if (!problem) break;
  }
  if (problem) {
    io.err(`proof INVALID: ${problem}\n`);
    return 1;
  }
  io.out('proof valid\n');
  return 0;
}
