// Bodies arrive byte for byte under backpressure, both ways: the native engine hands Content-Length bodies
// on as views of a read buffer it reuses, so a chunk whose write is still queued must never be overwritten
// by the next read. Seeded pseudo-random bytes, a receiver that stalls now and then (so writes queue), an
// upload sent in small pieces (small reads, so queued writes stay under the socket's high-water mark),
// several requests on one keep-alive connection; each side compares a SHA-256 of what it got.
import { createHash } from 'node:crypto';
import http from 'node:http';
import { Readable, type Writable } from 'node:stream';
import t from 'tap';
import { seededRandom } from '../../src/core/random.js';
import { backend, startTestProxy } from './helpers.js';

const SEED = process.env.MM_BODY_SEED !== undefined ? Number(process.env.MM_BODY_SEED) : (Date.now() ^ (process.pid << 8)) >>> 0;
const SIZE = 12 * 1024 * 1024;
const ROUNDS = 3;

/** `size` seeded bytes, in pieces of up to `maxPiece` (so reads and body chunks do not line up). */
function payload(seed: number, size: number, maxPiece: number): { pieces: Buffer[]; stream: () => Readable; sha: string } {
  const pieces: Buffer[] = [];
  const rnd = seededRandom(seed);
  for (let left = size; left > 0; ) {
    const n = Math.min(left, 1 + Math.floor(rnd() * maxPiece));
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(rnd() * 256);
    pieces.push(b);
    left -= n;
  }
  const sha = createHash('sha256');
  for (const p of pieces) sha.update(p);
  return { pieces, stream: () => Readable.from(pieces, { objectMode: false }), sha: sha.digest('hex') };
}

/** Write each piece once the previous one reached the kernel, so the receiver reads small pieces. */
async function trickle(pieces: readonly Buffer[], to: Writable): Promise<void> {
  for (const p of pieces) await new Promise<void>((resolve, reject) => to.write(p, (err) => (err ? reject(err) : resolve())));
  to.end();
}

/** Hash a readable, stalling it every few chunks so that its sender's writes queue up meanwhile. */
function slowHash(src: Readable, rnd: () => number): Promise<{ sha: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    let bytes = 0;
    src.on('data', (c: Buffer) => {
      h.update(c);
      bytes += c.length;
      if (rnd() < 0.05) {
        src.pause();
        setTimeout(() => src.resume(), 1 + Math.floor(rnd() * 10));
      }
    });
    src.on('end', () => resolve({ sha: h.digest('hex'), bytes }));
    src.on('error', reject);
  });
}

t.test(`request and response bodies arrive intact under backpressure (seed ${SEED})`, async (t) => {
  t.comment(`reproduce: MM_BODY_SEED=${SEED}`);
  const rnd = seededRandom(SEED ^ 0x5bd1e995);
  const up = payload(SEED, SIZE, 8 * 1024);
  const down = payload(SEED + 1, SIZE, 96 * 1024);
  const b = await backend((req, res) => {
    if (req.method === 'POST') {
      void slowHash(req, rnd).then((r) => res.end(JSON.stringify(r)));
      return;
    }
    res.writeHead(200, { 'content-length': String(SIZE) });
    down.stream().pipe(res);
  });
  t.teardown(() => b.close());
  const p = await startTestProxy({ services: [{ name: 'bulk', endpoints: [{ address: `127.0.0.1:${b.port}` }] }] });
  t.teardown(() => p.close());
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());

  for (let round = 0; round < ROUNDS; round++) {
    const got = await new Promise<string>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: p.port, method: 'POST', path: '/up', agent, headers: { host: 'bulk', 'content-length': String(SIZE) } }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve(text));
        res.on('error', reject);
      });
      req.on('error', reject);
      trickle(up.pieces, req).catch(reject);
    });
    t.same(JSON.parse(got), { sha: up.sha, bytes: SIZE }, `round ${round}: the endpoint got the upload intact (MM_BODY_SEED=${SEED})`);

    const r = await new Promise<{ sha: string; bytes: number }>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: p.port, path: '/down', agent, headers: { host: 'bulk' } }, (res) => resolve(slowHash(res, rnd))).on('error', reject);
    });
    t.same(r, { sha: down.sha, bytes: SIZE }, `round ${round}: the client got the download intact (MM_BODY_SEED=${SEED})`);
  }
});
