// Test helpers for members on real loopback sockets: a fast profile and a transport wrapper that injects
// loss (seeded: the seed is printed when a test fails) and one-way partitions.
import t from 'tap';
import { systemClock } from '../../src/core/clock.js';
import { seededRandom } from '../../src/core/random.js';
import { Keyring } from '../../src/gossip/keyring.js';
import { Membership, type MembershipOptions } from '../../src/gossip/membership.js';
import { NodeTransport } from '../../src/gossip/node-transport.js';
import type { PeerLimitSettings } from '../../src/gossip/peer-limits.js';
import { LAN_PROFILE, type GossipProfile } from '../../src/gossip/profile.js';
import type { Address, Transport, TransportHandlers } from '../../src/gossip/transport.js';

/** LAN semantics, 5× faster, so that wall-clock tests stay short. */
export const FAST_PROFILE: GossipProfile = Object.freeze({
  ...LAN_PROFILE,
  probeIntervalMs: 200,
  probeTimeoutMs: 100,
  gossipIntervalMs: 40,
  pushPullIntervalMs: 2000,
  gossipToTheDeadMs: 6000,
  streamTimeoutMs: 1000,
});

/** Seed of the loss injected by every FaultyTransport of this test process (MESHMEDIC_TEST_SEED replays one). */
export const LOSS_SEED = Number(process.env.MESHMEDIC_TEST_SEED ?? Math.floor(Math.random() * 0x7fffffff));
const lossRandom = seededRandom(LOSS_SEED);
t.afterEach((tt) => {
  if (!tt.passing()) tt.comment(`injected loss seed: ${LOSS_SEED} (replay with MESHMEDIC_TEST_SEED=${LOSS_SEED})`);
});

export class FaultyTransport implements Transport {
  loss = 0;
  /** Ports this member cannot send to (datagrams and streams). */
  readonly blockedTo = new Set<number>();
  constructor(readonly inner: NodeTransport) {}
  get local(): Address { return this.inner.local; }
  setHandlers(h: TransportHandlers): void {
    // A stream's answer goes back on the caller's connection, whose port we cannot match against
    // `blockedTo`: while any block is set, answer no stream (the tests block towards every peer).
    this.inner.setHandlers({ onPacket: h.onPacket, onStream: (d, f) => (this.blockedTo.size > 0 ? undefined : h.onStream(d, f)) });
  }
  sendPacket(to: Address, data: Uint8Array): void {
    if (this.blockedTo.has(to.port) || (this.loss > 0 && lossRandom() < this.loss)) return;
    this.inner.sendPacket(to, data);
  }
  request(to: Address, data: Uint8Array, timeoutMs: number, cb: (a: Buffer | undefined) => void): void {
    if (this.blockedTo.has(to.port)) { setTimeout(() => cb(undefined), 5).unref(); return; }
    this.inner.request(to, data, timeoutMs, cb);
  }
  close(): Promise<void> { return this.inner.close(); }
}

export interface UdpMember { m: Membership; t: FaultyTransport; id: string }

export interface UdpMemberOptions {
  keys?: string[];
  profile?: GossipProfile;
  limits?: Partial<PeerLimitSettings>;
  maxStreamBytes?: number;
  membership?: Partial<Pick<MembershipOptions, 'pushPullMaxMembers' | 'pushPullMaxNewMembers' | 'incarnationWindow' | 'onChange'>>;
}

export async function udpMember(id: string, opts: UdpMemberOptions = {}): Promise<UdpMember> {
  const inner = await NodeTransport.bind({ host: '127.0.0.1', port: 0, limits: opts.limits, maxStreamBytes: opts.maxStreamBytes });
  const t = new FaultyTransport(inner);
  const m = new Membership({ id, advertise: inner.local, clock: systemClock, transport: t, profile: opts.profile ?? FAST_PROFILE, keyring: new Keyring(opts.keys ?? []), ...(opts.membership ?? {}) });
  m.start();
  return { m, t, id };
}

export function joinP(m: Membership, seed: Address): Promise<number> {
  return new Promise((r) => m.join([seed], r));
}

export async function waitFor(cond: () => boolean, timeoutMs: number, stepMs = 20): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if (cond()) return Date.now() - t0;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return cond() ? Date.now() - t0 : -1;
}

export async function stopAll(list: readonly UdpMember[]): Promise<void> {
  for (const x of list) {
    x.m.shutdown();
    await x.t.close();
  }
}
