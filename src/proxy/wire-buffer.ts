// One reused buffer that HTTP/1 heads (and a small body after them) are serialized into and written from:
// a head then costs no string concatenation and no new Buffer, and head + body leave in one write.
// Everything between begin() and writeTo() runs synchronously, so one buffer serves every connection.
import type { Socket } from 'node:net';

const INITIAL_BYTES = 16 * 1024;
/** A body chunk up to this size is copied after its head (one write); a larger one is written beside it. */
export const INLINE_BODY_BYTES = 16 * 1024;
/** Strings longer than this are copied by Buffer.write; shorter ones by a loop (no call into C++). */
const LOOP_CHARS = 48;

let buf = Buffer.allocUnsafeSlow(INITIAL_BYTES);
let len = 0;

/** Start a new message (whatever was put before and not written is dropped). */
export function begin(): void {
  len = 0;
}

function reserve(n: number): void {
  if (len + n <= buf.length) return;
  const grown = Buffer.allocUnsafeSlow(Math.max(buf.length * 2, len + n));
  buf.copy(grown, 0, 0, len);
  buf = grown;
}

/** Append `s` as latin1 (each char's low byte, as Buffer's 'latin1' encoding does). */
export function put(s: string): void {
  const n = s.length;
  reserve(n);
  const b = buf;
  const o = len;
  if (n > LOOP_CHARS) b.write(s, o, n, 'latin1');
  else for (let i = 0; i < n; i++) b[o + i] = s.charCodeAt(i);
  len = o + n;
}

/** Append `s`, a header name or value, then ": " or "\r\n" (saves a call per header line). */
export function putField(name: string, value: string): void {
  put(name);
  reserve(2);
  buf[len++] = 0x3a; // ':'
  buf[len++] = 0x20;
  put(value);
  reserve(2);
  buf[len++] = 0x0d;
  buf[len++] = 0x0a;
}

/** Append a response's status line, `HTTP/1.1 <status> <text>` (status: 100–999). */
export function putStatusLine(status: number, text: string): void {
  put('HTTP/1.1 ');
  reserve(4);
  buf[len++] = 0x30 + Math.trunc(status / 100);
  buf[len++] = 0x30 + (Math.trunc(status / 10) % 10);
  buf[len++] = 0x30 + (status % 10);
  buf[len++] = 0x20;
  put(text);
  reserve(2);
  buf[len++] = 0x0d;
  buf[len++] = 0x0a;
}

/** Append the bytes of `chunk`. */
export function putBytes(chunk: Uint8Array): void {
  reserve(chunk.length);
  buf.set(chunk, len);
  len += chunk.length;
}

/**
 * Write what was put to `socket` (socket.write's answer). When the socket keeps the bytes (not all
 * written at once, or queued behind earlier writes or a cork) the buffer is left to it and the next
 * message gets a new one; otherwise it is reused.
 */
export function writeTo(socket: Socket): boolean {
  const out = buf.subarray(0, len);
  len = 0;
  const ok = socket.write(out);
  if (socket.writableLength > 0 || buf.length > 4 * INITIAL_BYTES) buf = Buffer.allocUnsafeSlow(INITIAL_BYTES);
  return ok;
}

/**
 * Write a copy of what was put (a small Buffer from Node's pool) to a socket that will keep it queued, such
 * as a corked one: the shared buffer then stays with the next message instead of going to the socket.
 */
export function writeCopyTo(socket: Socket): boolean {
  const out = Buffer.from(buf.subarray(0, len));
  len = 0;
  return socket.write(out);
}
