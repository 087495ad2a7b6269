// Common random numbers: with latencySeed, request K (x-load-seq: K) draws the same baseline latency in every
// copy of a cluster, whichever endpoint serves it; without the header the backend's own sequence is used.
import t from 'tap';
import http from 'node:http';
import { LOAD_SEQ_HEADER, hashedNormal, hashedUnit, startBackend } from '../../src/testing/backend.js';

function timedGet(port: number, seq?: number): Promise<{ status: number; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/', agent: false, headers: seq === undefined ? {} : { [LOAD_SEQ_HEADER]: String(seq) } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0 }));
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('hashedNormal: deterministic, standard normal over many indexes', async (t) => {
  t.equal(hashedNormal(3, 17), hashedNormal(3, 17));
  t.not(hashedNormal(3, 17), hashedNormal(4, 17), 'another seed, another draw');
  const n = 50_000;
  const z = Array.from({ length: n }, (_, k) => hashedNormal(1, k));
  const mean = z.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(z.reduce((a, b) => a + (b - mean) ** 2, 0) / n);
  z.sort((a, b) => a - b);
  t.ok(Math.abs(mean) < 0.02, `mean ≈ 0 (${mean.toFixed(4)})`);
  t.ok(Math.abs(sd - 1) < 0.02, `sd ≈ 1 (${sd.toFixed(4)})`);
  t.ok(Math.abs(z[Math.ceil(0.99 * n) - 1]! - 2.326) < 0.06, `99th percentile ≈ 2.326 (${z[Math.ceil(0.99 * n) - 1]!.toFixed(3)})`);
  const outside = Array.from({ length: 100_000 }, (_, k) => hashedUnit(9, k)).filter((u) => !(u > 0 && u < 1));
  t.same(outside, [], 'every hashed uniform strictly inside (0, 1)');
});

t.test('two endpoints with different own seeds answer request K after the same drawn latency', async (t) => {
  const medianMs = 50, sigma = 2, latencySeed = 7;
  // An index whose shared draw is slow (≥ 1.5 s): both endpoints must hold it at least that long (timers
  // never fire early), where their own sequences (seeds 1 and 2) would draw other values.
  let k = 0;
  while (medianMs * Math.exp(sigma * hashedNormal(latencySeed, k)) < 1500) k++;
  const expected = medianMs * Math.exp(sigma * hashedNormal(latencySeed, k));
  const a = await startBackend({ controlPort: null, seed: 1, medianMs, sigma, latencySeed });
  const b = await startBackend({ controlPort: null, seed: 2, medianMs, sigma, latencySeed });
  t.teardown(async () => { await a.close(); await b.close(); });
  const [ra, rb] = await Promise.all([timedGet(a.port, k), timedGet(b.port, k)]);
  t.equal(ra.status, 200); t.equal(rb.status, 200);
  t.ok(ra.ms >= expected - 2, `endpoint A held request ${k} ${ra.ms.toFixed(0)} ms ≥ ${expected.toFixed(0)}`);
  t.ok(rb.ms >= expected - 2, `endpoint B held request ${k} ${rb.ms.toFixed(0)} ms ≥ ${expected.toFixed(0)}`);
  // A fast shared draw (≤ 1 ms) is answered long before the slow one would be: same for both endpoints.
  let f = 0;
  while (medianMs * Math.exp(sigma * hashedNormal(latencySeed, f)) > 1) f++;
  const [fa, fb] = await Promise.all([timedGet(a.port, f), timedGet(b.port, f)]);
  t.ok(fa.ms < expected && fb.ms < expected, `request ${f} (draw ≤ 1 ms) answered in ${fa.ms.toFixed(0)} and ${fb.ms.toFixed(0)} ms`);
  // Without the header (or a bad one), each uses its own sequence: still answered.
  t.equal((await timedGet(a.port)).status, 200);
});
