// The health plane's tick: publish this sidecar's signed observations of every endpoint it sends traffic to,
// and turn mesh-wide quorum verdicts into `peer` decisions (eject, then restore after a hold-down).
import { type KeyObject } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import type { Decision } from '../core/types.js';
import type { MeshState } from '../mesh/state.js';
import { emptySummary, newHistogram, type StatsTable } from '../stats/window.js';
import type { Observation } from './codec.js';
import { publicKeyFromRaw, type ObservationSigner, type OfferResult, type QuorumBoard, type Verdict } from './health.js';
import type { MemberInfo } from './membership.js';

/**
 * Verification keys for observers: the key pinned with membership, only while the observer is a live
 * member (a dead or departed member's observations stop counting). Derived KeyObjects are cached.
 */
export function observerKeys(members: { publicKeyOf(id: string): Uint8Array | undefined; get(id: string): MemberInfo | undefined }, selfId: string): (observer: string) => KeyObject | undefined {
  const cache = new Map<string, { raw: Uint8Array; key: KeyObject | undefined }>();
  return (observer) => {
    const raw = members.publicKeyOf(observer);
    if (!raw) return undefined;
    if (observer !== selfId) {
      const m = members.get(observer);
      if (!m || m.state === 'dead' || m.state === 'left') return undefined;
    }
    let c = cache.get(observer);
    if (!c || c.raw !== raw) cache.set(observer, (c = { raw, key: publicKeyFromRaw(raw) }));
    return c.key;
  };
}

export interface HealthPlaneOptions {
  readonly clock: Clock;
  readonly mesh: MeshState;
  readonly stats: StatsTable;
  readonly board: QuorumBoard;
  readonly signer: ObservationSigner;
  /** Offer our own observation to our own board (it counts as one observer like any other). */
  readonly offerOwn: (o: Observation) => OfferResult;
  /** Gossip an observation to the mesh. */
  readonly publish: (o: Observation) => void;
  /** Hand a peer decision to the healing engine (or the mesh state); returns whether it was applied. */
  readonly submit: (d: Decision) => boolean;
  /** Stats windows summarised per observation. */
  readonly windows: number;
  readonly minRequests: number;
  /** How long the quorum must have been lost before a peer ejection is lifted. */
  readonly holdDownMs: number;
}

export interface HealthPlaneCounters {
  published: number;
  peerEjections: number;
  peerRestores: number;
  refused: number;
}

export class HealthPlane {
  readonly counters: HealthPlaneCounters = { published: 0, peerEjections: 0, peerRestores: 0, refused: 0 };
  private readonly summary = emptySummary();
  private readonly scratch;
  /** Endpoints we ejected on a peer verdict, with the last time the verdict held. */
  private readonly peerEjected = new Map<string, number>();
  private lastVerdicts: Verdict[] = [];

  constructor(private readonly o: HealthPlaneOptions) {
    this.scratch = newHistogram(o.stats.opts);
  }

  /** Verdicts computed on the last tick (admin API). */
  verdicts(): readonly Verdict[] {
    return this.lastVerdicts;
  }

  /** Endpoints currently ejected because of a peer verdict. */
  peerEjectedEndpoints(): string[] {
    return [...this.peerEjected.keys()];
  }

  tick(): void {
    this.publishOwn();
    this.decide();
  }

  /** Sign and publish one observation per endpoint that saw traffic, or that we hold ejected on local evidence. */
  publishOwn(): void {
    const now = this.o.clock.now();
    const s = this.summary;
    for (const ev of this.o.mesh.snapshot().endpoints.values()) {
      // Only our own evidence counts: re-publishing a peer ejection would let verdicts feed themselves.
      const ejectedLocally = ev.health.state === 'ejected' && ev.health.source === 'local';
      const w = this.o.stats.get(ev.slot);
      if (w) w.summarize(now, this.o.windows, s, this.scratch);
      else s.total = s.failures = s.p99 = 0;
      if (s.total < this.o.minRequests && !ejectedLocally) continue;
      const obs = this.o.signer.sign({
        endpoint: ev.spec.id,
        windowEnd: now,
        requests: s.total,
        errorRate: s.total > 0 ? s.failures / s.total : 0,
        p99Us: s.p99,
        ejected: ejectedLocally,
      });
      this.o.offerOwn(obs);
      this.o.publish(obs);
      this.counters.published++;
    }
  }

  decide(): void {
    const now = this.o.clock.now();
    const snap = this.o.mesh.snapshot();
    this.lastVerdicts = this.o.board.verdicts();
    for (const v of this.lastVerdicts) {
      if (!v.failing) continue;
      const ev = snap.endpoints.get(v.endpoint);
      if (!ev) continue; // an endpoint this sidecar does not route to
      if (this.peerEjected.has(v.endpoint)) {
        this.peerEjected.set(v.endpoint, now);
        continue;
      }
      const st = ev.health.state;
      // Probation belongs to the local engine's canary re-admission; ejected/draining already carry no traffic.
      if (st !== 'healthy' && st !== 'degraded') continue;
      const ok = this.o.submit({
        action: 'eject',
        target: v.endpoint,
        reason: 'peer_quorum',
        source: 'peer',
        at: now,
        evidence: {
          observers: v.observers,
          bad: v.bad,
          good: v.good,
          quorum: v.quorum,
          badObservers: v.badObservers.join(','),
          maxErrorRate: Math.round(v.maxErrorRate * 10_000) / 10_000,
        },
      });
      if (ok) {
        this.counters.peerEjections++;
        this.peerEjected.set(v.endpoint, now);
      } else this.counters.refused++;
    }
    const after = this.o.mesh.snapshot(); // includes the ejections just made
    for (const [ep, lastHeld] of this.peerEjected) {
      const ev = after.endpoints.get(ep);
      if (!ev || ev.health.state !== 'ejected' || ev.health.source !== 'peer') {
        this.peerEjected.delete(ep); // someone else (operator, local engine) took over this endpoint
        continue;
      }
      if (now - lastHeld < this.o.holdDownMs) continue;
      this.peerEjected.delete(ep);
      const ok = this.o.submit({
        action: 'restore', target: ep, reason: 'peer_quorum_lost', source: 'peer', at: now,
        evidence: { heldDownMs: this.o.holdDownMs, sinceLastVerdictMs: now - lastHeld },
      });
      if (ok) this.counters.peerRestores++;
    }
  }
}
