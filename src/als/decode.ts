// Reads Envoy's StreamAccessLogsMessage (envoy.service.accesslog.v3) straight from the wire, field by
// field, into one reused entry object: only what healing needs (cluster, upstream host, response code,
// response flags, timings, sample rate). Everything else in an entry is skipped without being decoded.
import { WIRE_I64, WIRE_LEN, WIRE_VARINT, WireError, WireReader } from './wire.js';

export const ENTRY_HTTP = 0;
export const ENTRY_TCP = 1;

/** One access-log entry as far as healing is concerned; the decoder reuses a single instance. */
export interface AlsEntry {
  kind: number;
  /** common_properties.upstream_cluster ('' when absent). */
  cluster: string;
  /** upstream_remote_address socket address ('' when absent or not an IP socket). */
  host: string;
  port: number;
  /** HTTP response code (0 when absent). */
  code: number;
  /** ResponseFlags as a bit set: bit N is set when the flag with field number N is true. */
  flags: number;
  /** time_to_last_upstream_rx_byte in µs (-1 when absent). */
  upstreamUs: number;
  /** duration, or time_to_last_downstream_tx_byte, in µs (-1 when absent). */
  totalUs: number;
  /** common_properties.sample_rate (0 when unset). */
  sampleRate: number;
}

export function newEntry(): AlsEntry {
  return { kind: ENTRY_HTTP, cluster: '', host: '', port: 0, code: 0, flags: 0, upstreamUs: -1, totalUs: -1, sampleRate: 0 };
}

/** ResponseFlags field numbers (envoy.data.accesslog.v3.ResponseFlags), as bits of AlsEntry.flags. */
export const Flag = {
  FailedLocalHealthcheck: 1 << 1,
  NoHealthyUpstream: 1 << 2,
  UpstreamRequestTimeout: 1 << 3,
  LocalReset: 1 << 4,
  UpstreamRemoteReset: 1 << 5,
  UpstreamConnectionFailure: 1 << 6,
  UpstreamConnectionTermination: 1 << 7,
  UpstreamOverflow: 1 << 8,
  NoRouteFound: 1 << 9,
  DelayInjected: 1 << 10,
  FaultInjected: 1 << 11,
  RateLimited: 1 << 12,
  Unauthorized: 1 << 13,
  RateLimitServiceError: 1 << 14,
  DownstreamConnectionTermination: 1 << 15,
  UpstreamRetryLimitExceeded: 1 << 16,
  StreamIdleTimeout: 1 << 17,
  InvalidEnvoyRequestHeaders: 1 << 18,
  DownstreamProtocolError: 1 << 19,
  UpstreamMaxStreamDurationReached: 1 << 20,
  ResponseFromCacheFilter: 1 << 21,
  NoFilterConfigFound: 1 << 22,
  DurationTimeout: 1 << 23,
  UpstreamProtocolError: 1 << 24,
  NoClusterFound: 1 << 25,
  OverloadManager: 1 << 26,
  DnsResolutionFailure: 1 << 27,
  DownstreamRemoteReset: 1 << 28,
} as const;

export interface DecodeResult {
  /** Byte range of the Identifier (node, log_name), present on a stream's first message; -1 when absent. */
  identifierStart: number;
  identifierEnd: number;
  /** Entries passed to the sink. */
  entries: number;
  /** Entries beyond maxEntries, not read. */
  overLimit: number;
}

/** Interns the few strings a batch repeats (cluster names, host addresses) by comparing bytes. */
class StringCache {
  private readonly keys: (Uint8Array | null)[];
  private readonly values: string[];
  private next = 0;
  constructor(size: number) {
    this.keys = new Array(size).fill(null);
    this.values = new Array(size).fill('');
  }
  get(buf: Uint8Array, start: number, end: number): string {
    const len = end - start;
    outer: for (let i = 0; i < this.keys.length; i++) {
      const k = this.keys[i];
      if (k === null || k.length !== len) continue;
      for (let j = 0; j < len; j++) if (k[j] !== buf[start + j]) continue outer;
      return this.values[i]!;
    }
    const s = Buffer.from(buf.buffer, buf.byteOffset + start, len).toString('utf8');
    const slot = this.next;
    this.next = (slot + 1) % this.keys.length;
    this.keys[slot] = buf.slice(start, end);
    this.values[slot] = s;
    return s;
  }
}

export class AccessLogDecoder {
  private readonly r = new WireReader();
  private readonly entry = newEntry();
  private readonly strings = new StringCache(16);
  private readonly result: DecodeResult = { identifierStart: -1, identifierEnd: -1, entries: 0, overLimit: 0 };

  /**
   * Decode one StreamAccessLogsMessage, calling `sink` for each entry (the same object every time: copy
   * what you keep). Throws WireError on malformed bytes; entries before the error were already delivered.
   */
  decode(buf: Uint8Array, maxEntries: number, sink: (e: AlsEntry) => void): DecodeResult {
    const res = this.result;
    res.identifierStart = -1;
    res.identifierEnd = -1;
    res.entries = 0;
    res.overLimit = 0;
    const r = this.r.reset(buf, 0, buf.length);
    while (!r.done()) {
      const tag = r.tag();
      const field = tag >>> 3;
      const wt = tag & 7;
      if (wt === WIRE_LEN && (field === 1 || field === 2 || field === 3)) {
        const len = r.length();
        const start = r.pos;
        const end = start + len;
        if (field === 1) {
          res.identifierStart = start;
          res.identifierEnd = end;
        } else {
          this.entries(buf, start, end, field === 2 ? ENTRY_HTTP : ENTRY_TCP, maxEntries, sink);
        }
        r.reset(buf, end, buf.length);
      } else {
        r.skip(wt);
      }
    }
    return res;
  }

  // HTTPAccessLogEntries / TCPAccessLogEntries: field 1, repeated entry.
  private entries(buf: Uint8Array, start: number, end: number, kind: number, maxEntries: number, sink: (e: AlsEntry) => void): void {
    const r = this.r;
    let pos = start;
    while (pos < end) {
      r.reset(buf, pos, end);
      const tag = r.tag();
      if (tag >>> 3 === 1 && (tag & 7) === WIRE_LEN) {
        const len = r.length();
        const s = r.pos;
        pos = s + len;
        if (this.result.entries >= maxEntries) {
          this.result.overLimit++;
          continue;
        }
        this.readEntry(buf, s, s + len, kind);
        this.result.entries++;
        sink(this.entry);
      } else {
        r.skip(tag & 7);
        pos = r.pos;
      }
    }
  }

  private readEntry(buf: Uint8Array, start: number, end: number, kind: number): void {
    const e = this.entry;
    e.kind = kind;
    e.cluster = '';
    e.host = '';
    e.port = 0;
    e.code = 0;
    e.flags = 0;
    e.upstreamUs = -1;
    e.totalUs = -1;
    e.sampleRate = 0;
    let downstreamTxUs = -1;
    const r = this.r;
    let pos = start;
    while (pos < end) {
      r.reset(buf, pos, end);
      const tag = r.tag();
      const field = tag >>> 3;
      const wt = tag & 7;
      if (wt !== WIRE_LEN) {
        r.skip(wt);
        pos = r.pos;
        continue;
      }
      const len = r.length();
      const s = r.pos;
      pos = s + len;
      if (field === 1) downstreamTxUs = this.readCommon(buf, s, s + len);
      else if (field === 4 && kind === ENTRY_HTTP) this.readResponse(buf, s, s + len);
    }
    if (e.totalUs < 0) e.totalUs = downstreamTxUs;
  }

  // AccessLogCommon; returns time_to_last_downstream_tx_byte (µs, -1 if absent) as a fallback total.
  private readCommon(buf: Uint8Array, start: number, end: number): number {
    const e = this.entry;
    const r = this.r;
    let downstreamTx = -1;
    let pos = start;
    while (pos < end) {
      r.reset(buf, pos, end);
      const tag = r.tag();
      const field = tag >>> 3;
      const wt = tag & 7;
      if (field === 1 && wt === WIRE_I64) {
        e.sampleRate = r.double();
        pos = r.pos;
        continue;
      }
      if (wt !== WIRE_LEN) {
        r.skip(wt);
        pos = r.pos;
        continue;
      }
      const len = r.length();
      const s = r.pos;
      pos = s + len;
      switch (field) {
        case 10: e.upstreamUs = this.readDurationUs(buf, s, s + len); break;
        case 12: downstreamTx = this.readDurationUs(buf, s, s + len); break;
        case 23: e.totalUs = this.readDurationUs(buf, s, s + len); break;
        case 13: this.readAddress(buf, s, s + len); break;
        case 15: e.cluster = this.strings.get(buf, s, s + len); break;
        case 16: e.flags = this.readFlags(buf, s, s + len); break;
        default: break;
      }
    }
    return downstreamTx;
  }

  // google.protobuf.Duration → µs. Negative or absurd durations are malformed.
  private readDurationUs(buf: Uint8Array, start: number, end: number): number {
    const r = this.r;
    r.reset(buf, start, end);
    let seconds = 0;
    let nanos = 0;
    while (!r.done()) {
      const tag = r.tag();
      if (tag === (1 << 3 | WIRE_VARINT)) seconds = r.varint();
      else if (tag === (2 << 3 | WIRE_VARINT)) nanos = r.varint();
      else r.skip(tag & 7);
    }
    if (seconds > 315_576_000_000 || nanos > 999_999_999) throw new WireError('duration out of range (negative or over 10,000 years)');
    return seconds * 1e6 + Math.floor(nanos / 1000);
  }

  // config.core.v3.Address: only socket_address (field 1) names an upstream host.
  private readAddress(buf: Uint8Array, start: number, end: number): void {
    const r = this.r;
    let pos = start;
    while (pos < end) {
      r.reset(buf, pos, end);
      const tag = r.tag();
      if (tag === (1 << 3 | WIRE_LEN)) {
        const len = r.length();
        const s = r.pos;
        pos = s + len;
        this.readSocketAddress(buf, s, pos);
      } else {
        r.skip(tag & 7);
        pos = r.pos;
      }
    }
  }

  private readSocketAddress(buf: Uint8Array, start: number, end: number): void {
    const e = this.entry;
    const r = this.r;
    let pos = start;
    while (pos < end) {
      r.reset(buf, pos, end);
      const tag = r.tag();
      if (tag === (2 << 3 | WIRE_LEN)) {
        const len = r.length();
        const s = r.pos;
        pos = s + len;
        e.host = this.strings.get(buf, s, pos);
      } else if (tag === (3 << 3 | WIRE_VARINT)) {
        e.port = r.varint();
        pos = r.pos;
      } else {
        r.skip(tag & 7);
        pos = r.pos;
      }
    }
    if (e.port > 65535) throw new WireError(`port_value ${e.port} out of range`);
  }

  private readFlags(buf: Uint8Array, start: number, end: number): number {
    const r = this.r;
    r.reset(buf, start, end);
    let bits = 0;
    while (!r.done()) {
      const tag = r.tag();
      const field = tag >>> 3;
      const wt = tag & 7;
      if (wt === WIRE_VARINT) {
        if (r.varint() !== 0 && field < 31) bits |= 1 << field;
      } else if (field === 13 && wt === WIRE_LEN) {
        // unauthorized_details: present means the request was refused by an auth filter.
        r.skip(wt);
        bits |= Flag.Unauthorized;
      } else {
        r.skip(wt);
      }
    }
    return bits;
  }

  // HTTPResponseProperties: response_code is a google.protobuf.UInt32Value (field 1 → value field 1).
  private readResponse(buf: Uint8Array, start: number, end: number): void {
    const r = this.r;
    let pos = start;
    while (pos < end) {
      r.reset(buf, pos, end);
      const tag = r.tag();
      if (tag === (1 << 3 | WIRE_LEN)) {
        const len = r.length();
        const s = r.pos;
        pos = s + len;
        r.reset(buf, s, s + len);
        while (!r.done()) {
          const t2 = r.tag();
          if (t2 === (1 << 3 | WIRE_VARINT)) this.entry.code = r.varint();
          else r.skip(t2 & 7);
        }
      } else {
        r.skip(tag & 7);
        pos = r.pos;
      }
    }
  }
}
