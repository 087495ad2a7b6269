// HTTP/2 (h2c) forwarding for gRPC: a downstream stream is forwarded over the endpoint's shared h2c
// session; headers, messages and trailers pass through (trailers-only answers kept trailers-only), and
// grpc-status decides the outcome. Upstream failures become gRPC errors (grpc-status 14 or 4 in a
// trailers-only answer) for gRPC calls, or the JSON 502/503/504 of the HTTP/1 path for other requests.
import http2 from 'node:http2';
import { Outcome, outcomeOfStatus } from '../core/types.js';
import type { ErrorCode } from '../core/errors.js';
import type { ServiceView } from '../mesh/state.js';
import type { ProxyCore } from './core.js';
import { classifyUpstreamError, errorBody, grpcMessage, HEADERS_TIMEOUT, outcomeOfGrpcStatus, REFUSED, RESET, UpstreamError, type FailureClass } from './failure.js';
import { H2_FORBIDDEN } from './headers.js';
import type { Upstream } from './upstream.js';
import { H2Client } from './h2client.js';
import { Attempt, KIND_H2C } from './attempt.js';

const { NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR, NGHTTP2_FLAG_END_STREAM } = http2.constants;

/** Answer a stream with a proxy-generated error: gRPC trailers-only, or JSON like HTTP/1. */
function answerError(stream: http2.ServerHttp2Stream, grpc: boolean, status: number, grpcStatus: number, code: ErrorCode, message: string, endpoint: string): void {
  if (stream.destroyed || stream.closed) return;
  if (stream.headersSent) {
    stream.close(NGHTTP2_INTERNAL_ERROR);
    return;
  }
  try {
    if (grpc) {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(grpcStatus), 'grpc-message': grpcMessage(`${code}: ${message}`) }, { endStream: true });
    } else {
      const body = errorBody(code, message, endpoint);
      stream.respond({ ':status': status, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
      stream.end(body);
    }
  } catch {
    stream.close(NGHTTP2_INTERNAL_ERROR); // the stream went away while we answered
  }
}

/** Entry point for an HTTP/2 stream on a listener. */
export function handleH2Stream(core: ProxyCore, role: 'outbound' | 'inbound', stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number): void {
  const ct = headers['content-type'];
  const grpc = typeof ct === 'string' && ct.startsWith('application/grpc');
  let view: ServiceView | null = null;
  let up: Upstream | undefined;
  if (role === 'inbound') up = core.app;
  else {
    const authority = headers[':authority'] ?? headers.host ?? '';
    const v = core.service(authority);
    if (v === undefined) {
      const name = core.defaultService || authority;
      return answerError(stream, grpc, 404, 12 /* UNIMPLEMENTED */, 'MM_ERR_UNKNOWN_SERVICE', `no service named "${name.slice(0, 200)}"`, '');
    }
    view = v;
    const ev = core.balancer.pick(v);
    up = ev === undefined ? undefined : core.upstream(ev);
    if (up === undefined) return answerError(stream, grpc, 503, 14, 'MM_ERR_NO_ENDPOINT', `no usable endpoint for service "${v.name}"`, '');
  }
  if (up === undefined) return answerError(stream, grpc, 503, 14, 'MM_ERR_NO_ENDPOINT', 'no local application configured', '');
  if (up.protocol !== 'h2c') {
    // HTTP/2 to an HTTP/1.1-only endpoint is not bridged: gRPC cannot run over HTTP/1.1 anyway.
    return answerError(stream, grpc, 502, 14, 'MM_ERR_UPSTREAM_RESET', `${up.id} speaks HTTP/1.1 (protocol http1); send HTTP/1.1 or configure the service as h2c`, up.id);
  }
  new H2Exchange(core, stream, headers, (flags & NGHTTP2_FLAG_END_STREAM) !== 0, grpc, view, up).start();
}

/** Headers sent upstream: pseudo-headers kept, connection-specific ones dropped, forwarding fields added. */
function upstreamHeaders(core: ProxyCore, h: http2.IncomingHttpHeaders, clientIp: string): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {};
  for (const name of Object.keys(h)) {
    if (H2_FORBIDDEN.has(name)) continue;
    const v = h[name];
    if (v === undefined) continue;
    if (name === 'te') {
      if (String(v).toLowerCase().includes('trailers')) out.te = 'trailers';
      continue;
    }
    out[name] = v;
  }
  out[':scheme'] = 'http';
  if (out[':authority'] === undefined && h.host !== undefined) out[':authority'] = h.host;
  const fw = core.forward;
  if (fw.xForwardedFor) {
    const xff = h['x-forwarded-for'];
    out['x-forwarded-for'] = xff ? `${String(xff)}, ${clientIp}` : clientIp;
    if (out['x-forwarded-proto'] === undefined) out['x-forwarded-proto'] = 'http';
  }
  if (fw.via) out.via = h.via ? `${String(h.via)}, 2 meshmedic` : '2 meshmedic';
  return out;
}

/** Response headers or trailers as sent downstream: connection-specific fields dropped. */
function downstreamHeaders(h: http2.IncomingHttpHeaders, via: boolean): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {};
  for (const name of Object.keys(h)) {
    if (H2_FORBIDDEN.has(name) || name === 'te') continue;
    const v = h[name];
    if (v !== undefined) out[name] = v;
  }
  if (via && out[':status'] !== undefined) out.via = h.via ? `${String(h.via)}, 2 meshmedic` : '2 meshmedic';
  return out;
}

function grpcStatusOf(h: http2.IncomingHttpHeaders | undefined): number {
  const v = h?.['grpc-status'];
  if (v === undefined) return -1;
  const n = Number(v);
  return Number.isInteger(n) ? n : -1;
}

/**
 * One forwarded h2c stream. Not replayable once sent: a gRPC request body is a stream and is not buffered,
 * so only an attempt that never reached the endpoint is retried.
 */
class H2Exchange extends Attempt {
  private readonly ds: http2.ServerHttp2Stream;
  private readonly reqHeaders: http2.OutgoingHttpHeaders;
  private readonly endStream: boolean;
  private readonly grpc: boolean;
  private us: http2.ClientHttp2Stream | null = null;
  private grpcStatus = -1;
  private trailers: http2.OutgoingHttpHeaders | null = null;
  private responded = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(core: ProxyCore, ds: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, endStream: boolean, grpc: boolean, view: ServiceView | null, up: Upstream) {
    super(core, KIND_H2C, view, up, false);
    this.ds = ds;
    this.endStream = endStream;
    this.grpc = grpc;
    this.reqHeaders = upstreamHeaders(core, headers, ds.session?.socket?.remoteAddress ?? '');
    ds.on('close', () => {
      if (!this.settled && !this.responded) this.clientGone();
      else if (!this.settled && ds.rstCode !== undefined && ds.rstCode !== 0) this.clientGone();
    });
    ds.on('error', () => this.clientGone());
    ds.on('wantTrailers', () => {
      try {
        ds.sendTrailers(this.trailers ?? {});
      } catch {
        ds.close(NGHTTP2_INTERNAL_ERROR);
      }
    });
  }

  start(): void {
    const up = this.upstream;
    this.beginAttempt();
    let us: http2.ClientHttp2Stream;
    let sent: boolean;
    try {
      ({ stream: us, sent } = up.http2(H2Client).request(this.reqHeaders, this.endStream));
    } catch (err) {
      this.fail(classifyUpstreamError(err), err as Error, false);
      return;
    }
    this.us = us;
    let ready = sent;
    const ds = this.ds;
    // The request body is piped only once the stream is open on a connected session: a connect failure
    // before that means nothing was read from the client, so another endpoint can be tried.
    const pipeBody = (): void => {
      if (!this.endStream && us === this.us) ds.pipe(us);
    };
    if (sent) {
      this.markSent(); // the session is connected: request() wrote the head
      pipeBody();
    } else
      us.once('ready', () => {
        ready = true;
        if (us === this.us && !this.settled) this.markSent();
        pipeBody();
      });
    const hto = this.core.deps.config.proxy.headersTimeoutMs;
    this.timer = setTimeout(() => {
      if (!this.responded && us === this.us) {
        us.close(NGHTTP2_CANCEL);
        this.fail(HEADERS_TIMEOUT, new UpstreamError('MM_ERR_UPSTREAM_HEADERS_TIMEOUT', `no response headers within ${hto} ms`), true);
      }
    }, hto);
    us.on('response', (h, flags) => {
      if (us !== this.us) return;
      this.clearTimer();
      const status = Number(h[':status']);
      if (status < 200) return;
      this.responded = true;
      this.markHeaders(status);
      const out = downstreamHeaders(h, this.core.forward.via);
      try {
        if ((flags & NGHTTP2_FLAG_END_STREAM) !== 0) {
          this.grpcStatus = grpcStatusOf(h); // trailers-only answer
          ds.respond(out, { endStream: true });
        } else {
          ds.respond(out, { waitForTrailers: true });
          us.pipe(ds);
        }
      } catch {
        this.clientGone();
      }
    });
    us.on('trailers', (t) => {
      if (us !== this.us) return;
      this.grpcStatus = grpcStatusOf(t);
      this.trailers = downstreamHeaders(t, false);
    });
    us.on('error', (err: Error) => {
      if (us !== this.us || this.settled) return;
      this.fail(classifyUpstreamError(err), err, ready);
    });
    us.on('close', () => {
      if (us !== this.us || this.settled) return;
      this.clearTimer();
      if (us.rstCode !== undefined && us.rstCode !== 0 && !this.gone) {
        this.fail(RESET, new UpstreamError('MM_ERR_UPSTREAM_RESET', `stream reset by the endpoint (code ${us.rstCode})`), true);
        return;
      }
      if (!this.responded) {
        this.fail(RESET, new UpstreamError('MM_ERR_UPSTREAM_RESET', 'stream closed without a response'), ready);
        return;
      }
      this.settle(this.outcome());
    });
  }

  private outcome(): Outcome {
    if (this.status !== 200 || this.grpcStatus < 0) return outcomeOfStatus(this.status);
    return outcomeOfGrpcStatus(this.grpcStatus);
  }

  private clearTimer(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  private clientGone(): void {
    if (this.gone || this.settled) return;
    this.gone = true;
    this.clearTimer();
    const us = this.us;
    if (us !== null && !us.destroyed) us.close(NGHTTP2_CANCEL);
    this.settle(Outcome.Cancelled);
  }

  private fail(fc: FailureClass, err: Error, mayHaveBeenSent: boolean): void {
    this.clearTimer();
    if (this.gone) return;
    this.refused = fc === REFUSED;
    this.settle(fc.outcome);
    if (!this.responded) {
      const next = this.core.retryPolicy.afterFailure(this, fc, mayHaveBeenSent);
      if (next !== null) {
        this.upstream = next;
        this.us = null;
        this.start();
        return;
      }
    }
    const id = this.upstream.id;
    const detail = (err as { code?: string }).code ?? err.message;
    answerError(this.ds, this.grpc, fc.status, fc.grpcStatus, fc.code, `${fc.what} (${detail}) from ${id}`, id);
  }
}
