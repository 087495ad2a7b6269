// starved_latency on crafted windows: an endpoint the balancer starves is judged on the few answers it
// got, all of which must be slow; one slow outlier, a naturally slower endpoint or a busy slow one never
// trigger it, and a de-weighted endpoint is released by its first fast answer.
import t from 'tap';
import { DEFAULT_POLICY_SETTINGS } from '../../src/config/sections/healing.js';
import { starvedLatency } from '../../src/detect/starved.js';
import { getDetector } from '../../src/detect/registry.js';
import type { DetectionInput, EndpointSignals, Verdict } from '../../src/detect/types.js';
import { Rng } from '../../src/sim/rng.js';
import { around, close, fill, signals } from './_signals.js';

const S = DEFAULT_POLICY_SETTINGS;
const input = (endpoints: EndpointSignals[], epoch: number): DetectionInput => ({ now: (epoch + 1) * 1000, completedEpoch: epoch, endpoints, settings: S });
const run = (i: DetectionInput): Verdict[] => {
  const out: Verdict[] = [];
  starvedLatency.detect(i, out);
  return out;
};

/** Three endpoints at 3 ms and 50 requests a window for `warm` windows; returns them and the next epoch. */
function cluster(warm = 5): { all: EndpointSignals[]; target: EndpointSignals; next: number } {
  const all = [signals('a'), signals('b'), signals('c')];
  for (let e = 0; e < warm; e++) {
    for (const s of all) fill(s, e, 50, 0, around(3000));
    close(all, e);
  }
  return { all, target: all[0]!, next: warm };
}

/** One window: the peers get 50 requests at 3 ms, the target `latencies` (µs). */
function window(all: EndpointSignals[], e: number, latencies: readonly number[]): void {
  fill(all[0]!, e, latencies.length, 0, (i) => latencies[i]!);
  for (const s of all.slice(1)) fill(s, e, 50, 0, around(3000));
  close(all, e);
}

t.test('registered by name', async (t) => {
  t.equal(getDetector('starved_latency'), starvedLatency);
});

t.test('gray failure the balancer starves: de-weighted once six answers, all ~34× slower, are in', async (t) => {
  const { all, target, next } = cluster();
  // The fault's first window: the balancer turns away after a few slow answers, among the fast ones from before.
  window(all, next, [...Array.from({ length: 40 }, () => 3000), 103_000, 104_000]);
  t.same(run(input(all, next)), [], 'not starved yet in that window');
  window(all, next + 1, [103_000, 102_500]);
  t.same(run(input(all, next + 1)), [], '2 answers: too few');
  window(all, next + 2, [103_500, 104_000]);
  t.same(run(input(all, next + 2)), [], '4 answers: too few');
  window(all, next + 3, [102_000, 103_000]);
  const v = run(input(all, next + 3));
  t.equal(v.length, 1, '6 answers, all slow: a verdict');
  t.match(v[0], { target: 'a', detector: 'starved_latency', kind: 'latency', severity: 'degrade', evidence: { requests: 6, windows: 3 } });
  t.ok(Number(v[0]!.evidence.ratio) > 25, `ratio ${v[0]!.evidence.ratio}`);
  t.ok(Number(v[0]!.evidence.sharePct) <= 5, `share ${v[0]!.evidence.sharePct} %`);
  t.ok(v[0]!.weight! < 0.05, 'suggested weight 1 / ratio');
});

t.test('one slow outlier never triggers it, alone or among fast answers', async (t) => {
  const { all, next } = cluster();
  // A GC pause: one answer at 150 ms, then the balancer's trickle brings fast answers.
  window(all, next, [...Array.from({ length: 45 }, () => 3000), 150_000]);
  window(all, next + 1, [150_000]);
  for (let e = next + 2; e < next + 9; e++) {
    window(all, e, e === next + 2 ? [] : [3100, 2900]);
    t.same(run(input(all, e)), [], `window ${e}`);
  }
  // Even five slow answers do not: the sixth, fast one is the fastest tenth.
  const b = cluster();
  window(b.all, b.next, [120_000, 130_000]);
  window(b.all, b.next + 1, [140_000, 110_000, 3000]);
  window(b.all, b.next + 2, [125_000]);
  t.same(run(input(b.all, b.next + 2)), [], 'five slow and one fast answer');
});

t.test('a naturally slower endpoint (1.4×, heavy-tailed) that the balancer starves is never flagged', async (t) => {
  const seed = 20261206;
  const rng = new Rng(seed);
  const { all, next } = cluster();
  let flagged = 0;
  // Lognormal σ 0.6 around 4.2 ms, 2 % of answers × Pareto(1.5): 2000 windows of two answers each.
  const sample = () => 4200 * Math.exp(0.6 * rng.normal()) * (rng.next() < 0.02 ? Math.pow(1 - rng.next(), -1 / 1.5) : 1);
  for (let e = next; e < next + 2000; e++) {
    window(all, e, [sample(), sample()]);
    flagged += run(input(all, e)).length;
  }
  t.equal(flagged, 0, `no verdict in 2000 windows (seed ${seed})`);
});

t.test('an endpoint with its share of traffic is left to peer_latency', async (t) => {
  const { all, next } = cluster();
  for (let e = next; e < next + 8; e++) {
    window(all, e, Array.from({ length: 40 }, () => 100_000));
    t.same(run(input(all, e)), [], `window ${e}: 40 slow answers, not starved`);
  }
});

t.test('a de-weighted endpoint stays flagged while its answers are slow, and is released by its first fast one', async (t) => {
  const { all, target, next } = cluster();
  target.health = { ...target.health, state: 'degraded', weightFactor: 0.1, source: 'local' };
  window(all, next, [...Array.from({ length: 40 }, () => 3000), 103_000]);
  window(all, next + 1, [103_000]);
  t.equal(run(input(all, next + 1)).length, 1, 'one slow answer since it was starved: still flagged');
  window(all, next + 2, []);
  t.equal(run(input(all, next + 2)).length, 1, 'an empty window: still flagged');
  window(all, next + 3, [3200]);
  t.same(run(input(all, next + 3)), [], 'the first fast answer: released (the ramp back starts)');
});

t.test('too few peers, no traffic, odd data: no verdict, no throw', async (t) => {
  const two = [signals('a'), signals('b')];
  for (let e = 0; e < 5; e++) {
    fill(two[1]!, e, 50, 0, around(3000));
    fill(two[0]!, e, 2, 0, () => 100_000);
    close(two, e);
  }
  t.same(run(input(two, 4)), [], 'one peer is not a median');
  const idle = [signals('a'), signals('b'), signals('c')];
  close(idle, 0);
  t.same(run(input(idle, 0)), []);
  t.same(run(input([], 0)), []);
  t.same(run(input(idle, -1)), [], 'between windows');
  const off = { ...input(idle, 0), settings: { ...S, starvedLatency: { ...S.starvedLatency, enabled: false } } };
  const out: Verdict[] = [];
  starvedLatency.detect(off, out);
  t.same(out, []);
});
