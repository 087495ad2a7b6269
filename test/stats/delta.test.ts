// Window deltas (what proxy workers ship to the primary): requests split over two processes' windows and
// merged give the same windows as one process that saw them all; malformed deltas are refused whole.
import t from 'tap';
import { seededRandom } from '../../src/core/random.js';
import { Outcome, type Outcome as OutcomeT } from '../../src/core/types.js';
import { emptySummary, EndpointWindows, newHistogram, DEFAULT_WINDOWS, type WindowsDelta } from '../../src/stats/window.js';

t.test('split over two workers, shipped every tick, merged = one process that saw everything', async (t) => {
  const seed = 20261206;
  const rnd = seededRandom(seed);
  const whole = new EndpointWindows();
  const merged = new EndpointWindows();
  const workers = [new EndpointWindows(), new EndpointWindows()];
  const start = 1_000_000_000;
  for (let tick = 0; tick < 60; tick++) {
    const now = start + tick * 100; // 100 ms ticks over 6 windows of 1 s
    for (let i = 0; i < 50; i++) {
      const r = rnd();
      const outcome: OutcomeT = r < 0.8 ? Outcome.Success : r < 0.9 ? Outcome.Error5xx : r < 0.95 ? Outcome.Gateway : r < 0.98 ? Outcome.LocalOrigin : Outcome.Cancelled;
      const latency = Math.round(200 + rnd() * 40_000);
      const status = outcome === Outcome.Success ? 200 : outcome === Outcome.Error5xx ? 500 : outcome === Outcome.Gateway ? 503 : 0;
      whole.record(outcome, latency, now, status);
      workers[i % 2]!.record(outcome, latency, now, status);
    }
    for (const w of workers) {
      const d = w.exportDelta();
      if (d) merged.mergeDelta(JSON.parse(JSON.stringify(d)) as WindowsDelta); // as it crosses IPC
    }
  }
  const end = start + 59 * 100;
  const a = whole.summarize(end, 10, emptySummary(), newHistogram(DEFAULT_WINDOWS));
  const b = merged.summarize(end, 10, emptySummary(), newHistogram(DEFAULT_WINDOWS));
  t.same(b, a, `same counts and quantiles (seed ${seed})`);
  t.same([...merged.lifetime], [...whole.lifetime], 'same lifetime counters');
  t.same([...merged.byCode], [...whole.byCode], 'same response-code classes');
  t.equal(merged.latencySumUs, whole.latencySumUs);
  t.equal(merged.latencyCount, whole.latencyCount);
  for (const w of workers) t.equal(w.exportDelta(), null, 'a worker has nothing left to ship after its export');
});

t.test('consecutive runs continue across deltas and restart on the outcome that ends them; the failure hook fires once reached', async (t) => {
  const primary = new EndpointWindows();
  const fired: number[] = [];
  primary.failureHookAt = 5;
  primary.failureHook = (w) => fired.push(w.consecutive5xx);
  const w1 = new EndpointWindows();
  const w2 = new EndpointWindows();
  const now = 5_000_000;
  for (let i = 0; i < 2; i++) w1.record(Outcome.Error5xx, 1000, now, 500);
  primary.mergeDelta(w1.exportDelta()!);
  t.equal(primary.consecutive5xx, 2);
  for (let i = 0; i < 2; i++) w2.record(Outcome.Error5xx, 1000, now, 500);
  primary.mergeDelta(w2.exportDelta()!);
  t.equal(primary.consecutive5xx, 4, 'failures from another worker continue the run');
  t.same(fired, [], 'below the threshold: no hook');
  w1.record(Outcome.Gateway, 1000, now, 503);
  primary.mergeDelta(w1.exportDelta()!);
  t.same(fired, [5], 'the hook fires when the merged run reaches the threshold');
  t.equal(primary.consecutiveGateway, 1);
  w2.record(Outcome.Success, 1000, now, 200);
  w2.record(Outcome.Error5xx, 1000, now, 500);
  primary.mergeDelta(w2.exportDelta()!);
  t.equal(primary.consecutive5xx, 1, 'a success in the delta restarts the run at what followed it');
  t.equal(primary.consecutiveGateway, 0, 'a 5xx ends a gateway run');
  t.equal(primary.consecutiveSuccess, 0);
});

t.test('a refused run continues across deltas only while every outcome was a refusal; older 4-count deltas are accepted', async (t) => {
  const primary = new EndpointWindows();
  const fired: number[] = [];
  primary.failureHookAt = 3;
  primary.failureHookRefusedAt = 2;
  primary.failureHook = (w) => fired.push(w.consecutiveRefused);
  const w1 = new EndpointWindows();
  const now = 6_000_000;
  w1.record(Outcome.LocalOrigin, 1000, now, 0, true);
  primary.mergeDelta(w1.exportDelta()!);
  t.equal(primary.consecutiveRefused, 1);
  t.same(fired, [], 'one refusal: below the refused threshold and the ordinary one');
  w1.record(Outcome.LocalOrigin, 1000, now, 0, true);
  primary.mergeDelta(w1.exportDelta()!);
  t.equal(primary.consecutiveRefused, 2, 'a refusal from another worker continues the run');
  t.same(fired, [2], 'the hook fires when the merged refused run reaches its threshold');
  w1.record(Outcome.LocalOrigin, 1000, now, 0, true);
  w1.record(Outcome.LocalOrigin, 1000, now); // a timeout ends it
  primary.mergeDelta(w1.exportDelta()!);
  t.equal(primary.consecutiveRefused, 0, 'a delta with a timeout after the refusal restarts the run at 0');
  w1.record(Outcome.LocalOrigin, 1000, now, 0, true);
  primary.mergeDelta(w1.exportDelta()!);
  t.equal(primary.consecutiveRefused, 1);
  primary.mergeDelta({ windows: [[6000, 0, 0, 0, 1, 0, 1000]], byCode: [], latencySumUs: 1000, latencyCount: 1, consecutive: [1, 1, 1, 0] });
  t.equal(primary.consecutiveRefused, 0, 'a 4-count delta (no refused count) ends the refused run');
  t.equal(primary.consecutiveLocalOrigin, 6, 'and continues the local-origin run');
});

t.test('a malformed delta is refused whole, naming what is wrong', async (t) => {
  const w = new EndpointWindows();
  w.record(Outcome.Success, 1000, 7_000_000, 200);
  const before = JSON.stringify([...w.lifetime, w.latencyCount, w.consecutiveSuccess]);
  const good = { windows: [[7000, 1, 0, 0, 0, 0, 1000, 100, 1]], byCode: [2, 1], latencySumUs: 1000, latencyCount: 1, consecutive: [0, 0, 0, 1] };
  const cases: [unknown, RegExp][] = [
    [null, /not \{windows/],
    [{ ...good, windows: [[7000, 1, 0]] }, /window row/],
    [{ ...good, windows: [[7000, -1, 0, 0, 0, 0, 1000]] }, /window row/],
    [{ ...good, windows: [[7000, 1, 0, 0, 0, 0, 1000, 1e9, 1]] }, /bin 1000000000 is outside/],
    [{ ...good, windows: [[7000, 1, 0, 0, 0, 0, 1000, 100]] }, /window row/],
    [{ ...good, byCode: [999, 1] }, /byCode pair 0/],
    [{ ...good, consecutive: [0, 0, 0] }, /consecutive/],
    [{ ...good, latencyCount: 'x' }, /latency/],
  ];
  for (const [d, why] of cases) t.throws(() => w.mergeDelta(d as WindowsDelta), why);
  t.equal(JSON.stringify([...w.lifetime, w.latencyCount, w.consecutiveSuccess]), before, 'nothing changed');
  w.mergeDelta(good);
  t.equal(w.lifetime[Outcome.Success], 2, 'a good delta merges');
});
