// Upstream failure classification: each error the upstream clients raise (their own coded errors, or the
// system's: ECONNREFUSED, ECONNRESET…) becomes one HTTP status, one stable error code, one outcome class
// and a retry verdict. Shared by the HTTP/1 and HTTP/2 forwarders.
import { Outcome } from '../core/types.js';
import { MeshmedicError, type ErrorCode } from '../core/errors.js';

/**
 * A failure of the proxy's own upstream clients (h1pool.ts, h2client.ts), coded with meshmedic's stable
 * codes (docs/errors.md); classifyUpstreamError turns it into the client's answer.
 */
export class UpstreamError extends MeshmedicError {
  constructor(code: UpstreamErrorCode, message: string) {
    super(code, message);
    this.name = 'UpstreamError';
  }
}

export type UpstreamErrorCode =
  | 'MM_ERR_UPSTREAM_CLOSED'
  | 'MM_ERR_UPSTREAM_CONNECT_TIMEOUT'
  | 'MM_ERR_UPSTREAM_HEADERS_TIMEOUT'
  | 'MM_ERR_UPSTREAM_BODY_TIMEOUT'
  | 'MM_ERR_UPSTREAM_BUSY'
  | 'MM_ERR_UPSTREAM_BAD_RESPONSE'
  | 'MM_ERR_UPSTREAM_RESET'
  | 'MM_ERR_UPSTREAM_ABORTED';

export interface FailureClass {
  /** Status answered to the client when no response has started. */
  readonly status: 502 | 503 | 504;
  readonly code: ErrorCode;
  readonly outcome: Outcome;
  /** The request never reached the endpoint: safe to retry elsewhere whatever the method. */
  readonly neverSent: boolean;
  /** gRPC status for the trailers-only answer (14 UNAVAILABLE, 4 DEADLINE_EXCEEDED). */
  readonly grpcStatus: number;
  /** Short phrase for the message. */
  readonly what: string;
}

const f = (status: 502 | 503 | 504, code: ErrorCode, neverSent: boolean, grpcStatus: number, what: string): FailureClass =>
  Object.freeze({ status, code, outcome: Outcome.LocalOrigin, neverSent, grpcStatus, what });

export const REFUSED = f(503, 'MM_ERR_UPSTREAM_CONNECT', true, 14, 'connection refused');
export const CONNECT_FAILED = f(503, 'MM_ERR_UPSTREAM_CONNECT', true, 14, 'connection failed');
export const CONNECT_TIMEOUT = f(504, 'MM_ERR_UPSTREAM_TIMEOUT', true, 4, 'connect timeout');
export const HEADERS_TIMEOUT = f(504, 'MM_ERR_UPSTREAM_TIMEOUT', false, 4, 'no response headers in time');
export const BODY_TIMEOUT = f(504, 'MM_ERR_UPSTREAM_TIMEOUT', false, 4, 'response body stalled');
export const RESET = f(502, 'MM_ERR_UPSTREAM_RESET', false, 14, 'connection reset');
export const BAD_RESPONSE = f(502, 'MM_ERR_UPSTREAM_RESET', false, 14, 'malformed response');
/** The pool had no free connection in time: the proxy's own limit, not charged to the endpoint. */
export const QUEUE_TIMEOUT: FailureClass = Object.freeze({ ...f(503, 'MM_ERR_UPSTREAM_BUSY', true, 14, 'no upstream connection free in time'), outcome: Outcome.Cancelled });

/** Classify an error raised while forwarding to an endpoint. */
export function classifyUpstreamError(err: unknown): FailureClass {
  const code = (err as { code?: unknown } | null)?.code;
  // node:http2 cancels pending streams when their session fails; the session's error is the cause.
  const cause = (err as { cause?: unknown } | null)?.cause;
  if (code === 'ERR_HTTP2_STREAM_CANCEL' && cause) return classifyUpstreamError(cause);
  if ((err as { name?: unknown } | null)?.name === 'HTTPParserError') return BAD_RESPONSE; // llhttp rejected the response
  switch (code) {
    case 'ECONNREFUSED':
      return REFUSED;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'MM_ERR_UPSTREAM_CLOSED': // the endpoint's pool was closed (endpoint removed) before the request started
      return CONNECT_FAILED;
    case 'MM_ERR_UPSTREAM_CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
      return CONNECT_TIMEOUT;
    case 'MM_ERR_UPSTREAM_HEADERS_TIMEOUT':
      return HEADERS_TIMEOUT;
    case 'MM_ERR_UPSTREAM_BUSY':
      return QUEUE_TIMEOUT;
    case 'MM_ERR_UPSTREAM_BODY_TIMEOUT':
      return BODY_TIMEOUT;
    case 'MM_ERR_UPSTREAM_BAD_RESPONSE': // status, transfer coding, 204 body or upgrade the proxy cannot forward
      return BAD_RESPONSE;
    default:
      if (typeof code === 'string' && code.startsWith('HPE_')) return BAD_RESPONSE; // llhttp parse error
      return RESET; // ECONNRESET, EPIPE, MM_ERR_UPSTREAM_RESET (other side closed), MM_ERR_UPSTREAM_ABORTED and anything unexpected
  }
}

/** The JSON body of a proxy-generated error: `{"error":CODE,"message":…,"endpoint":…}`. */
export function errorBody(code: ErrorCode, message: string, endpoint: string): string {
  return JSON.stringify({ error: code, message, endpoint });
}

/** Percent-encode a grpc-message value as the gRPC spec asks: only '%' and bytes outside 0x20–0x7E. */
export function grpcMessage(text: string): string {
  return text.replace(/[^\x20-\x24\x26-\x7e]/g, (c) => encodeURIComponent(c));
}

/** gRPC outcome mapping (documented in docs/proxy.md). */
export function outcomeOfGrpcStatus(grpcStatus: number): Outcome {
  switch (grpcStatus) {
    case 2: // UNKNOWN
    case 13: // INTERNAL
    case 14: // UNAVAILABLE
    case 15: // DATA_LOSS
      return Outcome.Error5xx;
    case 4: // DEADLINE_EXCEEDED
      return Outcome.Gateway;
    default: // OK and the caller's errors (NOT_FOUND, INVALID_ARGUMENT, …): the endpoint did its job
      return Outcome.Success;
  }
}

/** Sentinel the forwarders abort an upstream request with when the downstream client went away (outcome Cancelled). */
export class ClientGoneError extends UpstreamError {
  constructor() {
    super('MM_ERR_UPSTREAM_ABORTED', 'the client closed the connection');
    this.name = 'ClientGoneError';
  }
}
export const CLIENT_GONE = new ClientGoneError();
