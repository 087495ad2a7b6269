// `npm run bench:record`: the cost of EndpointWindows.record (the per-request measurement on the hot path)
// in ns/op and heap bytes allocated per op, plus Balancer.pick for comparison, and the memory held per
// endpoint. Writes bench/results/record.json and prints a table. Run with --expose-gc (the npm script does).
import { mkdirSync, writeFileSync } from 'node:fs';
import { updateMarkdownFile } from './lib/report.js';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { VirtualClock } from '../src/core/clock.js';
import { endpointId, NO_LOCALITY, Outcome } from '../src/core/types.js';
import { MeshState } from '../src/mesh/state.js';
import { Balancer } from '../src/proxy/balancer.js';
import { DEFAULT_WINDOWS, EndpointWindows, type WindowOptions } from '../src/stats/window.js';
import { median } from './lib/stats.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  process.stderr.write('bench:record needs --expose-gc (run it with `npm run bench:record`)\n');
  process.exit(2);
}

/** Deterministic inputs: lognormal-ish latencies (µs) and a 1 % error mix, precomputed (no allocation in the loop). */
function inputs(n: number): { lat: Float64Array; out: Uint8Array } {
  let s = 12345;
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
  const lat = new Float64Array(n);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(1e-9, rnd());
    const v = rnd();
    lat[i] = Math.exp(Math.log(2000) + 0.8 * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)); // median 2 ms
    const r = rnd();
    out[i] = r < 0.005 ? Outcome.Error5xx : r < 0.008 ? Outcome.Gateway : r < 0.01 ? Outcome.LocalOrigin : r < 0.011 ? Outcome.Cancelled : Outcome.Success;
  }
  return { lat, out };
}

interface Result {
  name: string;
  /** Median over batches (the machine may be shared; see also bestNsPerOp). */
  nsPerOp: number;
  bestNsPerOp: number;
  bytesPerOp: number;
  ops: number;
}

/** Time `batches` × `perBatch` calls of `op(i)`; bytes/op from heap growth inside GC-free batches (median). */
function measure(name: string, perBatch: number, batches: number, op: (i: number) => void): Result {
  for (let i = 0; i < perBatch * 2; i++) op(i); // warm up (JIT)
  const times: number[] = [];
  const bytes: number[] = [];
  for (let b = 0; b < batches; b++) {
    gc!();
    const h0 = process.memoryUsage().heapUsed;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < perBatch; i++) op(i);
    const t1 = process.hrtime.bigint();
    const h1 = process.memoryUsage().heapUsed;
    times.push(Number(t1 - t0) / perBatch);
    bytes.push(Math.max(0, h1 - h0) / perBatch);
  }
  return { name, nsPerOp: median(times), bestNsPerOp: Math.min(...times), bytesPerOp: median(bytes), ops: perBatch * batches };
}

const N = 1 << 16;
const { lat, out } = inputs(N);
const clock = new VirtualClock(1_700_000_000_000);
const w = new EndpointWindows(DEFAULT_WINDOWS);
// Time lives in a typed array: a captured `let` double would be boxed (allocated) on every update.
const now = new Float64Array([clock.now()]);
const results: Result[] = [];
// 100k records per batch (below the young generation size, so any allocation shows as heap growth);
// time advances 0.05 ms per record, so windows rotate every 20k records as they do at 20k req/s.
// Two callers: with a fractional latency and an epoch-ms timestamp (doubles outside the small-integer range,
// boxed — 16 bytes each — when passed to a call that is not inlined, as Date.now() values are), and with
// small integers (what record() itself costs: nothing allocated).
results.push(
  measure('EndpointWindows.record (epoch-ms timestamp)', 100_000, 15, (i) => {
    now[0]! += 0.05;
    w.record(out[i & (N - 1)]! as Outcome, lat[i & (N - 1)]!, now[0]!);
  }),
);
const w2 = new EndpointWindows(DEFAULT_WINDOWS);
const tick = new Int32Array(1);
const latInt = Int32Array.from(lat, (x) => Math.round(x));
results.push(
  measure('EndpointWindows.record (integer µs, small-integer timestamp)', 100_000, 15, (i) => {
    if ((i & 15) === 0) tick[0]! += 1; // 1 ms every 16 records
    w2.record(out[i & (N - 1)]! as Outcome, latInt[i & (N - 1)]!, tick[0]!);
  }),
);
// As the proxy calls it: integer µs, and the window number computed by the caller from an epoch-ms clock.
const w3 = new EndpointWindows(DEFAULT_WINDOWS);
const now3 = new Float64Array([Date.now()]);
results.push(
  measure('EndpointWindows.recordEpoch (as the proxy calls it: epoch-ms clock, window number passed)', 100_000, 15, (i) => {
    now3[0]! += 0.05;
    w3.recordEpoch(out[i & (N - 1)]! as Outcome, latInt[i & (N - 1)]!, Math.floor(now3[0]! / DEFAULT_WINDOWS.windowMs));
  }),
);

const mesh = new MeshState(clock);
mesh.setServices([{ spec: { name: 'svc', endpoints: Array.from({ length: 10 }, (_, k) => ({ id: endpointId('svc', '127.0.0.1', 1000 + k), service: 'svc', host: '127.0.0.1', port: 1000 + k, locality: NO_LOCALITY, priority: k < 7 ? 0 : 1, weight: 1 + (k % 3), labels: {} })) } }]);
const view = mesh.snapshot().services.get('svc')!;
const bal = new Balancer(clock);
for (const e of view.endpoints) {
  bal.load.ensure(e.slot);
  bal.observe(e.slot, 1 + e.slot);
}
results.push(measure('Balancer.pick (10 endpoints, 2 priorities)', 100_000, 15, () => void bal.pick(view)));

/** Bytes held by one endpoint's windows with every window of the ring used: 50 latencies each, spread over 200 µs–40 ms. */
const memory = (opts: WindowOptions) => {
  const w = new EndpointWindows(opts);
  for (let e = 0; e < opts.windows; e++) for (let i = 0; i < 50; i++) w.recordEpoch(Outcome.Success, 200 + ((i * 797) % 40_000), 1_000 + e);
  return w.memoryBytes();
};
const mem = [
  { windows: `${DEFAULT_WINDOWS.windows} × ${DEFAULT_WINDOWS.windowMs} ms (default)`, bytes: memory(DEFAULT_WINDOWS) },
  { windows: '60 × 1000 ms', bytes: memory({ ...DEFAULT_WINDOWS, windows: 60 }) },
  { windows: '10 × 1000 ms, 3 significant digits', bytes: memory({ ...DEFAULT_WINDOWS, significantDigits: 3 }) },
];

const rows = results.map((r) => `| ${r.name} | ${r.nsPerOp.toFixed(1)} | ${r.bestNsPerOp.toFixed(1)} | ${r.bytesPerOp.toFixed(2)} | ${r.ops} |`);
const table = ['| operation | ns/op (median) | ns/op (best batch) | heap bytes/op | ops |', '|---|---:|---:|---:|---:|', ...rows, '', '| windows per endpoint | bytes held, every window used (EndpointWindows.memoryBytes) |', '|---|---:|', ...mem.map((m) => `| ${m.windows} | ${m.bytes} |`)].join('\n');
process.stdout.write(`${table}\n`);
const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
mkdirSync(dir, { recursive: true });
writeFileSync(path.join(dir, 'record.json'), JSON.stringify({ at: new Date().toISOString(), node: process.version, results, memoryPerEndpoint: mem }, null, 2) + '\n');
process.stdout.write(`written ${path.join('bench', 'results', 'record.json')}\n`);
updateMarkdownFile(
  path.join(dir, '..', 'README.md'),
  'bench:record',
  `Last run: ${new Date().toISOString()}, \`npm run bench:record\`, Node ${process.version}. Heap bytes per operation are measured over 100k-operation batches with GC forced between them.\n\n${table}`,
  '## Measurement cost (`npm run bench:record`)',
);
process.stdout.write('updated bench/README.md\n');
