// The native HTTP/1 engine: Node's own llhttp binding (the parser node:http uses), reading the socket's
// handle directly ("consume" mode: no Buffer per read in JavaScript). This is the only file that touches
// Node internals (`_http_common`, `_handle`, `_unrefTimer`); index.ts loads it lazily and probes it, so a
// Node release that changes them costs speed (the portable engine takes over), never a crash at start.
import { createRequire } from 'node:module';
import net from 'node:net';
import type { Socket } from 'node:net';
import {
  BODY_AS_FRAMED,
  BODY_NONE,
  Http1ParseError,
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
}

interface Binding {
  readonly HTTPParser: NativeParserCtor;
  readonly methods: readonly string[];
  /** Consume mode is possible: sockets expose the internals it needs. */
  readonly canConsume: boolean;
}

function isNativeError(v: unknown): v is NativeError {
  return v instanceof Error;
}

function wrapError(e: NativeError): Http1ParseError {
  return new Http1ParseError(typeof e.code === 'string' ? e.code : 'HPE_UNKNOWN', typeof e.reason === 'string' ? e.reason : e.message, typeof e.bytesParsed === 'number' ? e.bytesParsed : 0);
}

function noop(): void {}

export class NativeHttp1Parser implements Http1Parser {
  readonly readMode: Http1ReadMode;
  private readingNow = true;
  private readonly socket: Socket;
  private readonly parser: NativeParser;
  private readonly handle: StreamHandle | null;
  private readonly events: RequestEvents | ResponseEvents;
  private readonly callbackSlots: readonly number[];
  private closed = false;
  private upgraded = false;
  // Node hands over heads of more than 32 headers in pieces (kOnHeaders), the rest at completion.
  private extraHeaders: string[] | null = null;
  private extraUrl = '';
  private readonly onData = (chunk: Buffer): void => {
    if (this.closed) return;
    const ret = this.parser.execute(chunk);
    this.afterRead(ret);
  };

  constructor(b: Binding, socket: Socket, req: RequestEvents | null, res: ResponseEvents | null, maxHeaderBytes: number) {
    const H = b.HTTPParser;
    const p = new H();
    this.socket = socket;
    this.parser = p;
    this.events = (req ?? res)!;
    this.callbackSlots = [H.kOnMessageBegin, H.kOnHeaders, H.kOnHeadersComplete, H.kOnBody, H.kOnMessageComplete, H.kOnExecute];
    p.initialize(req !== null ? H.REQUEST : H.RESPONSE, {}, maxHeaderBytes, H.kLenientNone);
    p[H.kOnMessageBegin] = () => {
      if (!this.closed) this.events.onMessageBegin();
    };
    p[H.kOnHeaders] = (headers: string[], url: string) => {
      (this.extraHeaders ??= []).push(...headers);
      this.extraUrl += url;
    };
    if (req !== null) {
      const methods = b.methods;
      p[H.kOnHeadersComplete] = (major: number, minor: number, headers: string[] | undefined, method: number, url: string | undefined, _s: unknown, _m: unknown, upgrade: boolean, keepAlive: boolean): number => {
        if (this.closed) return BODY_NONE;
        const raw = this.takeHeaders(headers);
        const target = url ?? this.extraUrl;
        this.extraUrl = '';
        const name = methods[method];
        if (name === undefined) return -1; // a method this table does not know: an error, never a guess
        this.upgraded = upgrade;
        return req.onRequestHead(name, target, raw, major, minor, upgrade, keepAlive);
      };
    } else {
      p[H.kOnHeadersComplete] = (_vmaj: number, _vmin: number, headers: string[] | undefined, _m: unknown, _u: unknown, status: number, statusText: string | undefined, upgrade: boolean, keepAlive: boolean): number => {
        if (this.closed) return BODY_NONE;
        this.upgraded = upgrade;
        return res!.onResponseHead(status, statusText ?? '', this.takeHeaders(headers), upgrade, keepAlive);
      };
    }
    p[H.kOnBody] = (chunk: Buffer) => {
      if (!this.closed) this.events.onBody(chunk);
    };
    p[H.kOnMessageComplete] = () => {
      if (this.closed) return;
      this.events.onMessageComplete();
      // After an upgrade the stream is no longer HTTP/1 (the portable engine stops there too).
      if (this.upgraded) this.close();
    };
    const handle = b.canConsume ? (socket as unknown as { _handle?: StreamHandle })._handle : undefined;
    if (handle?.isStreamBase === true && handle._consumed !== true && typeof handle.readStart === 'function' && typeof handle.readStop === 'function') {
      // Reads go from the handle straight into the parser; kOnExecute reports each one.
      handle._consumed = true;
      this.handle = handle;
      this.readMode = 'consume';
      p.consume(handle);
      p[H.kOnExecute] = (ret: number | NativeError) => {
        // The socket's idle timer is refreshed by its own reads, which consume mode bypasses.
        (socket as unknown as { _unrefTimer(): void })._unrefTimer();
        this.afterRead(ret);
      };
    } else {
      this.handle = null;
      this.readMode = 'data';
      p[H.kOnExecute] = noop;
    }
    // Bytes already buffered on the socket (read before this parser existed) still arrive as 'data'.
    socket.on('data', this.onData);
  }

  get reading(): boolean {
    return this.readingNow;
  }

  private takeHeaders(headers: string[] | undefined): string[] {
    let raw = headers ?? [];
    if (this.extraHeaders !== null) {
      raw = headers === undefined ? this.extraHeaders : this.extraHeaders.concat(headers);
      this.extraHeaders = null;
    }
    return raw;
  }

  private afterRead(ret: number | NativeError | undefined): void {
    if (this.closed) return;
    if (isNativeError(ret)) {
      this.close();
      this.events.onParseError(wrapError(ret));
    } else this.events.onReadDone();
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

  finish(): Http1ParseError | null {
    if (this.closed) return null;
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
  for (const m of ['initialize', 'execute', 'finish', 'consume', 'unconsume', 'remove', 'close']) {
    if (typeof (H.prototype as unknown as Record<string, unknown>)[m] !== 'function') throw new Error(`HTTPParser.prototype.${m} is missing`);
  }
  const canConsume = typeof (net.Socket.prototype as unknown as { _unrefTimer?: unknown })._unrefTimer === 'function';
  binding = { HTTPParser: H, methods: common.methods as string[], canConsume };
  probeParse(binding);
  return binding;
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
    responseParser: (socket, events, maxHeaderBytes) => new NativeHttp1Parser(b, socket, null, events, maxHeaderBytes),
  };
}
