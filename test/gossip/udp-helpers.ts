// Test helpers for members on real loopback sockets: a fast profile and a transport wrapper that injects
// loss and one-way partitions.
import { systemClock } from '../../src/core/clock.js';
import { Keyring } from '../../src/gossip/keyring.js';
import { Membership } from '../../src/gossip/membership.js';
import { NodeTransport } from '../../src/gossip/node-transport.js';
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
    if (this.blockedTo.has(to.port) || Math.random() < this.loss) return;
    this.inner.sendPacket(to, data);
  }
  request(to: Address, data: Uint8Array, timeoutMs: number, cb: (a: Buffer | undefined) => void): void {
    if (this.blockedTo.has(to.port)) { setTimeout(() => cb(undefined), 5).unref(); return; }
    this.inner.request(to, data, timeoutMs, cb);
  }
  close(): Promise<void> { return this.inner.close(); }
}

export interface UdpMember { m: Membership; t: FaultyTransport; id: string }

export async function udpMember(id: string, opts: { keys?: string[]; profile?: GossipProfile } = {}): Promise<UdpMember> {
  const inner = await NodeTransport.bind({ host: '127.0.0.1', port: 0 });
  const t = new FaultyTransport(inner);
  const m = new Membership({ id, advertise: inner.local, clock: systemClock, transport: t, profile: opts.profile ?? FAST_PROFILE, keyring: new Keyring(opts.keys ?? []) });
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
