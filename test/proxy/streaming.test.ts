// Bodies stream both ways without buffering: 1 GiB up and 1 GiB down through the proxy while its RSS and
// heap stay flat. The backend and the client run in a child process (fixtures/bulk-peer.ts), so the
// growth measured is the proxy's own. What grows is not live data: in `data` mode every socket read
// leaves a read buffer behind as garbage, and V8 frees such ArrayBuffers only at its external-memory GC
// threshold — later on Node 24/26 than on Node 20; the native engine reads long bodies into a reused
// buffer instead, the portable one paces young-generation collections by the bytes it reads (see
// docs/proxy.md, "Memory with large bodies").
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { startTestProxy } from './helpers.js';

const GiB = 1024 * 1024 * 1024;
const MiB = 1024 * 1024;
const TOTAL = Number(process.env.MESHMEDIC_STREAM_TEST_BYTES ?? GiB);
/** Buffering a transfer would show as ~1 GiB; garbage awaiting V8's collection stays below this (issue 13's bound). */
const LIMIT = 64 * MiB;
const peerScript = fileURLToPath(new URL('./fixtures/bulk-peer.ts', import.meta.url));

/** Track the peak RSS and heap of this (the proxy's) process above a baseline while `work` runs. */
async function measured<T>(work: () => Promise<T>): Promise<{ result: T; rssGrowth: number; heapGrowth: number }> {
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
  try {
    const result = await work();
    return { result, rssGrowth: rssPeak - base.rss, heapGrowth: heapPeak - base.heapUsed };
  } finally {
    clearInterval(timer);
  }
}

t.test(`${TOTAL} bytes up and down with flat memory`, async (t) => {
  const peer = spawn(process.execPath, ['--import', 'tsx', peerScript, String(TOTAL)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((r) => peer.once('exit', () => r()));
  const lines = createInterface({ input: peer.stdout! })[Symbol.asyncIterator]();
  const next = async (): Promise<Record<string, unknown>> => {
    const l = await lines.next();
    if (l.done === true) throw new Error('the bulk peer exited early');
    return JSON.parse(l.value) as Record<string, unknown>;
  };
  t.teardown(async () => {
    peer.stdin!.end();
    if (peer.exitCode === null) peer.kill();
    await exited;
  });
  const { port } = (await next()) as { port: number };
  const p = await startTestProxy({ services: [{ name: 'bulk', endpoints: [{ address: `127.0.0.1:${port}` }] }] });
  t.teardown(() => p.close());

  for (const op of ['up', 'down'] as const) {
    const r = await measured(async () => {
      peer.stdin!.write(`${JSON.stringify({ op, proxyPort: p.port })}\n`);
      return (await next()) as { bytes?: number; ms?: number; error?: string };
    });
    const what = op === 'up' ? 'upload' : 'download';
    t.equal(r.result.error, undefined, `${what}: no error`);
    t.equal(r.result.bytes, TOTAL, `${what}: every byte arrived (${(TOTAL / (r.result.ms ?? 1) / 1e3).toFixed(0)} MB/s)`);
    t.ok(r.rssGrowth <= LIMIT, `${what}: proxy RSS growth ${(r.rssGrowth / MiB).toFixed(1)} MiB (≤ ${LIMIT / MiB})`);
    t.ok(r.heapGrowth <= 64 * MiB, `${what}: proxy heap growth ${(r.heapGrowth / MiB).toFixed(1)} MiB (≤ 64)`);
  }
});
