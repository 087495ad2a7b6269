// A lean HTTP/1.1 keep-alive client pool for one endpoint, parsing with the HTTP/1 engine (engine/). It
// replaces undici on the hot path: measured on this machine, undici's dispatch costs ~18 µs of CPU per
// request as a client, this pool about half (see docs/proxy.md). It speaks undici's callback handler
// interface (onConnect/onHeaders/onData/onComplete/onError), so forwarders do not care.
// Timeouts are checked by one sweep per pool instead of a timer per request.
import net from 'node:net';
import { BODY_AS_FRAMED, BODY_NONE, type Http1Engine, type Http1ParseError, type Http1Parser, type ResponseEvents } from './engine/types.js';
import { responseFramingProblem } from './headers.js';
import { UpstreamError } from './failure.js';
import * as wire from './wire-buffer.js';

/** undici's legacy dispatch handler shape (what the forwarders implement). */
export interface H1Handler {
  /**
   * The request is sent. `retainBody`: call it from onData when the chunk is kept after onData returns
   * (held, or its write queued); chunks may be views of a read buffer that is otherwise reused.
   */
  onConnect(abort: (err?: Error) => void, retainBody: () => void): void;
  onHeaders(statusCode: number, rawHeaders: string[], resume: () => void, statusText: string): boolean;
  onData(chunk: Buffer): boolean;
  /**
   * The socket read that delivered the chunks so far is parsed, and the next read may reuse their memory:
   * a chunk still kept must be retained now (retainBody). Lets a handler keep a chunk for the rest of the
   * read (to complete with it) without costing the connection its read buffer.
   */
  onReadEnd?(): void;
  onComplete(trailers: string[] | null): void;
  onError(err: Error): void;
}

/** Where a request body goes: the pool writes each chunk upstream (false = the source should pause). */
export interface BodySink {
  onBodyData(chunk: Buffer): boolean;
  onBodyEnd(): void;
  onBodyError(err: Error): void;
}

/** A request body the pool pulls from (the client connection's parser pushes into it). */
export interface BodySource {
  /** Start delivering (buffered chunks first); end or error follow as they happen. */
  attach(sink: BodySink): void;
  /** Stop delivering to the current sink (the request ended or failed). */
  detach(): void;
  pause(): void;
  resume(): void;
  /** The chunk just handed to onBodyData is still referenced after it returned (its write is queued). */
  retainChunk(): void;
}

export interface H1Request {
  readonly method: string;
  readonly path: string;
  /**
   * Hand each header field of the head to `emit`, in order (called when the head is written; again if the
   * pool resends the request). No framing but Content-Length (Transfer-Encoding is added here). Returns
   * whether a Content-Length was among them.
   */
  forEachHeaderField(emit: (name: string, value: string) => void): boolean;
  /** Request body, or null. With no content-length header it is sent chunked. */
  readonly body: BodySource | null;
  /** Headers timeout of this request (a per-try timeout); 0 = the pool's headersTimeoutMs. */
  readonly headersTimeoutMs?: number;
}

export interface H1PoolOptions {
  readonly engine: Http1Engine;
  readonly connections: number;
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  /** Max silence while a response body streams; 0 = none. */
  readonly bodyTimeoutMs: number;
  /** Idle keep-alive connections are closed after this. */
  readonly keepAliveTimeoutMs: number;
  readonly maxHeaderSize: number;
  /** Longest a request waits for a free connection; then it fails with MM_ERR_UPSTREAM_BUSY. */
  readonly queueTimeoutMs: number;
  /**
   * Most connections that may carry a request body still arriving from its client: slow uploads then
   * cannot hold every connection of the endpoint; further uploads wait (within queueTimeoutMs).
   */
  readonly maxUploading: number;
}

/** An error with a stable code, as the failure classifier expects. */
const SWEEP_MS = 50;
/** Queued requests answered 503 per sweep at most (see expireQueued). */
const QUEUE_EXPIRE_PER_SWEEP = 8;

/** Ends the cork of a request head (see H1Connection.start). */
function uncork(s: net.Socket): void {
  s.uncork();
}

/** One queued or running request. */
class Pending {
  readonly req: H1Request;
  readonly handler: H1Handler;
  /** Whether a request on a reused connection may be sent again after a stale-connection close. */
  retried = false;
  /** Counted in the pool's uploads (a request body not yet fully sent). */
  uploadSlot = false;
  /** When the request entered the pool (performance.now()), for the queue deadline. */
  readonly queuedAt: number;
  constructor(req: H1Request, handler: H1Handler) {
    this.req = req;
    this.handler = handler;
    this.queuedAt = performance.now();
  }
}

/** A FIFO of pending requests with an O(1) amortised shift (no array copy per dequeue). */
class PendingQueue {
  private items: (Pending | undefined)[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(p: Pending): void {
    this.items.push(p);
  }

  peek(): Pending | undefined {
    return this.items[this.head];
  }

  shift(): Pending | undefined {
    if (this.head >= this.items.length) return undefined;
    const p = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return p;
  }
}

export class H1Pool {
  readonly host: string;
  readonly port: number;
  private readonly opts: H1PoolOptions;
  private readonly idle: H1Conn[] = [];
  private readonly conns = new Set<H1Conn>();
  /** Requests waiting for a connection. */
  private readonly queue = new PendingQueue();
  /** Requests with a body waiting for an upload slot (maxUploading), before they may take a connection. */
  private readonly uploadQueue = new PendingQueue();
  /** Requests holding an upload slot (queued for a connection or sending their body). */
  private uploading = 0;
  private sweepTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private closeWaiters: (() => void)[] = [];

  constructor(host: string, port: number, opts: H1PoolOptions) {
    this.host = host;
    this.port = port;
    this.opts = opts;
  }

  get options(): H1PoolOptions {
    return this.opts;
  }

  /** Start a request; the handler hears everything (including connect errors) asynchronously or at once. */
  dispatch(req: H1Request, handler: H1Handler): void {
    if (this.closed) {
      handler.onError(new UpstreamError('MM_ERR_UPSTREAM_CLOSED', `the pool for ${this.host}:${this.port} is closed`));
      return;
    }
    const p = new Pending(req, handler);
    if (req.body !== null) {
      if (this.uploading >= this.opts.maxUploading) {
        this.uploadQueue.push(p);
        this.ensureSweep();
        return;
      }
      p.uploadSlot = true;
      this.uploading++;
    }
    this.place(p);
  }

  /** On an idle connection, a new one, or in the queue. */
  private place(p: Pending): void {
    const c = this.idle.pop();
    if (c !== undefined) c.start(p, true);
    else if (this.conns.size < this.opts.connections) this.open(p);
    else {
      this.queue.push(p);
      this.ensureSweep();
    }
  }

  /** A request's body is sent (or the request ended): its upload slot goes to the next waiting upload. */
  uploadDone(p: Pending): void {
    if (!p.uploadSlot) return;
    p.uploadSlot = false;
    this.uploading--;
    if (this.closed) return;
    while (this.uploading < this.opts.maxUploading) {
      const next = this.uploadQueue.shift();
      if (next === undefined) break;
      next.uploadSlot = true;
      this.uploading++;
      this.place(next);
    }
  }

  private open(p: Pending): void {
    const c = new H1Conn(this);
    this.conns.add(c);
    this.ensureSweep();
    c.connect(p);
  }

  /** A connection finished a request and may serve another. */
  released(c: H1Conn): void {
    const next = this.takeQueued();
    if (next !== undefined) c.start(next, true);
    else if (this.closed) c.destroy();
    else this.idle.push(c);
    this.maybeClosed();
  }

  /** A connection is gone (closed, failed, or destroyed). */
  removed(c: H1Conn): void {
    this.conns.delete(c);
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
    // Queued work gets a new connection.
    if (!this.closed && this.queue.size > 0 && this.conns.size < this.opts.connections) {
      const next = this.takeQueued();
      if (next !== undefined) this.open(next);
    }
    this.maybeClosed();
  }

  /** A request failed on a stale reused connection before anything came back: try it on a new one. */
  resend(p: Pending): void {
    p.retried = true;
    if (this.closed) p.handler.onError(new UpstreamError('MM_ERR_UPSTREAM_CLOSED', 'pool closed'));
    else this.open(p);
  }

  /** The next request waiting for a connection (uploads enter this queue only with a slot: uploadDone). */
  private takeQueued(): Pending | undefined {
    return this.queue.shift();
  }

  /** Everything waiting, for close and destroy. */
  private takeAnyQueued(): Pending | undefined {
    return this.queue.shift() ?? this.uploadQueue.shift();
  }

  /** Fail requests that waited longer than queueTimeoutMs (both queues are in arrival order). */
  private expireQueued(now: number): void {
    const limit = this.opts.queueTimeoutMs;
    // Requests queued together (a burst, an attack's uploads) expire together; answering a few per sweep
    // keeps their 503s from stalling the event loop for everyone else (the rest wait a sweep more), and
    // a long queue still drains at a twentieth per sweep (about a second).
    let budget = Math.max(QUEUE_EXPIRE_PER_SWEEP, Math.ceil((this.queue.size + this.uploadQueue.size) / 20));
    for (const q of [this.queue, this.uploadQueue]) {
      for (let p = q.peek(); p !== undefined && now - p.queuedAt > limit && budget-- > 0; p = q.peek()) {
        q.shift();
        this.uploadDone(p);
        p.handler.onError(new UpstreamError('MM_ERR_UPSTREAM_BUSY', `no connection to ${this.host}:${this.port} was free within ${limit} ms (${this.conns.size} busy)`));
      }
    }
  }

  private ensureSweep(): void {
    if (this.sweepTimer !== null) return;
    this.lastSweepFiredAt = performance.now();
    this.sweepTimer = setInterval(this.sweepAfterPoll, SWEEP_MS);
    this.sweepTimer.unref();
  }

  // Timers run before the loop polls the sockets: after a stall of this process (GC, a busy machine) a
  // due sweep would judge connections before reading the answers that arrived meanwhile. So the sweep
  // judges after the next poll (setImmediate), as of the moment its timer fired: whatever had arrived by
  // then has been read. A timer that fired late means this process itself was stalled (answers it has not
  // read may be waiting, and its own callbacks ran late): that round is skipped, never two in a row.
  private sweepFiredAt = 0;
  private lastSweepFiredAt = 0;
  private skippedSweep = false;
  private readonly sweepAfterPoll = (): void => {
    const firedAt = performance.now();
    const late = firedAt - this.lastSweepFiredAt - SWEEP_MS;
    this.lastSweepFiredAt = firedAt;
    if (late > SWEEP_MS && !this.skippedSweep) {
      this.skippedSweep = true;
      return;
    }
    this.skippedSweep = false;
    this.sweepFiredAt = firedAt;
    setImmediate(this.sweep);
  };

  /** Enforce header, body and keep-alive timeouts (one timer per pool, not per request). */
  private readonly sweep = (): void => {
    const now = this.sweepFiredAt;
    for (const c of this.conns) c.check(now);
    this.expireQueued(now);
    if (this.conns.size === 0 && this.queue.size === 0 && this.uploadQueue.size === 0 && this.sweepTimer !== null) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = null;
    }
  };

  private maybeClosed(): void {
    if (!this.closed) return;
    for (const c of this.idle) c.destroy();
    if (this.conns.size === 0 && this.closeWaiters.length > 0) {
      const w = this.closeWaiters;
      this.closeWaiters = [];
      for (const fn of w) fn();
    }
  }

  /** Stop taking requests; running ones finish; resolves when every connection is gone. */
  close(): Promise<void> {
    this.closed = true;
    const err = new UpstreamError('MM_ERR_UPSTREAM_CLOSED', `the pool for ${this.host}:${this.port} is closed`);
    for (let p = this.takeAnyQueued(); p !== undefined; p = this.takeAnyQueued()) {
      this.uploadDone(p);
      p.handler.onError(err);
    }
    return new Promise((resolve) => {
      this.closeWaiters.push(resolve);
      this.maybeClosed();
    });
  }

  /** Fail everything at once. */
  destroy(): Promise<void> {
    this.closed = true;
    const err = new UpstreamError('MM_ERR_UPSTREAM_CLOSED', `the pool for ${this.host}:${this.port} was destroyed`);
    for (let p = this.takeAnyQueued(); p !== undefined; p = this.takeAnyQueued()) {
      this.uploadDone(p);
      p.handler.onError(err);
    }
    for (const c of [...this.conns]) c.destroy(err);
    return this.close();
  }
}

/** One upstream TCP connection and its parser; serves one request at a time. */
class H1Conn implements BodySink, ResponseEvents {
  private readonly pool: H1Pool;
  private socket: net.Socket | null = null;
  private parser: Http1Parser | null = null;
  private cur: Pending | null = null;
  private connected = false;
  private dead = false;
  private reused = false;
  private gotResponseBytes = false;
  private headersDone = false;
  private keepAlive = true;
  private requestWritten = false;
  private headMethod = false;
  private started = 0;
  private lastActivity = 0;
  private idleSince = 0;
  private connectTimer: NodeJS.Timeout | null = null;
  private lastError: Error | null = null;
  // Bound once per connection, handed to each request's handler.
  private readonly abortFn = (err?: Error): void => this.abort(err);
  private readonly retainFn = (): void => this.parser?.retainBody();
  private readonly resumeFn = (): void => {
    if (this.socket !== null && !this.dead) this.resumeReading();
  };
  private readonly onBodyDrain = (): void => {
    const p = this.bodyOwner;
    if (p !== null && !this.requestWritten) p.req.body?.resume();
  };

  constructor(pool: H1Pool) {
    this.pool = pool;
  }

  private readonly connectDue = (): void => {
    if (this.connected || this.dead) return;
    const o = this.pool.options;
    this.fail(new UpstreamError('MM_ERR_UPSTREAM_CONNECT_TIMEOUT', `connect to ${this.pool.host}:${this.pool.port} timed out after ${o.connectTimeoutMs} ms`));
  };

  connect(first: Pending): void {
    const o = this.pool.options;
    const reads = o.engine.clientReads();
    const s = net.connect(reads === null ? { host: this.pool.host, port: this.pool.port, noDelay: true } : { host: this.pool.host, port: this.pool.port, noDelay: true, ...reads.connectOptions });
    this.socket = s;
    this.cur = first;
    this.started = performance.now();
    this.connectTimer = setTimeout(() => {
      // Judged after the next poll, which delivers a connect that completed while this process stalled.
      setImmediate(this.connectDue);
    }, o.connectTimeoutMs);
    s.once('connect', () => {
      if (this.connectTimer !== null) clearTimeout(this.connectTimer);
      this.connectTimer = null;
      this.connected = true;
      // The engine reads the socket from here on (this connection's events below).
      this.parser = o.engine.responseParser(s, this, o.maxHeaderSize, reads);
      const p = this.cur;
      this.cur = null;
      if (p !== null) this.start(p, false);
    });
    s.on('error', (err: Error) => {
      this.lastError = err;
    });
    s.on('close', () => this.onSocketClose());
    s.on('drain', this.onBodyDrain);
  }

  /** Send a request on this (connected) connection. */
  start(p: Pending, reused: boolean): void {
    const s = this.socket!;
    this.cur = p;
    this.reused = reused;
    this.gotResponseBytes = false;
    this.headersDone = false;
    this.keepAlive = true;
    this.requestWritten = false;
    this.started = this.lastActivity = performance.now();
    const req = p.req;
    this.headMethod = req.method === 'HEAD';
    // While a request is in flight a response beginning is expected: onMessageBegin has nothing to check.
    this.parser?.wantBegin(false);
    p.handler.onConnect(this.abortFn, this.retainFn);
    if (this.cur !== p) return; // aborted from onConnect
    // The head is serialized into the shared write buffer and written at once (see wire-buffer.ts).
    wire.begin();
    wire.put(req.method);
    wire.put(' ');
    wire.put(req.path);
    wire.put(' HTTP/1.1\r\n');
    const hasLength = req.forEachHeaderField(wire.putField);
    const body = req.body;
    const chunked = body !== null && !hasLength;
    wire.put(chunked ? 'transfer-encoding: chunked\r\n\r\n' : '\r\n');
    if (body === null) {
      wire.writeTo(s);
      this.requestWritten = true;
      return;
    }
    // Body bytes that came in the same read as the head (a small POST) reach this socket in the same turn:
    // corked until the turn ends (as node:http corks a request), head and body leave in one system call
    // instead of one each. A body that comes later finds the head already written.
    s.cork();
    wire.writeCopyTo(s);
    process.nextTick(uncork, s);
    this.started = Infinity; // the headers timeout runs from the end of the request body
    this.pipeBody(p, body, chunked);
  }

  private pipeBody(p: Pending, body: BodySource, chunked: boolean): void {
    this.bodyChunked = chunked;
    this.bodyOwner = p;
    body.attach(this);
  }

  private bodyChunked = false;
  private bodyOwner: Pending | null = null;

  // BodySink: the request body flows from the client connection straight to this socket.
  onBodyData(chunk: Buffer): boolean {
    const p = this.bodyOwner;
    if (this.cur !== p || p === null || this.dead) return true;
    const s = this.socket!;
    let ok: boolean;
    if (!this.bodyChunked) ok = s.write(chunk);
    else {
      s.cork();
      s.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
      s.write(chunk);
      ok = s.write('\r\n', 'latin1');
      s.uncork();
    }
    // Not all written at once: the socket's queue holds the chunk (which may be a view of a read buffer).
    if (s.writableLength > 0) p.req.body?.retainChunk();
    return ok;
  }

  onBodyEnd(): void {
    const p = this.bodyOwner;
    if (p === null) return;
    this.dropBody();
    if (this.dead) return;
    if (this.bodyChunked) this.socket!.write('0\r\n\r\n', 'latin1');
    this.requestWritten = true;
    this.started = performance.now();
  }

  onBodyError(err: Error): void {
    const p = this.bodyOwner;
    if (p === null) return;
    this.dropBody();
    if (this.cur === p) this.fail(err);
  }

  /** The request body stops flowing here (sent, failed, or the connection ended): free its upload slot. */
  private dropBody(): void {
    const p = this.bodyOwner;
    if (p === null) return;
    this.bodyOwner = null;
    p.req.body?.detach();
    this.pool.uploadDone(p);
  }

  // --- ResponseEvents (from the engine's parser) ---
  /** A socket read was parsed: activity, and the moment a completed exchange may release the connection. */
  onReadDone(): void {
    this.lastActivity = performance.now();
    this.gotResponseBytes = true;
    if (this.pendingRelease) this.maybeRelease();
    else if (this.cur !== null) this.cur.handler.onReadEnd?.();
  }

  onParseError(err: Http1ParseError): void {
    this.parser = null; // closed by the engine
    this.fail(err);
  }

  private pauseReading(): void {
    this.parser?.pauseReads();
  }

  private resumeReading(): void {
    if (!this.dead) this.parser?.resumeReads();
  }

  /**
   * A response starts. With no request waiting for one (bytes after a complete response, or on an idle
   * connection) the endpoint broke the protocol: those bytes must never become another request's answer.
   */
  onMessageBegin(): void {
    if (this.cur === null && !this.dead) this.destroy();
  }

  onResponseHead(status: number, statusText: string, raw: string[], upgrade: boolean, shouldKeepAlive: boolean): number {
    const p = this.cur;
    if (p === null) {
      // A response nobody asked for: the endpoint broke the protocol; never reuse this connection.
      this.destroy();
      return BODY_NONE;
    }
    const problem = responseFramingProblem(status, raw);
    if (problem !== '') {
      this.fail(new UpstreamError('MM_ERR_UPSTREAM_BAD_RESPONSE', `the endpoint sent a response the proxy cannot forward: ${problem}`));
      return BODY_NONE;
    }
    if (status < 200 && status !== 101) return BODY_NONE; // interim (100-continue, 103): skip, await the final one
    if (upgrade || status === 101) {
      this.fail(new UpstreamError('MM_ERR_UPSTREAM_BAD_RESPONSE', 'the endpoint answered with a protocol upgrade the proxy did not ask for'));
      return BODY_NONE;
    }
    this.headersDone = true;
    this.keepAlive = shouldKeepAlive;
    this.gotResponseBytes = true;
    if (!p.handler.onHeaders(status, raw, this.resumeFn, statusText)) this.pauseReading();
    return this.headMethod ? BODY_NONE : BODY_AS_FRAMED;
  }

  onBody(b: Buffer): void {
    const p = this.cur;
    if (p === null) return;
    if (!p.handler.onData(b)) this.pauseReading();
  }

  onMessageComplete(): void {
    const p = this.cur;
    if (p === null || !this.headersDone) return; // interim response done
    this.headersDone = false;
    this.cur = null;
    // Bytes after this response (in this read or later) must be seen beginning: they close the connection.
    this.parser?.wantBegin(true);
    this.pool.uploadDone(p);
    p.handler.onComplete(null);
    if (!this.keepAlive || this.dead) {
      this.destroy();
      return;
    }
    // Released only after the parser has returned (onReadDone): the rest of this read may hold bytes past
    // the response, which close the connection (onMessageBegin) instead of answering the next request.
    this.pendingRelease = true;
  }

  private pendingRelease = false;

  /** Reuse only once the request body is fully sent and the response is complete. */
  private maybeRelease(): void {
    if (!this.pendingRelease || this.dead) return;
    if (!this.requestWritten) {
      // The response finished before the request body: the stream position is unknown, close.
      this.destroy();
      return;
    }
    this.pendingRelease = false;
    this.idleSince = performance.now();
    this.resumeReading();
    this.pool.released(this);
  }

  private onSocketClose(): void {
    if (this.dead) return;
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    if (this.cur !== null && this.headersDone && this.lastError === null) {
      // A response delimited by the end of the stream completes now (onMessageComplete runs inside).
      this.keepAlive = false;
      this.parser?.finish();
      if (this.cur === null) {
        this.destroy();
        return;
      }
    }
    this.dead = true;
    const p = this.cur;
    this.cur = null;
    this.dropBody();
    this.closeParser();
    this.pool.removed(this);
    if (p === null) return;
    this.pool.uploadDone(p);
    if (this.reused && !this.gotResponseBytes && !p.retried && p.req.body === null) {
      // A keep-alive connection the server closed just as we reused it: send again on a new one.
      this.pool.resend(p);
      return;
    }
    p.handler.onError(this.lastError ?? new UpstreamError('MM_ERR_UPSTREAM_RESET', this.connected ? 'the endpoint closed the connection' : 'connection closed before it was established'));
  }

  private closeParser(): void {
    this.parser?.close();
    this.parser = null;
  }

  /** Timeout checks, called by the pool's sweep. */
  check(now: number): void {
    if (this.dead) return;
    const o = this.pool.options;
    if (this.cur !== null && this.connected) {
      if (!this.headersDone) {
        // Uploading: a stalled request body (client too slow) is bounded by the listener's idle timeout.
        const limit = this.cur.req.headersTimeoutMs || o.headersTimeoutMs;
        if (now - this.started > limit) this.fail(new UpstreamError('MM_ERR_UPSTREAM_HEADERS_TIMEOUT', `no response headers within ${limit} ms`));
      } else if (o.bodyTimeoutMs > 0 && now - this.lastActivity > o.bodyTimeoutMs && this.parser !== null && this.parser.reading) {
        this.fail(new UpstreamError('MM_ERR_UPSTREAM_BODY_TIMEOUT', `response body stalled for ${o.bodyTimeoutMs} ms`));
      }
    } else if (this.cur === null && this.connected && !this.pendingRelease && now - this.idleSince > o.keepAliveTimeoutMs) {
      this.destroy();
    }
  }

  /** Fail the running request with `err` and drop the connection. */
  private fail(err: Error): void {
    const p = this.cur;
    this.cur = null;
    this.dropBody();
    this.destroy();
    if (p !== null) {
      this.pool.uploadDone(p);
      p.handler.onError(err);
    }
  }

  private abort(err?: Error): void {
    if (this.cur === null) return;
    this.fail(err ?? new UpstreamError('MM_ERR_UPSTREAM_ABORTED', 'request aborted'));
  }

  destroy(err?: Error): void {
    if (err !== undefined && this.cur !== null) {
      const p = this.cur;
      this.cur = null;
      this.pool.uploadDone(p);
      p.handler.onError(err);
    }
    this.cur = null;
    if (this.dead) return;
    this.dead = true;
    this.dropBody();
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    this.socket?.destroy();
    this.closeParser(); // safe from inside the parser's callbacks: the engine defers the release
    this.pool.removed(this);
  }
}
