// The meshmedic policy through the real engine: ejection, backoff, probation, ramp, guards, external verdicts.
import t from 'tap';
import { Outcome } from '../../src/core/types.js';
import { probePassesFor } from '../../src/heal/meshmedic.js';
import { harness } from './_harness.js';

const healthy = () => ({ n: 4 });

t.test('consecutive failures eject at the threshold, without waiting for a tick', async (t) => {
  const h = harness({ endpoints: 5 });
  h.run(2000, healthy);
  for (let k = 0; k < 2; k++) h.record(0, Outcome.LocalOrigin);
  t.equal(h.health(0).state, 'healthy', '2 local-origin failures (timeouts, resets): still in');
  h.record(0, Outcome.LocalOrigin);
  t.equal(h.health(0).state, 'ejected', 'the 3rd local-origin failure ejects at once (urgent path)');
  const d = h.decisions('eject')[0]!;
  t.equal(d.reason, 'consecutive_local_origin');
  t.equal(d.source, 'local');
  t.equal(d.evidence.level, 1);
  t.equal(d.evidence.ejectMs, 10_000);
  t.equal(h.engine.counters.urgentEvaluations > 0, true);
});

t.test('one refused connection ejects at once (consecutive_refused); a timeout does not; passing probes readmit it fast', async (t) => {
  const h = harness({ endpoints: 5 });
  h.run(2000, healthy);
  h.record(1, Outcome.LocalOrigin, 1_000_000); // a timeout: not certain evidence
  t.equal(h.health(1).state, 'healthy', 'one timeout: still in');
  h.record(0, Outcome.LocalOrigin, 500, true);
  t.equal(h.health(0).state, 'ejected', 'the first refused connection ejects (urgent path)');
  const d = h.decisions('eject')[0]!;
  t.equal(d.reason, 'consecutive_refused');
  t.equal(d.source, 'local');
  t.same(d.evidence, { consecutive: 1, threshold: 1, level: 1, ejectMs: 10_000 });
  t.equal(h.decisions('eject').length, 1, 'only the refusing endpoint');
  // A restarted pod: something listens again, the probes pass, probation after probe.minEjectionMs, and
  // its first clean canaries restore it at full weight (the fast path of a consecutive-failure ejection).
  const ejectedAt = h.clock.now();
  for (let k = 0; k < 10 && h.clock.now() - ejectedAt < 2000; k++) {
    h.engine.submitProbe(h.ids[0]!, true);
    h.run(200, (i) => (i === 0 ? undefined : healthy()));
  }
  h.engine.submitProbe(h.ids[0]!, true);
  h.run(200, (i) => (i === 0 ? undefined : healthy()));
  t.equal(h.health(0).state, 'probation');
  t.equal(h.decisions('probation')[0]!.reason, 'probe_passed');
  h.run(500, healthy);
  t.equal(h.health(0).state, 'healthy', 'clean canaries: back');
  t.equal(h.health(0).weightFactor, 1, 'at full weight');
  t.ok(h.clock.now() - ejectedAt <= 3000, `back ${h.clock.now() - ejectedAt} ms after its ejection`);
  t.equal(h.decisions('restore').at(-1)!.reason, 'probation_clean');
});

t.test('a passing probe that ends a hard-fault ejection is judged at once, not at the next tick, and its canaries come at the full share', async (t) => {
  const others = (i: number) => (i === 0 ? undefined : healthy());
  for (const urgent of ['sync', 'microtask'] as const) {
    const h = harness({ endpoints: 5, urgent });
    h.run(2000, healthy);
    h.record(0, Outcome.LocalOrigin, 500, true);
    await Promise.resolve();
    t.equal(h.health(0).state, 'ejected', `${urgent}: the refused connection ejects`);
    // The fault lasts past probe.minEjectionMs (2 s): failing probes keep it out and wait for the tick.
    const before = h.engine.counters.urgentEvaluations;
    for (let k = 0; k < 15; k++) {
      h.engine.submitProbe(h.ids[0]!, false);
      await Promise.resolve();
      h.run(200, others);
    }
    t.equal(h.engine.counters.urgentEvaluations, before, `${urgent}: a failing probe is not evaluated out of turn`);
    t.equal(h.health(0).state, 'ejected', `${urgent}: failing probes keep it out`);
    // The fault ends between two ticks: the first passing probe puts it on probation before the next one.
    const ticks = h.engine.counters.ticks;
    h.engine.submitProbe(h.ids[0]!, true);
    if (urgent === 'microtask') {
      t.equal(h.health(0).state, 'ejected', 'microtask: not inside submitProbe');
      await Promise.resolve();
    }
    t.equal(h.health(0).state, 'probation', `${urgent}: on probation at once`);
    t.equal(h.engine.counters.ticks, ticks, `${urgent}: no tick ran meanwhile`);
    t.equal(h.decisions('probation').at(-1)!.reason, 'probe_passed');
    t.equal(h.health(0).weightFactor, 1, `${urgent}: canaries at its full share (probation.fastCanaryWeight 1)`);
    h.run(300, healthy);
    t.equal(h.health(0).state, 'healthy', `${urgent}: clean canaries restore it`);
    t.equal(h.decisions('restore').at(-1)!.reason, 'probation_clean');
  }
  // An engine that waits for the tick (urgent: tick) judges the passing probe there.
  const w = harness({ endpoints: 5, urgent: 'tick' });
  w.run(2000, healthy);
  w.record(0, Outcome.LocalOrigin, 500, true);
  w.run(100, others);
  t.equal(w.health(0).state, 'ejected', 'tick mode: ejected at the tick');
  for (let k = 0; k < 15; k++) {
    w.engine.submitProbe(w.ids[0]!, false);
    w.run(200, others);
  }
  w.engine.submitProbe(w.ids[0]!, true);
  await Promise.resolve();
  t.equal(w.health(0).state, 'ejected', 'tick mode: still out until the tick');
  w.run(100, others);
  t.equal(w.health(0).state, 'probation', 'tick mode: on probation at the tick');
  // The share stays configurable.
  const p = harness({ endpoints: 5, settings: { probation: { fastCanaryWeight: 0.5 } } });
  p.run(2000, healthy);
  p.record(0, Outcome.LocalOrigin, 500, true);
  for (let k = 0; k < 11; k++) {
    p.engine.submitProbe(p.ids[0]!, k >= 10);
    if (k < 10) p.run(200, others);
  }
  t.equal(p.health(0).weightFactor, 0.5, 'probation.fastCanaryWeight 0.5: canaries at half the share');
});

t.test('refused connections stay under the guards: max ejection share and panic', async (t) => {
  const h = harness({ endpoints: 6 });
  h.run(2000, healthy);
  for (const i of [0, 1, 2, 3]) h.record(i, Outcome.LocalOrigin, 500, true);
  const out = [0, 1, 2, 3].filter((i) => h.health(i).state === 'ejected');
  t.equal(out.length, 3, 'three of 6 out, not four');
  const refused = [0, 1, 2, 3].filter((i) => h.health(i).state !== 'ejected');
  t.equal(h.health(refused[0]!).weightFactor, 0.1, 'the fourth is sent as little traffic as allowed instead (deweight.minWeight)');
  const refusals = h.engine.policyOf('svc')!.counters.refusals;
  t.equal(refusals.panic, 1, `the fourth would leave 2 of 6 (panic below 50 % after overprovisioning): refused (${JSON.stringify(refusals)})`);
  const off = harness({ endpoints: 5, settings: { consecutive: { refused: 0 } } });
  off.run(2000, healthy);
  off.record(0, Outcome.LocalOrigin, 500, true);
  t.equal(off.health(0).state, 'healthy', 'consecutive.refused 0: a refusal is an ordinary local-origin failure');
  for (let k = 0; k < 2; k++) off.record(0, Outcome.LocalOrigin, 500, true);
  t.equal(off.decisions('eject')[0]!.reason, 'consecutive_local_origin', 'ejected at the local-origin threshold');
});

t.test('a 30 % partial failure is ejected by the sequential test (peer_error_cusum) within a second and a half', async (t) => {
  const h = harness({ endpoints: 5 });
  h.run(6000, healthy);
  const start = h.clock.now();
  // 40 requests/s each; endpoint 0 fails 3 of every 10 (spread, never 5 in a row: no consecutive_5xx).
  let k = 0;
  h.run(3000, (i) => {
    if (i !== 0 || h.health(0).state !== 'healthy') return i === 0 ? undefined : healthy();
    for (let j = 0; j < 4; j++, k++) h.record(0, [1, 4, 7].includes(k % 10) ? Outcome.Error5xx : Outcome.Success);
    return undefined;
  });
  const d = h.decisions('eject')[0];
  t.ok(d, 'ejected');
  t.equal(d!.reason, 'peer_error_cusum');
  t.ok(d!.at - start <= 1500, `ejected ${d!.at - start} ms into the fault`);
  t.match(d!.evidence, { threshold: 23, peerRate: 0.005, level: 1 });
  t.equal(h.decisions('eject').length, 1, 'only the failing endpoint');
});

t.test('probe passes needed after an ejection: as many in a row as an endpoint still failing at its rate shows at most 5 % of the time', async (t) => {
  t.equal(probePassesFor(NaN, 20), 1, 'rate unknown: one pass, as before');
  t.equal(probePassesFor(1, 20), 1, 'a hard fault: the first passing probe sees it over');
  t.equal(probePassesFor(0.96, 20), 1);
  t.equal(probePassesFor(0.5, 20), 5, '0.5^5 ≈ 3 %');
  t.equal(probePassesFor(0.3, 20), 9, '0.7^9 ≈ 4 %');
  t.equal(probePassesFor(0.1, 20), 20, 'at most the canary count that judges it next (0.9^29 would be needed)');
  t.equal(probePassesFor(0, 20), 1);
});

t.test('after a partial failure: probes readmit only after enough passes in a row, and the second failing canary re-ejects at once', async (t) => {
  const h = harness({ endpoints: 5 });
  h.run(6000, healthy);
  let k = 0;
  h.run(3000, (i) => {
    if (i !== 0 || h.health(0).state !== 'healthy') return i === 0 ? undefined : healthy();
    for (let j = 0; j < 4; j++, k++) h.record(0, [1, 4, 7].includes(k % 10) ? Outcome.Error5xx : Outcome.Success);
    return undefined;
  });
  const d = h.decisions('eject')[0]!;
  t.equal(d.reason, 'peer_error_cusum');
  const rate = d.evidence.failureRate as number;
  t.ok(rate >= 0.25 && rate <= 0.5, `failure rate in the evidence: ${rate}`);
  const need = probePassesFor(rate, 20);
  t.ok(need >= 5, `${need} passes needed`);
  const others = (i: number) => (i === 0 ? undefined : healthy());
  const probe = (ok: boolean) => {
    h.engine.submitProbe(h.ids[0]!, ok);
    h.run(200, others);
  };
  // The fault goes on past probe.minEjectionMs: failing probes. Then passes, one short of the run needed
  // (a single one used to readmit it): still out; a failing probe starts the run again.
  for (let p = 0; p < 12; p++) probe(false);
  for (let p = 0; p < need - 1; p++) probe(true);
  t.equal(h.health(0).state, 'ejected', `${need - 1} passes in a row: still out`);
  probe(false);
  for (let p = 0; p < need - 1; p++) probe(true);
  t.equal(h.health(0).state, 'ejected', 'a failing probe starts the run again');
  probe(true);
  t.equal(h.health(0).state, 'probation', `${need} passes in a row: probation`);
  t.equal(h.decisions('probation')[0]!.evidence.probePasses, need);
  // Canaries: one failure proves nothing; the second, among 3 canaries of the 20 that judge it, re-ejects
  // at once (the verdict at 20 can only be failed).
  h.record(0, Outcome.Error5xx);
  h.record(0, Outcome.Success);
  h.run(100, others);
  t.equal(h.health(0).state, 'probation', 'one failing canary: still on probation');
  h.record(0, Outcome.Error5xx);
  h.run(100, others);
  t.equal(h.health(0).state, 'ejected');
  t.match(h.decisions('eject')[1], { reason: 'probation_failed', evidence: { canaryRequests: 3, canaryFailures: 2, level: 2 } });
});

t.test('probation: re-admission waits for the canary traffic to be healthy, not for time alone', async (t) => {
  const h = harness({ endpoints: 5 });
  h.run(2000, healthy);
  for (let k = 0; k < 5; k++) h.record(0, Outcome.Error5xx);
  t.equal(h.health(0).state, 'ejected');
  // Ejected for 10 s: no traffic reaches it (the balancer sends none), then probation with a canary weight.
  h.run(10_100, (i) => (i === 0 ? undefined : healthy()));
  t.equal(h.health(0).state, 'probation');
  // The canary share is sized from the peers' traffic (40 requests/s each): 20 canaries within 2 s
  // need 25 %, the cap (probation.maxCanaryWeight).
  t.equal(h.health(0).weightFactor, 0.25);
  t.equal(h.decisions('probation')[0]!.reason, 'readmit', 'nobody probes in this harness: the backoff timer applies');
  // A long time without canary traffic: still on probation (its priority has traffic: the canary widens).
  h.run(25_000, (i) => (i === 0 ? undefined : healthy()));
  t.equal(h.health(0).state, 'probation', 'no canary traffic: never restored on time alone');
  t.ok(h.decisions('probation').some((d) => d.reason === 'probation_widen'), 'the canary share was widened');
  t.equal(h.health(0).weightFactor, 0.5, 'widened up to 0.5');
  // Healthy canary traffic: restored through the ramp.
  h.run(4000, (i) => (i === 0 ? { n: 1 } : healthy()));
  const passed = h.decisions('weight').find((d) => d.reason === 'probation_passed');
  t.ok(passed, 'probation passed on observed health');
  t.ok(Number(passed!.evidence.canaryRequests) >= 20);
  h.run(5000, healthy);
  t.equal(h.health(0).state, 'healthy');
  t.equal(h.health(0).weightFactor, 1);
  t.ok(h.decisions('weight').some((d) => d.reason === 'ramp_up'), 'ramped back up');
});

t.test('a failing canary is ejected again for longer (backoff level 2)', async (t) => {
  const h = harness({ endpoints: 5 });
  h.run(2000, healthy);
  for (let k = 0; k < 5; k++) h.record(0, Outcome.Error5xx);
  h.run(10_100, (i) => (i === 0 ? undefined : healthy()));
  t.equal(h.health(0).state, 'probation');
  for (let k = 0; k < 3; k++) h.record(0, Outcome.Error5xx);
  t.equal(h.health(0).state, 'ejected');
  const d = h.decisions('eject')[1]!;
  t.equal(d.reason, 'probation_failed');
  t.equal(d.evidence.level, 2);
  t.equal(d.evidence.ejectMs, 20_000);
  h.run(19_000, (i) => (i === 0 ? undefined : healthy()));
  t.equal(h.health(0).state, 'ejected', 'still out after 19 s');
  h.run(1500, (i) => (i === 0 ? undefined : healthy()));
  t.equal(h.health(0).state, 'probation', 'back on probation after 20 s');
});

t.test('gray failure: one endpoint 3× slower is ejected by the peer detector within 3 s', async (t) => {
  const h = harness({ endpoints: 5 });
  h.run(40_000, healthy); // baselines warm up
  const start = h.clock.now();
  h.run(3000, (i) => ({ n: 4, latencyUs: i === 0 ? 30_000 : 10_000 }));
  const d = h.decisions('eject')[0];
  t.ok(d, 'ejected');
  t.equal(d!.reason, 'peer_latency');
  t.ok(d!.at - start <= 3000, `after ${d!.at - start} ms`);
});

t.test('overload guard: latency rising on every endpoint together ejects and de-weights nothing', async (t) => {
  const h = harness({ endpoints: 5 });
  h.run(40_000, healthy);
  h.run(30_000, (i, tick) => ({ n: 4, latencyUs: 10_000 * (1 + Math.min(5, tick / 20)) * (1 + 0.05 * i) }));
  t.same(h.decisions('eject'), []);
  t.same(h.decisions('weight'), []);
});

t.test('max ejection share: 3 of 5 failing at once → 2 ejected (50 %), the third de-weighted', async (t) => {
  const h = harness({ endpoints: 5 });
  h.run(2000, healthy);
  for (const i of [0, 1, 2]) for (let k = 0; k < 5; k++) h.record(i, Outcome.Error5xx);
  t.equal(h.decisions('eject').length, 2);
  const third = h.decisions('weight').find((d) => d.evidence.guard !== undefined);
  t.ok(third, 'the one the guard refused is de-weighted instead');
  t.equal(third!.weight, 0.1);
  t.ok(h.engine.policyOf('svc')!.counters.refusals.panic + h.engine.policyOf('svc')!.counters.refusals.max_ejection_pct >= 1);
});

t.test('rate limit: at most `burst` disruptive decisions at once, then perSecond', async (t) => {
  const h = harness({ endpoints: 20, settings: { ejection: { maxEjectionPct: 100, panicGuard: false }, rateLimit: { perSecond: 1, burst: 3, exemptHardFailures: false } } });
  h.run(2000, healthy);
  for (let i = 0; i < 10; i++) for (let k = 0; k < 5; k++) h.record(i, Outcome.Error5xx);
  t.equal(h.decisions('eject').length, 3, 'burst of 3');
  t.ok(h.engine.policyOf('svc')!.counters.refusals.rate_limit > 0);
  h.run(2000, (i) => (i >= 10 ? healthy() : undefined));
  t.equal(h.decisions('eject').length, 5, 'one more per second (the verdicts persist)');
});

t.test('a predicted drain for errors ends only after as many passing probes in a row as its stated rate asks', async (t) => {
  // A creep forecast at 3 %: 20 passes in a row — what a drain ended by one passing probe, or capped at the
  // canary count, would accept — come from an endpoint still failing 3 % 54 % of the time, and 20 canaries
  // with at most one failure pass it 88 % of the time. probePassesFor(0.03) asks 99 (0.97^99 < 5 %).
  const h = harness({ endpoints: 5 });
  h.run(2000, healthy);
  t.ok(h.engine.submitVerdict({ target: h.ids[0]!, detector: 'predicted_errors', kind: 'predicted', severity: 'drain', source: 'predicted', evidence: { channel: 'errors', failureRate: 0.03 } }));
  const others = (i: number) => (i === 0 ? undefined : healthy());
  h.run(200, others);
  t.equal(h.health(0).state, 'draining');
  const need = probePassesFor(0.03, 1500);
  t.equal(need, 99);
  const probe = (ok: boolean) => {
    h.engine.submitProbe(h.ids[0]!, ok);
    h.run(200, others);
  };
  // drainMs (10 s) of passing probes: 50 in a row, still drained; a failing one starts the run again.
  for (let p = 0; p < 50; p++) probe(true);
  t.equal(h.health(0).state, 'draining', '50 passes after 10 s: still drained');
  probe(false);
  for (let p = 0; p < need - 1; p++) probe(true);
  t.equal(h.health(0).state, 'draining', `${need - 1} passes in a row: still drained`);
  probe(true);
  t.equal(h.health(0).state, 'probation', `${need} passes in a row: probation`);
  const pr = h.decisions('probation').at(-1)!;
  t.equal(pr.reason, 'predicted_drain_ended');
  t.equal(pr.evidence.probePasses, need);

  // A drain that states no rate (a latency forecast) ends as before: drainMs, and the latest probe passed.
  const l = harness({ endpoints: 5 });
  l.run(2000, healthy);
  t.ok(l.engine.submitVerdict({ target: l.ids[0]!, detector: 'predicted_latency', kind: 'predicted', severity: 'drain', source: 'predicted', evidence: { channel: 'latency' } }));
  const lothers = (i: number) => (i === 0 ? undefined : healthy());
  l.run(200, lothers);
  t.equal(l.health(0).state, 'draining');
  for (let p = 0; p < 50 && l.health(0).state === 'draining'; p++) {
    l.engine.submitProbe(l.ids[0]!, true);
    l.run(200, lothers);
  }
  t.equal(l.health(0).state, 'probation', 'latency drain: probation after drainMs');
  t.ok(l.clock.now() - l.decisions('drain')[0]!.at <= 10_400, 'at drainMs');

  // Without probes the drain lasts drainMs alone, whatever rate it states.
  const n = harness({ endpoints: 5, settings: { probe: { enabled: false } } });
  n.run(2000, healthy);
  t.ok(n.engine.submitVerdict({ target: n.ids[0]!, detector: 'predicted_errors', kind: 'predicted', severity: 'drain', source: 'predicted', evidence: { channel: 'errors', failureRate: 0.03 } }));
  n.run(10_400, (i) => (i === 0 ? undefined : healthy()));
  t.equal(n.health(0).state, 'probation', 'probes off: probation after drainMs');
});

t.test('rate limit: consecutive-failure ejections take no token (a dead zone goes at once); statistical verdicts still do', async (t) => {
  const h = harness({ endpoints: 20, settings: { ejection: { maxEjectionPct: 100, panicGuard: false }, rateLimit: { perSecond: 1, burst: 3 } } });
  h.run(2000, healthy);
  for (let i = 0; i < 8; i++) for (let k = 0; k < 5; k++) h.record(i, Outcome.Error5xx);
  t.equal(h.decisions('eject').length, 8, 'all 8 endpoints with 5 consecutive 5xx ejected at once');
  t.equal(h.engine.policyOf('svc')!.counters.refusals.rate_limit, 0, 'none refused by the rate limit');
  // Statistical verdicts (here: peer-quorum drains) still draw from the bucket, which is still full.
  for (let i = 8; i < 14; i++) h.engine.submitVerdict({ target: h.ids[i]!, detector: 'predictor', kind: 'predicted', severity: 'drain', source: 'predicted', evidence: {} });
  h.run(100, (i) => (i >= 8 ? healthy() : undefined));
  t.equal(h.decisions('drain').length, 3, 'drains: burst of 3');
  t.ok(h.engine.policyOf('svc')!.counters.refusals.rate_limit > 0, 'the rest refused by the rate limit');
});

t.test('external verdicts (peer, predicted) go through the same guards', async (t) => {
  const h = harness({ endpoints: 3 });
  h.run(1000, healthy);
  t.ok(h.engine.submitVerdict({ target: h.ids[0]!, detector: 'gossip_quorum', kind: 'failure', severity: 'eject', source: 'peer', evidence: { observers: 3 } }));
  t.ok(h.engine.submitVerdict({ target: h.ids[1]!, detector: 'gossip_quorum', kind: 'failure', severity: 'eject', source: 'peer', evidence: { observers: 3 } }));
  t.notOk(h.engine.submitVerdict({ target: 'svc/127.0.0.1:1', detector: 'x', kind: 'failure', severity: 'eject', source: 'peer', evidence: {} }), 'unknown target refused');
  t.notOk(h.engine.submitVerdict({ target: h.ids[2]!, detector: 'x', kind: 'failure', severity: 'explode', source: 'peer', evidence: {} } as never), 'bad severity refused');
  t.notOk(h.engine.submitVerdict(null as never), 'garbage refused');
  h.run(200, healthy);
  const ej = h.decisions('eject');
  t.equal(ej.length, 1, 'one of three: the guards refuse the second');
  t.equal(ej[0]!.source, 'peer');
  t.equal(ej[0]!.evidence.observers, 3);
  t.equal(h.engine.counters.externalRejected, 3);
  t.ok(h.engine.submitVerdict({ target: h.ids[2]!, detector: 'predictor', kind: 'predicted', severity: 'drain', source: 'predicted', evidence: { p: 0.9 } }));
  h.run(200, healthy);
  t.equal(h.health(2).state, 'healthy', 'a drain is refused too while one endpoint is already out (panic guard)');
});

t.test('priority failover is recorded as a decision, and failback when health returns', async (t) => {
  const h = harness({ endpoints: 4, priorities: [0, 0, 1, 1] });
  h.run(1000, healthy);
  for (const i of [0, 1]) for (let k = 0; k < 3; k++) h.record(i, Outcome.LocalOrigin);
  h.run(200, (i) => (i >= 2 ? healthy() : undefined));
  t.equal(h.health(0).state, 'ejected');
  t.equal(h.health(1).state, 'ejected', 'both P0 endpoints out: failover bypass of the cap');
  const fo = h.decisions('failover');
  t.ok(fo.length >= 1);
  t.equal(fo[fo.length - 1]!.target, 'svc');
  t.equal(fo[fo.length - 1]!.evidence.p1, 1, 'all traffic to P1');
  // Recovery: P0 gets no traffic while out, so probation probes it with ordinary traffic, then restores.
  // P0's plan share is 0 while both are out: like the balancer, send P0 traffic only to routable endpoints.
  const routable = (i: number) => h.health(i).state === 'healthy' || h.health(i).state === 'degraded';
  h.run(40_000, (i) => (i >= 2 || routable(i) ? { n: 2 } : undefined));
  t.equal(h.health(0).state, 'healthy');
  t.equal(h.health(1).state, 'healthy');
  t.ok(h.decisions('weight').some((d) => d.reason === 'probation_probe'));
  t.ok(h.decisions('failover').some((d) => d.reason === 'failback'));
});

t.test('fail open: a policy that throws is counted and health stays as it is', async (t) => {
  const h = harness({ endpoints: 3 });
  h.run(500, healthy);
  const p = h.engine.policyOf('svc')!;
  (p as { evaluate: unknown }).evaluate = () => {
    throw new Error('boom');
  };
  t.doesNotThrow(() => h.run(500, healthy));
  t.doesNotThrow(() => {
    for (let k = 0; k < 10; k++) h.record(0, Outcome.Error5xx);
  });
  t.ok(h.engine.counters.policyErrors >= 5);
  t.equal(h.health(0).state, 'healthy');
});

t.test('microtask mode: the ejection follows the failing request right after the current callback', async (t) => {
  const h = harness({ endpoints: 5, urgent: 'microtask' });
  h.run(1000, healthy);
  for (let k = 0; k < 5; k++) h.record(0, Outcome.Error5xx);
  t.equal(h.health(0).state, 'healthy', 'not inside the record() call');
  await Promise.resolve();
  t.equal(h.health(0).state, 'ejected', 'but before any timer');
});

t.test('the engine unhooks the windows when stopped', async (t) => {
  const h = harness({ endpoints: 2 });
  h.run(300, healthy);
  h.engine.stop();
  for (let k = 0; k < 10; k++) h.record(0, Outcome.Error5xx);
  t.equal(h.health(0).state, 'healthy');
});

t.test('a sidecar that sends the service no traffic restores a peer-ejected endpoint after probation instead of waiting for canaries forever', async (t) => {
  const h = harness({ endpoints: 5 });
  t.ok(h.engine.submitVerdict({ target: h.ids[0]!, detector: 'gossip_quorum', kind: 'failure', severity: 'eject', source: 'peer', evidence: { observers: 2 } }));
  h.run(200);
  t.equal(h.health(0).state, 'ejected', 'ejected on the peers\' word with no traffic of its own');
  h.run(10_500);
  t.equal(h.health(0).state, 'probation', 'back on probation when its backoff ends');
  h.run(3500);
  t.equal(h.health(0).state, 'healthy', 'no canary can come: restored');
  const restored = h.decisions('restore').find((d) => d.reason === 'probation_idle');
  const probation = h.decisions('probation')[0]!;
  t.ok(restored, 'restored as an idle service');
  t.ok(restored!.at - probation.at >= 1000, `after a probation of ${restored!.at - probation.at} ms (judgeMs from the window it began in)`);
  // With traffic to the service, probation still waits for canaries (the rule above is for idle services only).
  const busy = harness({ endpoints: 5 });
  busy.run(2000, healthy);
  t.ok(busy.engine.submitVerdict({ target: busy.ids[0]!, detector: 'gossip_quorum', kind: 'failure', severity: 'eject', source: 'peer', evidence: { observers: 2 } }));
  busy.run(14_000, (i) => (i === 0 ? undefined : healthy()));
  t.equal(busy.health(0).state, 'probation', 'a busy service judges canaries, never time');
});

t.test('an endpoint of a priority that gets no traffic here (a remote region) is restored after its probe, not left degraded', async (t) => {
  const h = harness({ endpoints: 4, priorities: [0, 0, 1, 1] });
  const homeOnly = (i: number) => (i < 2 ? healthy() : undefined);
  h.run(2000, homeOnly);
  t.ok(h.engine.submitVerdict({ target: h.ids[2]!, detector: 'gossip_quorum', kind: 'failure', severity: 'eject', source: 'peer', evidence: { observers: 2 } }));
  h.run(200, homeOnly);
  t.equal(h.health(2).state, 'ejected', 'ejected on the peers\' word');
  h.run(10_500, homeOnly);
  t.ok(h.decisions('weight').some((d) => d.target === h.ids[2] && d.reason === 'probation_probe'), 'probed with ordinary traffic: its priority gets none');
  h.run(5000, homeOnly);
  t.equal(h.health(2).state, 'healthy', 'no canary can come while priority 0 serves everything: restored');
  const restored = h.decisions('restore').find((d) => d.target === h.ids[2] && d.reason === 'probation_unused');
  t.ok(restored, 'restored as unused');
  // While its own priority gets traffic, probation still judges canaries (the busy case above).
});

t.test('a probation that a passing probe began is judged by its canaries, not by the peers\' older reports', async (t) => {
  const peerSaysFailing = (h: ReturnType<typeof harness>) =>
    h.engine.submitVerdict({ target: h.ids[0]!, detector: 'peer_quorum', kind: 'failure', severity: 'eject', source: 'peer', evidence: { observers: 3 } });
  const h = harness({ endpoints: 5 });
  h.run(2000, healthy);
  for (let k = 0; k < 5; k++) h.record(0, Outcome.Error5xx);
  t.equal(h.health(0).state, 'ejected');
  h.run(2100, (i) => (i === 0 ? undefined : healthy()));
  t.ok(h.engine.submitProbe(h.ids[0]!, true));
  h.run(200, (i) => (i === 0 ? undefined : healthy()));
  t.equal(h.health(0).state, 'probation');
  t.equal(h.decisions('probation')[0]!.reason, 'probe_passed');
  t.ok(peerSaysFailing(h));
  h.run(200, (i) => (i === 0 ? undefined : healthy()));
  t.equal(h.health(0).state, 'probation', 'the peers\' verdict does not re-eject it');
  h.run(1000, healthy);
  t.equal(h.health(0).state, 'healthy', 'clean canaries restore it');
  t.notOk(h.decisions('eject').some((d) => d.reason.startsWith('probation_failed')), 'never re-ejected');
  // Failing canaries still re-eject it at once (local evidence).
  const f = harness({ endpoints: 5 });
  f.run(2000, healthy);
  for (let k = 0; k < 5; k++) f.record(0, Outcome.Error5xx);
  f.run(2100, (i) => (i === 0 ? undefined : healthy()));
  f.engine.submitProbe(f.ids[0]!, true);
  f.run(200, (i) => (i === 0 ? undefined : healthy()));
  t.equal(f.health(0).state, 'probation');
  for (let k = 0; k < 3; k++) f.record(0, Outcome.Error5xx);
  t.equal(f.health(0).state, 'ejected', 'failing canaries: out again');
  // Without a passing probe of its own (re-admitted by the backoff timer), the peers' word still counts.
  const p = harness({ endpoints: 5 });
  p.run(2000, healthy);
  for (let k = 0; k < 5; k++) p.record(0, Outcome.Error5xx);
  p.run(10_100, (i) => (i === 0 ? undefined : healthy()));
  t.equal(p.health(0).state, 'probation');
  t.equal(p.decisions('probation')[0]!.reason, 'readmit');
  t.ok(peerSaysFailing(p));
  p.run(200, (i) => (i === 0 ? undefined : healthy()));
  t.equal(p.health(0).state, 'ejected', 'timer re-admission: the peers\' verdict re-ejects');
  t.equal(p.decisions('eject')[1]!.reason, 'probation_failed_peer_quorum');
});
