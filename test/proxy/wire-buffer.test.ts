// The shared write buffer of HTTP/1 heads: the bytes it writes equal the latin1 encoding of what was put,
// it grows for heads larger than itself, and a buffer the socket kept is never written into again.
import t from 'tap';
import type { Socket } from 'node:net';
import * as wire from '../../src/proxy/wire-buffer.js';

/** A socket stand-in: records what it was given; `keeps` says whether it holds the bytes after write. */
class FakeSocket {
  readonly written: Uint8Array[] = [];
  writableLength = 0;
  constructor(private readonly keeps: boolean) {}
  write(chunk: Uint8Array): boolean {
    this.written.push(chunk);
    if (this.keeps) this.writableLength += chunk.length;
    return !this.keeps;
  }
  asSocket(): Socket {
    return this as unknown as Socket;
  }
}

t.test('a head and a body come out as their latin1 bytes, in one write', async (t) => {
  const s = new FakeSocket(false);
  wire.begin();
  wire.putStatusLine(204, 'No Content');
  wire.putField('x-long', 'v'.repeat(100)); // past the loop's length: Buffer.write
  wire.putField('x-latin1', 'caf\u00e9 \u0100'); // U+0100 keeps only its low byte, as 'latin1' does
  wire.put('\r\n');
  wire.putBytes(Buffer.from([0, 1, 2, 255]));
  t.equal(wire.writeTo(s.asSocket()), true);
  t.equal(s.written.length, 1);
  const want = Buffer.concat([
    Buffer.from(`HTTP/1.1 204 No Content\r\nx-long: ${'v'.repeat(100)}\r\nx-latin1: caf\u00e9 \u0100\r\n\r\n`, 'latin1'),
    Buffer.from([0, 1, 2, 255]),
  ]);
  t.same(Buffer.from(s.written[0]!), want);
  // Status codes of every width of digit.
  for (const status of [100, 200, 304, 418, 599, 999]) {
    wire.begin();
    wire.putStatusLine(status, 'X');
    wire.writeTo(s.asSocket());
    t.equal(Buffer.from(s.written[s.written.length - 1]!).toString('latin1'), `HTTP/1.1 ${status} X\r\n`);
  }
});

t.test('a head larger than the buffer grows it, and begin() drops what was not written', async (t) => {
  const s = new FakeSocket(false);
  wire.begin();
  wire.put('dropped');
  wire.begin();
  const big = 'a'.repeat(40 * 1024);
  wire.putField('x-big', big);
  wire.putBytes(Buffer.alloc(30 * 1024, 0x62));
  wire.writeTo(s.asSocket());
  const out = Buffer.from(s.written[0]!).toString('latin1');
  t.equal(out, `x-big: ${big}\r\n${'b'.repeat(30 * 1024)}`);
});

t.test('bytes the socket keeps are never overwritten by the next message', async (t) => {
  const kept = new FakeSocket(true);
  wire.begin();
  wire.put('first message');
  t.equal(wire.writeTo(kept.asSocket()), false);
  const first = kept.written[0]!;
  const s = new FakeSocket(false);
  for (let i = 0; i < 3; i++) {
    wire.begin();
    wire.put(`later message ${i} with other bytes`);
    wire.writeTo(s.asSocket());
  }
  t.equal(Buffer.from(first).toString('latin1'), 'first message');
  // A socket that wrote everything at once leaves the buffer to be reused: the views share memory.
  t.equal(s.written[0]!.buffer, s.written[2]!.buffer);
  t.not(first.buffer, s.written[0]!.buffer);
});
