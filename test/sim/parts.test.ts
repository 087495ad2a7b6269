// Simulator parts: the seeded random source, the completion heap, and the `sim` command line.
import t from 'tap';
import { Rng } from '../../src/sim/rng.js';
import { CompletionHeap } from '../../src/sim/heap.js';
import { runSimCli } from '../../src/sim/cli.js';

t.test('Rng: deterministic, uniform in [0, 1), normal with mean 0 and sd 1', async (t) => {
  const a = new Rng(5);
  const b = new Rng(5);
  for (let i = 0; i < 100; i++) t.equal(a.next(), b.next());
  const r = new Rng(1);
  let sum = 0;
  let min = 1;
  let max = 0;
  let s1 = 0;
  let s2 = 0;
  const n = 100_000;
  for (let i = 0; i < n; i++) {
    const u = r.next();
    sum += u;
    min = Math.min(min, u);
    max = Math.max(max, u);
    const z = r.normal();
    s1 += z;
    s2 += z * z;
  }
  t.ok(min >= 0 && max < 1);
  t.ok(Math.abs(sum / n - 0.5) < 0.01);
  t.ok(Math.abs(s1 / n) < 0.02);
  t.ok(Math.abs(s2 / n - 1) < 0.02);
  t.not(new Rng(6).next(), new Rng(5).next());
});

t.test('CompletionHeap pops in time order and grows', async (t) => {
  const h = new CompletionHeap();
  const r = new Rng(3);
  const times: number[] = [];
  for (let i = 0; i < 5000; i++) {
    const x = r.next() * 1000;
    times.push(x);
    h.push(x, i, i % 5, x * 2);
  }
  times.sort((a, b) => a - b);
  const out = { time: 0, endpoint: 0, outcome: 0, latencyUs: 0 };
  for (let i = 0; i < 5000; i++) {
    t.equal(h.peekTime(), times[i]);
    h.pop(out);
    if (out.time !== times[i] || out.latencyUs !== out.time * 2) {
      t.fail(`order broken at ${i}`);
      break;
    }
  }
  t.equal(h.size, 0);
  t.equal(h.peekTime(), Infinity);
});

function cli(args: string[]) {
  let out = '';
  let err = '';
  const code = runSimCli(args, { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

t.test('meshmedic sim: usage, errors, tables', async (t) => {
  t.equal(cli(['--help']).code, 0);
  t.match(cli(['--list']).out, /gray-3x/);
  const bad = cli(['--scenario', 'nope', '--policy', 'magic', '--rps', '-3', '--frobnicate']);
  t.equal(bad.code, 2);
  t.match(bad.err, /unknown scenario "nope"/);
  t.match(bad.err, /unknown policy "magic"/);
  t.match(bad.err, /--rps: expected a positive number/);
  t.match(bad.err, /unknown option "--frobnicate"/);
  t.equal(cli(['--seed']).code, 2, 'a missing value');
  const ok = cli(['--scenario', 'crash-5', '--policy', 'meshmedic,envoy-default', '--duration-ms', '40000']);
  t.equal(ok.code, 0, ok.err);
  t.match(ok.out, /crash-5\s+meshmedic/);
  t.match(ok.out, /meshmedic failed requests \/ envoy-default: 0\.\d+/);
  const md = cli(['--scenario=crash-5', '--policy=none', '--duration-ms=35000', '--markdown']);
  t.match(md.out, /^\| scenario \| policy \|/);
  const js = cli(['--scenario', 'crash-5', '--policy', 'none', '--duration-ms', '35000', '--json']);
  const row = JSON.parse(js.out.trim());
  t.equal(row.scenario, 'crash-5');
  t.equal(row.policy, 'none');
});
