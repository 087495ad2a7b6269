// Limits applied to gossip traffic before it is authenticated or decoded: per-source token buckets for
// datagrams and stream connections, concurrent streams per source, and one shared budget for bytes held
// by unfinished inbound frames. Pure (time comes from the caller), used by the socket transport.

export interface PeerLimitSettings {
  /** Datagrams accepted per second from one source address (sustained) and as a burst. */
  readonly packetsPerSecond: number;
  readonly packetBurst: number;
  /** Inbound stream connections accepted per second from one source address, and as a burst. */
  readonly streamsPerSecond: number;
  readonly streamBurst: number;
  /** Inbound stream connections open at once from one source address. */
  readonly maxStreamsPerPeer: number;
  /** Bytes all unfinished inbound frames may hold together (pre-authentication memory). */
  readonly maxBufferedBytes: number;
}

export const DEFAULT_PEER_LIMITS: PeerLimitSettings = Object.freeze({
  packetsPerSecond: 1000,
  packetBurst: 2000,
  streamsPerSecond: 10,
  streamBurst: 40,
  maxStreamsPerPeer: 8,
  maxBufferedBytes: 16 * 1024 * 1024,
});

/** Sources tracked at once; beyond it the least recently seen is forgotten (spoofed sources are cheap). */
const MAX_TRACKED_SOURCES = 4096;

interface Bucket {
  tokens: number;
  at: number;
}

interface Source {
  packets: Bucket | undefined;
  streams: Bucket | undefined;
  open: number;
}

/** Token bucket refill and take (kept local so that gossip depends on no other module for it). */
function take(b: Bucket, perSecond: number, burst: number, now: number): boolean {
  if (now > b.at) {
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * perSecond);
    b.at = now;
  }
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

export class PeerLimiter {
  private readonly sources = new Map<string, Source>();
  private buffered = 0;
  /** Highest value `buffered` reached (exported as a gauge; tests check it). */
  peakBuffered = 0;
  readonly counters = { packetsLimited: 0, streamsLimited: 0, streamsOverBudget: 0 };

  constructor(
    readonly settings: PeerLimitSettings,
    private readonly now: () => number,
  ) {}

  /** A datagram from `host`: false when that source is over its rate (the datagram is dropped). */
  admitPacket(host: string): boolean {
    const s = this.source(host);
    const now = this.now();
    s.packets ??= { tokens: this.settings.packetBurst, at: now };
    if (take(s.packets, this.settings.packetsPerSecond, this.settings.packetBurst, now)) return true;
    this.counters.packetsLimited++;
    return false;
  }

  /** An inbound stream from `host`: false when over its rate or its concurrent cap; else call `release` once it ends. */
  admitStream(host: string): boolean {
    const s = this.source(host);
    if (s.open >= this.settings.maxStreamsPerPeer) {
      this.counters.streamsLimited++;
      return false;
    }
    const now = this.now();
    s.streams ??= { tokens: this.settings.streamBurst, at: now };
    if (!take(s.streams, this.settings.streamsPerSecond, this.settings.streamBurst, now)) {
      this.counters.streamsLimited++;
      return false;
    }
    s.open++;
    return true;
  }

  releaseStream(host: string): void {
    const s = this.sources.get(host);
    if (s && s.open > 0) s.open--;
  }

  /** Reserve `n` more buffered bytes for an unfinished frame; false (nothing reserved) over the budget. */
  reserve(n: number): boolean {
    if (this.buffered + n > this.settings.maxBufferedBytes) {
      this.counters.streamsOverBudget++;
      return false;
    }
    this.buffered += n;
    if (this.buffered > this.peakBuffered) this.peakBuffered = this.buffered;
    return true;
  }

  release(n: number): void {
    this.buffered = Math.max(0, this.buffered - n);
  }

  get bufferedBytes(): number {
    return this.buffered;
  }

  private source(host: string): Source {
    let s = this.sources.get(host);
    if (s) {
      // Most recently seen last, so the first entry is the one to forget.
      this.sources.delete(host);
      this.sources.set(host, s);
      return s;
    }
    if (this.sources.size >= MAX_TRACKED_SOURCES) {
      for (const [k, v] of this.sources) {
        if (v.open === 0) { this.sources.delete(k); break; }
      }
    }
    s = { packets: undefined, streams: undefined, open: 0 };
    this.sources.set(host, s);
    return s;
  }
}
