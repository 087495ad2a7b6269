// The windows' sparse latency histogram against hdr-histogram-js with the same settings: same bins, same
// quantiles, max and mean, so the detectors and metrics see the precision they saw before; and its size.
import t from 'tap';
import * as hdr from 'hdr-histogram-js';
import type { JsHistogram } from 'hdr-histogram-js';
import { LatencyHistogram } from '../../src/stats/histogram.js';
import { seededRandom } from '../../src/core/random.js';

const MAX_US = 60_000_000;
const reference = (digits: number) => hdr.build({ bitBucketSize: 32, autoResize: false, lowestDiscernibleValue: 1, highestTrackableValue: MAX_US, numberOfSignificantValueDigits: digits as 2, useWebAssembly: false }) as unknown as JsHistogram;
const PERCENTILES = [0, 1, 10, 25, 50, 75, 90, 99, 99.9, 100];

/** Latency samples (µs) of a few shapes: tight, log-uniform over 1 µs–60 s, bimodal with a slow tail. */
const shapes: Record<string, (rnd: () => number) => number> = {
  tight: (rnd) => Math.round(2_000 + rnd() * 300),
  logUniform: (rnd) => Math.min(MAX_US, Math.round(Math.exp(rnd() * Math.log(MAX_US)))),
  bimodal: (rnd) => Math.round(rnd() < 0.97 ? 800 + rnd() * 400 : 250_000 + rnd() * 2_000_000),
};

for (const digits of [1, 2, 3]) {
  for (const [shape, draw] of Object.entries(shapes)) {
    t.test(`${digits} significant digits, ${shape}: same bins, quantiles, max and mean as HDR`, async (t) => {
      const seed = 1000 * digits + shape.length;
      t.comment(`seed ${seed}`);
      const rnd = seededRandom(seed);
      const ours = new LatencyHistogram(MAX_US, digits);
      const theirs = reference(digits);
      t.equal(ours.countsArrayLength, theirs.countsArrayLength, 'bin count');
      t.equal(ours.subBucketHalfCount, theirs.subBucketHalfCount, 'bins per octave');
      for (let i = 0; i < 5_000; i++) {
        const v = draw(rnd);
        ours.recordValue(v);
        theirs.recordValue(v);
      }
      t.equal(ours.totalCount, theirs.totalCount);
      t.equal(ours.maxValue, theirs.maxValue, 'max');
      t.ok(Math.abs(ours.mean - theirs.mean) <= 1e-9 * theirs.mean, `mean ${ours.mean} vs ${theirs.mean} (seed ${seed})`);
      for (const p of PERCENTILES) t.equal(ours.getValueAtPercentile(p), theirs.getValueAtPercentile(p), `p${p} (seed ${seed})`);
      let differing = 0;
      for (let i = 0; i < theirs.countsArrayLength; i++) if (ours.getCountAtIndex(i) !== theirs.getCountAtIndex(i)) differing++;
      t.equal(differing, 0, `every bin's count (seed ${seed})`);
      for (const v of [0, 1, 255, 256, 257, 1_000, 65_536, 1_234_567, MAX_US]) {
        t.equal(ours.countsArrayIndex(v), theirs.countsArrayIndex(v), `index of ${v}`);
        t.equal(ours.highestEquivalentValue(v), theirs.highestEquivalentValue(v), `highest equivalent of ${v}`);
        t.equal(ours.lowestEquivalentValue(v), theirs.lowestEquivalentValue(v), `lowest equivalent of ${v}`);
      }
    });
  }
}

t.test('add() and reset() agree with HDR', async (t) => {
  const rnd = seededRandom(42);
  const [a, b, sum] = [new LatencyHistogram(MAX_US, 2), new LatencyHistogram(MAX_US, 2), new LatencyHistogram(MAX_US, 2)];
  const [ra, rb, rsum] = [reference(2), reference(2), reference(2)];
  for (let i = 0; i < 2_000; i++) {
    const x = shapes.bimodal!(rnd);
    const y = shapes.tight!(rnd);
    a.recordValue(x);
    ra.recordValue(x);
    b.recordValue(y);
    rb.recordValue(y);
  }
  sum.add(a);
  sum.add(b);
  rsum.add(ra);
  rsum.add(rb);
  t.equal(sum.totalCount, 4_000);
  t.equal(sum.maxValue, rsum.maxValue);
  for (const p of PERCENTILES) t.equal(sum.getValueAtPercentile(p), rsum.getValueAtPercentile(p), `p${p} of the sum`);
  sum.reset();
  t.equal(sum.totalCount, 0);
  t.equal(sum.maxValue, 0);
  t.equal(sum.getValueAtPercentile(50), 0, 'empty after reset');
  t.equal(sum.mean, 0);
  sum.recordValue(3_000);
  t.equal(sum.getValueAtPercentile(99), reference(2).highestEquivalentValue(3_000), 'reused after reset');
  t.throws(() => sum.add(new LatencyHistogram(MAX_US, 3)), /different geometry/);
});

t.test('a bin past 65,535 counts on (the store widens to 32 bits)', async (t) => {
  const h = new LatencyHistogram(MAX_US, 2);
  for (let i = 0; i < 70_000; i++) h.recordValue(1_500);
  h.recordValue(90_000);
  t.equal(h.getCountAtIndex(h.countsArrayIndex(1_500)), 70_000);
  t.equal(h.getValueAtPercentile(50), h.highestEquivalentValue(1_500));
  t.equal(h.getValueAtPercentile(100), h.highestEquivalentValue(90_000));
  t.equal(h.totalCount, 70_001);
});

t.test('values outside the range are refused with a clear error', async (t) => {
  const h = new LatencyHistogram(1_000, 2);
  t.throws(() => h.recordValue(10 ** 9), /outside the histogram's range/);
  t.throws(() => new LatencyHistogram(1, 2), /highestTrackableValue/);
  t.throws(() => new LatencyHistogram(MAX_US, 0), /significantDigits/);
});

t.test('size: a few blocks for a typical window, never more than the dense array plus its directory', async (t) => {
  const dense = (digits: number) => reference(digits).countsArrayLength * 2; // 16-bit counts
  const typical = new LatencyHistogram(MAX_US, 2);
  const rnd = seededRandom(7);
  for (let i = 0; i < 1_000; i++) typical.recordValue(shapes.tight!(rnd));
  t.ok(typical.blockCount <= 2, `latencies within 15 %: ${typical.blockCount} blocks`);
  t.ok(typical.estimatedFootprintInBytes < 1_000, `typical window: ${typical.estimatedFootprintInBytes} bytes`);
  const full = new LatencyHistogram(MAX_US, 2);
  for (let i = 0; i < full.countsArrayLength; i++) full.recordValue(full.valueFromIndex(i));
  t.equal(full.totalCount, full.countsArrayLength, 'one value in every bin');
  const directory = Math.ceil(full.countsArrayLength / 32) * 2;
  t.ok(full.estimatedFootprintInBytes <= dense(2) + directory + 320, `every bin used: ${full.estimatedFootprintInBytes} bytes, dense 16-bit ${dense(2)}`);
});

t.test('clipped log moments: count, sum and sum of squares of the bins\' logs, clipped', async (t) => {
  const h = new LatencyHistogram(MAX_US, 2);
  const out = new Float64Array(3);
  h.clippedLogMoments(-Infinity, Infinity, out);
  t.same([...out], [0, 0, 0], 'empty');
  const rnd = seededRandom(11);
  const values: number[] = [];
  for (let i = 0; i < 500; i++) values.push(Math.round(Math.exp(7 + 0.5 * (rnd() + rnd() + rnd() - 1.5))));
  values.push(50_000_000); // one wild request
  for (const v of values) h.recordValue(v);
  const lo = Math.log(300);
  const hi = Math.log(20_000);
  h.clippedLogMoments(lo, hi, out);
  let s = 0;
  let q = 0;
  for (const v of values) {
    const x = Math.min(hi, Math.max(lo, Math.log(v)));
    s += x;
    q += x * x;
  }
  t.equal(out[0], values.length);
  // Each value is taken at the middle of its bin: within 1 % of its own log at 2 significant digits.
  t.ok(Math.abs(out[1]! / values.length - s / values.length) < 0.01, `mean ${out[1]! / values.length} vs ${s / values.length} (seed 11)`);
  t.ok(Math.abs(out[2]! / values.length - q / values.length) < 0.2, `mean square ${out[2]! / values.length} vs ${q / values.length} (seed 11)`);
  t.ok(out[1]! / values.length <= hi, 'the wild request is clipped');
});

t.test('countBelow: values in the bins wholly below a value\'s bin', async (t) => {
  const h = new LatencyHistogram(MAX_US, 2);
  t.equal(h.countBelow(1000), 0, 'empty');
  const rnd = seededRandom(5);
  const values: number[] = [];
  for (let i = 0; i < 300; i++) values.push(Math.round(Math.exp(9 + rnd() * 3)));
  for (const v of values) h.recordValue(v);
  for (const x of [0, 1, 5_000, 10_000, 20_000, 100_000, 1_000_000, MAX_US]) {
    const below = values.filter((v) => h.countsArrayIndex(v) < h.countsArrayIndex(x)).length;
    t.equal(h.countBelow(x), below, `below ${x} (seed 5)`);
  }
  t.equal(h.countBelow(MAX_US) + values.filter((v) => h.countsArrayIndex(v) >= h.countsArrayIndex(MAX_US)).length, values.length);
});
