// Per-connection memory: 30,000 short connections (a tenth malformed, a quarter of upstream connections
// closed by the endpoint) leave no parser or connection object behind and do not grow the heap or RSS.
// Run in a child process with --expose-gc so that the counts are taken after full collections.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const child = fileURLToPath(new URL('./fixtures/leak-child.ts', import.meta.url));
// ~17 s of CPU: about 25 s on a quiet machine; a loaded CI machine may take several times that.
t.setTimeout(420_000);

t.test('closed connections release their parsers and connection objects', async (t) => {
  const out = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['--expose-gc', '--no-warnings', '--import', 'tsx', child, '30000'], { timeout: 400_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`leak child failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
  const r = JSON.parse(out.trim().split('\n').pop()!) as Record<string, number>;
  t.comment(JSON.stringify(r));
  t.equal(r.ok! + r.bad!, r.connections, 'every connection was answered and closed');
  t.equal(r.bad, r.connections! / 10, `the malformed tenth were refused, and only they (well-formed ones not answered 200: ${JSON.stringify(r.unexpected)})`);
  t.equal(r.serverConnections, 0, 'no client-side connection object outlives its connection');
  t.ok(r.parsers! <= r.pool!, `live parsers (${r.parsers}) at most the upstream pool (${r.pool})`);
  t.ok(r.bindingParsers! <= r.pool!, `live native binding parsers (${r.bindingParsers}) at most the upstream pool`);
  // Bounds per connection, as before (8 MB and 32 MB over 15,000 connections; the old code kept ~3 KB per
  // connection). Retention grows in both measured segments, so the smaller of the two is judged: an
  // allocator's one-off jump in one segment does not fail the test, a leak still does.
  type Growth = { heapMB: number; rssMB: number; v8PagesMB: number; nativeMB: number };
  const segs = r.segments as unknown as Growth[];
  const n = r.segmentConnections!;
  const heapBound = (8 / 15_000) * n;
  const nativeBound = (32 / 15_000) * n;
  const shown = JSON.stringify(segs);
  t.ok(Math.min(...segs.map((g) => g.heapMB)) < heapBound, `heap growth per ${n} connections after warm-up below ${heapBound.toFixed(1)} MB in at least one segment: ${shown}`);
  t.ok(Math.min(...segs.map((g) => g.nativeMB)) < nativeBound, `RSS growth outside V8's heap pages per ${n} connections below ${nativeBound.toFixed(1)} MB in at least one segment: ${shown}`);
});
