// The gossip wire format: a versioned, compact binary codec for SWIM messages and signed observations.
// Decoding never throws to its caller: malformed input of any kind yields `undefined` (see docs/gossip.md).

/** First byte of a plaintext packet: 'M' for meshmedic. */
export const PLAIN_MAGIC = 0x4d;
/** Wire version carried in byte 1 of every plaintext packet; bumped on incompatible changes. */
export const WIRE_VERSION = 1;

export const MsgType = {
  Ping: 1,
  IndirectPing: 2,
  Ack: 3,
  Nack: 4,
  Suspect: 5,
  Alive: 6,
  Dead: 7,
  Observation: 8,
  PushPull: 9,
  /** Opaque payload of the audit witness protocol (src/audit/witness-gossip.ts): checkpoints and cosignatures. */
  Audit: 10,
  /** Opaque payload of federated baselines (src/learn/federated-codec.ts): signed parameter vectors, pulls. */
  Learn: 11,
} as const;
export type MsgType = (typeof MsgType)[keyof typeof MsgType];

export const MEMBER_STATE_CODES = { alive: 0, suspect: 1, dead: 2, left: 3 } as const;
export type MemberState = keyof typeof MEMBER_STATE_CODES;
const STATE_BY_CODE: readonly MemberState[] = ['alive', 'suspect', 'dead', 'left'];

export const PUBLIC_KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;
/** Bytes each message adds before its body: type (1) + body length (2). */
export const MESSAGE_HEADER_BYTES = 3;
/** Bytes a plaintext packet adds before its messages: magic (1) + version (1). */
export const PACKET_HEADER_BYTES = 2;
/** Largest stream (TCP) frame accepted, so that random length prefixes cannot exhaust memory. */
export const MAX_STREAM_BYTES = 4 * 1024 * 1024;
/** Default cap on the entries of one push-pull frame (larger frames are refused whole). */
export const MAX_PUSH_PULL_ENTRIES = 10_000;

export interface Ping { type: typeof MsgType.Ping; seq: number; target: string; source: string; sourceHost: string; sourcePort: number }
export interface IndirectPing {
  type: typeof MsgType.IndirectPing;
  seq: number;
  target: string;
  targetHost: string;
  targetPort: number;
  wantNack: boolean;
  source: string;
  sourceHost: string;
  sourcePort: number;
}
/**
 * `time`: the acking member's clock (epoch ms) when it answered a ping addressed to it, so the prober can
 * estimate its clock offset from the round trip (see docs/gossip.md, clock skew). Absent on acks a relay
 * forwards and on acks from older members.
 */
export interface Ack { type: typeof MsgType.Ack; seq: number; time?: number }
export interface Nack { type: typeof MsgType.Nack; seq: number }
export interface Suspect { type: typeof MsgType.Suspect; incarnation: number; node: string; from: string }
export interface Alive { type: typeof MsgType.Alive; incarnation: number; node: string; host: string; port: number; publicKey: Uint8Array | undefined }
export interface Dead { type: typeof MsgType.Dead; incarnation: number; node: string; from: string }

/** One observer's signed view of one endpoint over a recent span of windows. */
export interface Observation {
  type: typeof MsgType.Observation;
  observer: string;
  endpoint: string;
  /** Epoch ms at which the observed span ends. */
  windowEnd: number;
  requests: number;
  /** Failures / requests, quantised to 1/10,000. */
  errorRate: number;
  p99Us: number;
  /** Monotonic per observer (starts from the observer's clock in µs, so it survives restarts). */
  seq: number;
  /** Bit 0: the observer holds the endpoint ejected on its own evidence. Bit 1: the figures come from the
   * observer's own connection probes (attempts, all failed), not from traffic. */
  flags: number;
  signature: Uint8Array;
  /** The exact signed bytes (body without the signature), kept for verification and re-gossip. */
  signed: Uint8Array;
}
export const OBS_FLAG_EJECTED = 1;
/** Prefix of every signed observation, so that a signature can never be replayed as another kind of message. */
export const OBSERVATION_SIGNING_DOMAIN = Buffer.from('meshmedic/observation/v1\0', 'utf8');
export const OBS_FLAG_PROBED = 2;

export interface PushPullEntry { node: string; host: string; port: number; incarnation: number; state: MemberState; publicKey: Uint8Array | undefined }
export interface PushPull { type: typeof MsgType.PushPull; join: boolean; entries: PushPullEntry[] }

export interface AuditPayload { type: typeof MsgType.Audit; body: Uint8Array }
export interface LearnPayload { type: typeof MsgType.Learn; body: Uint8Array }
export type Message = Ping | IndirectPing | Ack | Nack | Suspect | Alive | Dead | Observation | PushPull | AuditPayload | LearnPayload;

class DecodeError extends Error {}
const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8enc = new TextEncoder();

/** Growable byte writer (one reusable buffer per encoder). */
export class Writer {
  buf: Buffer;
  pos = 0;
  constructor(size = 2048) {
    this.buf = Buffer.allocUnsafe(size);
  }
  reset(): this {
    this.pos = 0;
    return this;
  }
  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const nb = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(nb, 0, 0, this.pos);
    this.buf = nb;
  }
  u8(v: number): void { this.room(1); this.buf[this.pos++] = v & 0xff; }
  u16(v: number): void { this.room(2); this.buf.writeUInt16BE(v, this.pos); this.pos += 2; }
  u32(v: number): void { this.room(4); this.buf.writeUInt32BE(v >>> 0, this.pos); this.pos += 4; }
  f64(v: number): void { this.room(8); this.buf.writeDoubleBE(v, this.pos); this.pos += 8; }
  bytes(b: Uint8Array): void { this.room(b.length); this.buf.set(b, this.pos); this.pos += b.length; }
  /** A UTF-8 string of at most 255 bytes, length-prefixed by one byte. */
  str(s: string): void {
    const b = utf8enc.encode(s);
    if (b.length > 255) throw new RangeError(`string "${s.slice(0, 40)}…" is longer than 255 bytes`);
    this.u8(b.length);
    this.bytes(b);
  }
  /** Optional byte string, length-prefixed by one byte (0 = absent). */
  shortBytes(b: Uint8Array | undefined): void {
    if (!b) return this.u8(0);
    if (b.length > 255) throw new RangeError('byte string longer than 255');
    this.u8(b.length);
    this.bytes(b);
  }
  done(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }
}

class Reader {
  pos: number;
  constructor(readonly buf: Uint8Array, start: number, readonly end: number) {
    this.pos = start;
  }
  need(n: number): void {
    if (this.pos + n > this.end) throw new DecodeError('truncated');
  }
  u8(): number { this.need(1); return this.buf[this.pos++]!; }
  u16(): number { this.need(2); const v = (this.buf[this.pos]! << 8) | this.buf[this.pos + 1]!; this.pos += 2; return v; }
  u32(): number {
    this.need(4);
    const b = this.buf;
    const v = b[this.pos]! * 0x1000000 + ((b[this.pos + 1]! << 16) | (b[this.pos + 2]! << 8) | b[this.pos + 3]!);
    this.pos += 4;
    return v;
  }
  f64(): number {
    this.need(8);
    const v = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 8).getFloat64(0, false);
    this.pos += 8;
    return v;
  }
  bytes(n: number): Uint8Array { this.need(n); const v = new Uint8Array(this.buf.subarray(this.pos, this.pos + n)); this.pos += n; return v; }
  str(min = 0): string {
    const n = this.u8();
    if (n < min) throw new DecodeError('string too short');
    this.need(n);
    const s = utf8.decode(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return s;
  }
  id(): string { return this.str(1); }
  port(): number { const p = this.u16(); if (p === 0) throw new DecodeError('port 0'); return p; }
  pubkey(): Uint8Array | undefined {
    const n = this.u8();
    if (n === 0) return undefined;
    if (n !== PUBLIC_KEY_BYTES) throw new DecodeError('public key size');
    return this.bytes(n);
  }
  bool(): boolean { const v = this.u8(); if (v > 1) throw new DecodeError('bool'); return v === 1; }
}

/** Encode one message (type + length + body) into `w`. */
export function writeMessage(w: Writer, m: Message): void {
  w.u8(m.type);
  const lenAt = w.pos;
  w.u16(0);
  const start = w.pos;
  switch (m.type) {
    case MsgType.Ping:
      w.u32(m.seq); w.str(m.target); w.str(m.source); w.str(m.sourceHost); w.u16(m.sourcePort);
      break;
    case MsgType.IndirectPing:
      w.u32(m.seq); w.str(m.target); w.str(m.targetHost); w.u16(m.targetPort); w.u8(m.wantNack ? 1 : 0);
      w.str(m.source); w.str(m.sourceHost); w.u16(m.sourcePort);
      break;
    case MsgType.Ack:
      w.u32(m.seq);
      if (m.time !== undefined) w.f64(m.time);
      break;
    case MsgType.Nack:
      w.u32(m.seq);
      break;
    case MsgType.Suspect:
    case MsgType.Dead:
      w.u32(m.incarnation); w.str(m.node); w.str(m.from);
      break;
    case MsgType.Alive:
      w.u32(m.incarnation); w.str(m.node); w.str(m.host); w.u16(m.port); w.shortBytes(m.publicKey);
      break;
    case MsgType.Observation:
      w.bytes(m.signed);
      w.bytes(m.signature);
      break;
    case MsgType.Audit:
    case MsgType.Learn:
      w.bytes(m.body);
      break;
    case MsgType.PushPull:
      w.u8(m.join ? 1 : 0);
      w.u32(m.entries.length);
      for (const e of m.entries) {
        w.str(e.node); w.str(e.host); w.u16(e.port); w.u32(e.incarnation); w.u8(MEMBER_STATE_CODES[e.state]); w.shortBytes(e.publicKey);
      }
      break;
  }
  const len = w.pos - start;
  if (len > 0xffff) {
    // Only push-pull can be this large, and it travels in a stream frame where the u16 is not relied on.
    w.buf.writeUInt16BE(0xffff, lenAt);
  } else {
    w.buf.writeUInt16BE(len, lenAt);
  }
}

/** The observation fields as encoded on the wire (the signature covers OBSERVATION_SIGNING_DOMAIN ‖ these bytes). */
export function observationSignedBytes(o: Omit<Observation, 'type' | 'signature' | 'signed'>): Buffer {
  const w = new Writer(128);
  w.str(o.observer);
  w.str(o.endpoint);
  w.f64(o.windowEnd);
  w.u32(o.requests);
  w.u16(Math.round(Math.min(1, Math.max(0, o.errorRate)) * 10_000));
  w.u32(Math.min(0xffffffff, Math.max(0, Math.round(o.p99Us))));
  w.f64(o.seq);
  w.u8(o.flags & 0xff);
  return w.done();
}

/** Encoded size of a message (header included), without keeping the bytes. */
export function encodedSize(m: Message): number {
  const w = new Writer(256);
  writeMessage(w, m);
  return w.pos;
}

/** Encode one message on its own (header included): the unit that broadcast queues hold. */
export function encodeMessage(m: Message): Buffer {
  const w = new Writer(256);
  writeMessage(w, m);
  return w.done();
}

/** Assemble a plaintext packet from already-encoded messages. */
export function assemblePacket(w: Writer, parts: readonly Uint8Array[]): Buffer {
  w.reset();
  w.u8(PLAIN_MAGIC);
  w.u8(WIRE_VERSION);
  for (const p of parts) w.bytes(p);
  return w.done();
}

function readBody(r: Reader, type: number, maxEntries: number): Message {
  switch (type) {
    case MsgType.Audit:
    case MsgType.Learn:
      return { type, body: r.bytes(r.end - r.pos) };
    case MsgType.Ping:
      return { type, seq: r.u32(), target: r.id(), source: r.id(), sourceHost: r.str(1), sourcePort: r.port() };
    case MsgType.IndirectPing:
      return { type, seq: r.u32(), target: r.id(), targetHost: r.str(1), targetPort: r.port(), wantNack: r.bool(), source: r.id(), sourceHost: r.str(1), sourcePort: r.port() };
    case MsgType.Ack: {
      const seq = r.u32();
      if (r.pos === r.end) return { type, seq };
      const time = r.f64();
      if (!Number.isFinite(time) || time < 0) throw new DecodeError('ack time');
      return { type, seq, time };
    }
    case MsgType.Nack:
      return { type, seq: r.u32() };
    case MsgType.Suspect:
      return { type, incarnation: r.u32(), node: r.id(), from: r.id() };
    case MsgType.Dead:
      return { type, incarnation: r.u32(), node: r.id(), from: r.id() };
    case MsgType.Alive:
      return { type, incarnation: r.u32(), node: r.id(), host: r.str(1), port: r.port(), publicKey: r.pubkey() };
    case MsgType.Observation: {
      const start = r.pos;
      const observer = r.id();
      const endpoint = r.id();
      const windowEnd = r.f64();
      const requests = r.u32();
      const rate = r.u16();
      const p99Us = r.u32();
      const seq = r.f64();
      const flags = r.u8();
      if (!Number.isFinite(windowEnd) || windowEnd < 0 || !Number.isSafeInteger(seq) || seq < 0 || rate > 10_000) throw new DecodeError('observation fields');
      const signed = new Uint8Array(r.buf.subarray(start, r.pos));
      const signature = r.bytes(SIGNATURE_BYTES);
      return { type, observer, endpoint, windowEnd, requests, errorRate: rate / 10_000, p99Us, seq, flags, signature, signed };
    }
    case MsgType.PushPull: {
      const join = r.bool();
      const n = r.u32();
      // Each entry takes at least 13 bytes: refuse counts the remaining input cannot hold.
      if (n * 13 > r.end - r.pos) throw new DecodeError('push-pull count');
      if (n > maxEntries) throw new DecodeError('push-pull lists more members than allowed');
      const entries: PushPullEntry[] = [];
      for (let i = 0; i < n; i++) {
        const node = r.id();
        const host = r.str(1);
        const port = r.port();
        const incarnation = r.u32();
        const code = r.u8();
        const state = STATE_BY_CODE[code];
        if (state === undefined) throw new DecodeError('state');
        entries.push({ node, host, port, incarnation, state, publicKey: r.pubkey() });
      }
      return { type, join, entries };
    }
    default:
      throw new DecodeError(`unknown message type ${type}`);
  }
}

/**
 * Decode a plaintext packet into its messages. Any malformed part rejects the whole packet, so that a
 * corrupted packet changes nothing. Returns undefined (never throws) on bad input.
 */
export function decodePacket(buf: Uint8Array, maxPushPullEntries = MAX_PUSH_PULL_ENTRIES): Message[] | undefined {
  try {
    if (buf.length < PACKET_HEADER_BYTES || buf[0] !== PLAIN_MAGIC || buf[1] !== WIRE_VERSION) return undefined;
    const out: Message[] = [];
    let pos = PACKET_HEADER_BYTES;
    while (pos < buf.length) {
      if (out.length >= 512) return undefined;
      const r0 = new Reader(buf, pos, buf.length);
      const type = r0.u8();
      let len = r0.u16();
      // A push-pull body may exceed 64 KiB: it is always the last (only) message of a stream frame.
      if (type === MsgType.PushPull && len === 0xffff) len = buf.length - r0.pos;
      const end = r0.pos + len;
      if (end > buf.length) return undefined;
      const r = new Reader(buf, r0.pos, end);
      const m = readBody(r, type, maxPushPullEntries);
      if (r.pos !== end) return undefined; // trailing bytes inside a message: not ours
      out.push(m);
      pos = end;
    }
    return out.length ? out : undefined;
  } catch {
    return undefined;
  }
}

/** Encode a whole packet from messages (tests, streams). */
export function encodePacket(msgs: readonly Message[]): Buffer {
  const w = new Writer(1024);
  w.u8(PLAIN_MAGIC);
  w.u8(WIRE_VERSION);
  for (const m of msgs) writeMessage(w, m);
  return w.done();
}
