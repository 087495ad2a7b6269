// A minimal protobuf wire-format reader for the few fields of Envoy's access-log entries that meshmedic
// uses. It reads in place from the received bytes: no message objects, no per-field allocation.
export const WIRE_VARINT = 0;
export const WIRE_I64 = 1;
export const WIRE_LEN = 2;
export const WIRE_I32 = 5;

export class WireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WireError';
  }
}

export class WireReader {
  buf: Uint8Array = new Uint8Array(0);
  pos = 0;
  end = 0;
  private view: DataView = new DataView(new ArrayBuffer(8));

  reset(buf: Uint8Array, pos: number, end: number): this {
    if (buf !== this.buf) {
      this.buf = buf;
      this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    }
    this.pos = pos;
    this.end = end;
    return this;
  }

  done(): boolean {
    return this.pos >= this.end;
  }

  /** A varint as a JS number (exact up to 2^53; larger uint64 values lose low bits, which no field here needs). */
  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new WireError('truncated varint');
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 128;
    }
    throw new WireError('varint longer than 10 bytes');
  }

  /** Tag of the next field: field number × 8 + wire type. */
  tag(): number {
    return this.varint();
  }

  /** Length of a length-delimited field; leaves `pos` at its first byte and checks it fits. */
  length(): number {
    const n = this.varint();
    if (n > this.end - this.pos) throw new WireError(`length ${n} past the end of the message`);
    return n;
  }

  double(): number {
    if (this.end - this.pos < 8) throw new WireError('truncated double');
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  skip(wireType: number): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_I64:
        if (this.end - this.pos < 8) throw new WireError('truncated fixed64');
        this.pos += 8;
        return;
      case WIRE_LEN:
        this.pos += this.length();
        return;
      case WIRE_I32:
        if (this.end - this.pos < 4) throw new WireError('truncated fixed32');
        this.pos += 4;
        return;
      default:
        throw new WireError(`unsupported wire type ${wireType}`);
    }
  }
}
