// The health plane, separate from liveness: Ed25519-signed per-endpoint observations and the quorum board
// that turns observations from distinct observers into mesh-wide verdicts, with rate limits and replay protection.
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { MsgType, OBS_FLAG_EJECTED, OBS_FLAG_PROBED, OBSERVATION_SIGNING_DOMAIN, observationSignedBytes, PUBLIC_KEY_BYTES, type Observation } from './codec.js';

// DER prefix of an Ed25519 SubjectPublicKeyInfo: the raw 32-byte key follows it.
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export interface Identity {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** The raw 32-byte public key that travels with membership. */
  readonly publicKeyRaw: Uint8Array;
}

export function generateIdentity(): Identity {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return identityOf(privateKey, publicKey);
}

/** Load an identity from a PKCS#8 PEM private key. */
export function identityFromPem(pem: string): Identity {
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new RangeError(`the identity key must be Ed25519, not ${privateKey.asymmetricKeyType}`);
  return identityOf(privateKey, createPublicKey(privateKey));
}

export function identityToPem(id: Identity): string {
  return id.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

function identityOf(privateKey: KeyObject, publicKey: KeyObject): Identity {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return { privateKey, publicKey, publicKeyRaw: new Uint8Array(der.subarray(der.length - PUBLIC_KEY_BYTES)) };
}

/** A KeyObject from a raw 32-byte Ed25519 public key, or undefined if it is not one. */
export function publicKeyFromRaw(raw: Uint8Array): KeyObject | undefined {
  if (raw.length !== PUBLIC_KEY_BYTES) return undefined;
  try {
    return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
  } catch {
    return undefined;
  }
}

export interface ObservationFigures {
  readonly endpoint: string;
  readonly windowEnd: number;
  readonly requests: number;
  readonly errorRate: number;
  readonly p99Us: number;
  readonly ejected: boolean;
  /** The figures are connection-probe attempts and failures, not traffic. */
  readonly probed?: boolean;
}

/** Signs this member's observations with a monotonic sequence number. */
export class ObservationSigner {
  private seq: number;
  constructor(private readonly observer: string, private readonly identity: Identity, clock: Clock) {
    // Start from the clock in µs so that a restarted observer's sequence keeps increasing.
    this.seq = Math.floor(clock.now() * 1000);
  }

  sign(f: ObservationFigures): Observation {
    const fields = {
      observer: this.observer,
      endpoint: f.endpoint,
      windowEnd: Math.round(f.windowEnd),
      requests: Math.min(0xffffffff, Math.max(0, Math.round(f.requests))),
      errorRate: Math.round(Math.min(1, Math.max(0, f.errorRate)) * 10_000) / 10_000,
      p99Us: Math.min(0xffffffff, Math.max(0, Math.round(f.p99Us))),
      seq: ++this.seq,
      flags: (f.ejected ? OBS_FLAG_EJECTED : 0) | (f.probed ? OBS_FLAG_PROBED : 0),
    };
    const signed = observationSignedBytes(fields);
    const signature = new Uint8Array(sign(null, Buffer.concat([OBSERVATION_SIGNING_DOMAIN, signed]), this.identity.privateKey));
    return { type: MsgType.Observation, ...fields, signed: new Uint8Array(signed), signature };
  }
}

/** Verify against the bytes re-encoded from the fields, so that no field can differ from what was signed. */
export function verifyObservation(o: Observation, key: KeyObject): boolean {
  try {
    return verify(null, Buffer.concat([OBSERVATION_SIGNING_DOMAIN, observationSignedBytes(o)]), key, o.signature);
  } catch {
    return false;
  }
}

export interface QuorumOptions {
  /** Observations older than this (by window end) no longer count, ms. */
  readonly freshnessMs: number;
  /** Observations claiming a window end further in the future than this are refused, ms. */
  readonly maxSkewMs: number;
  /** Fixed quorum Q; 0 = automatic: clamp(⌈M/2⌉, minQuorum, maxQuorum) of the M observers that saw traffic. */
  readonly quorum: number;
  /** Never fewer than this many distinct observers, whatever M is: one observer alone never decides. */
  readonly minQuorum: number;
  readonly maxQuorum: number;
  /** An observer "saw traffic" with at least this many requests in its span. */
  readonly minRequests: number;
  /** An observation is bad at or above this error rate. */
  readonly errorRateThreshold: number;
  /** An observation is also bad at or above this p99 (µs); 0 disables the latency criterion. */
  readonly p99ThresholdUs: number;
  /** Per-observer token bucket: sustained observations per second, and burst. */
  readonly ratePerSecond: number;
  readonly burst: number;
  /** Cap on tracked endpoints and observers, against floods of made-up ids. */
  readonly maxEndpoints: number;
}

export const DEFAULT_QUORUM: QuorumOptions = Object.freeze({
  freshnessMs: 10_000,
  maxSkewMs: 5_000,
  quorum: 0,
  minQuorum: 2,
  maxQuorum: 3,
  minRequests: 5,
  errorRateThreshold: 0.5,
  p99ThresholdUs: 0,
  ratePerSecond: 100,
  burst: 1000,
  maxEndpoints: 20_000,
});

/** `held`: refused by the clock (stale or future) on what we know of the observer's clock; judged again after a fresh clock sample. */
export type OfferResult = 'accepted' | 'held' | 'stale' | 'future' | 'replay' | 'rate_limited' | 'unknown_observer' | 'bad_signature' | 'full';

export const OFFER_RESULTS: readonly OfferResult[] = ['accepted', 'held', 'stale', 'future', 'replay', 'rate_limited', 'unknown_observer', 'bad_signature', 'full'];

/** Held observations: at most this many per observer, this many observers, and for this long (ms). */
const HOLD_PER_OBSERVER = 16;
const HOLD_OBSERVERS = 256;
const HOLD_MS = 5_000;

interface Held {
  readonly obs: Observation;
  readonly receivedAt: number;
  /** The window end on our clock: the observer's `windowEnd` minus its clock offset when accepted. */
  readonly localEnd: number;
}

/** An observer's clock minus ours (ms), if known; see Membership.clockOffsetOf. */
export type ClockOffsetOf = (observer: string) => number | undefined;

interface Bucket {
  tokens: number;
  at: number;
}

export interface Verdict {
  readonly endpoint: string;
  readonly failing: boolean;
  /** Observers with fresh observations that saw traffic (or hold the endpoint ejected). */
  readonly observers: number;
  readonly bad: number;
  /** Of `bad`: observers whose own traffic fails or who ejected it on their own evidence (not connection probes). */
  readonly trafficBad: number;
  readonly good: number;
  readonly quorum: number;
  readonly badObservers: readonly string[];
  readonly maxErrorRate: number;
  /**
   * Observers whose own connection probes all worked: each cancels one observer whose probes all failed
   * (a partition seen from one side), never a traffic observer (a connect says nothing about HTTP health).
   */
  readonly probesWorking: number;
}

export class QuorumBoard {
  readonly opts: QuorumOptions;
  private readonly byEndpoint = new Map<string, Map<string, Held>>();
  private readonly lastSeq = new Map<string, { seq: number; localEnd: number }>(); // observer|endpoint → newest accepted
  private readonly buckets = new Map<string, Bucket>();
  readonly results: Record<OfferResult, number> = { accepted: 0, held: 0, stale: 0, future: 0, replay: 0, rate_limited: 0, unknown_observer: 0, bad_signature: 0, full: 0 };
  /** Observations refused by the clock on what we know of their observer's clock, waiting for a fresh clock sample (per observer). */
  private readonly held = new Map<string, { obs: Observation; at: number; refused: 'stale' | 'future' }[]>();

  constructor(private readonly clock: Clock, opts: Partial<QuorumOptions> = {}) {
    this.opts = Object.freeze({ ...DEFAULT_QUORUM, ...opts });
  }

  /**
   * Offer an observation. Cheap checks run first (age, replay, rate); the signature is verified last, with
   * the observer's pinned key from `keyOf`. Only an accepted observation changes the board.
   *
   * Its age is judged on the observer's own clock: `offsetOf` gives the observer's clock minus ours (from
   * ping/ack round trips), so a window end is moved onto our clock before the stale and future checks.
   * A host whose clock is 30 s off is then neither refused nor able to pass off a 30-s-old observation
   * as fresh. Without an estimate (no round trip with the observer yet) the window end is taken as it
   * is, on our clock: the rule before clock offsets, which holds for observers whose clock is right.
   */
  offer(o: Observation, keyOf: (observer: string) => KeyObject | undefined, offsetOf?: ClockOffsetOf): OfferResult {
    let r = this.check(o, keyOf, offsetOf?.(o.observer) ?? 0);
    // Refused by the clock: the observer's clock may be off from what we know of it (no sample yet, or it
    // restarted with another clock) rather than the observation old or early. Held until a fresh clock
    // sample of the observer (one ping/ack: see `release`), then judged again.
    if ((r === 'stale' || r === 'future') && offsetOf && this.hold(o, keyOf, r)) r = 'held';
    this.results[r]++;
    return r;
  }

  /**
   * A fresh clock sample of the observer was taken: judge what was held for it, on its own clock. Returns
   * the results (a replayed or really stale observation is refused now as it would have been).
   */
  release(observer: string, keyOf: (observer: string) => KeyObject | undefined, offsetOf: ClockOffsetOf): OfferResult[] {
    const list = this.held.get(observer);
    if (!list) return [];
    this.held.delete(observer);
    const now = this.clock.now();
    const out: OfferResult[] = [];
    for (const h of list) {
      if (now - h.at > HOLD_MS) {
        this.results[h.refused]++; // waited too long: refused for the reason it was held
        out.push(h.refused);
      } else {
        const r = this.check(h.obs, keyOf, offsetOf(observer) ?? 0); // judged once more, never held again
        this.results[r]++;
        out.push(r);
      }
    }
    return out;
  }

  /** Hold a signed observation of a known observer, within the bounds; false when it cannot be held. */
  private hold(o: Observation, keyOf: (observer: string) => KeyObject | undefined, refused: 'stale' | 'future'): boolean {
    const now = this.clock.now();
    let list = this.held.get(o.observer);
    if (list) {
      // What waited too long (its observer never answered a clock sample) is refused after all.
      while (list.length > 0 && now - list[0]!.at > HOLD_MS) this.results[list.shift()!.refused]++;
      if (list.length === 0) {
        this.held.delete(o.observer);
        list = undefined;
      }
    }
    if (list ? list.length >= HOLD_PER_OBSERVER : this.held.size >= HOLD_OBSERVERS) return false;
    const key = keyOf(o.observer);
    if (!key || !verifyObservation(o, key)) return false; // only a known observer's signed words are kept
    if (!list) this.held.set(o.observer, (list = []));
    list.push({ obs: o, at: now, refused });
    return true;
  }

  private check(o: Observation, keyOf: (observer: string) => KeyObject | undefined, offset: number): OfferResult {
    const now = this.clock.now();
    const localEnd = o.windowEnd - offset;
    if (localEnd < now - this.opts.freshnessMs) return 'stale';
    if (localEnd > now + this.opts.maxSkewMs) return 'future';
    const sk = `${o.observer}|${o.endpoint}`;
    const last = this.lastSeq.get(sk);
    if (last !== undefined && o.seq <= last.seq) return 'replay';
    const b = this.bucket(o.observer, now);
    if (b.tokens < 1) return 'rate_limited';
    const key = keyOf(o.observer);
    if (!key) return 'unknown_observer';
    if (!verifyObservation(o, key)) return 'bad_signature';
    let per = this.byEndpoint.get(o.endpoint);
    if (!per) {
      if (this.byEndpoint.size >= this.opts.maxEndpoints) {
        this.prune(now);
        if (this.byEndpoint.size >= this.opts.maxEndpoints) return 'full';
      }
      this.byEndpoint.set(o.endpoint, (per = new Map()));
    }
    b.tokens -= 1;
    this.lastSeq.set(sk, { seq: o.seq, localEnd });
    const prev = per.get(o.observer);
    // Out-of-order arrival: keep the newest window per observer (both on the observer's clock).
    if (!prev || prev.obs.windowEnd <= o.windowEnd) per.set(o.observer, { obs: o, receivedAt: now, localEnd });
    return 'accepted';
  }

  private bucket(observer: string, now: number): Bucket {
    let b = this.buckets.get(observer);
    if (!b) {
      if (this.buckets.size >= this.opts.maxEndpoints) this.buckets.clear();
      this.buckets.set(observer, (b = { tokens: this.opts.burst, at: now }));
    }
    const refill = ((now - b.at) / 1000) * this.opts.ratePerSecond;
    if (refill > 0) {
      b.tokens = Math.min(this.opts.burst, b.tokens + refill);
      b.at = now;
    }
    return b;
  }

  /** Forget an observer entirely (it left or died): its observations stop counting at once. */
  forgetObserver(observer: string): void {
    this.held.delete(observer);
    for (const per of this.byEndpoint.values()) per.delete(observer);
  }

  isBad(o: Pick<Observation, 'flags' | 'requests' | 'errorRate' | 'p99Us'>): boolean {
    if (o.flags & OBS_FLAG_EJECTED) return true;
    // Connection probes are evidence of failure only (a connect that works says nothing about HTTP health).
    if (o.flags & OBS_FLAG_PROBED) return o.requests >= 2 && o.errorRate >= 1;
    if (o.requests < this.opts.minRequests) return false;
    if (o.errorRate >= this.opts.errorRateThreshold) return true;
    return this.opts.p99ThresholdUs > 0 && o.p99Us >= this.opts.p99ThresholdUs;
  }

  /** Add our own observation: it is ours and signed by us, so neither verified nor rate limited. */
  accept(o: Observation): void {
    const now = this.clock.now();
    let per = this.byEndpoint.get(o.endpoint);
    if (!per) this.byEndpoint.set(o.endpoint, (per = new Map()));
    per.set(o.observer, { obs: o, receivedAt: now, localEnd: o.windowEnd });
    this.lastSeq.set(`${o.observer}|${o.endpoint}`, { seq: o.seq, localEnd: o.windowEnd });
  }

  /** Fresh observations of `endpoint` from observers other than `self` that saw traffic, by polarity. */
  countOthers(endpoint: string, self: string): { bad: number; good: number } {
    const out = { bad: 0, good: 0 };
    const per = this.byEndpoint.get(endpoint);
    if (!per) return out;
    const horizon = this.clock.now() - this.opts.freshnessMs;
    for (const [observer, h] of per) {
      const o = h.obs;
      if (observer === self || h.localEnd < horizon) continue;
      if (this.isBad(o)) out.bad++;
      else if (o.requests >= this.opts.minRequests && (o.flags & OBS_FLAG_PROBED) === 0) out.good++;
    }
    return out;
  }

  /** Whether some observer other than `self` holds a fresh bad observation of `endpoint` (a dispute to answer). */
  hasFreshBad(endpoint: string, self: string): boolean {
    const per = this.byEndpoint.get(endpoint);
    if (!per) return false;
    const horizon = this.clock.now() - this.opts.freshnessMs;
    for (const [observer, h] of per) if (observer !== self && h.localEnd >= horizon && this.isBad(h.obs)) return true;
    return false;
  }

  /** The verdict for one endpoint now. */
  verdict(endpoint: string): Verdict {
    const now = this.clock.now();
    const per = this.byEndpoint.get(endpoint);
    let bad = 0;
    let good = 0;
    let maxErr = 0;
    const badObservers: string[] = [];
    const probeFailed: string[] = [];
    let probesWorking = 0;
    if (per) {
      for (const [observer, h] of per) {
        const o = h.obs;
        if (h.localEnd < now - this.opts.freshnessMs) continue;
        const isBad = this.isBad(o);
        if ((o.flags & OBS_FLAG_PROBED) !== 0) {
          if (isBad) probeFailed.push(observer);
          else if (o.requests >= 2 && o.errorRate === 0) probesWorking++;
          continue;
        }
        if (!isBad && o.requests < this.opts.minRequests) continue; // no evidence
        if (isBad) {
          bad++;
          badObservers.push(observer);
          maxErr = Math.max(maxErr, o.errorRate);
        } else good++;
      }
    }
    // Can't see ≠ dead: observers whose probes fail while as many others' probes to the same endpoint
    // work are on the wrong side of a partition, so probe failures count only beyond the working probes.
    const counted = Math.max(0, probeFailed.length - probesWorking);
    for (let i = 0; i < counted; i++) badObservers.push(probeFailed[i]!);
    if (counted > 0) maxErr = Math.max(maxErr, 1);
    const m = bad + probeFailed.length + good;
    const trafficBad = bad;
    bad += counted;
    const q = this.opts.quorum > 0
      ? Math.max(this.opts.quorum, this.opts.minQuorum)
      : Math.max(this.opts.minQuorum, Math.min(this.opts.maxQuorum, Math.ceil(m / 2)));
    // Q distinct bad observers, and not outvoted by observers that see it working.
    const failing = bad >= q && bad > good;
    return { endpoint, failing, observers: m, bad, trafficBad, good, quorum: q, badObservers, maxErrorRate: maxErr, probesWorking };
  }

  /** Whether `observer`'s fresh observation of `endpoint` is traffic evidence (not probes) that it works. */
  seesWorking(endpoint: string, observer: string): boolean {
    const h = this.byEndpoint.get(endpoint)?.get(observer);
    if (!h || h.localEnd < this.clock.now() - this.opts.freshnessMs) return false;
    const o = h.obs;
    return (o.flags & OBS_FLAG_PROBED) === 0 && o.requests >= this.opts.minRequests && !this.isBad(o);
  }

  /** Verdicts for every endpoint with fresh observations; prunes what has gone stale. */
  verdicts(): Verdict[] {
    this.prune(this.clock.now());
    const out: Verdict[] = [];
    for (const ep of this.byEndpoint.keys()) out.push(this.verdict(ep));
    return out;
  }

  get endpointCount(): number {
    return this.byEndpoint.size;
  }

  private prune(now: number): void {
    const horizon = now - this.opts.freshnessMs;
    for (const [ep, per] of this.byEndpoint) {
      for (const [obs, h] of per) if (h.localEnd < horizon) per.delete(obs);
      if (per.size === 0) this.byEndpoint.delete(ep);
    }
    // An observer's sequence and window end grow together, so a replay of anything at or below a
    // forgotten entry is older than the horizon (on the observer's clock, moved onto ours) and refused
    // as stale: the entry can go.
    for (const [k, v] of this.lastSeq) if (v.localEnd < horizon) this.lastSeq.delete(k);
  }
}
