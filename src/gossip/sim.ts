// A simulated network for the membership protocol: a heap-scheduled virtual clock (cheap with thousands
// of members), per-link latency, random loss, one-way partitions and stalled members. Tests and the
// benchmark run the real protocol code over it.
import { VirtualClock } from '../core/clock.js';
import { seededRandom } from '../core/random.js';

export { VirtualClock, seededRandom };
import type { Address, Transport, TransportHandlers } from './transport.js';

export interface SimNetworkOptions {
  /** One-way latency, ms: base + uniform jitter. */
  readonly latencyMs?: number;
  readonly jitterMs?: number;
  /** Probability that a datagram is lost (streams are reliable, as TCP). */
  readonly loss?: number;
  /**
   * Streams suffer `loss` too, as TCP does: each lost segment is retransmitted after Linux's timeouts
   * (1 s, doubling, for the SYN and SYN-ACK; 200 ms, doubling, for data), so a stream arrives late or
   * times out instead of failing. Off by default (streams then never see loss).
   */
  readonly streamLoss?: boolean;
  readonly random?: () => number;
}

const key = (a: Address) => `${a.host}:${a.port}`;

/** The simulated network: endpoints keyed by address. */
export class SimNetwork {
  readonly clock: VirtualClock;
  loss: number;
  streamLoss: boolean;
  private readonly latency: number;
  private readonly jitter: number;
  private readonly random: () => number;
  private readonly nodes = new Map<string, SimTransport>();
  /** Directed links that drop everything: "from>to". */
  private readonly blocked = new Set<string>();
  /** Directed links that drop datagrams only (UDP filtered, TCP open). */
  private readonly blockedPackets = new Set<string>();
  /** Addresses whose processing is stalled (packets to them queue until the stall ends). */
  private readonly stalledUntil = new Map<string, number>();
  packets = 0;
  bytes = 0;
  dropped = 0;

  constructor(clock: VirtualClock, opts: SimNetworkOptions = {}) {
    this.clock = clock;
    this.loss = opts.loss ?? 0;
    this.streamLoss = opts.streamLoss ?? false;
    this.latency = opts.latencyMs ?? 1;
    this.jitter = opts.jitterMs ?? 1;
    this.random = opts.random ?? Math.random;
  }

  /** A transport bound at `address`. */
  attach(address: Address): SimTransport {
    const t = new SimTransport(this, address);
    this.nodes.set(key(address), t);
    return t;
  }

  detach(address: Address): void {
    this.nodes.delete(key(address));
  }

  /** Drop every packet and stream from `from` to `to` (one direction only). */
  block(from: Address, to: Address): void {
    this.blocked.add(`${key(from)}>${key(to)}`);
  }

  unblock(from: Address, to: Address): void {
    this.blocked.delete(`${key(from)}>${key(to)}`);
  }

  /** Drop datagrams (not streams) from `from` to `to`. */
  blockPackets(from: Address, to: Address): void {
    this.blockedPackets.add(`${key(from)}>${key(to)}`);
  }

  healAll(): void {
    this.blocked.clear();
    this.blockedPackets.clear();
  }

  /** Model a starved process (GC pause, CPU throttling): it handles nothing until `ms` from now. */
  stall(address: Address, ms: number): void {
    this.stalledUntil.set(key(address), this.clock.now() + ms);
  }

  private delay(): number {
    return this.latency + this.random() * this.jitter;
  }

  /** Extra delay of one TCP segment under loss: retransmission timeouts until a copy gets through. */
  private retransmitDelay(firstRtoMs: number): number {
    if (!this.streamLoss || this.loss <= 0) return 0;
    let extra = 0;
    for (let rto = firstRtoMs; this.random() < this.loss && extra < 120_000; rto *= 2) extra += rto;
    return extra;
  }

  /** Deliver `fn` at the destination after network latency, later if the destination is stalled. */
  private deliver(to: string, fn: () => void, extraMs = 0): void {
    let d = this.delay() + extraMs;
    const stall = this.stalledUntil.get(to);
    const now = this.clock.now();
    if (stall !== undefined) {
      if (stall > now + d) d = stall - now + this.random();
      else if (stall <= now) this.stalledUntil.delete(to);
    }
    this.clock.setTimeout(fn, d);
  }

  /** @internal */
  sendPacket(from: Address, to: Address, data: Uint8Array): void {
    this.packets++;
    this.bytes += data.length;
    const k = key(to);
    const link = `${key(from)}>${k}`;
    if (this.blocked.has(link) || this.blockedPackets.has(link) || this.random() < this.loss) {
      this.dropped++;
      return;
    }
    const copy = Buffer.from(data);
    this.deliver(k, () => this.nodes.get(k)?.receivePacket(copy, from));
  }

  /** @internal A stream: reliable unless the path is blocked or the peer is gone. */
  request(from: Address, to: Address, data: Uint8Array, timeoutMs: number, cb: (a: Buffer | undefined) => void): void {
    this.bytes += data.length;
    let answered = false;
    const answer = (a: Buffer | undefined) => {
      if (answered) return;
      answered = true;
      cb(a);
    };
    const timer = this.clock.setTimeout(() => answer(undefined), timeoutMs);
    const k = key(to);
    const fk = key(from);
    if (this.blocked.has(`${fk}>${k}`)) return;
    const copy = Buffer.from(data);
    // Handshake (SYN, SYN-ACK) and the request arrive together here; under loss each costs its retransmissions.
    const connect = this.retransmitDelay(1000) + this.retransmitDelay(1000) + this.retransmitDelay(200);
    this.deliver(k, () => {
      const node = this.nodes.get(k);
      if (!node) return;
      const resp = node.receiveStream(copy, from);
      if (!resp || this.blocked.has(`${k}>${fk}`)) return;
      this.bytes += resp.length;
      const r = Buffer.from(resp);
      this.deliver(fk, () => {
        timer.cancel();
        answer(r);
      }, this.retransmitDelay(200));
    }, connect);
  }
}

export class SimTransport implements Transport {
  private handlers: TransportHandlers | undefined;
  private closed = false;
  constructor(private readonly net: SimNetwork, readonly local: Address) {}

  setHandlers(h: TransportHandlers): void {
    this.handlers = h;
  }

  sendPacket(to: Address, data: Uint8Array): void {
    if (!this.closed) this.net.sendPacket(this.local, to, data);
  }

  request(to: Address, data: Uint8Array, timeoutMs: number, cb: (answer: Buffer | undefined) => void): void {
    if (this.closed) return cb(undefined);
    this.net.request(this.local, to, data, timeoutMs, cb);
  }

  receivePacket(data: Buffer, from: Address): void {
    if (!this.closed) this.handlers?.onPacket(data, from);
  }

  receiveStream(data: Buffer, from: Address): Uint8Array | undefined {
    return this.closed ? undefined : this.handlers?.onStream(data, from);
  }

  /** Hard stop: no leave, nothing more sent or received (a crashed process). */
  async close(): Promise<void> {
    this.closed = true;
    this.net.detach(this.local);
  }
}
