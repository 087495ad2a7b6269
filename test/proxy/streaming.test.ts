// Bodies stream both ways without buffering: 1 GiB up and 1 GiB down through the proxy (client, proxy and
// backend in this one process) while RSS and heap stay flat. The generator reuses one 64 KiB buffer.
import http from 'node:http';
import { Readable } from 'node:stream';
import t from 'tap';
import { backend, startTestProxy } from './helpers.js';

const GiB = 1024 * 1024 * 1024;
const TOTAL = Number(process.env.MESHMEDIC_STREAM_TEST_BYTES ?? GiB);
const CHUNK = Buffer.alloc(64 * 1024, 0x61);

/** A bounded generator: `total` bytes in 64 KiB pieces of one shared buffer, with backpressure. */
function generator(total: number): Readable {
  let left = total;
  return new Readable({
    highWaterMark: CHUNK.length,
    read() {
      while (left > 0) {
        const n = Math.min(left, CHUNK.length);
        left -= n;
        if (!this.push(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) return;
      }
      this.push(null);
    },
  });
}

/** Track the peak RSS and heap above a baseline while `work` runs. */
async function measured<T>(work: () => Promise<T>): Promise<{ result: T; rssGrowth: number; heapGrowth: number; ms: number }> {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const base = process.memoryUsage();
  let rssPeak = base.rss;
  let heapPeak = base.heapUsed;
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    rssPeak = Math.max(rssPeak, m.rss);
    heapPeak = Math.max(heapPeak, m.heapUsed);
  }, 50);
  const started = Date.now();
  try {
    const result = await work();
    return { result, rssGrowth: rssPeak - base.rss, heapGrowth: heapPeak - base.heapUsed, ms: Date.now() - started };
  } finally {
    clearInterval(timer);
  }
}

t.test(`${TOTAL} bytes up and down with flat memory`, async (t) => {
  const b = await backend((req, res) => {
    if (req.method === 'POST') {
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => res.end(String(n)));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(TOTAL) });
    generator(TOTAL).pipe(res);
  });
  const p = await startTestProxy({ services: [{ name: 'bulk', endpoints: [{ address: `127.0.0.1:${b.port}` }] }] });
  t.teardown(async () => {
    await p.close();
    await b.close();
  });

  const up = await measured(
    () =>
      new Promise<string>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port: p.port, method: 'POST', path: '/up', headers: { host: 'bulk', 'content-length': String(TOTAL) }, agent: false }, (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve(body));
        });
        req.on('error', reject);
        generator(TOTAL).pipe(req);
      }),
  );
  t.equal(up.result, String(TOTAL), `backend received every byte (${(TOTAL / up.ms / 1e3).toFixed(0)} MB/s)`);
  t.ok(up.rssGrowth < 96 * 1024 * 1024, `upload RSS growth ${(up.rssGrowth / 1048576).toFixed(1)} MiB`);
  t.ok(up.heapGrowth < 64 * 1024 * 1024, `upload heap growth ${(up.heapGrowth / 1048576).toFixed(1)} MiB`);

  const down = await measured(
    () =>
      new Promise<number>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port: p.port, path: '/down', headers: { host: 'bulk' }, agent: false }, (res) => {
          let n = 0;
          res.on('data', (c: Buffer) => (n += c.length));
          res.on('end', () => resolve(n));
          res.on('error', reject);
        });
        req.on('error', reject);
      }),
  );
  t.equal(down.result, TOTAL, `client received every byte (${(TOTAL / down.ms / 1e3).toFixed(0)} MB/s)`);
  t.ok(down.rssGrowth < 96 * 1024 * 1024, `download RSS growth ${(down.rssGrowth / 1048576).toFixed(1)} MiB`);
  t.ok(down.heapGrowth < 64 * 1024 * 1024, `download heap growth ${(down.heapGrowth / 1048576).toFixed(1)} MiB`);
});
