// The wire form of a federated baseline vector and the board that accepts them: a compact binary record
// (only learned parameters: per service five numbers and a sample count) signed with the node's Ed25519
// key, and every check a hostile or broken sender can fail (size, version, values, signature, replay, time).
// Pure: signing and verification are callbacks, the clock is the caller's.
import { MeshmedicError } from '../core/errors.js';
import { MAX_SAMPLES, paramsProblem, type Contribution, type ServiceParams } from './federated.js';

export const FEDERATED_FORMAT_VERSION = 1;
export const FEDERATED_KIND_VECTOR = 1;
/** A request for the receiver's vector (a sidecar that just started and has no aggregate yet). */
export const FEDERATED_KIND_PULL = 2;
/** Prefix of the signed bytes, so that a signature can never be replayed as another kind of message. */
export const FEDERATED_SIGNING_DOMAIN = Buffer.from('meshmedic/learn-federated/v1\0', 'utf8');
const SIGNATURE_BYTES = 64;
/** One vector fits one gossip UDP packet with room for the headers. */
export const MAX_VECTOR_BYTES = 1100;

export type FederatedRejectReason = 'malformed' | 'version' | 'too_large' | 'invalid_value' | 'bad_signature' | 'unknown_node' | 'replay' | 'stale' | 'future' | 'rate_limited';
export const FEDERATED_REJECT_REASONS: readonly FederatedRejectReason[] = ['malformed', 'version', 'too_large', 'invalid_value', 'bad_signature', 'unknown_node', 'replay', 'stale', 'future', 'rate_limited'];

/** A gossiped vector that was refused: what was wrong, by reason (counted in metrics). */
export class FederatedVectorError extends MeshmedicError {
  readonly reason: FederatedRejectReason;
  constructor(reason: FederatedRejectReason, message: string) {
    super('MM_ERR_LEARN_FEDERATED', `federated baseline vector refused (${reason}): ${message}`);
    this.reason = reason;
  }
}

export interface FederatedVector {
  readonly node: string;
  readonly issuedAt: number;
  /** Monotonic per node (its clock in µs at signing: survives restarts). */
  readonly seq: number;
  readonly services: ReadonlyMap<string, ServiceParams>;
}

const FLAG_P90 = 1;
const FLAG_ERRORS = 2;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Encode and sign. Services beyond what fits MAX_VECTOR_BYTES (or `maxServices`) are left out, the ones
 * with the fewest samples first. Throws RangeError on a name longer than 255 bytes or invalid parameters
 * (a bug of the caller: local parameters are validated when built).
 */
export function encodeVector(v: FederatedVector, sign: (data: Uint8Array) => Uint8Array, maxServices = 16): Uint8Array {
  const node = Buffer.from(v.node, 'utf8');
  if (node.length === 0 || node.length > 255) throw new RangeError(`node id of ${node.length} bytes`);
  const entries = [...v.services].sort((a, b) => b[1].samples - a[1].samples);
  const parts: Buffer[] = [];
  let size = 2 + 1 + node.length + 8 + 8 + 1 + SIGNATURE_BYTES;
  for (const [name, p] of entries) {
    if (parts.length >= Math.min(maxServices, 255)) break;
    const problem = paramsProblem(p);
    if (problem) throw new RangeError(`service ${name}: ${problem}`);
    const nb = Buffer.from(name, 'utf8');
    if (nb.length === 0 || nb.length > 255) throw new RangeError(`service name of ${nb.length} bytes`);
    const b = Buffer.alloc(1 + nb.length + 1 + 4 + 5 * 4);
    let o = b.writeUInt8(nb.length, 0);
    o += nb.copy(b, o);
    const flags = (Number.isFinite(p.p90Loc) && Number.isFinite(p.p90Scale) ? FLAG_P90 : 0) | (Number.isFinite(p.errorRate) ? FLAG_ERRORS : 0);
    o = b.writeUInt8(flags, o);
    o = b.writeUInt32BE(Math.round(p.samples), o);
    o = b.writeFloatBE(p.p50Loc, o);
    o = b.writeFloatBE(p.p50Scale, o);
    o = b.writeFloatBE(flags & FLAG_P90 ? p.p90Loc : 0, o);
    o = b.writeFloatBE(flags & FLAG_P90 ? p.p90Scale : 0, o);
    b.writeFloatBE(flags & FLAG_ERRORS ? p.errorRate : 0, o);
    if (size + b.length > MAX_VECTOR_BYTES) continue;
    size += b.length;
    parts.push(b);
  }
  const head = Buffer.alloc(2 + 1 + node.length + 8 + 8 + 1);
  let o = head.writeUInt8(FEDERATED_KIND_VECTOR, 0);
  o = head.writeUInt8(FEDERATED_FORMAT_VERSION, o);
  o = head.writeUInt8(node.length, o);
  o += node.copy(head, o);
  o = head.writeDoubleBE(v.issuedAt, o);
  o = head.writeDoubleBE(v.seq, o);
  head.writeUInt8(parts.length, o);
  const body = Buffer.concat([head, ...parts]);
  const sig = sign(Buffer.concat([FEDERATED_SIGNING_DOMAIN, body]));
  if (sig.length !== SIGNATURE_BYTES) throw new RangeError(`signature of ${sig.length} bytes`);
  return Buffer.concat([body, sig]);
}

/** A pull request: kind, version and the asking node's id (unsigned: it only asks for a reply, rate-limited). */
export function encodePull(node: string): Uint8Array {
  const nb = Buffer.from(node, 'utf8');
  if (nb.length === 0 || nb.length > 255) throw new RangeError(`node id of ${nb.length} bytes`);
  return Buffer.concat([Buffer.from([FEDERATED_KIND_PULL, FEDERATED_FORMAT_VERSION, nb.length]), nb]);
}

export type DecodedMessage = { kind: 'pull'; node: string } | { kind: 'vector'; vector: FederatedVector; signed: Uint8Array; signature: Uint8Array };

/** Decode without verifying the signature; throws FederatedVectorError on any malformed input. */
export function decodeMessage(bytes: Uint8Array): DecodedMessage {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length > MAX_VECTOR_BYTES) throw new FederatedVectorError('too_large', `${b.length} bytes (at most ${MAX_VECTOR_BYTES})`);
  let o = 0;
  const need = (n: number, what: string) => {
    if (o + n > b.length) throw new FederatedVectorError('malformed', `truncated at byte ${o} (${what})`);
  };
  const str = (what: string): string => {
    need(1, what);
    const len = b.readUInt8(o++);
    need(len, what);
    if (len === 0) throw new FederatedVectorError('malformed', `empty ${what}`);
    let s: string;
    try {
      s = utf8.decode(b.subarray(o, o + len));
    } catch {
      throw new FederatedVectorError('malformed', `${what} is not UTF-8`);
    }
    o += len;
    return s;
  };
  need(2, 'header');
  const kind = b.readUInt8(o++);
  const version = b.readUInt8(o++);
  if (version !== FEDERATED_FORMAT_VERSION) throw new FederatedVectorError('version', `format version ${version} (this sidecar reads ${FEDERATED_FORMAT_VERSION})`);
  if (kind === FEDERATED_KIND_PULL) {
    const node = str('node id');
    if (o !== b.length) throw new FederatedVectorError('malformed', `${b.length - o} bytes after the pull request`);
    return { kind: 'pull', node };
  }
  if (kind !== FEDERATED_KIND_VECTOR) throw new FederatedVectorError('malformed', `unknown message kind ${kind}`);
  const node = str('node id');
  need(17, 'stamp');
  const issuedAt = b.readDoubleBE(o);
  const seq = b.readDoubleBE(o + 8);
  const count = b.readUInt8(o + 16);
  o += 17;
  if (!Number.isFinite(issuedAt) || !Number.isFinite(seq) || seq < 0) throw new FederatedVectorError('invalid_value', `stamp ${issuedAt} / sequence ${seq} is not finite`);
  const services = new Map<string, ServiceParams>();
  for (let i = 0; i < count; i++) {
    const name = str(`service ${i} name`);
    need(1 + 4 + 20, `service ${name}`);
    const flags = b.readUInt8(o);
    if (flags & ~(FLAG_P90 | FLAG_ERRORS)) throw new FederatedVectorError('malformed', `service ${name}: unknown flags ${flags}`);
    const samples = b.readUInt32BE(o + 1);
    const f = (k: number) => b.readFloatBE(o + 5 + 4 * k);
    const p: ServiceParams = {
      samples,
      p50Loc: f(0),
      p50Scale: f(1),
      p90Loc: flags & FLAG_P90 ? f(2) : NaN,
      p90Scale: flags & FLAG_P90 ? f(3) : NaN,
      errorRate: flags & FLAG_ERRORS ? f(4) : NaN,
    };
    o += 25;
    // A NaN in a coordinate its flag says is present is as invalid as an infinity.
    const present = [p.p50Loc, p.p50Scale, ...(flags & FLAG_P90 ? [p.p90Loc, p.p90Scale] : []), ...(flags & FLAG_ERRORS ? [p.errorRate] : [])];
    if (present.some((x) => !Number.isFinite(x))) throw new FederatedVectorError('invalid_value', `service ${name}: a parameter is NaN or infinite`);
    const problem = samples > MAX_SAMPLES ? `samples ${samples} above ${MAX_SAMPLES}` : paramsProblem(p);
    if (problem) throw new FederatedVectorError('invalid_value', `service ${name}: ${problem}`);
    if (services.has(name)) throw new FederatedVectorError('malformed', `service ${name} twice`);
    services.set(name, p);
  }
  if (b.length - o !== SIGNATURE_BYTES) throw new FederatedVectorError('malformed', `${b.length - o} bytes where the 64-byte signature should end the vector`);
  return { kind: 'vector', vector: { node, issuedAt, seq, services }, signed: b.subarray(0, o), signature: b.subarray(o) };
}

export interface BoardOptions {
  readonly maxAgeMs: number;
  readonly maxSkewMs: number;
  readonly maxContributors: number;
  readonly ratePerSecond: number;
}

/**
 * The contributions this sidecar knows, newest per node. `offer` checks a decoded vector in full
 * (signature against the node's pinned key, freshness, replay, rate) and either stores it or throws.
 */
export class FederatedBoard {
  readonly rejected: Record<FederatedRejectReason, number> = Object.fromEntries(FEDERATED_REJECT_REASONS.map((r) => [r, 0])) as Record<FederatedRejectReason, number>;
  accepted = 0;
  private readonly byNode = new Map<string, Contribution & { seq: number }>();
  private tokens: number;
  private refilledAt = -Infinity;

  constructor(private readonly o: BoardOptions) {
    this.tokens = Math.max(1, o.ratePerSecond);
  }

  /**
   * Decode, verify and store one message's vector. `verify` answers undefined when the node has no pinned
   * key (not a live member). Throws FederatedVectorError, counted by reason, on anything wrong.
   */
  offer(bytes: Uint8Array, now: number, verify: (node: string, data: Uint8Array, signature: Uint8Array) => boolean | undefined): Contribution {
    try {
      this.take(now);
      const m = decodeMessage(bytes);
      if (m.kind !== 'vector') throw new FederatedVectorError('malformed', 'a pull request where a vector was expected');
      return this.store(m.vector, m.signed, m.signature, now, verify);
    } catch (err) {
      if (err instanceof FederatedVectorError) this.rejected[err.reason]++;
      throw err;
    }
  }

  /** Store this sidecar's own vector (already trusted). */
  own(v: FederatedVector, now: number): void {
    this.byNode.set(v.node, { node: v.node, receivedAt: now, issuedAt: v.issuedAt, seq: v.seq, services: v.services });
  }

  private store(v: FederatedVector, signed: Uint8Array, signature: Uint8Array, now: number, verify: (node: string, data: Uint8Array, signature: Uint8Array) => boolean | undefined): Contribution {
    if (v.issuedAt > now + this.o.maxSkewMs) throw new FederatedVectorError('future', `stamped ${v.issuedAt - now} ms ahead of this sidecar's clock`);
    if (v.issuedAt < now - Math.max(this.o.maxSkewMs, this.o.maxAgeMs)) throw new FederatedVectorError('stale', `stamped ${now - v.issuedAt} ms ago`);
    const ok = verify(v.node, Buffer.concat([FEDERATED_SIGNING_DOMAIN, signed]), signature);
    if (ok === undefined) throw new FederatedVectorError('unknown_node', `${v.node} is not a live member with a pinned key`);
    if (!ok) throw new FederatedVectorError('bad_signature', `signature of ${v.node} does not verify`);
    const prev = this.byNode.get(v.node);
    if (prev && v.seq <= prev.seq) throw new FederatedVectorError('replay', `sequence ${v.seq} of ${v.node} is not after ${prev.seq}`);
    const c = { node: v.node, receivedAt: now, issuedAt: v.issuedAt, seq: v.seq, services: v.services };
    this.byNode.delete(v.node);
    this.byNode.set(v.node, c); // Map order: least recently updated first
    if (this.byNode.size > this.o.maxContributors) this.byNode.delete(this.byNode.keys().next().value!);
    this.accepted++;
    return c;
  }

  private take(now: number): void {
    const rate = this.o.ratePerSecond;
    if (this.refilledAt !== -Infinity) this.tokens = Math.min(Math.max(1, rate), this.tokens + ((now - this.refilledAt) / 1000) * rate);
    this.refilledAt = now;
    if (this.tokens < 1) throw new FederatedVectorError('rate_limited', `more than ${rate} vectors per second`);
    this.tokens--;
  }

  /** Fresh contributions (expired ones are dropped, except that the replay floor is kept per node). */
  contributions(now: number): Contribution[] {
    const out: Contribution[] = [];
    for (const c of this.byNode.values()) if (now - c.receivedAt <= this.o.maxAgeMs) out.push(c);
    return out;
  }
}
