import t from 'tap';
import { Outcome } from '../../src/core/types.js';
import { EndpointWindows, StatsTable, emptySummary, newHistogram, DEFAULT_WINDOWS } from '../../src/stats/window.js';

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

t.test('refused connections are counted apart: a run of them, broken by any other outcome', async (t) => {
  const w = new EndpointWindows();
  const fired: number[] = [];
  w.failureHookAt = 3;
  w.failureHookRefusedAt = 1;
  w.failureHook = (x) => fired.push(x.consecutiveRefused);
  w.record(Outcome.LocalOrigin, 1, 0); // a timeout: local-origin, not refused
  t.equal(w.consecutiveRefused, 0);
  t.same(fired, [], 'a timeout below the ordinary threshold runs no hook');
  w.record(Outcome.LocalOrigin, 1, 0, 0, true);
  t.equal(w.consecutiveRefused, 1);
  t.equal(w.consecutiveLocalOrigin, 2, 'a refusal is a local-origin failure too');
  t.same(fired, [1], 'the first refusal runs the hook (failureHookRefusedAt 1)');
  w.record(Outcome.LocalOrigin, 1, 0, 0, true);
  t.equal(w.consecutiveRefused, 2);
  w.record(Outcome.LocalOrigin, 1, 0);
  t.equal(w.consecutiveRefused, 0, 'a timeout ends the refused run');
  w.record(Outcome.LocalOrigin, 1, 0, 0, true);
  w.record(Outcome.Error5xx, 1, 0, 500);
  t.equal(w.consecutiveRefused, 0, 'an answer (even a 5xx) ends it: something listens');
  w.record(Outcome.LocalOrigin, 1, 0, 0, true);
  w.record(Outcome.Cancelled, 1, 0);
  t.equal(w.consecutiveRefused, 1, 'a cancelled request does not');
  w.record(Outcome.Success, 1, 0, 200);
  t.equal(w.consecutiveRefused, 0);
  w.record(Outcome.LocalOrigin, 1, 0, 0, true);
  w.resetConsecutive();
  t.equal(w.consecutiveRefused, 0, 'cleared after an ejection with the other runs');
  const off = new EndpointWindows();
  const offFired: number[] = [];
  off.failureHookAt = 3;
  off.failureHook = (x) => offFired.push(x.consecutive5xx);
  off.record(Outcome.LocalOrigin, 1, 0, 0, true);
  t.same(offFired, [], 'failureHookRefusedAt 0: a refusal waits for the ordinary threshold');
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
  t.ok(w.memoryBytes() < 1024, `idle: ${w.memoryBytes()} bytes`);
  for (let e = 0; e < DEFAULT_WINDOWS.windows; e++) w.recordEpoch(Outcome.Success, 500, 7_000 + e);
  const bytes = w.memoryBytes();
  t.ok(bytes > 10 * 64 && bytes < 10_000, `every window used, one latency each: ${bytes} bytes`);
  // The bound: every bin of every window holding a count (latencies spread over 1 µs–60 s each second).
  const full = new EndpointWindows();
  const bins = newHistogram(DEFAULT_WINDOWS);
  for (let e = 0; e < DEFAULT_WINDOWS.windows; e++) for (let i = 0; i < bins.countsArrayLength; i++) full.recordEpoch(Outcome.Success, bins.valueFromIndex(i), 7_000 + e);
  t.equal(full.histogramCount(), DEFAULT_WINDOWS.windows);
  t.ok(full.memoryBytes() < 60_000, `every bin of every window used: ${full.memoryBytes()} bytes`);
});

t.test('histograms are created on first traffic and released after a whole idle ring', async (t) => {
  const table = new StatsTable(DEFAULT_WINDOWS);
  const w = table.ensure(3);
  t.equal(w.histogramCount(), 0, 'a known endpoint without traffic holds no histogram');
  t.ok(w.memoryBytes() < 1024, `idle endpoint ${w.memoryBytes()} bytes`);
  const t0 = 50_000_000;
  w.record(Outcome.Success, 800, t0);
  w.record(Outcome.Success, 900, t0 + 10);
  t.equal(w.histogramCount(), 1, 'one window used, one histogram');
  w.record(Outcome.Success, 1000, t0 + 1000);
  t.equal(w.histogramCount(), 2);
  const s = w.summarize(t0 + 1500, 2, emptySummary(), newHistogram(DEFAULT_WINDOWS));
  t.equal(s.total, 3);
  t.ok(s.p50 >= 890 && s.p50 <= 910, `p50 ${s.p50}`);
  // Still inside the ring: nothing released, the windows stay readable.
  t.equal(table.sweep(t0 + 9000), 0);
  t.equal(w.histogramCount(), 2);
  t.ok(w.windowHistogram(w.epochOf(t0)) !== undefined);
  // Idle for the whole ring (10 windows after the last one): released; counters and lifetime totals stay.
  t.equal(table.sweep(t0 + 1000 + 10_000), 1, 'one endpoint released');
  t.equal(w.histogramCount(), 0);
  t.equal(table.sweep(t0 + 1000 + 10_500), 0, 'at most one walk per window');
  t.equal(w.lifetime[Outcome.Success], 3);
  t.equal(w.windowHistogram(w.epochOf(t0 + 1000)), undefined, 'the old windows are gone');
  // Traffic again: recreated lazily and measured as before.
  w.record(Outcome.Success, 2000, t0 + 20_000);
  t.equal(w.histogramCount(), 1);
  const again = w.summarize(t0 + 20_100, 1, emptySummary(), newHistogram(DEFAULT_WINDOWS));
  t.equal(again.total, 1);
  t.ok(again.p50 >= 1990 && again.p50 <= 2010, `p50 ${again.p50}`);
});

t.test('windows without a request share empty counters: nothing allocated, nothing written to the shared ones', async (t) => {
  const opts = { ...DEFAULT_WINDOWS };
  const idle = new EndpointWindows(opts);
  t.equal(idle.memoryBytes(), 0, 'a never-used endpoint holds no counters of its own');
  t.equal(idle.exportDelta(), null, 'nothing to export');
  t.equal(idle.releaseIfIdle(1_000_000), false);
  const epoch = 1_000;
  // Other endpoints of the same geometry record, merge and export.
  const a = new EndpointWindows(opts);
  a.recordEpoch(Outcome.Success, 500, epoch, 200);
  a.recordEpoch(Outcome.Error5xx, 700, epoch + 1, 503);
  const b = new EndpointWindows(opts);
  b.mergeDelta(a.exportDelta()!);
  b.resetConsecutive();
  t.ok(a.memoryBytes() > 0 && b.memoryBytes() > 0, 'an endpoint with a request owns its counters');
  t.equal(b.lifetime[Outcome.Success], 1, 'merged into its own counters');
  // A fresh one and the idle one still read as never used.
  for (const w of [idle, new EndpointWindows(opts)]) {
    const counts = new Array<number>(6).fill(7);
    t.equal(w.windowCounts(epoch, counts), false, 'no window');
    t.ok(counts.every((c) => c === 0));
    t.equal(w.windowHistogram(epoch), undefined);
    t.ok(w.lifetime.every((x) => x === 0) && w.byCode.every((x) => x === 0), 'lifetime and code counters all zero');
    const s = w.summarize((epoch + 1) * 1000, 10, emptySummary(), newHistogram(opts));
    t.equal(s.total, 0);
    t.equal(w.histogramCount(), 0);
  }
  // The idle one's first request gives it counters of its own, counted from zero.
  idle.recordEpoch(Outcome.Success, 900, epoch, 200);
  t.equal(idle.lifetime[Outcome.Success], 1);
  t.equal(new EndpointWindows(opts).lifetime[Outcome.Success], 0, 'the shared counters stay empty');
});

t.test('StatsTable: a failure hook set before the windows exist is given to them when they are created', async (t) => {
  const table = new StatsTable(DEFAULT_WINDOWS);
  const fired: number[] = [];
  const hook = { hook: (w: EndpointWindows) => fired.push(w.consecutive5xx), at: 2, refusedAt: 0 };
  const other = { hook: () => {}, at: 1, refusedAt: 0 };
  t.equal(table.hookOf(3), null);
  t.ok(table.hook(3, hook), 'put (waiting for the windows)');
  t.equal(table.get(3), undefined, 'no windows created for it');
  t.equal(table.hookOf(3), hook.hook);
  t.notOk(table.hook(3, other), 'a slot holds one hook');
  const w = table.ensure(3);
  t.equal(w.failureHook, hook.hook, 'the new windows carry it');
  t.equal(w.failureHookAt, 2);
  for (let i = 0; i < 3; i++) w.record(Outcome.Error5xx, 1000, 1_000);
  t.same(fired, [2, 3], 'and it runs from the threshold on');
  // On existing windows: put at once; taken off by the same hook only.
  const v = table.ensure(4);
  t.ok(table.hook(4, hook));
  t.equal(v.failureHook, hook.hook);
  table.unhook(4, other.hook);
  t.equal(v.failureHook, hook.hook, 'another hook does not take it off');
  table.unhook(4, hook.hook);
  t.equal(v.failureHook, null);
  // Waiting hooks are taken off too, and cleared with the slot.
  t.ok(table.hook(5, hook));
  table.unhook(5, hook.hook);
  t.equal(table.ensure(5).failureHook, null, 'unhooked before the windows came: none');
  t.ok(table.hook(6, hook));
  table.clear(6);
  t.equal(table.hookOf(6), null, 'clear forgets a waiting hook');
  t.equal(table.ensure(6).failureHook, null);
});
