// The sequential tests' average run lengths against the published tables (Montgomery; Lucas & Saccucci).
import t from 'tap';
import { cusumArl, cusumArlTwoSided, cusumHForArl, ewmaArl } from '../../src/detect/arl.js';

const near = (actual: number, expected: number, rel: number) => Math.abs(actual - expected) / expected <= rel;

t.test('CUSUM k=0.5, h=5: ARL0 ≈ 465 two-sided (930 one-sided), 10.4 at 1σ, 4.0 at 2σ', async (t) => {
  t.ok(near(cusumArlTwoSided(0.5, 5), 465, 0.02), `two-sided ${cusumArlTwoSided(0.5, 5)}`);
  t.ok(near(cusumArl(0.5, 5), 930, 0.02), `one-sided ${cusumArl(0.5, 5)}`);
  t.ok(near(cusumArl(0.5, 5, 1), 10.4, 0.03), `1σ ${cusumArl(0.5, 5, 1)}`);
  t.ok(near(cusumArl(0.5, 5, 2), 4.0, 0.05), `2σ ${cusumArl(0.5, 5, 2)}`);
});

t.test('EWMA λ=0.2, L=3: ARL0 ≈ 560, 10.8 at 1σ, 3.8 at 2σ', async (t) => {
  t.ok(near(ewmaArl(0.2, 3), 560, 0.02), `ARL0 ${ewmaArl(0.2, 3)}`);
  t.ok(near(ewmaArl(0.2, 3, 1), 10.8, 0.03), `1σ ${ewmaArl(0.2, 3, 1)}`);
  t.ok(near(ewmaArl(0.2, 3, 2), 3.8, 0.05), `2σ ${ewmaArl(0.2, 3, 2)}`);
  t.ok(ewmaArl(0.2, 3, 0, 1) > ewmaArl(0.2, 3, 0, 2), 'one-sided chart alarms less often than two-sided');
});

t.test('the default latency CUSUM (k 0.5, h 12) states ARL0 ≈ 1.0e6 windows', async (t) => {
  const arl = cusumArl(0.5, 12);
  t.ok(arl > 9e5 && arl < 1.2e6, `ARL0 ${arl}`);
  t.ok(cusumArl(0.5, 12, 3) < 7, 'a 3σ shift is caught in a few windows');
});

t.test('h for a target ARL is the smallest that reaches it', async (t) => {
  const h = cusumHForArl(0.5, 1e6);
  t.ok(h > 11 && h < 13, `h ${h}`);
  t.ok(cusumArl(0.5, h, 0, 80) >= 1e6 * 0.99);
  t.ok(cusumHForArl(0.5, 1e3) < h, 'a lower target needs a lower h');
});

t.test('solves share scratch buffers: chains of different sizes, in any order, give the values solved alone', async (t) => {
  // Values from fresh solves (uncached keys: h and lambda not used above), then interleaved with larger
  // and smaller chains, which grow and reuse the shared matrix.
  const small = cusumArl(0.5, 4.25, 0, 40);
  const large = ewmaArl(0.15, 2.9, 0, 2, 171);
  const usual = cusumArl(0.5, 4.5);
  t.ok(small > 1 && large > 1 && usual > 1, `finite ARLs (${small.toFixed(1)}, ${large.toFixed(1)}, ${usual.toFixed(1)})`);
  t.equal(cusumArl(0.25, 4.25, 0, 40) < small, true, 'a smaller k shortens the run, solved after a larger chain');
  t.equal(ewmaArl(0.15, 2.9, 1, 2, 171) < large, true, 'a shifted mean shortens the EWMA run');
  t.equal(cusumArl(0.5, 4.5, 0, 121), cusumArl(0.5, 4.5, 0, 121), 'the same chain twice: the same value');
  t.ok(Math.abs(cusumArl(0.5, 4.5, 0, 121) - usual) / usual < 0.01, 'a 121-state chain within 1 % of the 120-state one (no stale state from other sizes)');
});

t.test('a threshold search leaves no matrix per solve behind (one shared scratch matrix)', async (t) => {
  cusumArl(0.5, 3.75, 0, 80); // the scratch is at least 80×80 from here on
  const before = process.memoryUsage().arrayBuffers;
  const h = cusumHForArl(0.45, 2e5); // ~13 solves of an 80-state chain, 51 KB each
  const grown = process.memoryUsage().arrayBuffers - before;
  t.ok(h > 0, `h ${h}`);
  t.ok(grown < 51_200, `array buffers grew ${grown} B (a matrix per solve: ~660 KB)`);
});
