// C2SP signed notes (signed-note), transparency-log checkpoints (tlog-checkpoint) and Ed25519 cosignatures
// (tlog-cosignature): text formats, key ids, signing and verification. No I/O.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { HASH_BYTES } from './merkle.js';

/** Signature type bytes of the signed-note key-id derivation. */
const ALG_ED25519 = 0x01;
const ALG_COSIGNATURE_V1 = 0x04;
const SIG_LINE_PREFIX = '\u2014 '; // "— "
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export interface NoteKey {
  /** Key name (no whitespace, no '+'). */
  readonly name: string;
  readonly publicKeyRaw: Buffer;
  readonly publicKey: KeyObject;
  readonly privateKey?: KeyObject;
}

export function validKeyName(name: string): boolean {
  return name.length > 0 && !/[\s+]/u.test(name);
}

function checkName(name: string): void {
  if (!validKeyName(name)) throw new RangeError(`key name "${name}" must be non-empty with no whitespace and no "+"`);
}

export function publicKeyFromRaw(raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new RangeError(`an Ed25519 public key is 32 bytes, got ${raw.length}`);
  return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

function rawOf(pub: KeyObject): Buffer {
  return pub.export({ format: 'der', type: 'spki' }).subarray(ED25519_SPKI_PREFIX.length);
}

export function generateNoteKey(name: string): NoteKey {
  checkName(name);
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { name, privateKey, publicKey, publicKeyRaw: rawOf(publicKey) };
}

/** A signing key from a PKCS#8 PEM Ed25519 private key. */
export function noteKeyFromPem(name: string, pem: string): NoteKey {
  checkName(name);
  return noteKeyFromPrivate(name, createPrivateKey(pem));
}

/** A signing key named `name` from an Ed25519 private KeyObject. */
export function noteKeyFromPrivate(name: string, privateKey: KeyObject): NoteKey {
  checkName(name);
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new RangeError(`the key must be Ed25519, not ${privateKey.asymmetricKeyType}`);
  const publicKey = createPublicKey(privateKey);
  return { name, privateKey, publicKey, publicKeyRaw: rawOf(publicKey) };
}

export function noteKeyToPem(k: NoteKey): string {
  if (!k.privateKey) throw new RangeError('a verifier key has no private part');
  return k.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
}

/** SHA-256(name ‖ "\n" ‖ alg ‖ public key)[:4]. */
export function keyId(name: string, publicKeyRaw: Uint8Array, alg = ALG_ED25519): Buffer {
  return createHash('sha256').update(name, 'utf8').update('\n').update(Buffer.from([alg])).update(publicKeyRaw).digest().subarray(0, 4);
}

/** The verifier key text: name+hex(key id)+base64(0x01 ‖ public key). */
export function verifierKey(k: NoteKey): string {
  return `${k.name}+${keyId(k.name, k.publicKeyRaw).toString('hex')}+${Buffer.concat([Buffer.from([ALG_ED25519]), k.publicKeyRaw]).toString('base64')}`;
}

export function parseVerifierKey(text: string): NoteKey {
  // The name has no '+', the key id is hex; the base64 key may contain '+'.
  const m = /^([^+\s]+)\+([0-9a-fA-F]{8})\+([A-Za-z0-9+/]+={0,2})$/.exec(text.trim());
  if (!m) throw new RangeError('a verifier key is name+keyid+base64 key');
  const [, name, idHex, b64] = m as unknown as [string, string, string, string];
  checkName(name);
  const raw = Buffer.from(b64, 'base64');
  if (raw.length !== 33 || raw[0] !== ALG_ED25519) throw new RangeError('the verifier key is not an Ed25519 (type 0x01) key');
  const pub = raw.subarray(1);
  if (keyId(name, pub).toString('hex') !== idHex.toLowerCase()) throw new RangeError('the verifier key id does not match its name and key');
  return { name, publicKeyRaw: Buffer.from(pub), publicKey: publicKeyFromRaw(pub) };
}

export interface NoteSignature {
  readonly name: string;
  readonly keyId: Buffer;
  /** Everything after the key id (for cosignatures: 8-byte timestamp + signature). */
  readonly signature: Buffer;
}

export interface Note {
  /** The text that is signed, ending in a newline. */
  readonly body: string;
  readonly signatures: readonly NoteSignature[];
}

/** Sign a note body with an Ed25519 key; returns the whole note text. */
export function signNote(body: string, key: NoteKey): string {
  if (!key.privateKey) throw new RangeError('cannot sign with a verifier key');
  checkBody(body);
  const sig = sign(null, Buffer.from(body, 'utf8'), key.privateKey);
  return `${body}\n${signatureLine(key.name, Buffer.concat([keyId(key.name, key.publicKeyRaw), sig]))}`;
}

function signatureLine(name: string, payload: Buffer): string {
  return `${SIG_LINE_PREFIX}${name} ${payload.toString('base64')}\n`;
}

function checkBody(body: string): void {
  if (!body.endsWith('\n')) throw new RangeError('a note body ends with a newline');
  if (body.includes('\n\n')) throw new RangeError('a note body has no blank lines');
}

/** Parse a signed note; throws a RangeError naming what is malformed. */
export function parseNote(text: string): Note {
  if (text.length > 1_000_000) throw new RangeError('note larger than 1 MB');
  const split = text.lastIndexOf('\n\n');
  if (split < 0) throw new RangeError('no blank line separates the note body from its signatures');
  const body = text.slice(0, split + 1);
  checkBody(body);
  const sigText = text.slice(split + 2);
  if (!sigText.endsWith('\n')) throw new RangeError('the signature block does not end with a newline');
  const signatures: NoteSignature[] = [];
  for (const line of sigText.slice(0, -1).split('\n')) {
    if (!line.startsWith(SIG_LINE_PREFIX)) throw new RangeError(`signature line does not start with "— ": ${JSON.stringify(line.slice(0, 60))}`);
    const rest = line.slice(SIG_LINE_PREFIX.length);
    const sp = rest.indexOf(' ');
    if (sp <= 0) throw new RangeError('signature line has no key name');
    const name = rest.slice(0, sp);
    const b64 = rest.slice(sp + 1);
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw new RangeError(`signature of "${name}" is not base64`);
    const raw = Buffer.from(b64, 'base64');
    if (raw.length < 5) throw new RangeError(`signature of "${name}" is too short`);
    signatures.push({ name, keyId: raw.subarray(0, 4), signature: raw.subarray(4) });
  }
  if (signatures.length === 0) throw new RangeError('the note carries no signature');
  return { body, signatures };
}

/** Does `note` carry a valid Ed25519 signature by `key`? */
export function verifyNote(note: Note, key: NoteKey): boolean {
  const id = keyId(key.name, key.publicKeyRaw);
  for (const s of note.signatures) {
    if (s.name !== key.name || !s.keyId.equals(id)) continue;
    if (s.signature.length === 64 && verify(null, Buffer.from(note.body, 'utf8'), key.publicKey, s.signature)) return true;
  }
  return false;
}

export interface Checkpoint {
  readonly origin: string;
  readonly size: number;
  readonly root: Buffer;
}

export function checkpointBody(c: Checkpoint): string {
  if (c.origin.length === 0 || /[\n]/.test(c.origin)) throw new RangeError('a checkpoint origin is one non-empty line');
  if (c.root.length !== HASH_BYTES) throw new RangeError('a checkpoint root is 32 bytes');
  return `${c.origin}\n${c.size}\n${c.root.toString('base64')}\n`;
}

export function parseCheckpointBody(body: string): Checkpoint {
  const lines = body.split('\n');
  if (lines.length < 4) throw new RangeError('a checkpoint has an origin, a size and a root hash line');
  const [origin, sizeText, rootText] = lines as [string, string, string];
  if (!origin) throw new RangeError('the checkpoint origin line is empty');
  if (!/^(0|[1-9][0-9]{0,15})$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText))) throw new RangeError(`the checkpoint size "${sizeText.slice(0, 30)}" is not a decimal integer`);
  const root = Buffer.from(rootText, 'base64');
  if (root.length !== HASH_BYTES || root.toString('base64') !== rootText) throw new RangeError('the checkpoint root hash is not 32 bytes of base64');
  return { origin, size: Number(sizeText), root };
}

/** A signed checkpoint's note text. */
export function signCheckpoint(c: Checkpoint, key: NoteKey): string {
  return signNote(checkpointBody(c), key);
}

export interface VerifiedCheckpoint extends Checkpoint {
  readonly note: Note;
  readonly text: string;
}

/** Parse a checkpoint note and check the log's signature; throws a RangeError naming the problem. */
export function openCheckpoint(text: string, logKey: NoteKey): VerifiedCheckpoint {
  const note = parseNote(text);
  const c = parseCheckpointBody(note.body);
  if (!verifyNote(note, logKey)) throw new RangeError(`checkpoint of size ${c.size} has no valid signature by "${logKey.name}"`);
  return { ...c, note, text };
}

function cosignedMessage(body: string, timestamp: number): Buffer {
  return Buffer.from(`cosignature/v1\ntime ${timestamp}\n${body}`, 'utf8');
}

/** A tlog-cosignature v1 signature line for `body`, by witness key `key`, at `timestamp` (POSIX seconds). */
export function cosignatureLine(body: string, key: NoteKey, timestamp: number): string {
  if (!key.privateKey) throw new RangeError('cannot cosign with a verifier key');
  const ts = Buffer.alloc(8);
  ts.writeBigUInt64BE(BigInt(timestamp));
  const sig = sign(null, cosignedMessage(body, timestamp), key.privateKey);
  return signatureLine(key.name, Buffer.concat([keyId(key.name, key.publicKeyRaw, ALG_COSIGNATURE_V1), ts, sig]));
}

/** The timestamp of a valid cosignature by `key` on `note`, or undefined. */
export function verifyCosignature(note: Note, key: NoteKey): number | undefined {
  const id = keyId(key.name, key.publicKeyRaw, ALG_COSIGNATURE_V1);
  for (const s of note.signatures) {
    if (s.name !== key.name || !s.keyId.equals(id) || s.signature.length !== 72) continue;
    const ts = s.signature.readBigUInt64BE(0);
    if (ts > BigInt(Number.MAX_SAFE_INTEGER)) continue;
    if (verify(null, cosignedMessage(note.body, Number(ts)), key.publicKey, s.signature.subarray(8))) return Number(ts);
  }
  return undefined;
}
