// The health plane's tick: publish this sidecar's signed observations of every endpoint it sends traffic to,
// and turn mesh-wide quorum verdicts into `peer` decisions (eject, then restore after a hold-down).
import { type KeyObject } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import type { Decision } from '../core/types.js';
import type { MeshState } from '../mesh/state.js';
import { emptySummary, newHistogram, type StatsTable } from '../stats/window.js';
import { OBS_FLAG_EJECTED, OBS_FLAG_PROBED, type Observation } from './codec.js';
import type { EndpointSpec } from '../core/types.js';
import { publicKeyFromRaw, type ObservationSigner, type QuorumBoard, type Verdict } from './health.js';
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

/** After reporting an endpoint failing, keep publishing for this many ticks once it works again. */
const RECOVERY_ECHO_TICKS = 3;

export interface HealthPlaneOptions {
  /** This member's id (its own observations are not a dispute to answer). */
  readonly selfId: string;
  readonly clock: Clock;
  readonly mesh: MeshState;
  readonly stats: StatsTable;
  readonly board: QuorumBoard;
  readonly signer: ObservationSigner;
  /** Put our own observation on our own board (it counts as one observer like any other). */
  readonly acceptOwn: (o: Observation) => void;
  /** Gossip an observation to the mesh. */
  readonly publish: (o: Observation) => void;
  /** Hand a peer decision to the healing engine (or the mesh state); returns whether it was applied. */
  readonly submit: (d: Decision) => boolean;
  /** Stats windows summarised per observation. */
  readonly windows: number;
  readonly minRequests: number;
  /** How long the quorum must have been lost before a peer ejection is lifted. */
  readonly holdDownMs: number;
  /** An unchanged view is re-published this often (keep it well under the board's freshness). */
  readonly refreshMs: number;
  /** Stay quiet while our side leads the other by this many fresh observers (Trickle's k). */
  readonly redundancy: number;
  /**
   * Lift our peer ejections once the quorum has been lost for the hold-down (true when decisions go to
   * the mesh state directly; false when a healing engine owns re-admission).
   */
  readonly restoreOnQuorumLoss?: boolean;
  /**
   * Corroboration for sidecars without traffic: when a peer reports an endpoint failing and we have no
   * evidence of our own, try to connect to it (`attempts` times) and report `failures`. Connection probes
   * only ever count as evidence of failure. Absent: no probing.
   */
  readonly probe?: (spec: EndpointSpec, done: (attempts: number, failures: number) => void) => void;
  /** At most one probe run per endpoint this often (ms). */
  readonly probeEveryMs?: number;
  readonly random?: () => number;
}

export interface HealthPlaneCounters {
  published: number;
  /** Connection-probe runs started to corroborate a peer's report. */
  probes: number;
  /** Observations not sent because enough others already said the same. */
  suppressed: number;
  peerEjections: number;
  /** Failing verdicts made of connection probes alone, not acted on because our own traffic to the endpoint is answered. */
  keptByOwnTraffic: number;
  peerRestores: number;
  refused: number;
}

export class HealthPlane {
  readonly counters: HealthPlaneCounters = { published: 0, probes: 0, suppressed: 0, peerEjections: 0, keptByOwnTraffic: 0, peerRestores: 0, refused: 0 };
  private readonly summary = emptySummary();
  private readonly scratch;
  /** Endpoints we ejected on a peer verdict, with the last time the verdict held. */
  private readonly peerEjected = new Map<string, number>();
  private lastVerdicts: Verdict[] = [];
  /** Endpoints we reported failing recently → ticks left to keep saying how they are now. */
  private readonly recentlyBad = new Map<string, number>();
  /** What we last published per endpoint, and when. */
  private readonly lastPublished = new Map<string, { due: number; bad: boolean }>();
  private readonly probeResults = new Map<string, { at: number; attempts: number; failures: number }>();
  private readonly probeAsked = new Map<string, number>();
  private readonly random: () => number;

  constructor(private readonly o: HealthPlaneOptions) {
    this.scratch = newHistogram(o.stats.opts);
    this.random = o.random ?? Math.random;
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

  /**
   * Sign and publish observations of endpoints we have evidence about, only when they matter: we see the
   * endpoint failing (or hold it ejected on local evidence); someone else reports it failing and we can
   * answer; or we reported it failing a moment ago and now see it working. Healthy, undisputed endpoints
   * cost no bandwidth. Publication is then paced like Trickle (RFC 6206): at once when our view changes,
   * otherwise once per refresh period, and not at all while our side already leads the other by
   * `redundancy` fresh observers — so a hundred sidecars seeing the same failure do not flood the mesh,
   * and a side never goes quiet while it is not clearly ahead (colluding liars cannot outshout it).
   */
  publishOwn(): void {
    const now = this.o.clock.now();
    const s = this.summary;
    const self = this.o.selfId;
    for (const ev of this.o.mesh.snapshot().endpoints.values()) {
      const id = ev.spec.id;
      if (id.length > 85 && Buffer.byteLength(id) > 255) continue; // the wire carries ids of up to 255 bytes (≤ 3 per UTF-16 unit)
      // Only our own evidence counts: re-publishing a peer ejection would let verdicts feed themselves.
      const ejectedLocally = ev.health.state === 'ejected' && (ev.health.source === 'local' || ev.health.source === 'learned');
      const w = this.o.stats.get(ev.slot);
      if (w) w.summarize(now, this.o.windows, s, this.scratch);
      else s.total = s.failures = s.p99 = 0;
      let requests = s.total;
      let failures = s.failures;
      let probed = false;
      if (requests < this.o.minRequests && !ejectedLocally) {
        const p = this.corroboration(ev.spec, now);
        if (p) {
          requests = p.attempts;
          failures = p.failures;
          probed = true;
        } else if (!this.recentlyBad.has(id)) {
          this.lastPublished.delete(id);
          continue;
        }
      }
      const errorRate = requests > 0 ? failures / requests : 0;
      const flags = (ejectedLocally ? OBS_FLAG_EJECTED : 0) | (probed ? OBS_FLAG_PROBED : 0);
      const bad = this.o.board.isBad({ flags, requests, errorRate, p99Us: s.p99 });
      const echo = this.recentlyBad.get(id) ?? 0;
      if (bad) this.recentlyBad.set(id, RECOVERY_ECHO_TICKS);
      else if (echo > 0) {
        if (echo === 1) this.recentlyBad.delete(id);
        else this.recentlyBad.set(id, echo - 1);
      } else if (!this.o.board.hasFreshBad(id, self)) {
        this.lastPublished.delete(id);
        continue;
      }
      const obs = this.o.signer.sign({ endpoint: id, windowEnd: now, requests, errorRate, p99Us: probed ? 0 : s.p99, ejected: ejectedLocally, probed });
      this.o.acceptOwn(obs);
      const last = this.lastPublished.get(id);
      const changed = !last || last.bad !== bad;
      if (!changed && now < last.due) continue;
      const others = this.o.board.countOthers(id, self);
      const lead = bad ? others.bad - others.good : others.good - others.bad;
      if (lead >= this.o.redundancy) {
        this.counters.suppressed++;
        continue;
      }
      this.o.publish(obs);
      // Trickle's randomised interval, in [refresh/2, refresh): members that share a view do not all
      // speak at the same moment, so most hear enough of the others before their turn and stay quiet.
      this.lastPublished.set(id, { due: now + this.o.refreshMs * (0.5 + 0.5 * this.random()), bad });
      this.counters.published++;
    }
  }

  /**
   * Our own fresh connection-probe result for `spec` while a peer reports it failing (a run is started at
   * most once per probeEveryMs). All-failed runs are evidence of failure; all-worked runs are published
   * too, but count only against other observers' failed probes (a partition seen from one side), never
   * against traffic evidence. Mixed runs say nothing.
   */
  private corroboration(spec: EndpointSpec, now: number): { attempts: number; failures: number } | undefined {
    if (!this.o.probe) return undefined;
    const every = this.o.probeEveryMs ?? 2000;
    const id = spec.id;
    const r = this.probeResults.get(id);
    const fresh = r !== undefined && now - r.at <= 2 * every;
    if (!this.o.board.hasFreshBad(id, this.o.selfId) && !(fresh && r.failures > 0)) return undefined;
    if (now - (this.probeAsked.get(id) ?? -Infinity) >= every) {
      this.probeAsked.set(id, now);
      this.counters.probes++;
      this.o.probe(spec, (attempts, failures) => this.probeResults.set(id, { at: this.o.clock.now(), attempts, failures }));
    }
    return fresh && r.attempts >= 2 && (r.failures === r.attempts || r.failures === 0) ? r : undefined;
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
      // Can't see ≠ dead, from here too: failed connects elsewhere, and nothing else, say it cannot be reached
      // from there; our own fresh traffic answered by it says it can from here. (A crashed endpoint fails our
      // traffic too.) Acting on them re-ejected every backend of a region right after it came back: the
      // other sidecars' failed probes from the outage stay fresh for freshnessMs.
      if (v.trafficBad === 0 && this.o.board.seesWorking(v.endpoint, this.o.selfId)) {
        this.counters.keptByOwnTraffic++;
        continue;
      }
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
          probesWorking: v.probesWorking,
          badObservers: v.badObservers.join(','),
          maxErrorRate: Math.round(v.maxErrorRate * 10_000) / 10_000,
        },
      });
      if (ok) {
        this.counters.peerEjections++;
        if (this.o.restoreOnQuorumLoss !== false) this.peerEjected.set(v.endpoint, now);
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
