// Test helper: a cluster of Membership instances over the simulated network, in virtual time.
import { Membership, type MembershipOptions } from '../../src/gossip/membership.js';
import { LAN_PROFILE, type GossipProfile } from '../../src/gossip/profile.js';
import { VirtualClock, seededRandom, SimNetwork, type SimTransport } from '../../src/gossip/sim.js';
import type { Keyring } from '../../src/gossip/keyring.js';

export interface SimMember {
  m: Membership;
  t: SimTransport;
  addr: { host: string; port: number };
}

export interface SimClusterOptions {
  n: number;
  seed?: number;
  loss?: number;
  /** Streams suffer the loss too (TCP retransmission delays); see SimNetworkOptions. */
  streamLoss?: boolean;
  profile?: GossipProfile;
  keyring?: (i: number) => Keyring | undefined;
  extra?: (i: number) => Partial<MembershipOptions>;
}

export function simCluster(o: SimClusterOptions) {
  const clock = new VirtualClock();
  const random = seededRandom(o.seed ?? 1);
  const net = new SimNetwork(clock, { loss: o.loss ?? 0, streamLoss: o.streamLoss ?? false, random, latencyMs: 1, jitterMs: 2 });
  const members: SimMember[] = [];
  for (let i = 0; i < o.n; i++) {
    const addr = { host: '10.0.0.' + (i + 1), port: 7946 };
    const t = net.attach(addr);
    const m = new Membership({
      id: `n${i}`, advertise: addr, clock, transport: t, profile: o.profile ?? LAN_PROFILE, random,
      keyring: o.keyring?.(i), ...(o.extra?.(i) ?? {}),
    });
    members.push({ m, t, addr });
  }
  return {
    clock, net, members,
    startAll() { for (const x of members) x.m.start(); },
    /** Everyone joins through member 0. */
    joinAll() {
      for (let i = 1; i < members.length; i++) members[i]!.m.join([members[0]!.addr]);
    },
    stateOf(observer: number, id: string) { return members[observer]!.m.get(id)?.state; },
    run(ms: number) { clock.advance(ms); },
    shutdown() { for (const x of members) { x.m.shutdown(); void x.t.close(); } },
  };
}
