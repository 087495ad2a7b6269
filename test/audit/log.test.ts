import t, { type Test } from 'tap';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync, mkdirSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtualClock } from '../../src/core/clock.js';
import { AuditLog, type AuditLogOptions } from '../../src/audit/log.js';
import { verifyDir } from '../../src/audit/verify.js';
import { readMeta, segmentLogName, segmentCheckpointName } from '../../src/audit/files.js';
import { parseVerifierKey, signCheckpoint, generateNoteKey } from '../../src/audit/note.js';
import { scanRecords, SEGMENT_MAGIC, frameRecord, CHECKPOINTS_MAGIC } from '../../src/audit/record.js';

const { privateKey } = generateKeyPairSync('ed25519');

function tmp(t: Test): string {
  const d = mkdtempSync(join(tmpdir(), 'mm-audit-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

function opts(dir: string, clock: VirtualClock, extra: Partial<AuditLogOptions> = {}): AuditLogOptions {
  return {
    dir, origin: 'meshmedic.io/audit/test', privateKey, clock, fsyncIntervalMs: 100, checkpointIntervalMs: 1000,
    retention: { maxSegmentEntries: 1_000_000, maxSegmentAgeMs: 86_400_000, maxSegments: 10 }, ...extra,
  };
}

async function filled(t: Test, n = 50): Promise<string> {
  const dir = tmp(t);
  const clock = new VirtualClock();
  const log = AuditLog.open(opts(dir, clock));
  for (let i = 0; i < n; i++) {
    log.append({ kind: 'decision', at: clock.now(), action: 'eject', target: `svc/127.0.0.1:${8000 + i}`, evidence: { errors: i } });
    if (i % 10 === 9) {
      clock.advance(1000);
      await log.flush();
    }
  }
  await log.close();
  return dir;
}

const seg1 = (dir: string) => join(dir, segmentLogName(1));

t.test('an untouched log verifies, with one checkpoint per flush interval and a final one', async (t) => {
  const dir = await filled(t);
  const r = verifyDir(dir);
  t.same(r.problems, []);
  t.ok(r.ok);
  t.equal(r.segments[0]!.entries, 51, 'the segment opening entry + 50');
  t.equal(r.segments[0]!.signed, 51);
  t.ok(r.segments[0]!.checkpoints >= 5);
});

t.test('a flipped byte in any record is detected and names the entry', async (t) => {
  const dir = await filled(t, 20);
  const orig = readFileSync(seg1(dir));
  const recs = scanRecords(orig, SEGMENT_MAGIC).records;
  for (const idx of [0, 7, 20]) {
    for (const delta of [0, 5, -1]) {
      const rec = recs[idx]!;
      const pos = delta >= 0 ? rec.offset + 4 + delta : rec.offset + 4 + rec.payload.length - 1;
      const b = Buffer.from(orig);
      b[pos] ^= 0x01;
      writeFileSync(seg1(dir), b);
      const r = verifyDir(dir);
      t.notOk(r.ok, `entry ${idx} byte ${pos}`);
      t.match(r.problems[0], new RegExp(`entry ${idx}\\b.*record altered`), r.problems[0]);
    }
  }
  // The length field and checksum themselves are covered too.
  const b = Buffer.from(orig);
  b[recs[3]!.offset + 3] ^= 0x02;
  writeFileSync(seg1(dir), b);
  t.match(verifyDir(dir).problems[0], /entry 3\b/);
});

t.test('an altered record with a recomputed checksum fails against the signed checkpoint', async (t) => {
  const dir = await filled(t, 20);
  const orig = readFileSync(seg1(dir));
  const recs = scanRecords(orig, SEGMENT_MAGIC).records;
  const out: Buffer[] = [SEGMENT_MAGIC];
  recs.forEach((r, i) => {
    const text = r.payload.toString('utf8');
    out.push(frameRecord(Buffer.from(i === 9 ? text.replace('"eject"', '"drain"') : text)));
  });
  writeFileSync(seg1(dir), Buffer.concat(out));
  const r = verifyDir(dir);
  t.notOk(r.ok);
  t.match(r.problems.join('\n'), /checkpoint of size \d+ .*does not match the entries: an entry in 0\.\.\d+ was altered/);
});

t.test('reordered records are named', async (t) => {
  const dir = await filled(t, 20);
  const recs = scanRecords(readFileSync(seg1(dir)), SEGMENT_MAGIC).records.map((r) => frameRecord(r.payload));
  [recs[4], recs[5]] = [recs[5]!, recs[4]!];
  writeFileSync(seg1(dir), Buffer.concat([SEGMENT_MAGIC, ...recs]));
  const r = verifyDir(dir);
  t.notOk(r.ok);
  t.match(r.problems[0], /entry 4: holds index 5 \(records reordered/);
});

t.test('truncation below a signed size names the checkpoint', async (t) => {
  const dir = await filled(t, 20);
  const recs = scanRecords(readFileSync(seg1(dir)), SEGMENT_MAGIC).records;
  truncateSync(seg1(dir), recs[12]!.offset);
  const r = verifyDir(dir);
  t.notOk(r.ok);
  t.match(r.problems[0], /checkpoint of size 21 \(segment 1, #\d+\): only 12 entries are present \(log truncated or rewritten below a signed size\)/);
});

t.test('a forged checkpoint (wrong key) is detected, and a pinned key rejects a re-signed log', async (t) => {
  const dir = await filled(t, 5);
  const meta = readMeta(dir);
  const mallory = generateNoteKey(meta.origin);
  const forged = signCheckpoint({ origin: `${meta.origin}/1`, size: 6, root: Buffer.alloc(32, 7) }, mallory);
  const ck = readFileSync(join(dir, segmentCheckpointName(1)));
  writeFileSync(join(dir, segmentCheckpointName(1)), Buffer.concat([ck, frameRecord(Buffer.from(forged))]));
  const r = verifyDir(dir);
  t.notOk(r.ok);
  t.match(r.problems.join('\n'), /no valid signature.*forged or altered checkpoint/);
  // A key holder who rewrites everything (log.json included) is caught only by a pinned key or witnesses.
  const pinned = parseVerifierKey(meta.keys[0]!);
  const other = parseVerifierKey(`${meta.origin}+${'0'.repeat(8)}+${Buffer.concat([Buffer.from([1]), mallory.publicKeyRaw]).toString('base64')}`.replace('00000000', (await import('../../src/audit/note.js')).keyId(meta.origin, mallory.publicKeyRaw).toString('hex')));
  t.ok(verifyDir(dir, pinned).problems.some((p) => /forged/.test(p)));
  t.notOk(verifyDir(dir, other).ok, 'the real checkpoints fail under a different key');
});

t.test('reopening continues the same segment and the tree; a torn tail after a crash is cut off', async (t) => {
  const dir = await filled(t, 10);
  const b = readFileSync(seg1(dir));
  writeFileSync(seg1(dir), Buffer.concat([b, Buffer.from([0, 0, 0, 40, 1, 2, 3])])); // half a record
  t.match(verifyDir(dir).notes.join('\n'), /incomplete record.*after the last signed checkpoint/);
  t.ok(verifyDir(dir).ok);
  const clock = new VirtualClock();
  const log = AuditLog.open(opts(dir, clock));
  t.equal(log.status().state, 'ok');
  t.equal(log.status().size, 11);
  log.append({ kind: 'operator', at: clock.now(), call: 'POST /x' });
  await log.close();
  const r = verifyDir(dir);
  t.same(r.problems, []);
  t.equal(r.segments[0]!.entries, 12);
  t.equal(r.segments[0]!.signed, 12);
});

t.test('rotation by entries: new segments link to the previous final checkpoint; retention deletes the oldest', async (t) => {
  const dir = tmp(t);
  const clock = new VirtualClock();
  const log = AuditLog.open(opts(dir, clock, { retention: { maxSegmentEntries: 10, maxSegmentAgeMs: 86_400_000, maxSegments: 3 } }));
  for (let i = 0; i < 45; i++) {
    log.append({ kind: 'decision', at: clock.now(), n: i });
    if (i % 4 === 0) {
      clock.advance(200);
      await log.flush();
    }
  }
  await log.close();
  const files = readdirSync(dir).filter((f) => f.endsWith('.log')).sort();
  t.same(files, ['seg-000003.log', 'seg-000004.log', 'seg-000005.log'], '5 segments of 10 (opening + 9), the 3 newest kept');
  const r = verifyDir(dir);
  t.same(r.problems, []);
  for (const s of r.segments) t.equal(s.signed, s.entries, `segment ${s.segment} fully signed`);
  // Break the link: rewrite segment 5's opening entry (checksum recomputed) — the chain check names it.
  const p = join(dir, 'seg-000005.log');
  const recs = scanRecords(readFileSync(p), SEGMENT_MAGIC).records.map((x, i) => frameRecord(i === 0 ? Buffer.from(x.payload.toString().replace(/"size":10/, '"size":9')) : x.payload));
  writeFileSync(p, Buffer.concat([SEGMENT_MAGIC, ...recs]));
  t.match(verifyDir(dir).problems.join('\n'), /segment 5 entry 0: links to size 9 of segment 4/);
});

t.test('entries are served by segment and index across rotated segments, with bounds named', async (t) => {
  const dir = tmp(t);
  const clock = new VirtualClock();
  const log = AuditLog.open(opts(dir, clock, { retention: { maxSegmentEntries: 10, maxSegmentAgeMs: 86_400_000, maxSegments: 3 } }));
  t.teardown(() => log.close());
  for (let n = 0; n < 40; n++) {
    log.append({ kind: 'decision', at: clock.now(), n });
    if (n % 4 === 3) {
      clock.advance(200);
      await log.flush();
    }
  }
  await log.flush(true);
  await log.flush(true);
  // 40 entries + one opening entry per segment, 10 per segment: segments 1 to 5, the newest 3 kept.
  t.same(log.segmentNumbers(), [3, 4, 5]);
  // Walk everything from the oldest held segment with pages of 7: each page stays in one segment.
  let cursor = { segment: 3, from: 0 };
  const seen: { segment: number; i: number; n?: number; kind: string }[] = [];
  for (let pages = 0; pages < 20; pages++) {
    const page = log.readPage(cursor.segment, cursor.from, 7);
    t.equal(page.origin, `meshmedic.io/audit/test/${page.segment}`);
    for (const e of page.entries) seen.push({ segment: page.segment, ...(JSON.parse(e) as { i: number; n?: number; kind: string }) });
    if (page.next.segment === cursor.segment && page.next.from === cursor.from) break;
    cursor = page.next;
  }
  t.same(seen.map((e) => `${e.segment}/${e.i}`), [3, 4, 5].flatMap((sg) => Array.from({ length: sg === 5 ? log.status().durable : 10 }, (_, i) => `${sg}/${i}`)), 'every entry of every held segment, in order');
  t.same(seen.filter((e) => e.kind === 'decision').map((e) => e.n), Array.from({ length: seen.length - 3 }, (_, k) => 40 - (seen.length - 3) + k), 'the decisions in the order they were appended');
  t.same(seen.filter((e) => e.i === 0).map((e) => e.kind), ['segment', 'segment', 'segment']);
  // A rotated segment read in the middle; a page at its end points at the next segment's start.
  t.same(log.readPage(4, 8, 100).entries.map((e) => (JSON.parse(e) as { i: number }).i), [8, 9]);
  t.same(log.readPage(4, 10, 100).next, { segment: 5, from: 0 });
  t.same(log.readPage(3, 0, 1).next, { segment: 3, from: 1 });
  // The current segment: its end is where to poll; the default segment is the current one.
  const cur = log.readPage(undefined, 0, 1000);
  t.equal(cur.segment, 5);
  t.same(cur.next, { segment: 5, from: cur.size });
  // Bounds: each error names the parameter and what is held.
  t.throws(() => log.readPage(1, 0, 10), { name: 'RangeError', param: 'segment', status: 404, message: /^segment: segment 1 is not held: segments 3 to 5 are$/ }, 'a segment deleted by retention');
  t.throws(() => log.readPage(9, 0, 10), { param: 'segment', status: 404, message: /segment 9 is not held/ });
  t.throws(() => log.readPage(4, 11, 10), { param: 'from', status: 400, message: /^from: from must be at most 10: segment 4 holds 10 entries \(indexes 0 to 9\), got 11$/ });
  // A record changed on disk after the segment was indexed is named, not served.
  const p = join(dir, segmentLogName(3));
  const buf = readFileSync(p);
  buf[buf.length - 20] ^= 0xff;
  writeFileSync(p, buf);
  t.throws(() => log.readPage(3, 9, 1), { code: 'MM_ERR_AUDIT_TAMPERED', message: /segment 3 entry 9: the record is damaged/ });
});

t.test('rotation by age', async (t) => {
  const dir = tmp(t);
  const clock = new VirtualClock();
  const log = AuditLog.open(opts(dir, clock, { retention: { maxSegmentEntries: 1000, maxSegmentAgeMs: 5000, maxSegments: 10 } }));
  log.append({ kind: 'x', at: clock.now() });
  await log.flush();
  clock.advance(6000);
  log.append({ kind: 'x', at: clock.now() });
  await log.flush();
  await log.flush();
  await log.close();
  t.equal(verifyDir(dir).segments.length, 2);
  t.ok(verifyDir(dir).ok);
});

t.test('unwritable directory (its parent is a regular file): outage reported, entries queued, resumes once it is a directory', async (t) => {
  // Tests run as root, which ignores permission bits: a path under a regular file fails with ENOTDIR for anyone.
  const base = tmp(t);
  const blocker = join(base, 'blocker');
  writeFileSync(blocker, 'not a directory');
  const dir = join(blocker, 'audit');
  const clock = new VirtualClock();
  const events: string[] = [];
  const log = AuditLog.open(opts(dir, clock, { retryMs: 500, onOutage: (e) => events.push(e ? `down: ${e.message}` : 'up') }));
  t.equal(log.status().state, 'outage');
  t.match(events[0], /down: .*ENOTDIR/);
  for (let i = 0; i < 5; i++) t.equal(log.append({ kind: 'decision', at: clock.now(), n: i }), -1);
  t.equal(log.status().queued, 5);
  clock.advance(600);
  t.equal(log.status().state, 'outage', 'still down');
  rmSync(blocker);
  mkdirSync(blocker);
  clock.advance(500);
  t.equal(log.status().state, 'ok');
  t.equal(events[1], 'up');
  await log.close();
  const r = verifyDir(dir);
  t.same(r.problems, []);
  t.equal(r.segments[0]!.entries, 1 + 5 + 1, 'opening + queued + the resumed note');
});

t.test('a write error mid-run (injected ENOSPC): nothing durable lost, the entries written later, the outage logged', async (t) => {
  const dir = tmp(t);
  const clock = new VirtualClock();
  let fail = false;
  const log = AuditLog.open(opts(dir, clock, { retryMs: 500, beforeWrite: () => { if (fail) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }); } }));
  for (let i = 0; i < 5; i++) log.append({ kind: 'd', at: 0, n: i });
  await log.flush(true);
  fail = true;
  for (let i = 5; i < 10; i++) log.append({ kind: 'd', at: 0, n: i });
  await log.flush();
  t.equal(log.status().state, 'outage');
  t.match(log.status().lastError, /ENOSPC/);
  log.append({ kind: 'd', at: 0, n: 10 });
  fail = false;
  clock.advance(500);
  t.equal(log.status().state, 'ok');
  await log.close();
  const r = verifyDir(dir);
  t.same(r.problems, []);
  const ns = scanRecords(readFileSync(seg1(dir)), SEGMENT_MAGIC).records.map((x) => JSON.parse(x.payload.toString()) as { n?: number; event?: string });
  t.same(ns.filter((e) => e.n !== undefined).map((e) => e.n), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  t.equal(ns[ns.length - 1]!.event, 'resumed');
});

t.test('a damaged segment at open: logging continues in a new segment that says why', async (t) => {
  const dir = await filled(t, 10);
  const b = readFileSync(seg1(dir));
  b[20] ^= 0xff;
  writeFileSync(seg1(dir), b);
  const problems: string[] = [];
  const log = AuditLog.open(opts(dir, new VirtualClock(), { onCorruption: (m) => problems.push(m) }));
  t.equal(log.status().segment, 2);
  t.match(problems[0], /segment 1: checkpoint of size 11 is signed but only 0 entries are readable/);
  await log.close();
  const r = verifyDir(dir);
  t.match(r.problems[0], /segment 1 entry 0: checksum mismatch/);
  t.equal(r.segments[1]!.entries, 2, 'opening + the note naming the problem');
  t.ok(CHECKPOINTS_MAGIC.length > 0);
});
