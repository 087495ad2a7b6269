// The cumulative latency buckets of one endpoint: a window counts once, even when a scrape's time is older
// than the fold timer's last run (native buckets are computed after the samples; the timer may fire between).
import t from 'tap';
import { CumulativeLatency, LATENCY_BUCKETS_S } from '../../src/admin/latency-buckets.js';
import { Outcome } from '../../src/core/types.js';
import { DEFAULT_WINDOWS, EndpointWindows } from '../../src/stats/window.js';

function total(counts: { readonly zeroCount: number; readonly deltas: readonly number[] }): number {
  let sum = counts.zeroCount;
  let c = 0;
  for (const d of counts.deltas) sum += (c += d);
  return sum;
}

t.test('a window folded by the timer is not added again as the current one of an older scrape time', async (t) => {
  const w = new EndpointWindows({ ...DEFAULT_WINDOWS, windowMs: 1000 });
  const tracker = new CumulativeLatency(w);
  const t0 = 1_000_000; // the start of a window
  for (let i = 0; i < 1000; i++) w.record(Outcome.Success, 3000, t0 + 100, 200);
  for (let i = 0; i < 10; i++) w.record(Outcome.Gateway, 250_000, t0 + 200, 503);
  const scrapeAt = t0 + 999; // the scrape's time, taken just before the window ends
  tracker.fold(t0 + 1000); // the fold timer, just after: that window is complete and folded
  const out = new Float64Array(LATENCY_BUCKETS_S.length);
  const scratch = new Float64Array(LATENCY_BUCKETS_S.length + 1);
  t.equal(tracker.cumulative(scrapeAt, out, scratch)[LATENCY_BUCKETS_S.length - 1], 1010, 'classic: every observation once');
  t.equal(total(tracker.native(scrapeAt)!), 1010, 'native: every observation once');
  // The ordinary order (scrape time after the last fold) still adds the window being filled.
  for (let i = 0; i < 5; i++) w.record(Outcome.Success, 3000, t0 + 1500, 200);
  t.equal(total(tracker.native(t0 + 1600)!), 1015, 'the current window on top of the folded ones');
  t.equal(tracker.cumulative(t0 + 1600, out, scratch)[LATENCY_BUCKETS_S.length - 1], 1015);
});
