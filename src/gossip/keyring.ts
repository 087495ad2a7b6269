// AES-256-GCM keyring for gossip packets and streams, managed like memberlist's: install a key on every
// member, switch the primary (used to encrypt), then remove the old one. Receivers try every installed key.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/** First byte of an encrypted packet (version 1 of the envelope). */
export const SEALED_MAGIC = 0xe1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** Bytes encryption adds to a packet: magic + nonce + tag. */
export const SEAL_OVERHEAD = 1 + NONCE_BYTES + TAG_BYTES;
const AAD = Buffer.from([SEALED_MAGIC]);

export class Keyring {
  private keys: Buffer[] = [];

  /** Keys as raw 32-byte buffers or base64 strings; the first becomes the primary. */
  constructor(keys: readonly (Uint8Array | string)[] = []) {
    for (const k of keys) this.install(k);
  }

  static parseKey(k: Uint8Array | string): Buffer | string {
    const b = typeof k === 'string' ? Buffer.from(k.trim(), 'base64') : Buffer.from(k);
    if (b.length !== 32) return `a gossip key must be 32 bytes (AES-256), base64-encoded; got ${b.length} bytes`;
    return b;
  }

  get enabled(): boolean {
    return this.keys.length > 0;
  }

  get size(): number {
    return this.keys.length;
  }

  /** Installed keys, base64, the primary first. */
  list(): string[] {
    return this.keys.map((k) => k.toString('base64'));
  }

  /** Add a key (it becomes usable for decryption; primary only if it is the first). */
  install(k: Uint8Array | string): void {
    const b = Keyring.parseKey(k);
    if (typeof b === 'string') throw new RangeError(b);
    if (!this.keys.some((x) => x.equals(b))) this.keys.push(b);
  }

  /** Make an installed key the one used to encrypt. */
  use(k: Uint8Array | string): void {
    const b = Keyring.parseKey(k);
    if (typeof b === 'string') throw new RangeError(b);
    const i = this.keys.findIndex((x) => x.equals(b));
    if (i < 0) throw new RangeError('the key is not installed: install it before using it');
    this.keys.splice(i, 1);
    this.keys.unshift(b);
  }

  /** Remove a key; the primary cannot be removed (switch first), as memberlist requires. */
  remove(k: Uint8Array | string): void {
    const b = Keyring.parseKey(k);
    if (typeof b === 'string') throw new RangeError(b);
    const i = this.keys.findIndex((x) => x.equals(b));
    if (i === 0) throw new RangeError('the primary key cannot be removed: use another key first');
    if (i > 0) this.keys.splice(i, 1);
  }

  seal(plain: Uint8Array): Buffer {
    const key = this.keys[0];
    if (!key) throw new Error('no gossip key installed');
    const nonce = randomBytes(NONCE_BYTES);
    const c = createCipheriv('aes-256-gcm', key, nonce);
    c.setAAD(AAD);
    const body = c.update(plain);
    c.final();
    return Buffer.concat([AAD, nonce, body, c.getAuthTag()]);
  }

  /** Decrypt with any installed key; undefined if no key opens it (unknown key or tampered). Never throws. */
  open(sealed: Uint8Array): Buffer | undefined {
    if (sealed.length < SEAL_OVERHEAD || sealed[0] !== SEALED_MAGIC) return undefined;
    const nonce = sealed.subarray(1, 1 + NONCE_BYTES);
    const tag = sealed.subarray(sealed.length - TAG_BYTES);
    const body = sealed.subarray(1 + NONCE_BYTES, sealed.length - TAG_BYTES);
    for (const key of this.keys) {
      try {
        const d = createDecipheriv('aes-256-gcm', key, nonce);
        d.setAAD(AAD);
        d.setAuthTag(tag);
        const out = d.update(body);
        d.final();
        return out;
      } catch {
        // wrong key or tampered: try the next key
      }
    }
    return undefined;
  }

  static generateKey(): string {
    return randomBytes(32).toString('base64');
  }
}
