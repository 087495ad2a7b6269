// The witness protocol over gossip: each sidecar sends its new checkpoints (with a consistency proof from the
// size each peer last cosigned) to its peers; each peer, as a witness, answers with a cosignature, or with the
// size it knows, or raises a fork alert; witnesses also tell each other what they cosigned (split views).
// Messages are small binary frames carried by the gossip component's audit channel (one UDP packet each).
import { parseNote, parseVerifierKey, verifyCosignature } from './note.js';
import { Witness, type WitnessAnswer } from './witness.js';

export const AUDIT_MSG = { AddCheckpoint: 1, Cosignature: 2, Conflict: 3, Seen: 4 } as const;
const MAX_PROOF = 28;
const MAX_TEXT = 900;

export interface Address {
  readonly host: string;
  readonly port: number;
}

export interface WitnessChannel {
  send(to: Address, body: Uint8Array): void;
  subscribe(fn: (body: Uint8Array, from: Address) => void): () => void;
  peers(): { id: string; host: string; port: number }[];
}

export type AuditMessage =
  | { kind: typeof AUDIT_MSG.AddCheckpoint; logKey: string; checkpoint: string; oldSize: number; proof: Uint8Array[] }
  | { kind: typeof AUDIT_MSG.Cosignature; witnessKey: string; origin: string; size: number; line: string }
  | { kind: typeof AUDIT_MSG.Conflict; origin: string; size: number }
  | { kind: typeof AUDIT_MSG.Seen; logKey: string; checkpoint: string };

function putStr(parts: Buffer[], s: string): void {
  const b = Buffer.from(s, 'utf8');
  if (b.length > MAX_TEXT) throw new RangeError(`audit message field of ${b.length} bytes exceeds ${MAX_TEXT}`);
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  parts.push(len, b);
}

function putNum(parts: Buffer[], n: number): void {
  const b = Buffer.alloc(8);
  b.writeDoubleBE(n);
  parts.push(b);
}

export function encodeAuditMessage(m: AuditMessage): Buffer {
  const parts: Buffer[] = [Buffer.from([m.kind])];
  switch (m.kind) {
    case AUDIT_MSG.AddCheckpoint:
      putStr(parts, m.logKey); putStr(parts, m.checkpoint); putNum(parts, m.oldSize);
      if (m.proof.length > MAX_PROOF) throw new RangeError('consistency proof too long');
      parts.push(Buffer.from([m.proof.length]), ...m.proof.map((p) => Buffer.from(p)));
      break;
    case AUDIT_MSG.Cosignature:
      putStr(parts, m.witnessKey); putStr(parts, m.origin); putNum(parts, m.size); putStr(parts, m.line);
      break;
    case AUDIT_MSG.Conflict:
      putStr(parts, m.origin); putNum(parts, m.size);
      break;
    case AUDIT_MSG.Seen:
      putStr(parts, m.logKey); putStr(parts, m.checkpoint);
      break;
  }
  return Buffer.concat(parts);
}

/** Decode a message; undefined for anything malformed (a peer's bad packet never throws here). */
export function decodeAuditMessage(body: Uint8Array): AuditMessage | undefined {
  const b = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  let pos = 1;
  const str = (): string => {
    if (pos + 2 > b.length) throw new RangeError('truncated');
    const n = b.readUInt16BE(pos);
    if (n > MAX_TEXT || pos + 2 + n > b.length) throw new RangeError('bad length');
    pos += 2 + n;
    return b.toString('utf8', pos - n, pos);
  };
  const num = (): number => {
    if (pos + 8 > b.length) throw new RangeError('truncated');
    const v = b.readDoubleBE(pos);
    pos += 8;
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError('bad size');
    return v;
  };
  try {
    let m: AuditMessage;
    switch (b[0]) {
      case AUDIT_MSG.AddCheckpoint: {
        const logKey = str();
        const checkpoint = str();
        const oldSize = num();
        const n = b[pos++];
        if (n === undefined || n > MAX_PROOF || pos + 32 * n > b.length) return undefined;
        const proof: Uint8Array[] = [];
        for (let i = 0; i < n; i++, pos += 32) proof.push(new Uint8Array(b.subarray(pos, pos + 32)));
        m = { kind: AUDIT_MSG.AddCheckpoint, logKey, checkpoint, oldSize, proof };
        break;
      }
      case AUDIT_MSG.Cosignature:
        m = { kind: AUDIT_MSG.Cosignature, witnessKey: str(), origin: str(), size: num(), line: str() };
        break;
      case AUDIT_MSG.Conflict:
        m = { kind: AUDIT_MSG.Conflict, origin: str(), size: num() };
        break;
      case AUDIT_MSG.Seen:
        m = { kind: AUDIT_MSG.Seen, logKey: str(), checkpoint: str() };
        break;
      default:
        return undefined;
    }
    return pos === b.length ? m : undefined;
  } catch {
    return undefined;
  }
}

export interface WitnessingOptions {
  readonly witness: Witness;
  readonly channel: WitnessChannel;
  /** This log's verifier key and a consistency proof source for its current segment. */
  readonly logKey: string;
  readonly consistencyProof: (oldSize: number, size: number) => Uint8Array[] | undefined;
  readonly onFork: (answer: Extract<WitnessAnswer, { kind: 'fork' }>) => void;
  /**
   * Store the witness's state (it never rejects). A cosignature is sent only once what it vouches for is
   * stored, so that a restarted witness cannot cosign a history that contradicts one it already cosigned.
   */
  readonly persist?: () => Promise<void>;
  /** Peers asked per new checkpoint (and told per cosignature), chosen at random. */
  readonly fanout?: number;
  readonly random?: () => number;
}

const addrKey = (a: Address) => `${a.host}:${a.port}`;

/** Runs both roles on one sidecar: log (collect cosignatures) and witness (check and cosign peers' logs). */
export class Witnessing {
  /** Per peer address: the size its witness last reported for our current origin. */
  private readonly peerSize = new Map<string, { origin: string; size: number }>();
  /** Cosignature lines for our latest checkpoint, by witness key name. */
  private cosigs = new Map<string, string>();
  private latest: { origin: string; size: number; text: string } | undefined;
  private readonly unsubscribe: () => void;
  private closed = false;
  readonly counters = { sent: 0, cosignaturesReceived: 0, cosigned: 0, conflicts: 0, forks: 0, refused: 0, malformed: 0 };

  constructor(private readonly o: WitnessingOptions) {
    this.unsubscribe = o.channel.subscribe((body, from) => this.receive(body, from));
  }

  close(): void {
    this.closed = true;
    this.unsubscribe();
  }

  /** Our latest checkpoint with the cosignatures collected for it (a C2SP cosigned note). */
  cosigned(): string | undefined {
    if (!this.latest) return undefined;
    return this.latest.text + [...this.cosigs.values()].join('');
  }

  witnessCount(): number {
    return this.cosigs.size;
  }

  /** A new checkpoint of our log: ask peers to witness it. */
  publish(text: string, size: number, origin: string): void {
    if (this.latest?.origin !== origin || this.latest.size !== size) this.cosigs = new Map();
    this.latest = { origin, size, text };
    const peers = this.o.channel.peers();
    const fanout = this.o.fanout ?? 8;
    const rnd = this.o.random ?? Math.random;
    for (let i = peers.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [peers[i], peers[j]] = [peers[j]!, peers[i]!];
    }
    for (const p of peers.slice(0, fanout)) this.ask(p);
  }

  private ask(to: Address): void {
    const l = this.latest;
    if (!l) return;
    const known = this.peerSize.get(addrKey(to));
    const oldSize = known && known.origin === l.origin && known.size <= l.size ? known.size : 0;
    const proof = oldSize > 0 && oldSize < l.size ? this.o.consistencyProof(oldSize, l.size) : [];
    if (!proof) return;
    this.send(to, { kind: AUDIT_MSG.AddCheckpoint, logKey: this.o.logKey, checkpoint: l.text, oldSize, proof });
  }

  private send(to: Address, m: AuditMessage): void {
    try {
      this.o.channel.send(to, encodeAuditMessage(m));
      this.counters.sent++;
    } catch {
      // Too large for one packet (a very long origin): nothing to witness over gossip.
    }
  }

  private receive(body: Uint8Array, from: Address): void {
    const m = decodeAuditMessage(body);
    if (!m) {
      this.counters.malformed++;
      return;
    }
    switch (m.kind) {
      case AUDIT_MSG.AddCheckpoint: {
        const a = this.o.witness.add({ checkpoint: m.checkpoint, logKey: m.logKey, oldSize: m.oldSize, proof: m.proof });
        this.answerStored(a, from, m.checkpoint, m.logKey);
        return;
      }
      case AUDIT_MSG.Seen: {
        const a = this.o.witness.compare(m.checkpoint, m.logKey);
        if (a) this.answerStored(a, from, m.checkpoint, m.logKey);
        return;
      }
      case AUDIT_MSG.Conflict:
        if (this.latest && m.origin === this.latest.origin) {
          const before = this.peerSize.get(addrKey(from));
          this.peerSize.set(addrKey(from), { origin: m.origin, size: m.size });
          if (!before || before.size !== m.size) this.ask(from); // once per new size: no ping-pong
        }
        return;
      case AUDIT_MSG.Cosignature: {
        const l = this.latest;
        if (!l || m.origin !== l.origin) return;
        this.peerSize.set(addrKey(from), { origin: m.origin, size: m.size });
        if (m.size !== l.size) return;
        try {
          const wkey = parseVerifierKey(m.witnessKey);
          if (verifyCosignature(parseNote(l.text + m.line), wkey) === undefined) return;
          this.cosigs.set(wkey.name, m.line);
          this.counters.cosignaturesReceived++;
        } catch {
          this.counters.malformed++;
        }
        return;
      }
    }
  }

  /** Answer once the witness's state is stored, when the answer changed it. */
  private answerStored(a: WitnessAnswer, from: Address, checkpoint: string, logKey: string): void {
    if (this.o.persist && (a.kind === 'cosigned' || a.kind === 'fork')) {
      void this.o.persist().then(() => {
        if (!this.closed) this.answer(a, from, checkpoint, logKey);
      });
    } else this.answer(a, from, checkpoint, logKey);
  }

  private answer(a: WitnessAnswer, from: Address, checkpoint: string, logKey: string): void {
    switch (a.kind) {
      case 'cosigned': {
        this.counters.cosigned++;
        this.send(from, { kind: AUDIT_MSG.Cosignature, witnessKey: this.o.witness.verifierKey, origin: a.origin, size: a.size, line: a.line });
        // Tell a few other members what we cosigned, so that a split view meets a witness that saw the other side.
        const others = this.o.channel.peers().filter((p) => p.host !== from.host || p.port !== from.port);
        const rnd = this.o.random ?? Math.random;
        for (let k = 0; k < Math.min(2, others.length); k++) {
          const p = others.splice(Math.floor(rnd() * others.length), 1)[0]!;
          this.send(p, { kind: AUDIT_MSG.Seen, logKey, checkpoint });
        }
        return;
      }
      case 'conflict':
        this.counters.conflicts++;
        this.send(from, { kind: AUDIT_MSG.Conflict, origin: a.origin, size: a.size });
        return;
      case 'fork':
        this.counters.forks++;
        this.o.onFork(a);
        return;
      case 'refused':
        this.counters.refused++;
        return;
    }
  }
}
