// HTTP/1.1 forwarding: one Http1Exchange per request is the handler of the upstream pool (undici's callback
// handler shape: onConnect/onHeaders/onData/onComplete/onError). Bodies stream both ways with backpressure:
// the upstream socket pauses while the client is slow, the client connection pauses while the endpoint is.
// The attempt protocol (begin → sent → head → settle, measuring, retry targets) is attempt.ts's.
import { Outcome, outcomeOfStatus } from '../core/types.js';
import type { ErrorCode } from '../core/errors.js';
import type { ServiceView } from '../mesh/state.js';
import type { ProxyCore } from './core.js';
import { CLIENT_GONE, classifyUpstreamError, errorBody, REFUSED, type FailureClass } from './failure.js';
import { noteFdExhaustion } from './fd-limit.js';
import { forEachForwardedRequestField, isValidAuthority, scanRequestFields, type RequestScan } from './headers.js';
import type { Upstream } from './upstream.js';
import type { H1Handler, H1Request } from './h1pool.js';
import type { H1Io } from './h1server.js';
import { isReplayableMethod } from './retry.js';
import { Attempt, KIND_HTTP1 } from './attempt.js';

// Reused by every request: filled and read synchronously before any await.
const scan: RequestScan = { host: '', hasBody: false, expectContinue: false, problem: '' };

// Responses whose first body chunk is held back (see Http1Exchange.onData), flushed once per loop turn.
let heldQueue: Http1Exchange[] = [];
let flushScheduled = false;
function flushHeld(): void {
  flushScheduled = false;
  const q = heldQueue;
  heldQueue = [];
  for (let i = 0; i < q.length; i++) q[i]!.flushHeld();
}

const EMPTY = Buffer.alloc(0);
/** Bytes of a discarded retriable answer read to keep its connection; beyond, the connection is dropped. */
const DISCARD_LIMIT = 64 * 1024;

/** Answer a proxy-generated error as a short JSON body. */
export function sendError(io: H1Io, status: number, code: ErrorCode, message: string, endpoint: string, close = false): void {
  if (io.committed) {
    io.destroy();
    return;
  }
  io.uncommit(); // a head queued but not yet written (held with the first body chunk) is replaced
  const body = errorBody(code, message, endpoint);
  const headers = ['content-type', 'application/json', 'content-length', String(Buffer.byteLength(body)), 'cache-control', 'no-store'];
  if (close) headers.push('connection', 'close');
  io.writeHead(status, headers);
  io.end(body);
}

/** Entry point for an HTTP/1 request on a listener. */
export function handleHttp1(core: ProxyCore, role: 'outbound' | 'inbound', req: H1Io): void {
  const res = req;
  const url = req.url;
  let authority = '';
  let path = url;
  if (url.charCodeAt(0) !== 0x2f /* / */) {
    // absolute-form (as to an HTTP proxy): http://authority/path?query
    if (url.length > 7 && url.charCodeAt(4) === 0x3a && url.slice(0, 7).toLowerCase() === 'http://') {
      let end = 7;
      while (end < url.length) {
        const c = url.charCodeAt(end);
        if (c === 0x2f || c === 0x3f || c === 0x23) break; // / ? #
        end++;
      }
      authority = url.slice(7, end);
      path = end === url.length ? '/' : url.charCodeAt(end) === 0x2f ? url.slice(end) : `/${url.slice(end)}`;
      if (authority === '' || !isValidAuthority(authority)) return sendError(res, 400, 'MM_ERR_BAD_REQUEST', `bad request target "${url.slice(0, 200)}"`, '');
    } else if (url === '*' && req.method === 'OPTIONS') {
      path = '*';
    } else {
      return sendError(res, 400, 'MM_ERR_BAD_REQUEST', `unsupported request target "${url.slice(0, 200)}" (use origin-form or http:// absolute-form)`, '');
    }
  }
  // Judged here (Host, body, problems); the forwarded fields are written by the pool (forEachHeaderField).
  scanRequestFields(req.rawHeaders, scan);
  const hasBody = scan.hasBody;
  if (scan.problem !== '') return sendError(res, 400, 'MM_ERR_BAD_REQUEST', `${scan.problem} (RFC 9112 §3.2)`, '', true);
  // No Host and no absolute target: an error in HTTP/1.1; an HTTP/1.0 request gets the Host of where it
  // is sent (added below), as the upstream request is HTTP/1.1, which requires one.
  const noHost = scan.host === '' && authority === '';
  if (noHost && req.httpVersionMinor >= 1) {
    return sendError(res, 400, 'MM_ERR_BAD_REQUEST', 'an HTTP/1.1 request needs a Host header (RFC 9112 §3.2)', '', true);
  }
  if (scan.expectContinue) req.writeContinue(); // the client waits for it before sending the body
  if (role === 'inbound') {
    const app = core.app!;
    if (app.protocol === 'h2c') return sendError(res, 502, 'MM_ERR_UPSTREAM_RESET', `${app.id} speaks h2c (inbound.protocol); send HTTP/2`, app.id);
    const ex = new Http1Exchange(core, req, null, app, path, authority, noHost ? app.authority : '', hasBody);
    ex.dispatch();
    return;
  }
  const view = core.service(authority !== '' ? authority : scan.host);
  if (view === undefined) {
    const name = core.defaultService || authority || scan.host;
    return sendError(res, name === '' ? 400 : 404, name === '' ? 'MM_ERR_BAD_REQUEST' : 'MM_ERR_UNKNOWN_SERVICE', name === '' ? 'the request names no service (no Host header)' : `no service named "${name.slice(0, 200)}"`, '');
  }
  const ev = core.balancer.pick(view);
  const up = ev === undefined ? undefined : core.upstream(ev);
  if (up === undefined) return sendError(res, 503, 'MM_ERR_NO_ENDPOINT', `no usable endpoint for service "${view.name}"`, '');
  // HTTP/1.1 is not bridged to h2c endpoints (gRPC needs HTTP/2 end to end).
  if (up.protocol === 'h2c') return sendError(res, 502, 'MM_ERR_UPSTREAM_RESET', `service "${view.name}" speaks h2c (protocol h2c); send HTTP/2 (prior knowledge) to this listener`, up.id);
  const ex = new Http1Exchange(core, req, view, up, path, authority, noHost ? view.name : '', hasBody);
  ex.dispatch();
}

/**
 * One forwarded HTTP/1 request: the pool's handler for each attempt (a retry reuses it), and the request
 * the pool sends (H1Request), so that no separate request object is made per request.
 */
export class Http1Exchange extends Attempt implements H1Handler, H1Request {
  private readonly io: H1Io;
  // H1Request
  readonly path: string;
  readonly method: string;
  /** An absolute-form request's authority (replaces Host), else ''. */
  private readonly authority: string;
  /** A Host added after the forwarded fields (a request without one: HTTP/1.0), else ''. */
  private readonly addedHost: string;
  readonly body: H1Request['body'];
  readonly headersTimeoutMs: number;
  /** A retriable status is being discarded; the next attempt goes here once its body is read. */
  private next: Upstream | null = null;
  private discarded = 0;
  private abortFn: ((err?: Error) => void) | null = null;
  private retainFn: (() => void) | null = null;
  private resumeFn: (() => void) | null = null;
  /** First body chunk, held so that a small response goes out as one write. */
  private held: Buffer | null = null;

  constructor(core: ProxyCore, io: H1Io, view: ServiceView | null, upstream: Upstream, path: string, authority: string, addedHost: string, hasBody: boolean) {
    // Idempotent method without a body, to a service: may be replayed on another endpoint.
    super(core, KIND_HTTP1, view, upstream, !hasBody && isReplayableMethod(io.method));
    this.io = io;
    this.path = path;
    this.method = io.method;
    this.authority = authority;
    this.addedHost = addedHost;
    this.body = hasBody ? io : null;
    this.headersTimeoutMs = this.replayable ? core.perTryTimeoutMs : 0;
    io.owner = this;
  }

  /** H1Request: the forwarded head, written straight from the client's raw fields (no forwarded copy). */
  forEachHeaderField(emit: (name: string, value: string) => void): boolean {
    const io = this.io;
    const hasLength = forEachForwardedRequestField(io.rawHeaders, io.remoteAddress, this.authority, this.core.forward, emit);
    if (this.addedHost !== '') emit('host', this.addedHost);
    return hasLength;
  }

  dispatch(): void {
    const up = this.upstream;
    this.abortFn = null;
    this.held = null;
    this.next = null;
    this.discarded = 0;
    this.beginAttempt();
    try {
      up.http1().dispatch(this, this);
    } catch (err) {
      this.onError(err as Error);
    }
  }

  clientGone(): void {
    if (this.gone || this.settled) return;
    this.gone = true;
    if (this.abortFn !== null) this.abortFn(CLIENT_GONE);
  }

  onConnect(abort: (err?: Error) => void, retainBody: () => void): void {
    if (this.gone) abort(CLIENT_GONE);
    else {
      this.abortFn = abort;
      this.retainFn = retainBody;
      this.markSent(); // the head is written next, on a connected socket
    }
  }

  onHeaders(statusCode: number, rawHeaders: string[], resume: () => void, statusText: string): boolean {
    if (statusCode < 200) return true; // 1xx: the client gets its own 100-continue from the server
    this.resumeFn = resume;
    this.markHeaders(statusCode);
    // Retriable status: read and drop this answer, then try another endpoint (if the policy and the
    // budget allow; otherwise the answer is forwarded as it is).
    const next = this.core.retryPolicy.afterStatus(this, statusCode);
    if (next !== null) {
      this.next = next;
      return true;
    }
    this.io.writeForwardedHead(statusCode, rawHeaders, statusText, this.core.forward, this.core.draining);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.next !== null) {
      // A discarded retriable answer: read small bodies to keep the connection; a large one is not
      // worth reading, so the connection is dropped (abort → onError → the next attempt).
      this.discarded += chunk.length;
      if (this.discarded > DISCARD_LIMIT && this.abortFn !== null) this.abortFn();
      return true;
    }
    const res = this.io;
    if (this.held === null) {
      // Hold the first chunk: when the whole response came in one read (the common small case),
      // onComplete follows at once and writes head + body in a single end() call. Retained only if the
      // read ends with it still held (onReadEnd): completed in the read, it never outlives the read.
      this.held = chunk;
      heldQueue.push(this);
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flushHeld);
      }
      return true;
    }
    if (this.held !== null) this.flushHeld();
    const ok = res.write(chunk);
    if (res.writeQueued) this.retainFn?.(); // the client's socket holds the chunk until it is written
    if (ok) return true;
    // Client slower than the endpoint: pause the upstream socket until the client drains.
    res.onceDrain(this.resumeFn!);
    return false;
  }

  /** The read ended with the first chunk still held: it lives on until flushed. */
  onReadEnd(): void {
    const h = this.held;
    if (h !== null && h !== EMPTY) this.retainFn?.();
  }

  /** Write the held first chunk (a later chunk arrived, or the loop turned without completion). */
  flushHeld(): void {
    const h = this.held;
    if (h === null || h === EMPTY) return;
    this.held = EMPTY;
    if (this.io.destroyed || this.io.finished) return;
    this.io.write(h);
    if (this.io.writeQueued) this.retainFn?.(); // the client's socket holds the chunk until it is written
  }

  onComplete(_trailers: string[] | null): void {
    if (this.next !== null) return this.redispatch(outcomeOfStatus(this.status));
    const h = this.held;
    this.held = EMPTY;
    if (h !== null && h !== EMPTY) {
      this.io.end(h);
      if (this.io.writeQueued) this.retainFn?.(); // written beside the head (large), and queued
    } else this.io.end();
    this.settle(outcomeOfStatus(this.status));
  }

  onError(err: Error): void {
    const res = this.io;
    // The client went away, or its own request body broke (bad chunking, reset): not the endpoint's fault.
    if (this.gone || err === CLIENT_GONE || res.errored !== null) {
      this.settle(Outcome.Cancelled);
      if (!res.finished) res.destroy();
      return;
    }
    // The body of a discarded retriable answer broke: that endpoint answered 5xx; go on to the next one.
    if (this.next !== null) return this.redispatch(outcomeOfStatus(this.status));
    const fc = classifyUpstreamError(err);
    noteFdExhaustion(err, this.core.deps.log, `connect to ${this.upstream.id}`);
    this.refused = fc === REFUSED;
    this.settle(fc.outcome);
    if (res.committed) {
      // Mid-body failure: HTTP/1 can only signal it by closing the connection (the client sees truncation).
      res.destroy();
      return;
    }
    if (res.headersSent) {
      // The head was queued but nothing reached the client yet (bad chunking in the first read): the
      // client gets a proper error status instead.
      res.uncommit();
      this.held = null;
    }
    // Never sent: any method is safe to send elsewhere. Sent: only a replayable request, and nothing of
    // the response has reached the client (headersSent is false here). The pool raises a never-sent class
    // only for a request no endpoint has read (it resends a stale keep-alive connection's itself).
    const next = this.core.retryPolicy.afterFailure(this, fc, false);
    if (next !== null) {
      this.upstream = next;
      this.dispatch();
      return;
    }
    this.answerFailure(fc, err);
  }

  /** Record the discarded answer against its endpoint and send the request to the chosen next one. */
  private redispatch(outcome: Outcome): void {
    const next = this.next!;
    this.next = null;
    this.settle(outcome);
    this.upstream = next;
    this.dispatch();
  }

  private answerFailure(fc: FailureClass, err: Error): void {
    const id = this.upstream.id;
    const detail = (err as { code?: string }).code ?? err.message;
    sendError(this.io, fc.status, fc.code, `${fc.what} (${detail}) from ${id}${this.attempts > 1 ? ` after ${this.attempts} attempts` : ''}`, id, this.core.draining);
  }
}
