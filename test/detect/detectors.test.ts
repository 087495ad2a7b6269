// Each detector's maths on crafted windows.
import t from 'tap';
import { Outcome } from '../../src/core/types.js';
import { DEFAULT_POLICY_SETTINGS, resolvePolicySettings } from '../../src/config/sections/healing.js';
import { consecutiveVerdicts } from '../../src/detect/consecutive.js';
import { envoyFailurePercentage, envoySuccessRate } from '../../src/detect/envoy.js';
import { peerLatency, peerSuccess } from '../../src/detect/peer.js';
import { getDetector, detectorNames, registerDetector } from '../../src/detect/registry.js';
import { signTestUpperTail } from '../../src/detect/robust.js';
import type { DetectionInput, EndpointSignals, Verdict } from '../../src/detect/types.js';
import { around, close, fill, signals } from './_signals.js';

const S = DEFAULT_POLICY_SETTINGS;
const input = (endpoints: EndpointSignals[], epoch: number, settings = S, intervalWindows?: number): DetectionInput => ({ now: (epoch + 1) * 1000, completedEpoch: epoch, endpoints, settings, intervalWindows });
const run = (d: { detect(i: DetectionInput, o: Verdict[]): void }, i: DetectionInput) => {
  const out: Verdict[] = [];
  d.detect(i, out);
  return out;
};

t.test('registry: built-ins by name, duplicates refused', async (t) => {
  for (const n of ['consecutive_5xx', 'consecutive_gateway', 'consecutive_local_origin', 'consecutive_refused', 'envoy_success_rate', 'envoy_failure_percentage', 'peer_success', 'peer_latency', 'latency_baseline', 'error_baseline']) t.ok(getDetector(n), n);
  t.throws(() => registerDetector(getDetector('peer_latency')!), /already registered/);
  t.ok(detectorNames().length >= 9);
});

t.test('consecutive: 5 × 500 ejects; 3 refused connections are reported as local-origin; a success resets', async (t) => {
  const a = signals('a');
  const b = signals('b');
  for (let i = 0; i < 4; i++) a.windows!.record(Outcome.Error5xx, 1000, 100 + i);
  t.same(run({ detect: consecutiveVerdicts }, input([a, b], -1)), [], '4 failures: nothing');
  a.windows!.record(Outcome.Error5xx, 1000, 200);
  const v = run({ detect: consecutiveVerdicts }, input([a, b], -1));
  t.equal(v.length, 1);
  t.equal(v[0]!.detector, 'consecutive_5xx');
  t.same(v[0]!.evidence, { consecutive: 5, threshold: 5 });
  for (let i = 0; i < 3; i++) b.windows!.record(Outcome.LocalOrigin, 1000, 300 + i);
  const v2 = run({ detect: consecutiveVerdicts }, input([a, b], -1));
  t.same(v2.map((x) => `${x.target}:${x.detector}`).sort(), ['a:consecutive_5xx', 'b:consecutive_local_origin'], 'one verdict per endpoint, the most specific');
  a.windows!.record(Outcome.Success, 1000, 400);
  t.same(run({ detect: consecutiveVerdicts }, input([a], -1)), [], 'a success resets the streak');
  const off = resolvePolicySettings({ consecutive: { enabled: false } });
  t.same(run({ detect: consecutiveVerdicts }, input([b], -1, off)), [], 'disabled');
});

t.test('consecutive: one refused connection is reported at once (the most specific verdict); a timeout is not', async (t) => {
  const a = signals('a');
  const b = signals('b');
  a.windows!.record(Outcome.LocalOrigin, 1000, 100); // a timeout
  t.same(run({ detect: consecutiveVerdicts }, input([a, b], -1)), [], 'one timeout: nothing');
  b.windows!.record(Outcome.LocalOrigin, 1000, 100, 0, true);
  const v = run({ detect: consecutiveVerdicts }, input([a, b], -1));
  t.same(v.map((x) => `${x.target}:${x.detector}`), ['b:consecutive_refused']);
  t.same(v[0]!.evidence, { consecutive: 1, threshold: 1 });
  t.equal(v[0]!.kind, 'failure');
  t.equal(v[0]!.severity, 'eject');
  for (let i = 0; i < 2; i++) b.windows!.record(Outcome.LocalOrigin, 1000, 200 + i, 0, true);
  t.same(run({ detect: consecutiveVerdicts }, input([b], -1)).map((x) => x.detector), ['consecutive_refused'], 'three refusals: still one verdict, the refused one');
  const two = resolvePolicySettings({ consecutive: { refused: 4 } });
  t.same(run({ detect: consecutiveVerdicts }, input([b], -1, two)).map((x) => x.detector), ['consecutive_local_origin'], 'refused 4: three refusals fall to the local-origin run');
  const off = resolvePolicySettings({ consecutive: { refused: 0 } });
  t.same(run({ detect: consecutiveVerdicts }, input([b], -1, off)).map((x) => x.detector), ['consecutive_local_origin'], 'refused 0: counted as local-origin failures only');
  const none = signals('c');
  none.windows!.record(Outcome.LocalOrigin, 1000, 100, 0, true);
  t.same(run({ detect: consecutiveVerdicts }, input([none], -1, off)), [], 'refused 0: one refusal ejects nothing');
});

/** Five endpoints with `n` requests each in windows 0..9, success rates given. */
function fleet(rates: number[], n = 200): EndpointSignals[] {
  const all = rates.map((_, i) => signals(`e${i}`));
  for (let e = 0; e < 10; e++) {
    all.forEach((s, i) => fill(s, e, n / 10, Math.round((n / 10) * (1 - rates[i]!)), around(10_000)));
    close(all, e);
  }
  return all;
}

t.test("Envoy success rate: mean − 1.9 × population stdev, minimum hosts 5, volume 100", async (t) => {
  const one = fleet([0.8, 1, 1, 1, 1]);
  const v = run(envoySuccessRate, input(one, 9, S, 10));
  t.equal(v.length, 1);
  t.equal(v[0]!.target, 'e0');
  // mean 96, population stdev 8 → threshold 96 − 15.2 = 80.8 > 80
  t.equal(v[0]!.evidence.mean, 96);
  t.equal(v[0]!.evidence.stdev, 8);
  t.equal(v[0]!.evidence.threshold, 80.8);
  t.same(run(envoySuccessRate, input(fleet([0.5, 1, 1, 1]), 9, S, 10)), [], 'four hosts: never fires');
  t.same(run(envoySuccessRate, input(fleet([0.5, 1, 1, 1, 1], 90), 9, S, 10)), [], 'below request_volume 100: not counted');
});

t.test('stdev masks two bad endpoints of five; median/MAD (peer_success) catches both', async (t) => {
  const two = fleet([0.5, 0.5, 1, 1, 1]);
  t.same(run(envoySuccessRate, input(two, 9, S, 10)), [], 'Envoy: mean 80, stdev 24.5 → threshold 33.5: nobody ejected');
  const v = run(peerSuccess, input(two, 9));
  t.same(v.map((x) => x.target).sort(), ['e0', 'e1']);
  t.equal(v[0]!.evidence.peerMedian, 1);
});

t.test('peer_success: background errors are not outliers (volume and binomial guards)', async (t) => {
  const noisy = fleet([0.99, 0.995, 1, 0.99, 1]);
  t.same(run(peerSuccess, input(noisy, 9)), []);
  const low = fleet([0.5, 1, 1, 1, 1], 60); // 30 requests in the 5 judged windows < minRequests 100
  t.same(run(peerSuccess, input(low, 9)), [], 'too few requests');
});

t.test('Envoy failure percentage: ≥ 85 % failing with ≥ 5 hosts of ≥ 50 requests', async (t) => {
  const v = run(envoyFailurePercentage, input(fleet([0.1, 1, 1, 1, 1]), 9, S, 10));
  t.equal(v.length, 1);
  t.equal(v[0]!.evidence.failurePct, 90);
  t.equal(v[0]!.evidence.enforcing, 0, 'enforcing 0 % by default (detected, not ejected)');
  t.same(run(envoyFailurePercentage, input(fleet([0.2, 1, 1, 1, 1]), 9, S, 10)), [], '80 % failing: below threshold');
});

/** Endpoints with the given median latencies (µs), `n` requests per window, windows 0..last. */
function latencies(medians: number[], last: number, n = 40, slowFrom = 0, slowFactor: number[] = medians.map(() => 1)): EndpointSignals[] {
  const all = medians.map((_, i) => signals(`e${i}`));
  for (let e = 0; e <= last; e++) {
    all.forEach((s, i) => fill(s, e, n, 0, around(medians[i]! * (e >= slowFrom ? slowFactor[i]! : 1))));
    close(all, e);
  }
  return all;
}

t.test('peer_latency: one endpoint 3× slower is flagged after two windows, with evidence', async (t) => {
  const all = latencies([10_000, 9_000, 11_000, 10_000, 12_000], 1, 40, 0, [3, 1, 1, 1, 1]);
  // Strikes build over the two windows: run the detector once per window, as the engine does.
  const all2 = [10_000, 9_000, 11_000, 10_000, 12_000].map((_, i) => signals(`e${i}`));
  let verdicts: Verdict[] = [];
  // Warm first (peerLatency.warmupWindows of traffic at the usual speed), then e0 turns 3× slower.
  const warm = S.peerLatency.warmupWindows;
  for (let e = 0; e < warm + 2; e++) {
    all2.forEach((s, i) => fill(s, e, 40, 0, around(e >= warm && i === 0 ? 30_000 : [10_000, 9_000, 11_000, 10_000, 12_000][i]!)));
    close(all2, e);
    verdicts = run(peerLatency, input(all2, e));
    if (e < warm) t.same(verdicts, [], `window ${e}: nobody stands out`);
    if (e === warm) t.same(verdicts, [], 'one window is not enough (confirmWindows 2)');
  }
  t.equal(verdicts.length, 1);
  t.equal(verdicts[0]!.target, 'e0');
  t.equal(verdicts[0]!.severity, 'eject');
  t.equal(verdicts[0]!.evidence.quantile, 'p50');
  t.ok(Number(verdicts[0]!.evidence.ratio) > 2.5);
  t.ok(all.length === 5);
});

t.test('peer_latency: an endpoint slow from its first window is de-weighted during the warm-up, ejected after it', async (t) => {
  const medians = [30_000, 9_000, 11_000, 10_000, 12_000];
  const severities = (settings: typeof S): string[] => {
    const all = medians.map((_, i) => signals(`e${i}`));
    const out: string[] = [];
    for (let e = 0; e < 7; e++) {
      all.forEach((s, i) => fill(s, e, 40, 0, around(medians[i]!)));
      close(all, e);
      const v = run(peerLatency, input(all, e, settings));
      out.push(v.length === 0 ? '-' : `${v[0]!.target} ${v[0]!.severity}`);
    }
    return out;
  };
  t.equal(S.peerLatency.warmupWindows, 5);
  // Strikes confirm after window 1; ejection waits until it has had traffic in 5 windows (window 4).
  t.same(severities(S), ['-', 'e0 degrade', 'e0 degrade', 'e0 degrade', 'e0 eject', 'e0 eject', 'e0 eject']);
  const noWarmup = resolvePolicySettings({ peerLatency: { warmupWindows: 0 } });
  t.same(severities(noWarmup), ['-', 'e0 eject', 'e0 eject', 'e0 eject', 'e0 eject', 'e0 eject', 'e0 eject'], 'warmupWindows 0: ejected once confirmed');
  // Windows without traffic do not count toward the warm-up.
  const idle = medians.map((_, i) => signals(`e${i}`));
  for (let e = 0; e < 10; e++) close(idle, e);
  let v: Verdict[] = [];
  for (let e = 10; e < 12; e++) {
    idle.forEach((s, i) => fill(s, e, 40, 0, around(medians[i]!)));
    close(idle, e);
    v = run(peerLatency, input(idle, e));
  }
  t.equal(v[0]?.severity, 'degrade', 'ten idle windows then two slow ones: still warming up');
});

t.test('peer_latency: two slow endpoints of five are both flagged; 1.2× spread is not', async (t) => {
  const all = [30_000, 30_000, 10_000, 11_000, 9_000].map((_, i) => signals(`e${i}`));
  let v: Verdict[] = [];
  for (let e = 0; e <= 1; e++) {
    all.forEach((s, i) => fill(s, e, 40, 0, around([30_000, 30_000, 10_000, 11_000, 9_000][i]!)));
    close(all, e);
    v = run(peerLatency, input(all, e));
  }
  t.same(v.map((x) => x.target).sort(), ['e0', 'e1']);
  const spread = [12_000, 10_000, 9_000, 11_000, 10_000].map((_, i) => signals(`e${i}`));
  for (let e = 0; e < 5; e++) {
    spread.forEach((s, i) => fill(s, e, 40, 0, around([12_000, 10_000, 9_000, 11_000, 10_000][i]!)));
    close(spread, e);
    t.same(run(peerLatency, input(spread, e)), [], `window ${e}: natural spread is not an outlier`);
  }
});

t.test('peer_latency: a moderately slower endpoint is de-weighted, not ejected', async (t) => {
  const all = [17_000, 10_000, 10_000, 10_000, 10_000].map((_, i) => signals(`e${i}`));
  let v: Verdict[] = [];
  for (let e = 0; e <= 1; e++) {
    all.forEach((s, i) => fill(s, e, 40, 0, around([17_000, 10_000, 10_000, 10_000, 10_000][i]!, 0.05)));
    close(all, e);
    v = run(peerLatency, input(all, e));
  }
  t.equal(v.length, 1);
  t.equal(v[0]!.severity, 'degrade');
  t.ok(v[0]!.weight! > 0.5 && v[0]!.weight! < 0.65, `weight ${v[0]!.weight}`);
});

t.test('sign test: P(Binomial(n, ½) ≥ k), exact', async (t) => {
  t.equal(signTestUpperTail(10, 10), 1 / 1024);
  t.ok(Math.abs(signTestUpperTail(6, 10) - 386 / 1024) < 1e-12);
  t.ok(Math.abs(signTestUpperTail(15, 20) - 21_700 / 1_048_576) < 1e-12);
  t.equal(signTestUpperTail(0, 7), 1);
  t.equal(signTestUpperTail(11, 10), 0);
  t.ok(Math.abs(signTestUpperTail(500, 1000) - 0.5126) < 1e-3, 'large n');
});

t.test('peer_latency: a p50 at the eject level ejects only when the sign test says the median is above the de-weight level', async (t) => {
  // After the warm-up, e0 gets 10 requests a window (de-weighted) whose p50 is 25 ms, 2.5× its peers.
  // A gray failure moves them all; heavy-tailed noise moves the p50 of a handful with the rest still fast.
  const medians = [10_000, 9_000, 11_000, 10_000, 12_000];
  const last = (slowOf10: number): Verdict[] => {
    const all = medians.map((_, i) => signals(`e${i}`));
    const warm = S.peerLatency.warmupWindows;
    let v: Verdict[] = [];
    for (let e = 0; e < warm + 3; e++) {
      all.forEach((s, i) => {
        if (e < warm || i !== 0) fill(s, e, 40, 0, around(medians[i]!));
        else fill(s, e, 10, 0, (j) => (j < slowOf10 ? 25_000 : 11_000));
      });
      close(all, e);
      v = run(peerLatency, input(all, e));
    }
    return v;
  };
  const gray = last(10);
  t.equal(gray[0]?.severity, 'eject', 'all 10 slow: ejected');
  t.equal(gray[0]?.evidence.aboveDegrade, 10);
  t.equal(gray[0]?.evidence.requests, 10);
  t.ok(Number(gray[0]?.evidence.signP) < 0.002, `sign test p ${gray[0]?.evidence.signP}`);
  const chance = last(6);
  t.equal(chance[0]?.evidence.quantile, 'p50');
  t.ok(Number(chance[0]?.evidence.ratio) >= S.peerLatency.ejectRatio, `p50 ratio ${chance[0]?.evidence.ratio}`);
  t.equal(chance[0]?.severity, 'degrade', '6 of 10 slow, 4 below the de-weight level: de-weighted, not ejected');
  t.ok(Number(chance[0]?.evidence.signP) > 0.05, `sign test p ${chance[0]?.evidence.signP}`);
});

t.test('peer_latency: a starved endpoint is judged on pooled windows anchored on a full one', async (t) => {
  // A gray failure: one full window of slow requests, then the balancer starves the endpoint.
  const all = [10_000, 10_000, 10_000, 10_000, 10_000].map((_, i) => signals(`e${i}`));
  let v: Verdict[] = [];
  for (let e = 0; e <= 2; e++) {
    all.forEach((s, i) => fill(s, e, i === 0 ? (e === 0 ? 12 : 4) : 40, 0, around(i === 0 ? 40_000 : 10_000)));
    close(all, e);
    v = run(peerLatency, input(all, e));
  }
  t.equal(v.length, 1, '4 requests a window, pooled with the full window before');
  t.equal(v[0]!.target, 'e0');
  // Only the slow tail of an earlier burst (no full window to anchor the pool): no verdict.
  const tail = [10_000, 10_000, 10_000, 10_000, 10_000].map((_, i) => signals(`e${i}`));
  for (let e = 0; e <= 5; e++) {
    tail.forEach((s, i) => fill(s, e, i === 0 ? 4 : 40, 0, around(i === 0 ? 40_000 : 10_000)));
    close(tail, e);
    t.same(run(peerLatency, input(tail, e)), [], `window ${e}: starved without an anchor`);
  }
});

t.test('detectors never throw on empty, missing or odd data', async (t) => {
  const empty = [signals('a'), signals('b'), signals('c')];
  empty[2]!.windows = undefined;
  close(empty, 0);
  for (const name of detectorNames()) {
    const d = getDetector(name)!;
    t.doesNotThrow(() => run(d, input(empty, 0, S, 10)), name);
    t.doesNotThrow(() => run(d, input([], -1, S, 10)), `${name} with no endpoints`);
  }
  // Random values recorded (negative, NaN, huge): windows clamp; detectors still answer.
  const rnd = [signals('x'), signals('y'), signals('z')];
  const vals = [NaN, -5, 0, 1e30, Infinity, 3.5];
  for (let e = 0; e < 3; e++) {
    for (const s of rnd) for (let i = 0; i < 30; i++) s.windows!.record(((i * 7) % 4) as Outcome, vals[i % vals.length]!, e * 1000 + i);
    close(rnd, e);
    for (const name of detectorNames()) t.doesNotThrow(() => run(getDetector(name)!, input(rnd, e, S, 10)), `${name} on odd values`);
  }
});
