import t from 'tap';
import { Outcome } from '../../src/core/types.js';
import { EndpointWindows, emptySummary, newHistogram, DEFAULT_WINDOWS } from '../../src/stats/window.js';

t.test('records outcomes and quantiles per window', async (t) => {
  const w = new EndpointWindows();
  const t0 = 10_000_000;
  for (let i = 0; i < 100; i++) w.record(Outcome.Success, 1000 + i * 10, t0 + i);
  w.record(Outcome.Gateway, 5000, t0 + 200);
  w.record(Outcome.Cancelled, 1, t0 + 201);
  const s = w.summarize(t0 + 500, 1, emptySummary(), newHistogram(DEFAULT_WINDOWS));
  t.equal(s.total, 101, 'cancelled not counted in total');
  t.equal(s.failures, 1);
  t.equal(s.counts[Outcome.Cancelled], 1);
  t.ok(s.p50 >= 1400 && s.p50 <= 1520, `p50 ${s.p50}`);
  t.ok(s.p99 >= 1970 && s.p99 <= 5050, `p99 ${s.p99}`);
});

t.test('windows roll: old data leaves after N windows', async (t) => {
  const w = new EndpointWindows({ ...DEFAULT_WINDOWS, windows: 3, windowMs: 1000 });
  const out = emptySummary();
  const h = newHistogram(DEFAULT_WINDOWS);
  w.record(Outcome.Success, 100, 0);
  w.record(Outcome.Success, 100, 1000);
  w.record(Outcome.Error5xx, 100, 2000);
  t.equal(w.summarize(2500, 3, out, h).total, 3);
  t.equal(w.summarize(3500, 3, out, h).total, 2, 'first window fell out');
  t.equal(w.summarize(3500, 1, out, h).total, 0, 'current window empty');
  t.equal(w.summarize(3500, 1, out, h, { skipCurrent: true }).failures, 1);
  w.record(Outcome.Success, 100, 3000); // reuses slot 0
  t.equal(w.summarize(3500, 3, out, h).total, 3);
  const counts = [0, 0, 0, 0, 0];
  t.equal(w.windowCounts(2, counts), true);
  t.same(counts, [0, 1, 0, 0, 0]);
  t.equal(w.windowCounts(0, counts), false, 'overwritten window is gone');
});

t.test('consecutive counters follow Envoy semantics', async (t) => {
  const w = new EndpointWindows();
  w.record(Outcome.Error5xx, 1, 0);
  w.record(Outcome.Gateway, 1, 0);
  w.record(Outcome.LocalOrigin, 1, 0);
  t.equal(w.consecutive5xx, 3);
  t.equal(w.consecutiveGateway, 2);
  t.equal(w.consecutiveLocalOrigin, 1);
  w.record(Outcome.Error5xx, 1, 0);
  t.equal(w.consecutiveGateway, 0, 'a plain 5xx breaks the gateway run');
  w.record(Outcome.Cancelled, 1, 0);
  t.equal(w.consecutive5xx, 4, 'cancelled requests do not count');
  w.record(Outcome.Success, 1, 0);
  t.equal(w.consecutive5xx, 0);
  t.equal(w.consecutiveSuccess, 1);
});

t.test('latency is clamped to the trackable range', async (t) => {
  const w = new EndpointWindows();
  w.record(Outcome.Success, 1e12, 0);
  w.record(Outcome.Success, -5, 0);
  const s = w.summarize(0, 1, emptySummary(), newHistogram(DEFAULT_WINDOWS));
  t.equal(s.total, 2);
  t.ok(s.max <= DEFAULT_WINDOWS.maxLatencyUs * 1.01);
});

t.test('memory per endpoint is bounded and stated', async (t) => {
  const w = new EndpointWindows();
  const bytes = w.memoryBytes();
  t.ok(bytes > 10_000 && bytes < 300_000, `${bytes} bytes`);
});
