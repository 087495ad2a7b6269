// The HTTP/1.1 side of a listener: one H1ServerConn per client connection, parsing requests with the
// HTTP/1 engine (llhttp in strict mode, native or WebAssembly: smuggling, bad lengths, bad chunking and
// oversized headers are rejected) and writing responses straight to the socket. It replaces node:http's
// IncomingMessage/ServerResponse machinery, which cost about as much CPU per request as the rest of the
// proxy together (see docs/proxy.md). Requests on a connection are served in order, one at a time.
import type { Socket } from 'node:net';
import { MeshmedicError, type ErrorCode } from '../core/errors.js';
import { CLIENT_GONE, errorBody } from './failure.js';
import { forEachForwardedResponseField, isNamed, type ForwardOptions } from './headers.js';
import type { BodySink, BodySource } from './h1pool.js';
import type { Http1Engine, Http1ParseError, Http1Parser, RequestEvents } from './engine/types.js';
import * as wire from './wire-buffer.js';

export interface H1ServerOptions {
  readonly engine: Http1Engine;
  readonly maxHeaderBytes: number;
  /** A connection with no traffic for this long is closed (by onIdleTimeout when given, else at once). */
  readonly idleTimeoutMs: number;
  readonly onIdleTimeout?: (socket: Socket) => void;
  /** CONNECT is handed here with the socket (its parser closed); absent: CONNECT is answered 405. */
  readonly onConnect?: (socket: Socket, target: string) => void;
  /** A request head must be complete this long after its first byte (slowloris); then 408. */
  readonly requestHeadersTimeoutMs: number;
  /** After bodyGraceMs of reading, a request body must have averaged this rate (0 = no limit); else 408. */
  readonly bodyMinBytesPerSecond: number;
  readonly bodyGraceMs: number;
}

/** What the forwarder needs from a request and its response: one object per request. */
export class H1Io implements BodySource {
  readonly conn: H1ServerConn;
  readonly method: string;
  readonly url: string;
  readonly rawHeaders: string[];
  readonly httpVersionMajor: number;
  readonly httpVersionMinor: number;
  readonly remoteAddress: string;
  /** The client may keep the connection after this exchange. */
  keepAlive: boolean;
  /** The forwarder's exchange (for client-gone notification). */
  owner: { clientGone(): void } | null = null;
  // request body
  bodyComplete = false;
  /** Set when the request body broke (client reset, malformed chunking): not the endpoint's fault. */
  errored: Error | null = null;
  private sink: BodySink | null = null;
  private buffered: Buffer[] | null = null;
  /** Body bytes received, and the time spent reading them (not counting pauses), for the minimum rate. */
  bodyBytes = 0;
  bodyActiveMs = 0;
  // response
  /** writeHead was called (the head may still wait for the first body bytes: see committed). */
  headersSent = false;
  finished = false;
  destroyed = false;
  /** The head queued by writeHead, not yet written (null: none, or written). */
  private headFields: readonly string[] | null = null;
  /** Non-null: headFields are an upstream response's raw head, filtered by these options as it is written. */
  private headForward: ForwardOptions | null = null;
  private headStatus = 0;
  private headText = '';
  /** Whether the queued head (not a forwarded one) carries a Content-Length. */
  private headHasLength = false;
  /** The body is chunk-framed by this connection (decided when the head is written: putHead). */
  private chunked = false;
  private noBody = false;
  private drainFn: (() => void) | null = null;

  constructor(conn: H1ServerConn, method: string, url: string, rawHeaders: string[], major: number, minor: number, keepAlive: boolean) {
    this.conn = conn;
    this.method = method;
    this.url = url;
    this.rawHeaders = rawHeaders;
    this.httpVersionMajor = major;
    this.httpVersionMinor = minor;
    this.keepAlive = keepAlive;
    this.remoteAddress = conn.remoteAddress;
  }

  // --- BodySource (read by the upstream pool) ---
  get ended(): boolean {
    return this.bodyComplete && this.buffered === null;
  }

  attach(sink: BodySink): void {
    this.sink = sink;
    const b = this.buffered;
    this.buffered = null;
    let ok = true;
    if (b !== null) for (const c of b) ok = sink.onBodyData(c) && ok;
    if (this.errored !== null) sink.onBodyError(this.errored);
    else if (this.bodyComplete) sink.onBodyEnd();
    else if (ok) this.conn.resumeReading();
  }

  detach(): void {
    this.sink = null;
  }

  pause(): void {
    this.conn.pauseReading();
  }

  resume(): void {
    this.conn.resumeReading();
  }

  retainChunk(): void {
    this.conn.retainBody();
  }

  /** Called by the connection's parser. */
  pushBody(chunk: Buffer): void {
    this.bodyBytes += chunk.length;
    const s = this.sink;
    if (s === null) {
      // Nobody reads yet (the endpoint is still connecting): keep this chunk, stop reading more.
      (this.buffered ??= []).push(chunk);
      this.conn.retainBody();
      this.conn.pauseReading();
      return;
    }
    if (!s.onBodyData(chunk)) this.conn.pauseReading();
  }

  endBody(): void {
    this.bodyComplete = true;
    this.sink?.onBodyEnd();
  }

  failBody(err: Error): void {
    if (this.errored !== null || this.bodyComplete) return;
    this.errored = err;
    this.sink?.onBodyError(err);
  }

  // --- response (written by the forwarder) ---
  /** Queue the status line and headers; they go out with the first body bytes (one write). */
  writeHead(status: number, headers: readonly string[], statusText = ''): void {
    let hasLength = false;
    let closeAsked = false;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!;
      if (isNamed(name, 'content-length')) hasLength = true;
      else if (isNamed(name, 'connection') && isNamed(headers[i + 1]!, 'close')) closeAsked = true;
    }
    this.headHasLength = hasLength;
    this.queueHead(status, headers, statusText, closeAsked, null);
  }

  /**
   * Queue an upstream response's head as forwarded (headers.ts, forEachForwardedResponseField): its raw
   * fields are filtered while they are serialized (one pass, which also finds whether a Content-Length
   * is kept, so the framing is decided there), and no forwarded copy is built. `close`: this connection
   * ends after the response (the proxy is draining).
   */
  writeForwardedHead(status: number, raw: readonly string[], statusText: string, forward: ForwardOptions, close: boolean): void {
    this.queueHead(status, raw, statusText, close, forward);
  }

  private queueHead(status: number, headers: readonly string[], statusText: string, closeAsked: boolean, forward: ForwardOptions | null): void {
    if (this.headersSent) throw new Error('headers already sent');
    this.headersSent = true;
    this.noBody = this.method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200);
    if (closeAsked || this.conn.draining) this.keepAlive = false;
    // Serialized when the first bytes go out (putHead), straight into the write buffer; the body's framing
    // (chunked or not) is decided there, from the fields actually written.
    this.headStatus = status;
    this.headText = statusText;
    this.headFields = headers;
    this.headForward = forward;
  }

  /** Put the queued head into the write buffer (begun by the caller) and clear it. */
  private putHead(): void {
    const status = this.headStatus;
    const headers = this.headFields!;
    const forward = this.headForward;
    this.headFields = null;
    this.headForward = null;
    wire.putStatusLine(status, this.headText || STATUS_TEXT[status] || 'Unknown');
    let hasLength = this.headHasLength;
    if (forward !== null) hasLength = forEachForwardedResponseField(headers, forward, wire.putField); // never a Connection field
    else {
      for (let i = 0; i < headers.length; i += 2) {
        const name = headers[i]!;
        if (isNamed(name, 'connection')) continue; // written once below
        wire.putField(name, headers[i + 1]!);
      }
    }
    if (!hasLength && !this.noBody) {
      if (this.httpVersionMinor >= 1) this.chunked = true;
      else this.keepAlive = false; // HTTP/1.0: the body ends with the connection
    }
    if (this.chunked) wire.put('transfer-encoding: chunked\r\n');
    wire.put(this.keepAlive ? '\r\n' : 'connection: close\r\n\r\n');
  }

  /** Something of the response reached the socket: from now on an error can only close the connection. */
  get committed(): boolean {
    return this.headersSent && this.headFields === null;
  }

  /** Drop a head that was queued but not written, so that an error status can be answered instead. */
  uncommit(): void {
    if (!this.headersSent || this.headFields === null) return;
    this.headersSent = false;
    this.headFields = null;
    this.headForward = null;
    this.chunked = false;
    this.noBody = false;
  }

  /** Bytes written to the client are still queued (not yet handed to the kernel). */
  get writeQueued(): boolean {
    return this.conn.socket.writableLength > 0;
  }

  /** Write body bytes; false when the client is slow (wait for onceDrain). */
  write(chunk: Buffer): boolean {
    if (this.finished || this.destroyed) return true;
    const s = this.conn.socket;
    if (this.headFields !== null) {
      wire.begin();
      this.putHead(); // decides the framing (chunked)
      // No body bytes may go out (a zero-length chunk would be the terminator): only the head.
      if (this.noBody || (this.chunked && chunk.length === 0)) return wire.writeTo(s);
      return this.putChunk(s, chunk, this.chunked ? '\r\n' : '');
    }
    if (this.noBody || (this.chunked && chunk.length === 0)) return true;
    if (!this.chunked) return s.write(chunk);
    wire.begin();
    return this.putChunk(s, chunk, '\r\n');
  }

  /**
   * Write what the write buffer holds, then `chunk` (chunk-framed when the body is chunked) and `after`:
   * a small chunk is copied behind the rest (one write), a large one written beside it, corked.
   */
  private putChunk(s: Socket, chunk: Uint8Array, after: string): boolean {
    if (this.chunked) wire.put(`${chunk.length.toString(16)}\r\n`);
    if (chunk.length <= wire.INLINE_BODY_BYTES) {
      wire.putBytes(chunk);
      if (after !== '') wire.put(after);
      return wire.writeTo(s);
    }
    s.cork();
    wire.writeTo(s);
    let ok = s.write(chunk);
    if (after !== '') ok = s.write(after, 'latin1');
    s.uncork();
    return ok;
  }

  /** Finish the response (with a last chunk, if given). */
  end(chunk?: Buffer | string): void {
    if (this.finished || this.destroyed) return;
    const s = this.conn.socket;
    const body = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    const headPending = this.headFields !== null;
    this.finished = true;
    const hasBody = !this.noBody && body !== undefined && body.length > 0;
    if (headPending || this.chunked) {
      wire.begin();
      if (headPending) this.putHead();
      if (this.chunked && !this.noBody) {
        if (hasBody) this.putChunk(s, body, '\r\n0\r\n\r\n');
        else {
          wire.put('0\r\n\r\n');
          wire.writeTo(s);
        }
      } else if (hasBody) this.putChunk(s, body, '');
      else wire.writeTo(s);
    } else if (hasBody) s.write(body);
    this.conn.responseDone(this);
  }

  /** Abort: the connection is closed (mid-body failures can only be signalled this way in HTTP/1). */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.conn.socket.destroy();
  }

  onceDrain(fn: () => void): void {
    this.drainFn = fn;
  }

  /** The socket drained. */
  drained(): void {
    const fn = this.drainFn;
    this.drainFn = null;
    if (fn !== null) fn();
  }

  /** An interim 100 Continue for a client that sent Expect: 100-continue. */
  writeContinue(): void {
    if (!this.headersSent) this.conn.socket.write('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
  }
}

export type RequestHandler = (io: H1Io) => void;

/** One client connection speaking HTTP/1.x. */
export class H1ServerConn implements RequestEvents {
  readonly socket: Socket;
  readonly remoteAddress: string;
  draining = false;
  private readonly handler: RequestHandler;
  private parser: Http1Parser | null = null;
  /** The exchange being answered, then those pipelined behind it. */
  private cur: H1Io | null = null;
  private queue: H1Io[] | null = null;
  /** The request whose body the parser is reading now (may be queued behind `cur`). */
  private reading: H1Io | null = null;
  private closed = false;
  private onIdle: ((c: H1ServerConn) => void) | null = null;
  private readonly onConnect: ((socket: Socket, target: string) => void) | null;
  private readonly onClose: (c: H1ServerConn) => void;
  private readonly opts: H1ServerOptions;
  /** When the request head being read was first seen incomplete (performance.now()); 0 = none being read. */
  private headStartedAt = 0;
  /** A deadline check found this connection past due; expire() answers it unless the head or body completed meanwhile. */
  private expiring = false;
  /** An error to answer once the requests before it are answered (pipelining). */
  private pendingError: { status: number; code: ErrorCode; message: string } | null = null;

  constructor(socket: Socket, handler: RequestHandler, opts: H1ServerOptions, onClose: (c: H1ServerConn) => void) {
    this.socket = socket;
    this.onConnect = opts.onConnect ?? null;
    this.onClose = onClose;
    this.remoteAddress = socket.remoteAddress ?? '';
    this.handler = handler;
    this.opts = opts;
    socket.setNoDelay(true);
    socket.setTimeout(opts.idleTimeoutMs);
    const onIdle = opts.onIdleTimeout;
    socket.on('timeout', onIdle === undefined ? () => socket.destroy() : () => onIdle(socket));
    // The engine reads the socket (bytes the protocol sniffer already read are still delivered).
    this.parser = opts.engine.requestParser(socket, this, opts.maxHeaderBytes);
    socket.on('drain', () => this.cur?.drained());
    socket.on('error', noop); // 'close' follows
    socket.on('close', () => {
      this.closeNow();
      onClose(this);
    });
  }

  /**
   * The drain deadline passed with this connection's exchange still open: answer 503 where nothing of
   * the response was written yet (else cut), cancel the upstream request, close after the answer.
   * True when an answer was written (the socket then closes by itself once it is flushed).
   */
  cutAtDeadline(): boolean {
    const io = this.cur;
    if (io === null || this.closed) return false;
    if (io.committed || io.finished) {
      this.socket.destroy();
      return false;
    }
    io.uncommit();
    io.keepAlive = false;
    const body = errorBody('MM_ERR_DRAIN_DEADLINE', 'the sidecar shut down before the endpoint answered (proxy.drainTimeoutMs)', '');
    io.writeHead(503, ['content-type', 'application/json', 'content-length', String(Buffer.byteLength(body)), 'connection', 'close']);
    io.end(body);
    io.owner?.clientGone(); // the upstream request is abandoned; the answer is already written
    return true;
  }

  /** Called once when the connection has nothing in flight (for drain). */
  whenIdle(fn: ((c: H1ServerConn) => void) | null): void {
    this.onIdle = fn;
    if (fn !== null && this.cur === null) fn(this);
  }

  get busy(): boolean {
    return this.cur !== null;
  }

  // --- RequestEvents (from the engine's parser) ---
  onHeadPending(): void {
    this.headStartedAt = performance.now();
  }

  onReadDone(): void {}

  onBody(chunk: Buffer): void {
    this.reading?.pushBody(chunk);
  }

  onMessageComplete(): void {
    this.expiring = false;
    const r = this.reading;
    this.reading = null;
    r?.endBody();
  }

  onRequestHead(name: string, target: string, raw: string[], major: number, minor: number, upgrade: boolean, keepAlive: boolean): number {
    this.headStartedAt = 0;
    this.expiring = false;
    if (major !== 1) {
      // HTTP/0.9 (no version, no headers) and anything but 1.x: refused, never forwarded as 1.1.
      this.refuse(505, 'MM_ERR_BAD_REQUEST', `HTTP/${major}.${minor} is not supported: send HTTP/1.1 or HTTP/1.0`);
      return 1;
    }
    if (upgrade) {
      if (name === 'CONNECT' && this.onConnect !== null && this.cur === null) {
        this.handOver(target);
        return 1;
      }
      const what = name === 'CONNECT' ? 'CONNECT is not supported' : 'protocol upgrades are not supported';
      this.refuse(name === 'CONNECT' ? 405 : 501, 'MM_ERR_BAD_REQUEST', what);
      return 1;
    }
    const io = new H1Io(this, name, target, raw, major, minor, keepAlive && !this.draining);
    this.reading = io;
    if (this.cur === null) {
      this.cur = io;
      this.handler(io);
    } else {
      // Pipelined: answered after the ones before it; stop reading more until then.
      (this.queue ??= []).push(io);
      this.pauseReading();
    }
    return 0;
  }

  /** The current exchange's response is complete: next request, or close. */
  responseDone(io: H1Io): void {
    if (io !== this.cur) return;
    this.cur = null;
    if (!io.keepAlive || (!io.bodyComplete && io.errored === null)) {
      // Closing: either asked for, or the request body was not read to its end (position unknown).
      this.socket.end();
      this.freeParser();
      return;
    }
    const next = this.queue?.shift();
    if (next !== undefined) {
      this.cur = next;
      if (this.queue!.length === 0) this.queue = null;
      if (this.pendingError === null) this.resumeReading();
      this.handler(next);
      return;
    }
    if (this.pendingError !== null) {
      const e = this.pendingError;
      this.pendingError = null;
      this.rawError(e.status, e.message, e.code);
      return;
    }
    this.resumeReading();
    if (this.onIdle !== null) this.onIdle(this);
  }

  pauseReading(): void {
    if (!this.closed) this.parser?.pauseReads();
  }

  resumeReading(): void {
    if (!this.closed && this.pendingError === null) this.parser?.resumeReads();
  }

  /** The body chunk being delivered is kept past its callback (see Http1Parser.retainBody). */
  retainBody(): void {
    this.parser?.retainBody();
  }

  /** Stop parsing this connection (safe inside the parser's callbacks: the engine defers the release). */
  private freeParser(): void {
    this.parser?.close();
    this.parser = null;
  }

  /**
   * CONNECT accepted: the socket leaves this connection. The parser stops reading it now (the client sends
   * nothing before the answer, which the tunnel writes next).
   */
  private handOver(target: string): void {
    this.freeParser();
    this.closed = true;
    this.onClose(this);
    const socket = this.socket;
    setImmediate(() => {
      if (!socket.destroyed) this.onConnect!(socket, target);
    });
  }

  /**
   * Deadlines of the client's side, called about four times a second by the listener: a request head
   * must not trickle in (slowloris), a request body must keep a minimum average rate once past its grace
   * time. Time during which the proxy itself stopped reading (backpressure, pipelining) is not counted.
   * Returns why the connection is past a deadline (once; the listener then calls expire), else null.
   * Cheap on purpose: answering and closing is left to expire, which the listener spreads over turns of
   * the event loop so that thousands of connections opened together and expiring together do not stall
   * everyone else's traffic.
   */
  check(now: number, tickMs: number): string | null {
    const parser = this.parser;
    if (this.closed || this.expiring || parser === null || !parser.reading) return null;
    const o = this.opts;
    if (this.headStartedAt > 0 && now - this.headStartedAt > o.requestHeadersTimeoutMs) {
      this.headStartedAt = 0;
      this.expiring = true;
      return `request head not complete within ${o.requestHeadersTimeoutMs} ms (proxy.requestHeadersTimeoutMs)`;
    }
    const r = this.reading;
    if (r === null || o.bodyMinBytesPerSecond === 0 || r.bodyComplete || r.errored !== null) return null;
    r.bodyActiveMs += tickMs;
    if (r.bodyActiveMs > o.bodyGraceMs && r.bodyBytes < (o.bodyMinBytesPerSecond * r.bodyActiveMs) / 1000) {
      this.expiring = true;
      return `request body too slow: ${r.bodyBytes} bytes in ${Math.round(r.bodyActiveMs)} ms (proxy.requestBodyMinBytesPerSecond = ${o.bodyMinBytesPerSecond})`;
    }
    return null;
  }

  /** Answer 408 and close, for a deadline check found past (unless the connection went meanwhile). */
  expire(message: string): boolean {
    if (!this.expiring) return false; // what was late arrived before its turn came: nothing to answer
    this.expiring = false;
    if (this.closed || this.parser === null) return false;
    this.freeParser();
    this.failRequest(408, 'MM_ERR_REQUEST_TIMEOUT', message, new MeshmedicError('MM_ERR_REQUEST_TIMEOUT', message));
    return true;
  }

  /** Malformed input (the engine has closed the parser already). */
  onParseError(err: Http1ParseError): void {
    if (this.closed) return; // handed over (CONNECT) or gone: nothing to answer on
    this.parser = null;
    let status = 400;
    let message = this.reading !== null ? `malformed request body (${err.code})` : `malformed HTTP request (${err.code})`;
    if (err.code === 'HPE_HEADER_OVERFLOW') {
      status = 431;
      message = 'request headers exceed the configured maximum (proxy.maxHeaderBytes)';
    }
    this.failRequest(status, 'MM_ERR_BAD_REQUEST', message, err);
  }

  /** The client's input cannot go on (the parser is released): answer `status`, fail the body, close. */
  private failRequest(status: number, code: ErrorCode, message: string, err: Error): void {
    const reading = this.reading;
    this.reading = null;
    if (reading !== null && reading === this.cur && !reading.headersSent) {
      // The head was fine, the body is not: answer on this exchange, then close.
      reading.keepAlive = false;
      const body = errorBody(code, message, '');
      reading.writeHead(status, ['content-type', 'application/json', 'content-length', String(Buffer.byteLength(body))]);
      reading.end(body);
      reading.failBody(err);
      return;
    }
    if (reading !== null) reading.failBody(err);
    if (this.cur !== null) {
      if (reading !== this.cur) {
        // A bad request pipelined after good ones: answer those first, then this error, then close. A
        // queued request whose body broke was never handed on: it is dropped for the error answer.
        if (reading !== null && this.queue !== null && this.queue[this.queue.length - 1] === reading) {
          this.queue.pop();
          if (this.queue.length === 0) this.queue = null;
        }
        this.refuse(status, code, message);
        return;
      }
      // A response is under way: the connection cannot carry an error answer any more.
      this.socket.destroy();
      return;
    }
    this.rawError(status, message, code);
  }

  /** Answer `status` and close: now, or after the requests pipelined before this one are answered. */
  private refuse(status: number, code: ErrorCode, message: string): void {
    if (this.cur === null) {
      this.rawError(status, message, code);
      return;
    }
    this.freeParser();
    this.pendingError = { status, code, message };
  }

  /** Answer outside any exchange (parse errors, upgrades) and close. */
  private rawError(status: number, message: string, code: ErrorCode = 'MM_ERR_BAD_REQUEST'): void {
    this.freeParser();
    const body = errorBody(code, message, '');
    if (this.cur === null && !this.closed) {
      this.socket.end(`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`, 'latin1');
    } else this.socket.destroy();
  }

  private closeNow(): void {
    if (this.closed) return;
    this.closed = true;
    const all = this.cur === null ? [] : [this.cur];
    if (this.queue !== null) all.push(...this.queue);
    this.cur = null;
    this.queue = null;
    for (const io of all) {
      io.destroyed = true;
      if (!io.bodyComplete) io.failBody(CLIENT_GONE); // coded MM_ERR_UPSTREAM_ABORTED: the request to the endpoint is abandoned
      if (!io.finished) io.owner?.clientGone();
    }
    this.freeParser();
  }
}

function noop(): void {}

const STATUS_TEXT: Record<number, string> = {
  100: 'Continue', 200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'No Content', 206: 'Partial Content',
  301: 'Moved Permanently', 302: 'Found', 303: 'See Other', 304: 'Not Modified', 307: 'Temporary Redirect', 308: 'Permanent Redirect',
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 408: 'Request Timeout',
  409: 'Conflict', 413: 'Content Too Large', 429: 'Too Many Requests', 431: 'Request Header Fields Too Large',
  500: 'Internal Server Error', 501: 'Not Implemented', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout', 505: 'HTTP Version Not Supported',
};
