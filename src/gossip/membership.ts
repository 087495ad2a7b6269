// SWIM membership with Lifeguard, as pure protocol logic: an injected Clock, a pluggable Transport and an
// injected random source, so the same code runs over real UDP/TCP, in virtual-time tests and in the simulator.
import type { Clock, TimerHandle } from '../core/clock.js';
import {
  assemblePacket, decodePacket, encodeMessage, encodePacket, MESSAGE_HEADER_BYTES, MsgType, PACKET_HEADER_BYTES, PLAIN_MAGIC, Writer,
  type Alive, type Dead, type IndirectPing, type MemberState, type Message, type Observation, type Ping, type PushPullEntry, type Suspect,
} from './codec.js';
import { BroadcastQueue } from './broadcast.js';
import { incarnationNewer, nextIncarnation, plausibleJump } from './incarnation.js';
import { Keyring, SEAL_OVERHEAD, SEALED_MAGIC } from './keyring.js';
import { Awareness, Suspicion } from './lifeguard.js';
import { pushPullScaleMs, retransmitLimit, suspicionTimeoutMs, type GossipProfile } from './profile.js';
import type { Address, Transport } from './transport.js';

export interface MemberInfo {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  readonly incarnation: number;
  readonly state: MemberState;
  /** Epoch ms of the last state change. */
  readonly stateChange: number;
  readonly publicKey: Uint8Array | undefined;
}

interface Member {
  id: string;
  host: string;
  port: number;
  incarnation: number;
  state: MemberState;
  stateChange: number;
  publicKey: Uint8Array | undefined;
  /** Position in `order` (probe order), for O(1) removal. */
  index: number;
  /** Epoch ms of the last suspicion refresh ping we sent it (see refreshSuspect). */
  refreshedAt: number;
}

export interface MembershipOptions {
  readonly id: string;
  /** The address other members reach us on. */
  readonly advertise: Address;
  readonly clock: Clock;
  readonly transport: Transport;
  readonly profile: GossipProfile;
  readonly keyring?: Keyring;
  /** Raw 32-byte Ed25519 public key that travels with our membership (pinned by peers). */
  readonly publicKey?: Uint8Array;
  /** Largest UDP payload we send, envelope included. */
  readonly maxPacketBytes?: number;
  /** Share of every gossip packet reserved for observations (the rest, and any unused part, for membership). */
  readonly observationShare?: number;
  readonly random?: () => number;
  /** A signed observation arrived: return true if it was new and valid (it is then re-gossiped). */
  readonly onObservation?: (obs: Observation) => boolean;
  /** A clock sample of a member was taken (its offset is known and current): observations held for it can be judged. */
  readonly onClockSample?: (id: string) => void;
  /** A member appeared or changed state. */
  readonly onChange?: (m: MemberInfo, previous: MemberState | undefined) => void;
  /** An audit witness message arrived (opaque here; see src/audit/witness-gossip.ts). */
  readonly onAudit?: (body: Uint8Array, from: Address) => void;
  /** A federated-baseline message arrived (opaque here; see src/learn/federated-codec.ts). */
  readonly onLearn?: (body: Uint8Array, from: Address) => void;
  /** Most members kept (a bound on memory against floods of made-up members); default 100,000. */
  readonly maxMembers?: number;
  /** Most entries a push-pull frame may list (larger frames are refused whole); default 10,000. */
  readonly pushPullMaxMembers?: number;
  /** Most members unknown to us that one unsolicited push-pull may add; default 256. */
  readonly pushPullMaxNewMembers?: number;
  /**
   * How far ahead of the incarnation we hold for a member (or our own) a claim may be; further is refused
   * as forged. Default: 65,536 without keys, off (0) with keys (every sender is then authenticated).
   */
  readonly incarnationWindow?: number;
}

export const DEFAULT_PUSH_PULL_MAX_MEMBERS = 10_000;
export const DEFAULT_PUSH_PULL_MAX_NEW_MEMBERS = 256;
export const DEFAULT_INCARNATION_WINDOW = 65_536;

/** Counters exported as metrics; names are stable. */
export interface MembershipCounters {
  packetsSent: number;
  bytesSent: number;
  packetsReceived: number;
  bytesReceived: number;
  /** Received packets dropped, by reason. */
  droppedMalformed: number;
  droppedUnknownKey: number;
  droppedPlaintext: number;
  droppedEncrypted: number;
  handlerErrors: number;
  streamsSent: number;
  streamsFailed: number;
  streamsReceived: number;
  probes: number;
  probesFailed: number;
  indirectProbes: number;
  tcpFallbackAcks: number;
  suspicionsRaised: number;
  /** Suspicions this member started itself after a failed probe (the accusations it originated). */
  suspicionsOriginated: number;
  refutations: number;
  /** Our current alive queued again because an accusation about an already refuted incarnation arrived. */
  reannouncements: number;
  deathsDeclared: number;
  keyConflicts: number;
  addressConflicts: number;
  /** New members refused because the table is full. */
  membersRefused: number;
  /** Push-pull frames refused whole because they list more than pushPullMaxMembers entries. */
  pushPullRefused: number;
  /** Unknown members of unsolicited push-pulls not added (over pushPullMaxNewMembers). */
  pushPullMembersSkipped: number;
  /** Messages refused because they claim an incarnation implausibly far ahead (forged). */
  implausibleIncarnations: number;
  /** Clock offset samples taken from direct acks, and those refused as beyond MAX_CLOCK_OFFSET_MS. */
  clockSamples: number;
  clockSamplesRefused: number;
  observationsReceived: number;
  observationsAccepted: number;
  pushPulls: number;
}

interface AckHandler {
  /** `time`: the target's clock when it answered (direct acks only). */
  ack(time?: number): void;
  nack(): void;
}

/** A clock offset estimate for one member: its clock minus ours, from a ping/ack round trip. */
interface ClockOffset {
  offset: number;
  /** Half the round trip of the sample: the estimate is within ± this (plus drift since `at`). */
  errorMs: number;
  /** Our clock when the sample was taken. */
  at: number;
}

/**
 * Offsets beyond this are not believed (treated as unknown): an hour covers any clock that is merely
 * wrong, and bounds how far an acknowledgement could shift what counts as fresh.
 */
export const MAX_CLOCK_OFFSET_MS = 3_600_000;
/** How fast an offset estimate is assumed to degrade (clock drift, rate changes): 1 ms per second, generous. */
const OFFSET_DRIFT = 0.001;

export class Membership {
  readonly id: string;
  readonly counters: MembershipCounters = {
    packetsSent: 0, bytesSent: 0, packetsReceived: 0, bytesReceived: 0,
    droppedMalformed: 0, droppedUnknownKey: 0, droppedPlaintext: 0, droppedEncrypted: 0, handlerErrors: 0,
    streamsSent: 0, streamsFailed: 0, streamsReceived: 0,
    probes: 0, probesFailed: 0, indirectProbes: 0, tcpFallbackAcks: 0,
    suspicionsRaised: 0, suspicionsOriginated: 0, refutations: 0, reannouncements: 0, deathsDeclared: 0, keyConflicts: 0, addressConflicts: 0, membersRefused: 0,
    pushPullRefused: 0, pushPullMembersSkipped: 0, implausibleIncarnations: 0, clockSamples: 0, clockSamplesRefused: 0,
    observationsReceived: 0, observationsAccepted: 0, pushPulls: 0,
  };
  readonly awareness: Awareness;

  private readonly o: MembershipOptions;
  private readonly p: GossipProfile;
  private readonly clock: Clock;
  private readonly transport: Transport;
  /** Kept even while empty: keys may be installed later (a rotated key file), which turns encryption on. */
  private readonly keyring: Keyring | undefined;
  private readonly random: () => number;
  private readonly maxPacket: number;
  private readonly obsShare: number;
  private readonly members = new Map<string, Member>();
  private readonly order: Member[] = [];
  private readonly pins = new Map<string, Uint8Array>();
  private readonly suspicions = new Map<string, Suspicion>();
  private readonly ackHandlers = new Map<number, AckHandler>();
  private readonly offsets = new Map<string, ClockOffset>();
  /** Our clock when we last pinged a member only to sample its clock (rate limit). */
  private readonly sampleAsked = new Map<string, number>();
  /** Members without a clock offset yet, sampled one per gossip tick (a mesh-wide start is not a burst). */
  private readonly toSample = new Set<string>();
  private readonly memberQueue = new BroadcastQueue();
  private readonly obsQueue = new BroadcastQueue();
  private readonly self: Member;
  private readonly writer = new Writer(2048);
  private probeIndex = 0;
  private seqNo = 0;
  private live = 0; // members not dead or left, self included
  private leaving = false;
  private running = false;
  private probeTimer: TimerHandle | undefined;
  private gossipTimer: TimerHandle | undefined;
  private pushPullTimer: TimerHandle | undefined;
  private reconnectTimer: TimerHandle | undefined;
  private readonly pending = new Set<TimerHandle>();

  constructor(opts: MembershipOptions) {
    this.o = opts;
    this.id = opts.id;
    this.p = opts.profile;
    this.clock = opts.clock;
    this.transport = opts.transport;
    this.keyring = opts.keyring;
    this.random = opts.random ?? Math.random;
    this.maxPacket = opts.maxPacketBytes ?? 1200;
    this.obsShare = opts.observationShare ?? 0.35;
    this.awareness = new Awareness(this.p.lifeguard.awareness ? this.p.awarenessMaxMultiplier : 1);
    if (!opts.id || Buffer.byteLength(opts.id) > 255) throw new RangeError('a member id must be 1-255 bytes of UTF-8');
    this.self = { id: opts.id, host: opts.advertise.host, port: opts.advertise.port, incarnation: 1, state: 'alive', stateChange: this.clock.now(), publicKey: opts.publicKey, index: 0, refreshedAt: 0 };
    this.members.set(this.id, this.self);
    this.order.push(this.self);
    this.live = 1;
    if (opts.publicKey) this.pins.set(this.id, opts.publicKey);
    this.transport.setHandlers({
      onPacket: (data, from) => this.handlePacket(data, from),
      onStream: (data, from) => this.handleStream(data, from),
    });
  }

  // ---------------------------------------------------------------- lifecycle

  /** Start probing, gossiping and anti-entropy. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.enqueueMember(this.id, this.aliveMsg(this.self));
    this.scheduleProbe(this.p.probeIntervalMs * this.random());
    this.gossipTimer = this.clock.setInterval(() => this.gossip(), this.p.gossipIntervalMs);
    if (this.p.pushPullIntervalMs > 0) this.schedulePushPull();
    this.scheduleReconnect();
  }

  /** Join through seeds (TCP push-pull with each). `cb` gets how many answered. */
  join(seeds: readonly Address[], cb: (joined: number) => void = () => {}): void {
    let left = seeds.length;
    let ok = 0;
    if (left === 0) return cb(0);
    for (const s of seeds) {
      this.pushPull(s, true, (success) => {
        if (success) ok++;
        if (--left === 0) cb(ok);
      });
    }
  }

  /** Graceful leave: tell the others we are leaving, give the message a few gossip rounds, then call `cb`. */
  leave(timeoutMs: number, cb: () => void = () => {}): void {
    if (this.leaving) return cb();
    this.leaving = true;
    const d: Dead = { type: MsgType.Dead, incarnation: this.self.incarnation, node: this.id, from: this.id };
    this.enqueueMember(this.id, d);
    this.setState(this.self, 'left');
    // Push the news out now rather than waiting for the next gossip tick.
    const targets = this.randomMembers(this.p.gossipNodes * 2, (m) => m.state === 'alive' || m.state === 'suspect');
    const bytes = encodeMessage(d);
    for (const t of targets) this.sendParts(t, [bytes]);
    this.after(Math.min(timeoutMs, this.p.gossipIntervalMs * 2), cb);
  }

  /** Stop every timer and handler (the transport is closed by its owner). */
  shutdown(): void {
    this.running = false;
    this.probeTimer?.cancel();
    this.gossipTimer?.cancel();
    this.pushPullTimer?.cancel();
    this.reconnectTimer?.cancel();
    for (const t of this.pending) t.cancel();
    this.pending.clear();
    for (const s of this.suspicions.values()) s.cancel();
    this.suspicions.clear();
    this.ackHandlers.clear();
  }

  // ---------------------------------------------------------------- queries

  /** Every known member (self included), with state. */
  list(): MemberInfo[] {
    return [...this.members.values()].map(view);
  }

  get(id: string): MemberInfo | undefined {
    const m = this.members.get(id);
    return m ? view(m) : undefined;
  }

  /** Members that are neither dead nor left, self included. */
  get liveCount(): number {
    return this.live;
  }

  get incarnation(): number {
    return this.self.incarnation;
  }

  /**
   * A member's clock minus ours (ms), estimated from our last good ping/ack round trip with it (within
   * ± half that round trip, plus drift); undefined until we have one. Skew-tolerant freshness of signed
   * observations uses it (see QuorumBoard).
   */
  clockOffsetOf(id: string): number | undefined {
    if (id === this.id) return 0;
    return this.offsets.get(id)?.offset;
  }

  /**
   * Ping a member only to learn its clock offset (an observation of its was refused by the clock and we
   * have no estimate yet). At most once per probe interval per member; not a probe: nothing is counted
   * as failed if no ack comes.
   */
  requestClockSample(id: string): void {
    const m = this.members.get(id);
    if (!m || m === this.self || !this.running || (m.state !== 'alive' && m.state !== 'suspect')) return;
    const now = this.clock.now();
    const asked = this.sampleAsked.get(id);
    if (asked !== undefined && now - asked < this.p.probeIntervalMs) return;
    this.sampleAsked.set(id, now);
    const seq = this.nextSeq();
    this.ackHandlers.set(seq, {
      ack: (time) => {
        this.ackHandlers.delete(seq);
        if (time !== undefined) this.clockSample(id, now, time);
      },
      nack: () => {},
    });
    this.after(this.p.probeTimeoutMs, () => this.ackHandlers.delete(seq));
    this.sendParts(m, [encodeMessage({ type: MsgType.Ping, seq, target: id, source: this.id, sourceHost: this.self.host, sourcePort: this.self.port })]);
  }

  /** The pinned public key of a member, if any. */
  publicKeyOf(id: string): Uint8Array | undefined {
    return this.pins.get(id);
  }

  countByState(): Record<MemberState, number> {
    const out: Record<MemberState, number> = { alive: 0, suspect: 0, dead: 0, left: 0 };
    for (const m of this.members.values()) out[m.state]++;
    return out;
  }

  /** Queue a locally produced (or re-gossiped) observation. */
  /** Send one audit witness message straight to a member's address (one UDP packet, not re-gossiped). */
  sendAudit(to: Address, body: Uint8Array): void {
    this.sendParts(to, [encodeMessage({ type: MsgType.Audit, body })]);
  }

  /** Send one federated-baseline message straight to a member's address (one UDP packet, not re-gossiped). */
  sendLearn(to: Address, body: Uint8Array): void {
    this.sendParts(to, [encodeMessage({ type: MsgType.Learn, body })]);
  }

  publishObservation(obs: Observation): void {
    this.obsQueue.enqueue(`${obs.observer}|${obs.endpoint}`, encodeMessage(obs));
  }

  get pendingBroadcasts(): { membership: number; observations: number } {
    return { membership: this.memberQueue.length, observations: this.obsQueue.length };
  }

  /**
   * Install members directly (simulator and tests only: skips the join). Each must carry an incarnation >= 1.
   */
  bootstrapMembers(list: readonly { id: string; host: string; port: number; incarnation?: number; publicKey?: Uint8Array }[]): void {
    for (const e of list) {
      if (e.id === this.id || this.members.has(e.id)) continue;
      const m: Member = { id: e.id, host: e.host, port: e.port, incarnation: e.incarnation ?? 1, state: 'alive', stateChange: this.clock.now(), publicKey: e.publicKey, index: 0, refreshedAt: 0 };
      if (e.publicKey) this.pins.set(e.id, e.publicKey);
      this.insertMember(m);
      this.live++;
    }
  }

  // ---------------------------------------------------------------- probing (SWIM failure detector)

  private scheduleProbe(delayMs: number): void {
    if (!this.running) return;
    this.probeTimer = this.clock.setTimeout(() => {
      // A member with poor local health probes less often (Lifeguard LHA-probe).
      this.scheduleProbe(this.awareness.scale(this.p.probeIntervalMs));
      const target = this.nextProbeTarget();
      if (target) this.probe(target);
    }, delayMs);
  }

  private nextProbeTarget(): Member | undefined {
    for (let checked = 0; checked <= this.order.length; checked++) {
      if (this.probeIndex >= this.order.length) {
        this.probeIndex = 0;
        this.resetRound();
      }
      const m = this.order[this.probeIndex++];
      if (!m || m === this.self || m.state === 'dead' || m.state === 'left') continue;
      return m;
    }
    return undefined;
  }

  /** Once per probe round: reap long-dead members and reshuffle the probe order. */
  private resetRound(): void {
    const now = this.clock.now();
    for (let i = this.order.length - 1; i >= 0; i--) {
      const m = this.order[i]!;
      if ((m.state === 'dead' || m.state === 'left') && m !== this.self && now - m.stateChange > this.p.gossipToTheDeadMs) this.removeMember(m);
    }
    for (let i = this.order.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      const a = this.order[i]!;
      const b = this.order[j]!;
      this.order[i] = b;
      this.order[j] = a;
      a.index = j;
      b.index = i;
    }
  }

  private probe(target: Member): void {
    this.counters.probes++;
    const seq = this.nextSeq();
    const probeTimeout = this.awareness.scale(this.p.probeTimeoutMs);
    const deadline = this.awareness.scale(this.p.probeIntervalMs);
    const lg = this.p.lifeguard;
    let done = false;
    let nacks = 0;
    let expectedNacks = 0;
    const timers: TimerHandle[] = [];
    const finish = () => {
      done = true;
      this.ackHandlers.delete(seq);
      for (const t of timers) { t.cancel(); this.pending.delete(t); }
    };
    const sentAt = this.clock.now();
    this.ackHandlers.set(seq, {
      ack: (time) => {
        if (done) return;
        finish();
        this.awareness.applyDelta(-1);
        if (time !== undefined) this.clockSample(target.id, sentAt, time);
      },
      nack: () => { nacks++; },
    });
    const parts: Uint8Array[] = [];
    // Buddy system: a suspect learns of the suspicion from the probe itself and can refute at once.
    if (lg.buddy && target.state === 'suspect') {
      parts.push(encodeMessage({ type: MsgType.Suspect, incarnation: target.incarnation, node: target.id, from: this.id }));
    }
    const ping: Ping = { type: MsgType.Ping, seq, target: target.id, source: this.id, sourceHost: this.self.host, sourcePort: this.self.port };
    parts.push(encodeMessage(ping));
    this.sendWithPiggyback(target, parts);

    timers.push(this.after(probeTimeout, () => {
      if (done) return;
      const relays = this.randomMembers(this.p.indirectChecks, (m) => m !== target && m.state === 'alive');
      const ind: IndirectPing = {
        type: MsgType.IndirectPing, seq, target: target.id, targetHost: target.host, targetPort: target.port,
        wantNack: lg.nack, source: this.id, sourceHost: this.self.host, sourcePort: this.self.port,
      };
      const bytes = encodeMessage(ind);
      for (const r of relays) {
        this.counters.indirectProbes++;
        this.sendParts(r, [bytes]);
      }
      if (lg.nack) expectedNacks = relays.length;
      if (this.p.tcpFallbackProbe) {
        // UDP may be blocked on this path while TCP works (memberlist's fallback probe).
        this.streamRequest(target, encodePacket([ping]), Math.max(1, deadline - probeTimeout), (msgs) => {
          if (done || !msgs) return;
          if (msgs.some((m) => m.type === MsgType.Ack && m.seq === seq)) {
            this.counters.tcpFallbackAcks++;
            this.ackHandlers.get(seq)?.ack();
          }
        });
      }
    }));

    timers.push(this.after(deadline, () => {
      if (done) return;
      finish();
      this.counters.probesFailed++;
      // Missing nacks mean our own network or process is the problem: slow down (Lifeguard).
      if (lg.awareness) this.awareness.applyDelta(expectedNacks > 0 ? Math.max(0, expectedNacks - nacks) : 1);
      const cur = this.members.get(target.id);
      if (cur === target && target.state !== 'dead' && target.state !== 'left') {
        if (target.state === 'alive') this.counters.suspicionsOriginated++;
        this.suspectNode({ type: MsgType.Suspect, incarnation: target.incarnation, node: target.id, from: this.id });
      }
    }));
  }

  // ---------------------------------------------------------------- gossip and anti-entropy

  private gossip(): void {
    if (!this.running) return;
    const now = this.clock.now();
    const targets = this.randomMembers(this.p.gossipNodes, (m) =>
      m.state === 'alive' || m.state === 'suspect' || now - m.stateChange < this.p.gossipToTheDeadMs);
    this.refreshSuspect(now);
    for (const id of this.toSample) {
      this.toSample.delete(id);
      if (!this.offsets.has(id)) { this.requestClockSample(id); break; }
    }
    for (const t of targets) {
      const parts: Uint8Array[] = [];
      this.takeBroadcasts(this.packetBudget(), parts);
      if (parts.length === 0) return;
      this.sendParts(t, parts);
    }
  }

  /**
   * Deliver one held suspicion straight to its subject (the buddy system, outside the probe round): the
   * suspect least recently refreshed, if that was more than `probeInterval · max(1, log10 N)` ago, gets
   * `suspect + ping`. An alive member answers with an ack that carries its refutation, or its current
   * `alive` if it had already refuted and we missed it; so a suspicion we hold stale (the refutation's
   * broadcasts were spent while a partition or loss kept it from us) ends within a refresh period of the
   * path working again, not when our probe round comes back to it or its timer runs out. Not a probe:
   * no failure is counted and nothing else depends on the answer. Cost: at most one small packet per
   * gossip tick, and only while we hold a suspicion.
   */
  private refreshSuspect(now: number): void {
    if (!this.p.lifeguard.buddy || this.suspicions.size === 0) return;
    const every = this.p.probeIntervalMs * Math.max(1, Math.log10(Math.max(1, this.live)));
    let pick: Member | undefined;
    for (const id of this.suspicions.keys()) {
      const m = this.members.get(id);
      if (!m || m.state !== 'suspect' || now - m.refreshedAt < every) continue;
      if (!pick || m.refreshedAt < pick.refreshedAt) pick = m;
    }
    if (!pick) return;
    pick.refreshedAt = now;
    const suspect = encodeMessage({ type: MsgType.Suspect, incarnation: pick.incarnation, node: pick.id, from: this.id });
    const ping = encodeMessage({ type: MsgType.Ping, seq: this.nextSeq(), target: pick.id, source: this.id, sourceHost: this.self.host, sourcePort: this.self.port });
    this.sendParts(pick, [suspect, ping]);
  }

  private schedulePushPull(): void {
    if (!this.running) return;
    const every = pushPullScaleMs(this.p.pushPullIntervalMs, this.live);
    this.pushPullTimer = this.clock.setTimeout(() => {
      const [peer] = this.randomMembers(1, (m) => m.state === 'alive');
      if (peer) this.pushPull(peer, false, () => {});
      this.schedulePushPull();
    }, every * (0.5 + this.random()));
  }

  /**
   * Serf-style reconnect, once per probe period (jittered): a push-pull with one member we hold dead, so
   * that both sides of a healed partition exchange state within seconds (each then refutes the other's
   * stale verdict about itself) instead of waiting for a push-pull period. Costs nothing while nobody is
   * dead; a member really gone is tried until it is reaped (gossipToTheDeadMs).
   */
  private scheduleReconnect(): void {
    if (!this.running) return;
    this.reconnectTimer = this.clock.setTimeout(() => {
      const [gone] = this.randomMembers(1, (m) => m.state === 'dead');
      if (gone) this.pushPull(gone, false, () => {});
      this.scheduleReconnect();
    }, this.p.probeIntervalMs * (0.5 + this.random()));
  }

  private lastLearn = -Infinity;

  /**
   * A member we do not know probed us: we missed its `alive` (members that join at the same moment can
   * each miss the other's), and without this we would learn of it only at the next push-pull period
   * (30 s on a LAN). Push-pull with it now, at most once per probe interval; the answer may add no more
   * unknown members than an unsolicited push-pull could, since the ping that led here is anyone's word.
   */
  private learnFrom(source: Address): void {
    const now = this.clock.now();
    if (now - this.lastLearn < this.p.probeIntervalMs) return;
    this.lastLearn = now;
    this.pushPull(source, false, () => {}, this.o.pushPullMaxNewMembers ?? DEFAULT_PUSH_PULL_MAX_NEW_MEMBERS);
  }

  private pushPull(to: Address, join: boolean, cb: (ok: boolean) => void, maxNew = Infinity): void {
    this.counters.pushPulls++;
    const req = encodePacket([{ type: MsgType.PushPull, join, entries: this.localState() }]);
    this.streamRequest(to, req, this.p.streamTimeoutMs, (msgs) => {
      const pp = msgs?.find((m) => m.type === MsgType.PushPull);
      if (!pp || pp.type !== MsgType.PushPull) return cb(false);
      this.mergeRemote(pp.entries, maxNew);
      cb(true);
    });
  }

  private localState(): PushPullEntry[] {
    const out: PushPullEntry[] = [];
    const max = this.pushPullMax;
    for (const m of this.members.values()) {
      if (out.length >= max) break; // self is the first entry of the map: always sent
      out.push({ node: m.id, host: m.host, port: m.port, incarnation: m.incarnation, state: m.state, publicKey: m.publicKey });
    }
    return out;
  }

  /**
   * Merge a peer's state. `maxNew` bounds the members unknown to us it may add: an unsolicited push-pull
   * (anyone who can reach the port) adds few; the answer to our own request (a seed or a known member) may
   * bring the whole membership.
   */
  private mergeRemote(entries: readonly PushPullEntry[], maxNew = Infinity): void {
    let added = 0;
    for (const e of entries) {
      if (!this.members.has(e.node)) {
        if (e.state !== 'alive') continue; // nothing to say about a member we do not know
        if (added >= maxNew) { this.counters.pushPullMembersSkipped++; continue; }
        added++;
      }
      switch (e.state) {
        case 'alive':
          this.aliveNode({ type: MsgType.Alive, incarnation: e.incarnation, node: e.node, host: e.host, port: e.port, publicKey: e.publicKey });
          break;
        case 'left':
          this.deadNode({ type: MsgType.Dead, incarnation: e.incarnation, node: e.node, from: e.node });
          break;
        default:
          // A remote "dead" is only a suspicion here: we give the member its chance to refute.
          this.suspectNode({ type: MsgType.Suspect, incarnation: e.incarnation, node: e.node, from: this.id });
      }
    }
  }

  // ---------------------------------------------------------------- state machine (memberlist semantics)

  private aliveNode(a: Alive): void {
    if (a.node === this.id) {
      if (incarnationNewer(this.self.incarnation, a.incarnation)) return;
      if (!this.plausible(a.incarnation, this.self.incarnation)) return;
      const same = a.host === this.self.host && a.port === this.self.port && (!a.publicKey || keysEqual(a.publicKey, this.self.publicKey));
      if (a.incarnation === this.self.incarnation && same) return;
      if (this.leaving) return;
      this.refute(a.incarnation);
      return;
    }
    if (a.incarnation < 1) return;
    const pin = this.pins.get(a.node);
    if (pin && a.publicKey && !keysEqual(pin, a.publicKey)) {
      // Trust on first sight: a node id keeps the key it was first seen with.
      this.counters.keyConflicts++;
      return;
    }
    let m = this.members.get(a.node);
    let updatesNode = false;
    if (!m) {
      if (this.members.size >= (this.o.maxMembers ?? 100_000)) {
        this.counters.membersRefused++;
        return;
      }
      m = { id: a.node, host: a.host, port: a.port, incarnation: 0, state: 'dead', stateChange: this.clock.now(), publicKey: undefined, index: 0, refreshedAt: 0 };
      this.insertMember(m);
      updatesNode = true;
    } else if (m.host !== a.host || m.port !== a.port) {
      // A known id at a new address: only once the old one has left or died (reused names).
      if (m.state === 'left' || m.state === 'dead') updatesNode = true;
      else {
        this.counters.addressConflicts++;
        return;
      }
    }
    if (!updatesNode && !incarnationNewer(a.incarnation, m.incarnation)) return;
    if (!this.plausible(a.incarnation, m.incarnation)) return;
    if (a.publicKey && !pin) this.pins.set(a.node, a.publicKey);
    const s = this.suspicions.get(a.node);
    if (s) { s.cancel(); this.suspicions.delete(a.node); }
    this.enqueueMember(a.node, a);
    m.incarnation = a.incarnation;
    m.host = a.host;
    m.port = a.port;
    if (a.publicKey) m.publicKey = a.publicKey;
    if (m.state !== 'alive') this.setState(m, 'alive');
    // Learn its clock offset soon rather than when our probe round reaches it: its signed observations
    // are judged on its own clock (one ping per member that appears or comes back, one per gossip tick).
    if (!this.offsets.has(m.id)) this.toSample.add(m.id);
  }

  private suspectNode(s: Suspect): void {
    const m = this.members.get(s.node);
    if (!m) return;
    if (incarnationNewer(m.incarnation, s.incarnation)) {
      if (m === this.self) this.reannounce();
      return;
    }
    if (!this.plausible(s.incarnation, m.incarnation)) return;
    const existing = this.suspicions.get(s.node);
    if (existing) {
      if (existing.confirm(s.from)) this.enqueueMember(s.node, s);
      return;
    }
    if (m.state !== 'alive') return;
    if (m === this.self) {
      if (!this.leaving) this.refute(s.incarnation);
      return;
    }
    this.counters.suspicionsRaised++;
    this.enqueueMember(s.node, s);
    m.incarnation = s.incarnation;
    this.setState(m, 'suspect');
    const changeTime = m.stateChange;
    const n = this.live;
    let k = this.p.lifeguard.dynamicSuspicion ? this.p.suspicionMult - 2 : 0;
    if (n - 2 < k) k = 0;
    const min = suspicionTimeoutMs(this.p.suspicionMult, n, this.p.probeIntervalMs);
    const max = this.p.lifeguard.dynamicSuspicion ? this.p.suspicionMaxTimeoutMult * min : min;
    this.suspicions.set(s.node, new Suspicion(s.from, k, min, max, this.clock, () => {
      this.suspicions.delete(s.node);
      const cur = this.members.get(s.node);
      if (cur === m && m.state === 'suspect' && m.stateChange === changeTime && this.running) {
        this.counters.deathsDeclared++;
        this.deadNode({ type: MsgType.Dead, incarnation: m.incarnation, node: m.id, from: this.id });
      }
    }));
  }

  private deadNode(d: Dead): void {
    const m = this.members.get(d.node);
    if (!m) return;
    if (incarnationNewer(m.incarnation, d.incarnation)) {
      if (m === this.self) this.reannounce();
      return;
    }
    if (!this.plausible(d.incarnation, m.incarnation)) return;
    const s = this.suspicions.get(d.node);
    if (s) { s.cancel(); this.suspicions.delete(d.node); }
    if (m.state === 'dead' || m.state === 'left') return;
    if (m === this.self) {
      if (!this.leaving) this.refute(d.incarnation);
      return;
    }
    this.enqueueMember(d.node, d);
    m.incarnation = d.incarnation;
    this.setState(m, d.from === d.node ? 'left' : 'dead');
  }

  /**
   * An accusation about an incarnation we have already refuted reached us: whoever holds it missed our
   * refutation (its broadcasts are spent), and nobody else will tell it. Queue our current `alive` again
   * (no new incarnation, no awareness penalty): it rides on our next packets, first of all on the ack of
   * the probe that carried the stale suspicion (buddy system), so the holder is corrected in one round
   * trip instead of waiting for its suspicion to time out or for a push-pull. A flood of stale
   * accusations only re-arms the one queued entry about ourselves.
   */
  private reannounce(): void {
    if (this.leaving) return;
    this.counters.reannouncements++;
    this.enqueueMember(this.id, this.aliveMsg(this.self));
  }

  /**
   * One round trip with `id`: we sent at `sentAt` (our clock), it answered at `time` (its clock), the ack
   * is here now. offset = time − midpoint, within ± rtt/2. The estimate kept is the one with the smallest
   * error once aged by drift, so one slow round trip does not spoil a good estimate, and a fresh one
   * eventually replaces an old one; a sample that contradicts the estimate beyond both error bounds
   * replaces it at once (the member's clock was stepped, or it restarted with another clock).
   */
  private clockSample(id: string, sentAt: number, time: number): void {
    const now = this.clock.now();
    const errorMs = Math.max(0, now - sentAt) / 2;
    const offset = time - (sentAt + now) / 2;
    if (Math.abs(offset) > MAX_CLOCK_OFFSET_MS) { this.counters.clockSamplesRefused++; return; }
    this.counters.clockSamples++;
    const cur = this.offsets.get(id);
    const aged = cur ? cur.errorMs + (now - cur.at) * OFFSET_DRIFT : 0;
    // Keep the better estimate, unless the two disagree beyond both error bounds: its clock was stepped
    // (or the member restarted with another clock).
    if (!cur || Math.abs(offset - cur.offset) > aged + errorMs || aged >= errorMs) this.offsets.set(id, { offset, errorMs, at: now });
    this.o.onClockSample?.(id);
  }

  /** Someone thinks we are suspect or dead: outbid them with a higher incarnation (and slow down). */
  private refute(accused: number): void {
    this.counters.refutations++;
    // Serial-number arithmetic: past 2^32 - 1 the next incarnation wraps and is still newer, so no
    // accusation can leave us without a higher number to answer with.
    this.self.incarnation = nextIncarnation(incarnationNewer(accused, this.self.incarnation) ? accused : this.self.incarnation);
    this.awareness.applyDelta(1);
    this.enqueueMember(this.id, this.aliveMsg(this.self));
  }

  private setState(m: Member, state: MemberState): void {
    const prev = m.state;
    if (prev === state) return;
    const wasLive = prev === 'alive' || prev === 'suspect';
    const isLive = state === 'alive' || state === 'suspect';
    if (wasLive && !isLive) this.live--;
    if (!wasLive && isLive) this.live++;
    m.state = state;
    m.stateChange = this.clock.now();
    this.o.onChange?.(view(m), prev);
  }

  // ---------------------------------------------------------------- receiving

  private handlePacket(data: Buffer, from: Address): void {
    this.counters.packetsReceived++;
    this.counters.bytesReceived += data.length;
    if (!this.running) return;
    const msgs = this.unwrap(data);
    if (!msgs) return;
    try {
      for (const m of msgs) this.handleMessage(m, from);
    } catch (err) {
      // A bug in a handler must not take the member down; it is counted and visible in metrics.
      this.counters.handlerErrors++;
      void err;
    }
  }

  private handleStream(data: Buffer, from: Address): Uint8Array | undefined {
    this.counters.streamsReceived++;
    if (!this.running) return undefined;
    const msgs = this.unwrap(data);
    if (!msgs) return undefined;
    try {
      const first = msgs[0]!;
      if (first.type === MsgType.Ping) {
        if (first.target !== this.id) return undefined;
        return this.wrap(encodePacket([{ type: MsgType.Ack, seq: first.seq, time: this.clock.now() }]));
      }
      if (first.type === MsgType.PushPull) {
        // Merge first, then answer: a stale verdict about us in their state is refuted (or re-announced)
        // right here, and the answer carries our new incarnation, so the requester (a member reconnecting
        // to one it holds dead) is corrected by this exchange rather than by later gossip.
        this.mergeRemote(first.entries, this.o.pushPullMaxNewMembers ?? DEFAULT_PUSH_PULL_MAX_NEW_MEMBERS);
        return this.wrap(encodePacket([{ type: MsgType.PushPull, join: false, entries: this.localState() }]));
      }
      for (const m of msgs) this.handleMessage(m, from);
    } catch {
      this.counters.handlerErrors++;
    }
    return undefined;
  }

  private handleMessage(m: Message, from: Address): void {
    switch (m.type) {
      case MsgType.Ping: {
        if (m.target !== this.id) return; // a ping for a member that used to live at this address
        // Our clock rides on the ack: the prober estimates our clock offset from the round trip.
        const ack = encodeMessage({ type: MsgType.Ack, seq: m.seq, time: this.clock.now() });
        const source = { host: m.sourceHost, port: m.sourcePort };
        this.sendWithPiggyback(source, [ack]);
        if (m.source !== this.id && !this.members.has(m.source)) this.learnFrom(source);
        return;
      }
      case MsgType.IndirectPing:
        return this.relayProbe(m);
      case MsgType.Ack:
        this.ackHandlers.get(m.seq)?.ack(m.time);
        return;
      case MsgType.Nack:
        this.ackHandlers.get(m.seq)?.nack();
        return;
      case MsgType.Alive:
        return this.aliveNode(m);
      case MsgType.Suspect:
        return this.suspectNode(m);
      case MsgType.Dead:
        return this.deadNode(m);
      case MsgType.Observation:
        this.counters.observationsReceived++;
        if (this.o.onObservation?.(m)) {
          this.counters.observationsAccepted++;
          this.publishObservation(m);
        }
        return;
      case MsgType.PushPull:
        return; // only meaningful on a stream
      case MsgType.Audit:
        this.o.onAudit?.(m.body, from);
        return;
      case MsgType.Learn:
        this.o.onLearn?.(m.body, from);
        return;
    }
    void from;
  }

  /** Probe `m.target` on behalf of `m.source`; forward its ack, or a nack if none comes in time. */
  private relayProbe(m: IndirectPing): void {
    const seq = this.nextSeq();
    const requester: Address = { host: m.sourceHost, port: m.sourcePort };
    let done = false;
    // Nack at 80 % of the probe timeout so that it reaches the requester before its probe deadline
    // (indirect probes start at probeTimeout; the deadline is one probe interval after the ping).
    const timer = this.after(this.p.probeTimeoutMs * 0.8, () => {
      if (done) return;
      done = true;
      this.ackHandlers.delete(seq);
      if (m.wantNack) this.sendParts(requester, [encodeMessage({ type: MsgType.Nack, seq: m.seq })]);
    });
    this.ackHandlers.set(seq, {
      ack: () => {
        if (done) return;
        done = true;
        timer.cancel();
        this.pending.delete(timer);
        this.ackHandlers.delete(seq);
        this.sendParts(requester, [encodeMessage({ type: MsgType.Ack, seq: m.seq })]);
      },
      nack: () => {},
    });
    const ping: Ping = { type: MsgType.Ping, seq, target: m.target, source: this.id, sourceHost: this.self.host, sourcePort: this.self.port };
    this.sendParts({ host: m.targetHost, port: m.targetPort }, [encodeMessage(ping)]);
  }

  /** Open the envelope (decrypt if keyed) and decode; count and drop anything wrong. Never throws. */
  private unwrap(data: Uint8Array): Message[] | undefined {
    let plain: Uint8Array | undefined = data;
    const keyring = this.sealing;
    if (data.length > 0 && data[0] === SEALED_MAGIC) {
      if (!keyring) { this.counters.droppedEncrypted++; return undefined; }
      plain = keyring.open(data);
      if (!plain) { this.counters.droppedUnknownKey++; return undefined; }
    } else if (keyring && data.length > 0 && data[0] === PLAIN_MAGIC) {
      this.counters.droppedPlaintext++;
      return undefined;
    }
    const msgs = decodePacket(plain, this.pushPullMax);
    if (!msgs) {
      if (pushPullCount(plain) > this.pushPullMax) this.counters.pushPullRefused++;
      else this.counters.droppedMalformed++;
    }
    return msgs;
  }

  // ---------------------------------------------------------------- sending

  private wrap(plain: Uint8Array): Uint8Array {
    const keyring = this.sealing;
    return keyring ? keyring.seal(plain) : plain;
  }

  private packetBudget(): number {
    return this.maxPacket - PACKET_HEADER_BYTES - (this.sealing ? SEAL_OVERHEAD : 0);
  }

  /** The keyring when it holds keys (encryption on), else undefined. */
  private get sealing(): Keyring | undefined {
    return this.keyring?.enabled ? this.keyring : undefined;
  }

  private get pushPullMax(): number {
    return this.o.pushPullMaxMembers ?? DEFAULT_PUSH_PULL_MAX_MEMBERS;
  }

  /** Whether a claimed incarnation for a member we hold at `known` is believable (see incarnation.ts). */
  private plausible(claimed: number, known: number): boolean {
    const window = this.o.incarnationWindow ?? (this.sealing ? 0 : DEFAULT_INCARNATION_WINDOW);
    if (known === 0 || plausibleJump(claimed, known, window)) return true;
    this.counters.implausibleIncarnations++;
    return false;
  }

  private sendWithPiggyback(to: Address, parts: Uint8Array[]): void {
    let used = 0;
    for (const p of parts) used += p.length;
    this.takeBroadcasts(this.packetBudget() - used, parts);
    this.sendParts(to, parts);
  }

  private sendParts(to: Address, parts: readonly Uint8Array[]): void {
    const packet = this.wrap(assemblePacket(this.writer, parts));
    this.counters.packetsSent++;
    this.counters.bytesSent += packet.length;
    this.transport.sendPacket(to, packet);
  }

  private stamp = 0;

  /**
   * Fill `budget` bytes with queued broadcasts: membership first up to its share, then observations in
   * their reserved share (plus what membership left), then membership again with any room still left.
   */
  private takeBroadcasts(budget: number, out: Uint8Array[]): void {
    if (budget <= MESSAGE_HEADER_BYTES) return;
    const limit = retransmitLimit(this.p.retransmitMult, this.live);
    const stamp = ++this.stamp;
    const reserve = Math.floor(budget * this.obsShare);
    let used = this.memberQueue.take(budget - reserve, limit, out, stamp);
    used += this.obsQueue.take(budget - used, limit, out, stamp);
    this.memberQueue.take(budget - used, limit, out, stamp);
  }

  private enqueueMember(id: string, m: Message): void {
    this.memberQueue.enqueue(id, encodeMessage(m));
  }

  private streamRequest(to: Address, data: Uint8Array, timeoutMs: number, cb: (msgs: Message[] | undefined) => void): void {
    this.counters.streamsSent++;
    this.transport.request(to, this.wrap(data), timeoutMs, (answer) => {
      if (!this.running && !this.leaving) return cb(undefined);
      const msgs = answer ? this.unwrap(answer) : undefined;
      if (!msgs) this.counters.streamsFailed++;
      cb(msgs);
    });
  }

  // ---------------------------------------------------------------- helpers

  private aliveMsg(m: Member): Alive {
    return { type: MsgType.Alive, incarnation: m.incarnation, node: m.id, host: m.host, port: m.port, publicKey: m.publicKey };
  }

  private nextSeq(): number {
    this.seqNo = (this.seqNo + 1) >>> 0;
    return this.seqNo;
  }

  private after(ms: number, fn: () => void): TimerHandle {
    const t = this.clock.setTimeout(() => {
      this.pending.delete(t);
      fn();
    }, ms);
    this.pending.add(t);
    return t;
  }

  private insertMember(m: Member): void {
    this.members.set(m.id, m);
    // Insert at a random position so that a new member is probed fairly soon (as memberlist does).
    const at = Math.floor(this.random() * (this.order.length + 1));
    if (at === this.order.length) {
      m.index = this.order.length;
      this.order.push(m);
    } else {
      const displaced = this.order[at]!;
      displaced.index = this.order.length;
      this.order.push(displaced);
      m.index = at;
      this.order[at] = m;
    }
    this.o.onChange?.(view(m), undefined);
  }

  private removeMember(m: Member): void {
    const last = this.order.pop()!;
    if (last !== m) {
      this.order[m.index] = last;
      last.index = m.index;
    }
    this.members.delete(m.id);
    this.offsets.delete(m.id);
    this.sampleAsked.delete(m.id);
    this.toSample.delete(m.id);
  }

  /** Up to k distinct random members (never self) matching `pred`: memberlist's kRandomNodes. */
  private randomMembers(k: number, pred: (m: Member) => boolean): Member[] {
    const out: Member[] = [];
    const n = this.order.length;
    if (n <= 1 || k <= 0) return out;
    for (let tries = 0; tries < 3 * n && out.length < k; tries++) {
      const m = this.order[Math.floor(this.random() * n)]!;
      if (m === this.self || out.includes(m) || !pred(m)) continue;
      out.push(m);
    }
    return out;
  }
}

function view(m: Member): MemberInfo {
  return { id: m.id, host: m.host, port: m.port, incarnation: m.incarnation, state: m.state, stateChange: m.stateChange, publicKey: m.publicKey };
}

function keysEqual(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (!a || !b) return a === b;
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);
}

/** The entry count of a plaintext packet whose first message is a push-pull, else 0 (for counting refusals). */
function pushPullCount(plain: Uint8Array): number {
  if (plain.length < PACKET_HEADER_BYTES + MESSAGE_HEADER_BYTES + 5 || plain[0] !== PLAIN_MAGIC || plain[2] !== MsgType.PushPull) return 0;
  const at = PACKET_HEADER_BYTES + MESSAGE_HEADER_BYTES + 1;
  return ((plain[at]! << 24) >>> 0) + (plain[at + 1]! << 16) + (plain[at + 2]! << 8) + plain[at + 3]!;
}
