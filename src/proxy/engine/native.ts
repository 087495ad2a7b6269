// The native HTTP/1 engine: Node's own llhttp binding (the parser node:http uses), reading the socket's
// handle directly ("consume" mode: no Buffer per read in JavaScript). A connection whose Content-Length
// body goes on past the read that carried its head switches to "buffer" mode: the socket reads into one
// buffer of its own, reused, and bodies are handed on as views of it, so a long transfer leaves no garbage
// per read (the binding copies every body chunk; at 1 GiB that garbage piled up to ~100 MiB of RSS on
// Node 24/26 before V8 collected it). Idle and small-request client connections keep no buffer.
// Upstream sockets read into a buffer of their own from the start (net.connect's documented `onread`
// option): a response's Content-Length body is a view of it, not a copy made by the binding, and no
// body or end-of-read callback crosses from C++ per response.
// This is the only file that touches Node internals (`_http_common`, `_handle`, `_unrefTimer`,
// net.Socket's onread slots); index.ts loads it lazily and probes it, so a Node release that changes them
// costs speed (the portable engine takes over), never a crash at start.
import { createRequire } from 'node:module';
import net from 'node:net';
import type { Socket } from 'node:net';
import {
  BODY_AS_FRAMED,
  BODY_NONE,
  Http1ParseError,
  type ClientReads,
  type Http1Engine,
  type Http1Parser,
  type Http1ReadMode,
  type RequestEvents,
  type ResponseEvents,
} from './types.js';

/** The binding's protocol, as node:http drives it (undocumented; checked by probeNative()). */
interface NativeParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | NativeError;
  finish(): undefined | NativeError;
  /** Consume mode, inside kOnExecute: a copy of the read being parsed. */
  getCurrentBuffer(): Buffer;
  consume(handle: unknown): void;
  unconsume(): void;
  remove(): void;
  close(): void;
  [key: number]: unknown;
}

interface NativeParserCtor {
  new (): NativeParser;
  readonly REQUEST: number;
  readonly RESPONSE: number;
  readonly kOnMessageBegin: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
  readonly kOnExecute: number;
  readonly kLenientNone: number;
}

type NativeError = Error & { code?: string; reason?: string; bytesParsed?: number };

/** A socket's libuv stream handle, as the consuming parser needs it. */
interface StreamHandle {
  isStreamBase?: boolean;
  _consumed?: boolean;
  reading?: boolean;
  readStop(): number;
  readStart(): number;
  useUserBuffer?: (buf: Uint8Array) => void;
}

/**
 * Where net.Socket keeps the `onread` option it documents for client sockets (buffer, callback, and the
 * function giving the buffer for the next read). Server-accepted sockets have no such option; setting
 * these slots and `handle.useUserBuffer` gives them the same reads into a caller's buffer.
 */
interface OnreadSlots {
  readonly buffer: symbol;
  readonly callback: symbol;
  readonly next: symbol;
}

interface Binding {
  readonly HTTPParser: NativeParserCtor;
  readonly methods: readonly string[];
  /** Consume mode is possible: sockets expose the internals it needs. */
  readonly canConsume: boolean;
  /** Buffer mode is possible (null: this Node's sockets have no onread slots, or no head-stop). */
  readonly onread: OnreadSlots | null;
  /** A head callback can stop the parser after the head (headStopWorks), for requests and responses. */
  readonly headStop: boolean;
}

/** Bytes of a connection's reused read buffer (what libuv is offered per read, as node does). */
const READ_BUFFER_BYTES = 64 * 1024;
/** Bytes of an upstream connection's own read buffer (kept while the connection lives: smaller). */
const CLIENT_READ_BYTES = 16 * 1024;
/** kOnHeadersComplete result: no body for the parser, and stop right after the head (llhttp's "2"). */
const HEAD_ONLY_STOP = 2;

function isNativeError(v: unknown): v is NativeError {
  return v instanceof Error;
}

function wrapError(e: NativeError): Http1ParseError {
  return new Http1ParseError(typeof e.code === 'string' ? e.code : 'HPE_UNKNOWN', typeof e.reason === 'string' ? e.reason : e.message, typeof e.bytesParsed === 'number' ? e.bytesParsed : 0);
}

function noop(): void {}

/** The first `end` bytes of `b` are only CR and LF (what llhttp skips between messages). */
function onlyLineBreaks(b: Uint8Array, end: number): boolean {
  for (let i = 0; i < end; i++) {
    const c = b[i]!;
    if (c !== 0x0d && c !== 0x0a) return false;
  }
  return true;
}

export class NativeHttp1Parser implements Http1Parser {
  readMode: Http1ReadMode;
  private readingNow = true;
  private readonly socket: Socket;
  private readonly parser: NativeParser;
  /** The handle the parser consumes (consume mode only). */
  private handle: StreamHandle | null;
  /** net.Socket's onread slots when this connection may switch to buffer mode, else null. */
  private readonly slots: OnreadSlots | null;
  // Consume mode: a Content-Length body in progress (its length, and bytes of it seen so far).
  private bodyLength = 0;
  private bodySeen = 0;
  private readonly events: RequestEvents | ResponseEvents;
  private readonly callbackSlots: readonly number[];
  /** The binding's message-complete slot and callback (left empty while a head stop ends the message). */
  private readonly completeSlot: number;
  private readonly onComplete: () => void;
  private readonly endMessage: () => void;
  /** A bodyless request's end was reported from its head callback: the slot is empty until the next head. */
  private completeLeftOut = false;
  /**
   * The binding's message-begin slot and callback. Responses: left empty while the events do not want it
   * (wantBegin). Requests: set only from a message's end to the end of that read — a message beginning
   * later in the read is then seen; one beginning a read is seen as that read's bytes (endOfRead).
   */
  private readonly beginSlot: number;
  private readonly onBegin: () => void;
  private beginWanted = true;
  private readonly isRequest: boolean;
  // Requests: a head began and has not completed (reported once, onHeadPending); a message's head is
  // complete and its end not yet reached; a message ended during the read being parsed.
  private headOpen = false;
  private headReported = false;
  private messageOpen = false;
  private endedThisRead = false;
  private readonly onExecuteSlot: number;
  private closed = false;
  private upgraded = false;
  // Buffer mode: the reused read buffer, and bytes of a Content-Length body this class frames itself.
  private buffer: Buffer | null = null;
  private bodyLeft = 0;
  /** onBody is delivering a view of the reused buffer (retainBody then applies). */
  private lendingView = false;
  /** A view of the buffer outlives its read: the next read goes to a new buffer. */
  private lent = false;
  /** How the parser was initialized (buffer mode re-initializes it after each head it stops at). */
  private readonly init: readonly [type: number, resource: object, maxHeaderBytes: number, lenient: number];
  // Node hands over heads of more than 32 headers in pieces (kOnHeaders), the rest at completion.
  private extraHeaders: string[] | null = null;
  private extraUrl = '';
  private readonly onData = (chunk: Buffer): void => {
    if (this.closed) return;
    if (this.buffer !== null) this.parseFramed(chunk, chunk.length, false);
    else this.afterRead(this.parser.execute(chunk), chunk, chunk.length);
  };
  /** net's onread callback (buffer mode): `n` bytes arrived in `buf`; false pauses the socket. */
  private readonly onBufferRead = (n: number, buf: Buffer): boolean => {
    if (this.closed) return this.passThrough(n, buf);
    this.parseFramed(buf, n, true);
    return this.readingNow;
  };
  /** net asks after each read which buffer the next one goes to. */
  private readonly nextBuffer = (): Buffer => {
    if (this.lent) {
      this.lent = false;
      this.buffer = Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
    }
    return this.buffer!;
  };

  /** An upstream socket's read (clientReads): `n` bytes in `buf`; false pauses the socket. */
  onOwnRead(n: number, buf: Buffer): boolean {
    if (this.closed) return true; // the connection is being dropped: nothing more is parsed
    this.parseFramed(buf, n, true);
    return this.readingNow;
  }

  /** The buffer for an upstream socket's next read: a new one when a view of the last one was kept. */
  nextOwnBuffer(): Buffer {
    if (this.lent) {
      this.lent = false;
      this.buffer = Buffer.allocUnsafeSlow(CLIENT_READ_BYTES);
    }
    return this.buffer!;
  }

  constructor(b: Binding, socket: Socket, req: RequestEvents | null, res: ResponseEvents | null, maxHeaderBytes: number, own: NativeClientReads | null = null) {
    const H = b.HTTPParser;
    const p = new H();
    this.socket = socket;
    this.parser = p;
    this.events = (req ?? res)!;
    this.onExecuteSlot = H.kOnExecute;
    this.callbackSlots = [H.kOnMessageBegin, H.kOnHeaders, H.kOnHeadersComplete, H.kOnBody, H.kOnMessageComplete, H.kOnExecute];
    this.init = [req !== null ? H.REQUEST : H.RESPONSE, {}, maxHeaderBytes, H.kLenientNone];
    p.initialize(...this.init);
    this.beginSlot = H.kOnMessageBegin;
    this.isRequest = req !== null;
    if (req !== null) {
      this.beginWanted = false;
      this.onBegin = () => {
        this.headOpen = true;
      };
      p[H.kOnMessageBegin] = null;
    } else {
      this.onBegin = () => {
        if (!this.closed) res!.onMessageBegin();
      };
      p[H.kOnMessageBegin] = this.onBegin;
    }
    p[H.kOnHeaders] = (headers: string[], url: string) => {
      (this.extraHeaders ??= []).push(...headers);
      this.extraUrl += url;
    };
    if (req !== null) {
      const methods = b.methods;
      p[H.kOnHeadersComplete] = (major: number, minor: number, headers: string[] | undefined, method: number, url: string | undefined, _s: unknown, _m: unknown, upgrade: boolean, keepAlive: boolean): number => {
        if (this.closed) return BODY_NONE;
        this.headOpen = false;
        this.headReported = false;
        this.messageOpen = true;
        if (this.completeLeftOut) {
          this.completeLeftOut = false;
          p[this.completeSlot] = this.onComplete;
        }
        const raw = this.takeHeaders(headers);
        const target = url ?? this.extraUrl;
        this.extraUrl = '';
        const name = methods[method];
        if (name === undefined) return -1; // a method this table does not know: an error, never a guess
        this.upgraded = upgrade;
        const r = this.frameBody(req.onRequestHead(name, target, raw, major, minor, upgrade, keepAlive), raw, upgrade);
        if (r === BODY_AS_FRAMED && !upgrade && !this.closed && isBodylessRequest(raw)) {
          // The binding would end this message right after its head, in one more call into JavaScript:
          // it is ended here instead, with that call left out (the slot is set again at the next head).
          this.completeLeftOut = true;
          p[this.completeSlot] = null;
          this.endMessage();
        }
        return r;
      };
    } else {
      p[H.kOnHeadersComplete] = (_vmaj: number, _vmin: number, headers: string[] | undefined, _m: unknown, _u: unknown, status: number, statusText: string | undefined, upgrade: boolean, keepAlive: boolean): number => {
        if (this.closed) return BODY_NONE;
        this.upgraded = upgrade;
        const raw = this.takeHeaders(headers);
        const r = res!.onResponseHead(status, statusText ?? '', raw, upgrade, keepAlive);
        // 1xx, 204 and 304 have no body whatever their Content-Length says.
        return status < 200 || status === 204 || status === 304 ? r : this.frameBody(r, raw, upgrade);
      };
    }
    p[H.kOnBody] = (chunk: Buffer) => {
      this.bodySeen += chunk.length;
      if (!this.closed) this.events.onBody(chunk);
    };
    this.completeSlot = H.kOnMessageComplete;
    this.endMessage = () => {
      // The parser's own end of a head whose body is framed here (parseFramed completes it).
      if (this.closed || this.bodyLeft > 0) return;
      this.bodyLength = 0;
      this.messageEnded();
      this.events.onMessageComplete();
      // After an upgrade the stream is no longer HTTP/1 (the portable engine stops there too).
      if (this.upgraded) this.close();
    };
    // A message already ended from its head (completeLeftOut) is not ended twice: emptying the slot keeps
    // the binding from calling in, but not on every Node line — Node 26's binding can still call the
    // callback it last called during the same execute (a bodyless request after one with a body).
    this.onComplete = () => {
      if (!this.completeLeftOut) this.endMessage();
    };
    p[H.kOnMessageComplete] = this.onComplete;
    const handle = b.canConsume ? (socket as unknown as { _handle?: StreamHandle })._handle : undefined;
    if (own !== null) {
      // An upstream socket set up by clientReads: its reads arrive in own.buffer, through onOwnRead.
      own.parser = this;
      this.handle = null;
      this.slots = null;
      this.readMode = 'buffer';
      this.buffer = own.buffer;
      p[H.kOnExecute] = noop;
    } else if (handle?.isStreamBase === true && handle._consumed !== true && typeof handle.readStart === 'function' && typeof handle.readStop === 'function') {
      // Reads go from the handle straight into the parser; kOnExecute reports each one.
      handle._consumed = true;
      this.handle = handle;
      this.readMode = 'consume';
      const own = socket as unknown as Record<symbol, unknown>;
      const slots = b.onread;
      this.slots = slots !== null && typeof handle.useUserBuffer === 'function' && own[slots.buffer] === null && own[slots.callback] === null ? slots : null;
      p.consume(handle);
      p[H.kOnExecute] = (ret: number | NativeError) => {
        // The socket's idle timer is refreshed by its own reads, which consume mode bypasses.
        (socket as unknown as { _unrefTimer(): void })._unrefTimer();
        this.afterRead(ret, null, 0);
      };
    } else {
      this.handle = null;
      this.slots = null;
      this.readMode = 'data';
      p[H.kOnExecute] = noop;
    }
    // Bytes already buffered on the socket (read before this parser existed) still arrive as 'data'.
    socket.on('data', this.onData);
  }

  get reading(): boolean {
    return this.readingNow;
  }

  wantBegin(on: boolean): void {
    if (this.isRequest || on === this.beginWanted || this.closed) return;
    this.beginWanted = on;
    this.parser[this.beginSlot] = on ? this.onBegin : null;
  }

  private takeHeaders(headers: string[] | undefined): string[] {
    let raw = headers ?? [];
    if (this.extraHeaders !== null) {
      raw = headers === undefined ? this.extraHeaders : this.extraHeaders.concat(headers);
      this.extraHeaders = null;
    }
    return raw;
  }

  /**
   * Buffer mode, after a head: a Content-Length body is sliced from the read buffer by parseFramed
   * instead of being copied per chunk by the binding, so the parser stops after the head (and goes on
   * at the next message). `r` is what the head callback answered.
   */
  private frameBody(r: number, raw: readonly string[], upgrade: boolean): number {
    if (r !== BODY_AS_FRAMED || (this.slots === null && this.buffer === null) || upgrade || this.closed) return r;
    const length = contentLength(raw);
    if (length <= 0) return r;
    if (this.buffer === null) {
      // Consume mode: the binding reads this body; afterRead switches if it goes on past this read.
      this.bodyLength = length;
      this.bodySeen = 0;
      return r;
    }
    this.bodyLeft = length;
    // The binding ends the stopped message at once; parseViews completes it after the body instead, so
    // that call into JavaScript is skipped (the slot is set again when execute returns).
    this.parser[this.completeSlot] = null;
    return HEAD_ONLY_STOP;
  }

  /**
   * Consume mode, after a read whose Content-Length body goes on: from here the socket reads into a
   * buffer of this connection's own and parseFramed slices the rest of the body (and later ones) off it.
   * Runs in kOnExecute, where node:http unconsumes its parser too (for upgrades).
   */
  private enterBufferMode(): void {
    const slots = this.slots!;
    const handle = this.handle!;
    const left = this.bodyLength - this.bodySeen;
    this.bodyLength = 0;
    this.parser.unconsume();
    handle._consumed = false;
    this.handle = null;
    this.parser[this.onExecuteSlot] = noop; // reads no longer pass through the binding
    // The binding is mid-body; what follows the body starts a new message, so it starts afresh.
    this.parser.initialize(...this.init);
    this.bodyLeft = left;
    this.readMode = 'buffer';
    this.buffer = Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
    const own = this.socket as unknown as Record<symbol, unknown>;
    own[slots.buffer] = this.buffer;
    own[slots.callback] = this.onBufferRead;
    own[slots.next] = this.nextBuffer;
    handle.useUserBuffer!(this.buffer);
  }

  /**
   * Buffer mode: parse `end` bytes of `buf`, slicing Content-Length bodies off as views (no copy) and
   * handing everything else to the parser. `reused`: `buf` is the connection's read buffer.
   */
  private parseFramed(buf: Buffer, end: number, reused: boolean): void {
    // Views of a reused buffer are out until this read ends (onReadDone included): retainBody applies.
    this.lendingView = reused;
    try {
      this.parseViews(buf, end);
    } finally {
      this.lendingView = false;
    }
  }

  private parseViews(buf: Buffer, end: number): void {
    let off = 0;
    while (off < end && !this.closed) {
      if (this.bodyLeft > 0) {
        const n = Math.min(this.bodyLeft, end - off);
        this.bodyLeft -= n;
        this.events.onBody(off === 0 && n === buf.length ? buf : buf.subarray(off, off + n));
        off += n;
        if (this.bodyLeft === 0 && !this.closed) {
          this.messageEnded();
          this.events.onMessageComplete();
        }
        continue;
      }
      const ret = this.parser.execute(off === 0 && end === buf.length ? buf : buf.subarray(off, end));
      if (this.bodyLeft > 0 && !this.closed) this.parser[this.completeSlot] = this.onComplete;
      if (isNativeError(ret)) {
        this.afterRead(ret, null, 0);
        return;
      }
      // Everything was parsed, unless a head stopped the parser to have its body framed here.
      if (this.bodyLeft === 0 || typeof ret !== 'number') break;
      off += ret;
      // Stopping marks the parser as upgraded, which would hide the next message's errors: start afresh.
      this.parser.initialize(...this.init);
    }
    this.afterRead(undefined, buf, end);
  }

  /** After close() in buffer mode the socket may live on (a CONNECT tunnel): reads reach it as 'data' again. */
  private passThrough(n: number, buf: Buffer): boolean {
    return this.socket.push(Buffer.copyBytesFrom(buf, 0, n));
  }

  /**
   * After a read was parsed: errors, the switch to buffer mode, a request head left incomplete. `buf`
   * (its first `end` bytes) is the read, or null in consume mode (the binding then holds it).
   */
  private afterRead(ret: number | NativeError | undefined, buf: Buffer | null, end: number): void {
    if (this.closed) return;
    if (isNativeError(ret)) {
      this.close();
      this.events.onParseError(wrapError(ret));
      return;
    }
    if (this.isRequest) {
      this.endOfRead(buf, end);
      if (this.closed) return;
    }
    if (this.bodyLength > this.bodySeen && this.handle !== null) this.enterBufferMode();
    this.events.onReadDone();
  }

  /** A request message ended: a message beginning later in this read must be seen (the begin slot). */
  private messageEnded(): void {
    if (!this.isRequest) return;
    this.messageOpen = false;
    this.endedThisRead = true;
    if (!this.beginWanted) {
      this.beginWanted = true;
      this.parser[this.beginSlot] = this.onBegin;
    }
  }

  /**
   * A request read was parsed. Outside a message, with none ended in this read, its bytes began a head
   * (unless they were only the empty lines llhttp skips between messages); a head still open now is
   * reported once. The time is this read's, as the binding's begin callback would have had.
   */
  private endOfRead(buf: Buffer | null, end: number): void {
    if (this.beginWanted) {
      this.beginWanted = false;
      this.parser[this.beginSlot] = null;
    }
    if (!this.endedThisRead && !this.messageOpen && !this.headOpen) {
      const bytes = buf ?? this.parser.getCurrentBuffer();
      if (!onlyLineBreaks(bytes, buf === null ? bytes.length : end)) this.headOpen = true;
    }
    this.endedThisRead = false;
    if (this.headOpen && !this.headReported) {
      this.headReported = true;
      (this.events as RequestEvents).onHeadPending();
    }
  }

  pauseReads(): void {
    if (!this.readingNow || this.closed) return;
    this.readingNow = false;
    this.socket.pause();
    const h = this.handle;
    if (h !== null && h.reading) {
      h.reading = false;
      h.readStop();
    }
  }

  resumeReads(): void {
    if (this.readingNow || this.closed) return;
    this.readingNow = true;
    this.socket.resume();
    const h = this.handle;
    if (h !== null && !h.reading) {
      h.reading = true;
      h.readStart();
    }
  }

  retainBody(): void {
    if (this.lendingView) this.lent = true;
  }

  finish(): Http1ParseError | null {
    if (this.closed) return null;
    // The peer ended inside a body framed here (the parser, between messages, would not notice).
    if (this.bodyLeft > 0) return new Http1ParseError('HPE_INVALID_EOF_STATE', 'Invalid EOF state', 0);
    const ret = this.parser.finish();
    return isNativeError(ret) ? wrapError(ret) : null;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.removeListener('data', this.onData);
    if (this.handle !== null) {
      try {
        this.parser.unconsume();
      } catch {
        // the handle is already gone (socket destroyed)
      }
    }
    // As node:http does: detach now, destroy the C++ parser once its stack has unwound (this may run
    // inside one of its callbacks). close() is what actually frees it; remove() alone leaks.
    setImmediate(releaseParser, this.parser, this.callbackSlots);
  }
}

/**
 * An upstream socket's reads go into a buffer of its own (net.connect's documented `onread` option)
 * instead of through the binding's consume mode: a Content-Length body is then sliced off the buffer as a
 * view (the binding would copy it into a new Buffer, and call into JavaScript for it and for the end of
 * each read). A view kept past its callback leaves the buffer to its holder; the next read gets a new one.
 */
class NativeClientReads implements ClientReads {
  parser: NativeHttp1Parser | null = null;
  /** The buffer of the first read (the parser takes it over once the socket is connected). */
  buffer = Buffer.allocUnsafeSlow(CLIENT_READ_BYTES);
  readonly connectOptions = {
    onread: {
      // Asked for the buffer of each next read (Node calls this after every read).
      buffer: (): Buffer => (this.parser === null ? this.buffer : this.parser.nextOwnBuffer()),
      callback: (n: number, buf: Buffer): boolean => (this.parser === null ? true : this.parser.onOwnRead(n, buf)),
    },
  };
}

/**
 * A request head that ends its message (no Transfer-Encoding; no Content-Length, or exactly "0"), as the
 * binding judges it: it then completes the message right after the head. Anything else is left to it.
 */
function isBodylessRequest(raw: readonly string[]): boolean {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') return false;
    if (name.length === 14 && name.toLowerCase() === 'content-length' && raw[i + 1] !== '0') return false;
  }
  return true;
}

/**
 * The Content-Length of a request head without Transfer-Encoding (the binding has rejected both together,
 * and a repeated or malformed length, before the head completes); -1 when there is none or it is too
 * large to count in a number exactly.
 */
function contentLength(raw: readonly string[]): number {
  let value: string | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') return -1;
    if (name.length === 14 && name.toLowerCase() === 'content-length') {
      if (value !== null) return -1;
      value = raw[i + 1]!;
    }
  }
  if (value === null || value.length === 0 || value.length > 15) return -1;
  let n = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i) - 0x30;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n;
}

/** Drop the callbacks (they hold the connection) and delete the C++ parser. */
function releaseParser(p: NativeParser, slots: readonly number[]): void {
  for (const k of slots) p[k] = null;
  try {
    p.remove();
    p.close();
  } catch {
    // already released
  }
}

let binding: Binding | null = null;

/** Load and check the binding; throws an Error whose message says what is missing or wrong. */
function loadBinding(): Binding {
  if (binding !== null) return binding;
  const require = createRequire(import.meta.url);
  const common = require('_http_common') as { HTTPParser?: unknown; methods?: unknown };
  const H = common.HTTPParser as NativeParserCtor | undefined;
  if (typeof H !== 'function') throw new Error("_http_common has no HTTPParser");
  if (!Array.isArray(common.methods)) throw new Error('_http_common has no methods table');
  for (const k of ['REQUEST', 'RESPONSE', 'kOnMessageBegin', 'kOnHeaders', 'kOnHeadersComplete', 'kOnBody', 'kOnMessageComplete', 'kOnExecute', 'kLenientNone'] as const) {
    if (typeof H[k] !== 'number') throw new Error(`HTTPParser.${k} is not a number`);
  }
  for (const m of ['initialize', 'execute', 'finish', 'consume', 'unconsume', 'getCurrentBuffer', 'remove', 'close']) {
    if (typeof (H.prototype as unknown as Record<string, unknown>)[m] !== 'function') throw new Error(`HTTPParser.prototype.${m} is missing`);
  }
  const canConsume = typeof (net.Socket.prototype as unknown as { _unrefTimer?: unknown })._unrefTimer === 'function';
  const headStop = headStopWorks(H, H.REQUEST) && headStopWorks(H, H.RESPONSE);
  binding = { HTTPParser: H, methods: common.methods as string[], canConsume, onread: headStop ? findOnreadSlots() : null, headStop };
  probeParse(binding);
  return binding;
}

/** net.Socket's onread slots, found by their names on a fresh socket; null if this Node has other ones. */
function findOnreadSlots(): OnreadSlots | null {
  const s = new net.Socket();
  try {
    const own = s as unknown as Record<symbol, unknown>;
    const byName = new Map<string, symbol>();
    for (const k of Object.getOwnPropertySymbols(s)) if (k.description !== undefined) byName.set(k.description, k);
    const buffer = byName.get('kBuffer');
    const callback = byName.get('kBufferCb');
    const next = byName.get('kBufferGen');
    if (buffer === undefined || callback === undefined || next === undefined) return null;
    if (own[buffer] !== null || own[callback] !== null || own[next] !== null) return null;
    return { buffer, callback, next };
  } finally {
    s.destroy();
  }
}

/**
 * Buffer mode's use of the binding: a head callback answering HEAD_ONLY_STOP stops the parser right
 * after the head (execute returns the head's length, the message completes bodiless), and after
 * initialize() the next message parses, its errors reported.
 */
function headStopWorks(H: NativeParserCtor, type: number): boolean {
  const p = new H();
  const seen: string[] = [];
  try {
    p.initialize(type, {}, 16_384, H.kLenientNone);
    p[H.kOnMessageBegin] = noop;
    p[H.kOnHeaders] = noop;
    p[H.kOnHeadersComplete] = (): number => {
      seen.push('head');
      return HEAD_ONLY_STOP;
    };
    p[H.kOnBody] = () => seen.push('body');
    p[H.kOnMessageComplete] = () => seen.push('end');
    p[H.kOnExecute] = noop;
    const head = type === H.REQUEST ? 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n' : 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n';
    const stopped = p.execute(Buffer.from(`${head}hi`, 'latin1'));
    p.initialize(type, {}, 16_384, H.kLenientNone);
    const bad = p.execute(Buffer.from('\x00x\r\n\r\n', 'latin1'));
    return stopped === head.length && seen.join(' ') === 'head end' && isNativeError(bad);
  } catch {
    return false;
  } finally {
    p.remove();
    p.close();
  }
}

/** Parse a request and a response with the binding and check every callback agrees with the protocol. */
function probeParse(b: Binding): void {
  const H = b.HTTPParser;
  const seen: string[] = [];
  const req = new H();
  req.initialize(H.REQUEST, {}, 16_384, H.kLenientNone);
  req[H.kOnMessageBegin] = () => seen.push('begin');
  req[H.kOnHeaders] = noop;
  req[H.kOnHeadersComplete] = (major: number, minor: number, headers: string[], method: number, url: string, _s: unknown, _m: unknown, upgrade: boolean, keepAlive: boolean) => {
    seen.push(`${b.methods[method]} ${url} ${major}.${minor} ${headers.join('|')} ${upgrade} ${keepAlive}`);
    return BODY_AS_FRAMED;
  };
  req[H.kOnBody] = (chunk: Buffer) => seen.push(`body ${chunk.toString('latin1')}`);
  req[H.kOnMessageComplete] = () => seen.push('end');
  req[H.kOnExecute] = noop;
  const r1 = req.execute(Buffer.from('POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi', 'latin1'));
  const smuggle = req.execute(Buffer.from('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'latin1'));
  req.remove();
  req.close();
  const res = new H();
  res.initialize(H.RESPONSE, {}, 16_384, H.kLenientNone);
  res[H.kOnMessageBegin] = () => seen.push('begin');
  res[H.kOnHeaders] = noop;
  res[H.kOnHeadersComplete] = (_a: number, _b: number, headers: string[], _m: unknown, _u: unknown, status: number, statusText: string) => {
    seen.push(`${status} ${statusText} ${headers.join('|')}`);
    return BODY_AS_FRAMED;
  };
  res[H.kOnBody] = (chunk: Buffer) => seen.push(`body ${chunk.toString('latin1')}`);
  res[H.kOnMessageComplete] = () => seen.push('end');
  res[H.kOnExecute] = noop;
  const r2 = res.execute(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx', 'latin1'));
  res.remove();
  res.close();
  // The second 'begin' is the smuggling request, rejected after it began.
  const want = ['begin', 'POST /p 1.1 Host|a|Content-Length|2 false true', 'body hi', 'end', 'begin', 'begin', '200 OK Content-Length|1', 'body x', 'end'];
  if (isNativeError(r1) || isNativeError(r2) || seen.join('\n') !== want.join('\n')) throw new Error(`the binding parsed a probe request differently: ${JSON.stringify(seen)}`);
  if (!isNativeError(smuggle)) throw new Error('the binding accepted Content-Length with Transfer-Encoding');
}

/** The native engine; throws (with the reason) when this Node's binding is not the one it knows. */
export function nativeEngine(): Http1Engine {
  const b = loadBinding();
  return {
    name: 'native',
    readMode: b.canConsume ? 'consume' : 'data',
    requestParser: (socket, events, maxHeaderBytes) => new NativeHttp1Parser(b, socket, events, null, maxHeaderBytes),
    // Without the head-stop the binding cannot leave bodies to this class: the socket is then consumed.
    clientReads: () => (b.headStop ? new NativeClientReads() : null),
    responseParser: (socket, events, maxHeaderBytes, reads) =>
      new NativeHttp1Parser(b, socket, null, events, maxHeaderBytes, reads instanceof NativeClientReads ? reads : null),
  };
}
