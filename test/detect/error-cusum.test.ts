// peer_error_cusum: the sequential test of an endpoint's failures against its peers' rate, fed per tick.
import t from 'tap';
import { Outcome } from '../../src/core/types.js';
import { DEFAULT_POLICY_SETTINGS, resolvePolicySettings } from '../../src/config/sections/healing.js';
import { peerErrorCusum } from '../../src/detect/error-cusum.js';
import type { DetectionInput, EndpointSignals, Verdict } from '../../src/detect/types.js';
import { Rng } from '../../src/sim/rng.js';
import { around, close, fill, signals, WINDOW_MS } from './_signals.js';

/** Five endpoints with 5 completed windows of clean traffic (the peers' rate), epochs 0..4. */
function fleet(n = 5): EndpointSignals[] {
  const all = Array.from({ length: n }, (_, i) => signals(`e${i}`));
  for (let e = 0; e < 5; e++) {
    for (const s of all) fill(s, e, 40, 0, around(10_000));
    close(all, e);
  }
  return all;
}

/** One evaluation at `now` (completedEpoch −1: between windows, as at most ticks). */
function judge(all: EndpointSignals[], now: number, completedEpoch = -1, settings = DEFAULT_POLICY_SETTINGS): Verdict[] {
  const out: Verdict[] = [];
  const input: DetectionInput = { now, completedEpoch, endpoints: all, settings };
  peerErrorCusum.detect(input, out);
  return out;
}

/** Record into endpoint s at time `ms`: `failures` failures then `successes` successes. */
function put(s: EndpointSignals, ms: number, failures: number, successes: number): void {
  for (let i = 0; i < failures; i++) s.windows!.record(Outcome.Error5xx, 5000, ms, 500);
  for (let i = 0; i < successes; i++) s.windows!.record(Outcome.Success, 10_000, ms, 200);
}

t.test('a run of failures: 7 in a row stay below h 23 at the floor rate 0.5 %, the 8th reports it, and the sum restarts', async (t) => {
  const all = fleet();
  let now = 5 * WINDOW_MS;
  t.same(judge(all, now, 4), [], 'first evaluation: the peers\' rate is taken, the counters are read');
  t.equal(all[0]!.errorRun.peerRate, 0.005, 'clean peers: the floor (baseFailureRate)');
  now += 100;
  put(all[0]!, now, 7, 0);
  t.same(judge(all, now), [], `7 failures: llr ${all[0]!.errorRun.llr.toFixed(2)} < 23`);
  t.ok(Math.abs(all[0]!.errorRun.llr - 7 * Math.log(0.105 / 0.005)) < 1e-9, 'each failure adds ln(p1 / p0)');
  now += 100;
  put(all[0]!, now, 1, 0);
  const v = judge(all, now);
  t.equal(v.length, 1);
  t.match(v[0], { target: 'e0', detector: 'peer_error_cusum', kind: 'failure', severity: 'eject', evidence: { threshold: 23, peerRate: 0.005, alternative: 0.105, peerHosts: 4 } });
  t.ok((v[0]!.evidence.llr as number) >= 23, `llr ${v[0]!.evidence.llr}`);
  t.equal(all[0]!.errorRun.llr, 0, 'the sum restarts after a report');
});

t.test('the report states the failure rate since the sum last left zero (where the test dates the fault)', async (t) => {
  const all = fleet();
  let now = 5 * WINDOW_MS;
  judge(all, now, 4);
  // Clean traffic first: the sum stays at zero and none of it belongs to the fault.
  for (let k = 0; k < 5; k++) {
    now += 100;
    put(all[0]!, now, 0, 4);
    t.same(judge(all, now), []);
  }
  t.equal(all[0]!.errorRun.segRequests, 0, 'clean traffic: no segment');
  // Then 3 failures in every 10 requests, one batch of 10 per tick, until it is reported.
  let v: Verdict[] = [];
  for (let k = 0; k < 20 && v.length === 0; k++) {
    now += 100;
    put(all[0]!, now, 3, 7);
    v = judge(all, now);
  }
  t.equal(v.length, 1, 'reported');
  t.equal(v[0]!.evidence.failureRate, 0.3, 'the fault\'s rate, not diluted by the clean traffic before it');
  t.equal((v[0]!.evidence.requests as number) % 10, 0, `whole batches since the change point (${v[0]!.evidence.requests} requests)`);
  t.equal(all[0]!.errorRun.segRequests, 0, 'the segment restarts with the sum');
});

t.test('a 30 % partial failure is reported within a second of 40 requests/s; its peers never are', async (t) => {
  const all = fleet();
  const seed = 20261207;
  const rng = new Rng(seed);
  let now = 5 * WINDOW_MS;
  judge(all, now, 4);
  let reportedAt = -1;
  for (let tick = 1; tick <= 20 && reportedAt < 0; tick++) {
    now += 100;
    for (let i = 0; i < all.length; i++) {
      let f = 0;
      for (let k = 0; k < 4; k++) if (rng.next() < (i === 0 ? 0.3 : 0.001)) f++;
      put(all[i]!, now, f, 4 - f);
    }
    const v = judge(all, now);
    t.ok(v.every((x) => x.target === 'e0'), `seed ${seed}: only the failing endpoint`);
    if (v.length > 0) reportedAt = tick * 100;
  }
  t.ok(reportedAt > 0 && reportedAt <= 1500, `seed ${seed}: reported ${reportedAt} ms into the fault (4 requests a tick)`);
});

t.test('at the peers\' rate nothing is reported over 200,000 requests; fresh after a gap; the guards of the test', async (t) => {
  const all = fleet();
  const seed = 7;
  const rng = new Rng(seed);
  let now = 5 * WINDOW_MS;
  judge(all, now, 4);
  let reports = 0;
  let maxLlr = 0;
  // Every endpoint fails at 0.5 %, the floor: the hardest in-control case (the true rate is p0 itself).
  for (let tick = 1; tick <= 10_000; tick++) {
    now += 100;
    for (const s of all) {
      let f = 0;
      for (let k = 0; k < 4; k++) if (rng.next() < 0.005) f++;
      put(s, now, f, 4 - f);
    }
    reports += judge(all, now).length;
    maxLlr = Math.max(maxLlr, ...all.map((s) => s.errorRun.llr));
  }
  t.equal(reports, 0, `seed ${seed}: no report (largest sum ${maxLlr.toFixed(1)} of 23)`);
  // Out of rotation for more than a second: the next evaluation only re-reads the counters.
  all[1]!.errorRun.llr = 20;
  put(all[1]!, now + 5000, 50, 0);
  t.same(judge(all.slice(1), now + 5000), [], 'after a gap: 50 failures recorded meanwhile are not charged');
  t.equal(all[1]!.errorRun.llr, 0, 'and the sum starts afresh');
  // Too few hosts with traffic: nothing judged.
  const pair = fleet(2);
  judge(pair, 5000, 4);
  put(pair[0]!, 5100, 40, 0);
  t.same(judge(pair, 5100), [], 'two endpoints: below minHosts 3');
  const off = resolvePolicySettings({ peerErrorCusum: { enabled: false } });
  const f = fleet();
  judge(f, 5000, 4, off);
  put(f[0]!, 5100, 40, 0);
  t.same(judge(f, 5100, -1, off), [], 'disabled');
});

t.test('the peers\' rate follows the other endpoints: failing everywhere is not one endpoint failing', async (t) => {
  const all = Array.from({ length: 5 }, (_, i) => signals(`e${i}`));
  for (let e = 0; e < 5; e++) {
    for (const s of all) fill(s, e, 40, 12, around(10_000)); // 30 % everywhere (a shared dependency)
    close(all, e);
  }
  let now = 5 * WINDOW_MS;
  judge(all, now, 4);
  t.equal(all[0]!.errorRun.peerRate, 0.3);
  let reports = 0;
  for (let tick = 1; tick <= 50; tick++) {
    now += 100;
    for (const s of all) put(s, now, tick % 10 < 3 ? 4 : 0, tick % 10 < 3 ? 0 : 4);
    reports += judge(all, now).length;
  }
  t.equal(reports, 0, 'every endpoint at the peers\' 30 %: nothing reported');
});
