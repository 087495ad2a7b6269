// Federated baselines: robust aggregation under poisoning, adoption by a fresh endpoint (and the local
// estimate taking over), the signed wire form carrying only parameters, and hostile vectors refused.
import t from 'tap';
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { DEFAULT_POLICY_SETTINGS } from '../../src/config/sections/healing.js';
import { updateLatencyCusum } from '../../src/detect/baseline.js';
import { newBaseline, type EndpointSignals } from '../../src/detect/types.js';
import { adoptAggregate, aggregate, CLIP_FLOORS, DEFAULT_FEDERATED_SETTINGS, HEADSTART_WINDOWS, SEEDED_HEADSTART, localParams, relativeShift, type Contribution, type ServiceParams } from '../../src/learn/federated.js';
import { decodeMessage, encodePull, encodeVector, FederatedBoard, FederatedVectorError, FEDERATED_SIGNING_DOMAIN, MAX_VECTOR_BYTES, type FederatedVector } from '../../src/learn/federated-codec.js';
import { Rng } from '../../src/sim/rng.js';
import { signals } from '../detect/_signals.js';

const SEED = 20261206;
const cfg = DEFAULT_FEDERATED_SETTINGS;

/**
 * An honest sidecar's parameters, with the spread seen between sidecars in the simulator (bench:learn's
 * mesh sidecars: locations within ~0.02, scales within ~5 %). The shift a poison causes is bounded by
 * that honest spread (the liar is clipped to the median ± the contributors' robust spread), so it is part
 * of the claim.
 */
function honest(rng: Rng, samples = 300): ServiceParams {
  return { samples, p50Loc: Math.log(10_000) + 0.02 * rng.normal(), p50Scale: 0.1 + 0.005 * rng.normal(), p90Loc: Math.log(19_000) + 0.02 * rng.normal(), p90Scale: 0.12 + 0.006 * rng.normal(), errorRate: 0.001 };
}
const contrib = (node: string, p: ServiceParams, receivedAt = 0): Contribution => ({ node, receivedAt, issuedAt: receivedAt, services: new Map([['svc', p]]) });

t.test('one poisoned sidecar of five moves the latency baselines by less than 5 % and the scales by less than the honest spread', async (t) => {
  const poisons: ServiceParams[] = [
    { samples: 1e9, p50Loc: 25, p50Scale: 0, p90Loc: 25, p90Scale: 0, errorRate: 0 },
    { samples: 1e9, p50Loc: 0, p50Scale: 5, p90Loc: 0, p90Scale: 5, errorRate: 1 },
    { samples: 1, p50Loc: 9.9, p50Scale: 0.3, p90Loc: 10.6, p90Scale: 0.3, errorRate: 0.05 },
    // Just outside the honest spread, where a clip by a fixed distance would not touch it.
    { samples: 1e9, p50Loc: Math.log(11_000), p50Scale: 0.13, p90Loc: Math.log(21_000), p90Scale: 0.15, errorRate: 0.003 },
  ];
  for (let s = 0; s < 20; s++) {
    const rng = new Rng(SEED + s);
    const mesh = Array.from({ length: 5 }, (_, k) => contrib(`n${k}`, honest(rng)));
    const clean = aggregate(mesh, 0, cfg).get('svc')!;
    for (const p of poisons) {
      // The liar takes each honest sidecar's place in turn.
      for (let liar = 0; liar < mesh.length; liar++) {
      const rest = mesh.filter((_, k) => k !== liar);
      const bad = aggregate([...rest, contrib('evil', p)], 0, cfg).get('svc')!;
      // A scale moves by less than the honest sidecars disagree (their spread, max/min): the liar can do no
      // more than pass for an extreme honest one. (These honest scales differ by 5 % (1σ); bench:learn's by less.)
      for (const k of ['p50Scale', 'p90Scale'] as const) {
        const hs = mesh.map((c) => c.services.get('svc')![k]);
        const spread = Math.log(Math.max(...hs) / Math.min(...hs));
        const shift = Math.abs(Math.log(bad.params[k] / clean.params[k]));
        if (!(shift < spread)) t.fail(`seed ${SEED + s}, liar ${liar}: poison ${JSON.stringify(p)} moved ${k} by ${(shift * 100).toFixed(2)} % (honest spread ${(spread * 100).toFixed(2)} %)`);
      }
      // The baseline latencies move by < 5 %; every coordinate stays within the honest contributors' range.
      const latencyShift = Math.max(Math.abs(Math.expm1(bad.params.p50Loc - clean.params.p50Loc)), Math.abs(Math.expm1(bad.params.p90Loc - clean.params.p90Loc)));
      if (!(latencyShift < 0.05)) t.fail(`seed ${SEED + s}: poison ${JSON.stringify(p)} moved the baseline latency by ${(latencyShift * 100).toFixed(2)} %`);
      for (const k of ['p50Loc', 'p50Scale', 'p90Loc', 'p90Scale', 'errorRate'] as const) {
        // The liar, clipped to the median ± the contributors' robust spread (or the floor) and weighing a
        // fifth, can move a coordinate past the honest range by a fraction of that range, not more.
        const hs = rest.map((c) => c.services.get('svc')![k]);
        const lo = Math.min(...hs);
        const hi = Math.max(...hs);
        const isScale = k === 'p50Scale' || k === 'p90Scale';
        const slack = 0.5 * Math.max(isScale ? Math.log(hi / lo) : hi - lo, CLIP_FLOORS[k]);
        const [x, a, b] = isScale ? [Math.log(bad.params[k]), Math.log(lo), Math.log(hi)] : [bad.params[k], lo, hi];
        if (!(x >= a - slack && x <= b + slack)) t.fail(`seed ${SEED + s}, liar ${liar}: ${k} ${bad.params[k]} left the honest range [${lo}, ${hi}] widened by ${slack}`);
      }
      }
    }
  }
  // A plain weighted mean would have been moved by orders of magnitude: the check above can fail.
  const rng = new Rng(SEED);
  const mesh = Array.from({ length: 5 }, (_, k) => contrib(`n${k}`, honest(rng)));
  const naive = aggregate([...mesh.slice(1), contrib('evil', poisons[0]!)], 0, { ...cfg, trim: 0, clipNorm: 1e9, sampleCap: 1e9 }).get('svc')!;
  t.ok(relativeShift(aggregate(mesh, 0, cfg).get('svc')!.params, naive.params) > 1, 'without trim and clip the same poison moves it by > 100 %');
});

t.test('aggregation: too few contributors, expiry, missing optional coordinates', async (t) => {
  const rng = new Rng(SEED);
  t.equal(aggregate([contrib('a', honest(rng)), contrib('b', honest(rng))], 0, cfg).size, 0, 'two contributors: no aggregate (minContributors 3)');
  const three = [contrib('a', honest(rng), 0), contrib('b', honest(rng), 0), contrib('c', honest(rng), 100_000)];
  t.equal(aggregate(three, 100_000, cfg).size, 1);
  t.equal(aggregate(three, 200_000, cfg).size, 0, 'after maxAgeMs two of three expired');
  const noP90 = (p: ServiceParams): ServiceParams => ({ ...p, p90Loc: NaN, p90Scale: NaN });
  const a = aggregate([contrib('a', noP90(honest(rng))), contrib('b', noP90(honest(rng))), contrib('c', honest(rng))], 0, cfg).get('svc')!;
  t.ok(Number.isFinite(a.params.p50Loc));
  t.ok(Number.isNaN(a.params.p90Loc), 'p90 known by one contributor only: not aggregated');
});

/** An endpoint at ~10 ms whose baseline learned locally for `n` windows. */
function warmed(id: string, rng: Rng, n: number): EndpointSignals {
  const s = signals(id);
  const lb = DEFAULT_POLICY_SETTINGS.latencyBaseline;
  for (let i = 0; i < n; i++) updateLatencyCusum(s.latencyP50, Math.log(10_000) + 0.1 * rng.normal(), lb);
  return s;
}

t.test('local parameters: only endpoints with their own warmed-up baseline, and only parameters', async (t) => {
  const rng = new Rng(SEED);
  t.equal(localParams([warmed('a', rng, 10)], DEFAULT_POLICY_SETTINGS), undefined, 'nothing trusted yet');
  const p = localParams([warmed('a', rng, 40), warmed('b', rng, 40), warmed('c', rng, 5)], DEFAULT_POLICY_SETTINGS)!;
  t.same(Object.keys(p).sort(), ['errorRate', 'p50Loc', 'p50Scale', 'p90Loc', 'p90Scale', 'samples']);
  t.equal(p.samples, 80);
  t.ok(Math.abs(Math.exp(p.p50Loc) - 10_000) < 1000, `location ${Math.exp(p.p50Loc)} µs`);
  t.ok(Number.isNaN(p.p90Loc), 'no p90 chart learned: p90 not shared');
});

t.test('a fresh endpoint adopts the aggregate, alarms on a 3× shift at once (sooner with the head start), and its local estimate later wins', async (t) => {
  const lb = DEFAULT_POLICY_SETTINGS.latencyBaseline;
  const agg: ServiceParams = { samples: 900, p50Loc: Math.log(10_000), p50Scale: 0.1, p90Loc: Math.log(19_000), p90Scale: 0.12, errorRate: 0.001 };
  const fresh = signals('x');
  t.equal(adoptAggregate([fresh], agg, DEFAULT_POLICY_SETTINGS), 3);
  t.equal(adoptAggregate([fresh], agg, DEFAULT_POLICY_SETTINGS), 0, 'seeded once');
  const alarmWindow = (s: EndpointSignals): number => {
    for (let w = 0; w < 10; w++) if (updateLatencyCusum(s.latencyP50, Math.log(30_000), lb)) return w;
    return -1;
  };
  t.equal(fresh.latencyP50.stat, SEEDED_HEADSTART * lb.h, 'alone in its service (no peer detector): the chart starts with a head start of h/2');
  t.equal(alarmWindow(fresh), 1, 'the CUSUM (k 0.5, h 12, z clipped at 4) with the head start alarms on the 2nd window at 3×');
  const five = Array.from({ length: 5 }, (_, i) => signals(`e${i}`));
  adoptAggregate(five, agg, DEFAULT_POLICY_SETTINGS);
  t.equal(five[0]!.latencyP50.stat, 0, 'five endpoints (the peers judge latency): no head start');
  t.equal(alarmWindow(five[0]!), 3, 'without the head start it alarms on the 4th window');
  const unseeded = newBaseline();
  for (let w = 0; w < 10; w++) t.notOk(updateLatencyCusum(unseeded, Math.log(30_000), lb), 'without the aggregate: warming up, no alarm');
  // The local estimate replaces the seed after warmupWindows in-control windows.
  const rng = new Rng(SEED);
  const other = signals('y');
  adoptAggregate([other], agg, DEFAULT_POLICY_SETTINGS);
  for (let w = 0; w < lb.warmupWindows; w++) updateLatencyCusum(other.latencyP50, Math.log(12_000) + 0.05 * rng.normal(), lb);
  t.equal(other.latencyP50.seedN, -1, 'local now');
  t.ok(Math.abs(Math.exp(other.latencyP50.mean) - 12_000) < 600, `local mean ${Math.exp(other.latencyP50.mean)} µs`);
});

t.test('the head start is withdrawn after its windows, so an in-control endpoint rarely alarms', async (t) => {
  // Seeded endpoints of a 2-endpoint service (head start on), up to ±10 % off the mesh's baseline, with
  // noisy windows and one in 20 heavy-tailed (up to 1.6×), for the 30 windows before the local estimate
  // takes over. The engine calls adoptAggregate every window (that is what withdraws the head start).
  const lb = DEFAULT_POLICY_SETTINGS.latencyBaseline;
  const agg: ServiceParams = { samples: 900, p50Loc: Math.log(10_000), p50Scale: 0.1, p90Loc: NaN, p90Scale: NaN, errorRate: 0.001 };
  const runs = 2000;
  const alarmsWith = (everyWindow: boolean): number => {
    let alarms = 0;
    for (let s = 0; s < runs; s++) {
      const rng = new Rng(SEED + s);
      const pair = [signals('a'), signals('b')];
      const offset = Math.log(1 + 0.2 * (rng.next() - 0.5));
      for (let w = 0; w < lb.warmupWindows; w++) {
        if (w === 0 || everyWindow) adoptAggregate(pair, agg, DEFAULT_POLICY_SETTINGS);
        const wild = rng.next() < 0.05 ? Math.log(1 + 0.6 * rng.next()) : 0;
        if (updateLatencyCusum(pair[0]!.latencyP50, agg.p50Loc + offset + 0.1 * rng.normal() + wild, lb)) {
          alarms++;
          break;
        }
      }
    }
    return alarms;
  };
  const withdrawn = alarmsWith(true);
  const kept = alarmsWith(false);
  t.ok(withdrawn <= 5, `seeds ${SEED}..${SEED + runs - 1}: ${withdrawn} of ${runs} in-control charts alarmed with the head start withdrawn after ${HEADSTART_WINDOWS} windows`);
  t.ok(kept >= 4 * Math.max(withdrawn, 5), `kept for all 30 windows it would have been ${kept} (the check above can fail)`);
});

const keys = generateKeyPairSync('ed25519');
const signer = (data: Uint8Array) => new Uint8Array(sign(null, data, keys.privateKey));
const verifier = (node: string, data: Uint8Array, sig: Uint8Array) => (node === 'node-a' ? verify(null, data, keys.publicKey, sig) : undefined);
const vector = (over: Partial<FederatedVector> = {}, p: ServiceParams = honest(new Rng(SEED))): FederatedVector => ({ node: 'node-a', issuedAt: 1_000_000, seq: 1, services: new Map([['svc', p]]), ...over });
const board = () => new FederatedBoard({ maxAgeMs: 120_000, maxSkewMs: 30_000, maxContributors: 100, ratePerSecond: 100 });

t.test('the encoded vector carries only the parameters', async (t) => {
  const p = honest(new Rng(SEED));
  const bytes = encodeVector(vector({}, p), signer);
  // header: kind, version, node (1 + 6), issuedAt, seq, count; one service: name (1 + 3), flags, samples, five float32; signature.
  t.equal(bytes.length, 2 + 7 + 8 + 8 + 1 + (4 + 1 + 4 + 20) + 64, 'no room for anything but the parameters');
  const m = decodeMessage(bytes);
  if (m.kind !== 'vector') throw new Error('not a vector');
  t.same([...m.vector.services.keys()], ['svc']);
  const got = m.vector.services.get('svc')!;
  t.same(Object.keys(got).sort(), ['errorRate', 'p50Loc', 'p50Scale', 'p90Loc', 'p90Scale', 'samples']);
  t.ok(Math.abs(got.p50Loc - p.p50Loc) < 1e-5);
  const many = new Map(Array.from({ length: 60 }, (_, i) => [`service-with-a-long-name-${i}`, p] as const));
  t.ok(encodeVector(vector({ services: many }), signer, 64).length <= MAX_VECTOR_BYTES, 'bounded size: services that do not fit are left out');
});

t.test('hostile vectors are refused with MM_ERR_LEARN_FEDERATED and counted; good ones still pass', async (t) => {
  const b = board();
  const now = 1_000_000;
  const refuse = (bytes: Uint8Array, reason: string, why: string) => {
    let err: unknown;
    try {
      b.offer(bytes, now, verifier);
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof FederatedVectorError && err.code === 'MM_ERR_LEARN_FEDERATED' && err.reason === reason, `${why}: ${String(err)}`);
  };
  const good = encodeVector(vector(), signer);
  refuse(good.subarray(0, good.length - 1), 'malformed', 'truncated (wrong size)');
  refuse(Buffer.concat([good, Buffer.from([0])]), 'malformed', 'a trailing byte (wrong size)');
  refuse(Buffer.alloc(MAX_VECTOR_BYTES + 1), 'too_large', 'too large');
  const future = Buffer.from(good);
  future[1] = 2;
  refuse(future, 'version', 'a future format version');
  // Values: patch the first float (p50Loc) after the service's samples.
  const at = 2 + 7 + 8 + 8 + 1 + 4 + 1 + 4;
  for (const [x, reason] of [[NaN, 'invalid_value'], [Infinity, 'invalid_value'], [1e30, 'invalid_value'], [-1, 'invalid_value']] as const) {
    const bad = Buffer.from(good);
    bad.writeFloatBE(x, at);
    refuse(bad, reason, `p50Loc ${x}`);
  }
  const flipped = Buffer.from(good);
  flipped[flipped.length - 1]! ^= 1;
  refuse(flipped, 'bad_signature', 'a bad signature');
  const tampered = Buffer.from(good);
  tampered.writeFloatBE(9.5, at);
  refuse(tampered, 'bad_signature', 'a parameter changed after signing');
  refuse(encodeVector(vector({ node: 'node-b' }), signer), 'unknown_node', 'a sender without a pinned key');
  refuse(encodeVector(vector({ issuedAt: now + 60_000 }), signer), 'future', 'stamped in the future');
  refuse(encodeVector(vector({ issuedAt: now - 600_000 }), signer), 'stale', 'stamped long ago');
  refuse(encodePull('node-a'), 'malformed', 'a pull where a vector belongs');
  t.equal(b.offer(good, now, verifier).node, 'node-a', 'the good vector is accepted after all that');
  refuse(good, 'replay', 'the same vector again');
  t.equal(b.offer(encodeVector(vector({ seq: 2 }), signer), now, verifier).node, 'node-a', 'a newer one is accepted');
  t.equal(b.accepted, 2);
  t.equal(b.rejected.malformed, 3);
  t.equal(b.rejected.invalid_value, 4);
  t.equal(b.rejected.replay, 1);
  t.equal(b.contributions(now).length, 1);
  t.equal(b.contributions(now + 200_000).length, 0, 'expired');
  t.ok(FEDERATED_SIGNING_DOMAIN.length > 0);
  // Random bytes never throw anything but the named error.
  const rng = new Rng(SEED);
  for (let i = 0; i < 2000; i++) {
    const junk = Buffer.from(Array.from({ length: Math.floor(rng.next() * 200) }, () => Math.floor(rng.next() * 256)));
    if (rng.next() < 0.5 && junk.length > 1) (junk[0] = 1), (junk[1] = 1);
    try {
      decodeMessage(junk);
    } catch (err) {
      if (!(err instanceof FederatedVectorError)) t.fail(`seed ${SEED}, junk ${junk.toString('hex')}: ${String(err)}`);
    }
  }
});

t.test('rate limit', async (t) => {
  const b = new FederatedBoard({ maxAgeMs: 120_000, maxSkewMs: 30_000, maxContributors: 100, ratePerSecond: 2 });
  b.offer(encodeVector(vector({ seq: 1 }), signer), 1_000_000, verifier);
  b.offer(encodeVector(vector({ seq: 2 }), signer), 1_000_000, verifier);
  t.throws(() => b.offer(encodeVector(vector({ seq: 3 }), signer), 1_000_000, verifier), { name: 'MeshmedicError', code: 'MM_ERR_LEARN_FEDERATED' } as never);
  t.equal(b.rejected.rate_limited, 1);
  t.equal(b.offer(encodeVector(vector({ seq: 4 }), signer), 1_001_000, verifier).node, 'node-a', 'tokens come back');
});
