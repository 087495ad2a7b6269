// The real transport: UDP datagrams (node:dgram) and TCP one-shot streams (node:net) on the same port.
// A stream frame is a 4-byte big-endian length then that many bytes; one request, one answer, close.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createConnection, createServer, isIPv6, type Server, type Socket } from 'node:net';
import { MAX_STREAM_BYTES } from './codec.js';
import { DEFAULT_PEER_LIMITS, PeerLimiter, type PeerLimitSettings } from './peer-limits.js';
import type { Address, Transport, TransportHandlers } from './transport.js';

export interface NodeTransportOptions {
  readonly host: string;
  /** 0 picks a free port (the same for UDP and TCP). */
  readonly port: number;
  /** Largest stream frame accepted (default 4 MiB); larger length prefixes close the connection at once. */
  readonly maxStreamBytes?: number;
  /** Most inbound stream connections open at once (default 256). */
  readonly maxConnections?: number;
  /** Per-source rate limits and the shared budget for unfinished inbound frames (defaults: DEFAULT_PEER_LIMITS). */
  readonly limits?: Partial<PeerLimitSettings>;
  /** Called when a socket reports an error (the transport keeps running). */
  readonly onError?: (err: Error) => void;
}

export class NodeTransport implements Transport {
  private handlers: TransportHandlers | undefined;
  private readonly sockets = new Set<Socket>();
  private closed = false;
  /** Everything here happens before a packet is authenticated, so it is bounded per source and in total. */
  readonly limiter: PeerLimiter;

  private constructor(
    readonly local: Address,
    private readonly udp: UdpSocket,
    private readonly tcp: Server,
    private readonly opts: NodeTransportOptions,
  ) {
    this.limiter = new PeerLimiter({ ...DEFAULT_PEER_LIMITS, ...(opts.limits ?? {}) }, Date.now);
    udp.on('message', (msg, rinfo) => {
      if (this.closed || !this.limiter.admitPacket(rinfo.address)) return;
      this.handlers?.onPacket(msg, { host: rinfo.address, port: rinfo.port });
    });
    udp.on('error', (err) => opts.onError?.(err));
    // Streams are short (one frame each way): a cap keeps a flood of idle connections from exhausting us.
    tcp.maxConnections = opts.maxConnections ?? 256;
    tcp.on('connection', (s) => this.serveStream(s));
    tcp.on('error', (err) => opts.onError?.(err));
  }

  /** Bind UDP and TCP on the same address; with port 0, retry until both get the same free port. */
  static async bind(opts: NodeTransportOptions): Promise<NodeTransport> {
    const type = isIPv6(opts.host) ? 'udp6' : 'udp4';
    let lastErr: unknown;
    for (let attempt = 0; attempt < 20; attempt++) {
      const tcp = createServer({ pauseOnConnect: false });
      try {
        await new Promise<void>((resolve, reject) => {
          tcp.once('error', reject);
          tcp.listen({ host: opts.host, port: opts.port, exclusive: true }, () => { tcp.off('error', reject); resolve(); });
        });
      } catch (err) {
        lastErr = err;
        tcp.close();
        if (opts.port !== 0) throw err;
        continue;
      }
      const port = (tcp.address() as { port: number }).port;
      const udp = createSocket({ type, reuseAddr: false });
      try {
        await new Promise<void>((resolve, reject) => {
          udp.once('error', reject);
          udp.bind({ address: opts.host, port, exclusive: true }, () => { udp.off('error', reject); resolve(); });
        });
      } catch (err) {
        lastErr = err;
        udp.close();
        await new Promise<void>((r) => tcp.close(() => r()));
        if (opts.port !== 0) throw err;
        continue; // the UDP port was taken: try another TCP port
      }
      return new NodeTransport({ host: opts.host, port }, udp, tcp, opts);
    }
    throw lastErr instanceof Error ? lastErr : new Error('cannot bind the gossip port');
  }

  setHandlers(h: TransportHandlers): void {
    this.handlers = h;
  }

  sendPacket(to: Address, data: Uint8Array): void {
    if (this.closed) return;
    try {
      this.udp.send(data, to.port, to.host, (err) => { if (err) this.opts.onError?.(err); });
    } catch (err) {
      this.opts.onError?.(err as Error);
    }
  }

  request(to: Address, data: Uint8Array, timeoutMs: number, cb: (answer: Buffer | undefined) => void): void {
    if (this.closed) return cb(undefined);
    let done = false;
    const s = createConnection({ host: to.host, port: to.port });
    this.sockets.add(s);
    const finish = (answer: Buffer | undefined) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      this.sockets.delete(s);
      s.destroy();
      cb(answer);
    };
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    timer.unref?.();
    s.on('error', () => finish(undefined));
    s.on('close', () => finish(undefined));
    s.on('connect', () => {
      const head = Buffer.allocUnsafe(4);
      head.writeUInt32BE(data.length, 0);
      s.write(head);
      s.write(data);
    });
    readFrame(s, this.opts.maxStreamBytes ?? MAX_STREAM_BYTES, undefined, finish);
  }

  private serveStream(s: Socket): void {
    const peer = s.remoteAddress ?? '';
    if (this.closed || !this.limiter.admitStream(peer)) { s.destroy(); return; }
    this.sockets.add(s);
    const timer = setTimeout(() => s.destroy(), 10_000);
    timer.unref?.();
    s.on('error', () => s.destroy());
    s.on('close', () => { clearTimeout(timer); this.sockets.delete(s); this.limiter.releaseStream(peer); });
    readFrame(s, this.opts.maxStreamBytes ?? MAX_STREAM_BYTES, this.limiter, (frame) => {
      if (!frame || this.closed) { s.destroy(); return; }
      let answer: Uint8Array | undefined;
      try {
        answer = this.handlers?.onStream(frame, { host: s.remoteAddress ?? '', port: s.remotePort ?? 0 });
      } catch {
        answer = undefined;
      }
      if (!answer) { s.destroy(); return; }
      const head = Buffer.allocUnsafe(4);
      head.writeUInt32BE(answer.length, 0);
      s.write(head);
      s.end(answer);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await Promise.all([
      new Promise<void>((r) => { try { this.udp.close(() => r()); } catch { r(); } }),
      new Promise<void>((r) => this.tcp.close(() => r())),
    ]);
  }
}

/**
 * Read one length-prefixed frame; `cb(undefined)` on a bad length (random bytes), an early close, or when
 * the shared budget for unfinished frames cannot hold the next chunk. The length prefix is checked against
 * `max` as soon as its 4 bytes are in, and every chunk is reserved from the budget before it is kept, so
 * unauthenticated connections cannot make us hold more than the budget in total.
 */
function readFrame(s: Socket, max: number, budget: PeerLimiter | undefined, cb: (frame: Buffer | undefined) => void): void {
  const chunks: Buffer[] = [];
  let have = 0;
  let want = -1;
  let done = false;
  let reserved = 0;
  const finish = (f: Buffer | undefined) => {
    if (done) return;
    done = true;
    s.off('data', onData);
    budget?.release(reserved);
    reserved = 0;
    chunks.length = 0;
    if (!f) s.destroy();
    cb(f);
  };
  const onData = (c: Buffer) => {
    // Never keep more than the frame can need, and never beyond the budget.
    if (want >= 0 && have + c.length > 4 + want) c = c.subarray(0, 4 + want - have);
    if (budget) {
      if (!budget.reserve(c.length)) return finish(undefined);
      reserved += c.length;
    }
    chunks.push(c);
    have += c.length;
    if (want < 0 && have >= 4) {
      const all = Buffer.concat(chunks);
      chunks.length = 0;
      chunks.push(all);
      want = all.readUInt32BE(0);
      if (want > max) return finish(undefined);
    }
    if (want >= 0 && have >= 4 + want) {
      const all = Buffer.concat(chunks);
      finish(all.subarray(4, 4 + want));
    }
  };
  s.on('data', onData);
  s.on('end', () => finish(undefined));
  s.on('close', () => finish(undefined));
}
