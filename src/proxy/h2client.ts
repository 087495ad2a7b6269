// HTTP/2 prior-knowledge (h2c) client for one endpoint: one multiplexed session, reused until it closes,
// goes away or idles out; reconnected on the next request. Used for gRPC upstreams (undici cannot do h2c).
import http2 from 'node:http2';
import { UpstreamError } from './failure.js';

const { NGHTTP2_CANCEL } = http2.constants;

/** Raised when the session did not connect within the connect timeout. */
export class H2ConnectTimeoutError extends UpstreamError {
  constructor(origin: string, ms: number) {
    super('MM_ERR_UPSTREAM_CONNECT_TIMEOUT', `h2c connect to ${origin} timed out after ${ms} ms`);
  }
}

export class H2Client {
  readonly origin: string;
  private readonly connectTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private session: http2.ClientHttp2Session | undefined;
  private connected = false;
  private closed = false;

  constructor(origin: string, connectTimeoutMs: number, idleTimeoutMs: number) {
    this.origin = origin;
    this.connectTimeoutMs = connectTimeoutMs;
    this.idleTimeoutMs = idleTimeoutMs;
  }

  /** Whether the current session has completed its connection (false while connecting or when none). */
  get isConnected(): boolean {
    return this.session !== undefined && this.connected;
  }

  /**
   * Open a stream. Errors (refused, reset, timeout) arrive as the stream's 'error' event; the returned
   * `sent` flag tells whether the session was already connected, i.e. whether a failure may have reached
   * the endpoint (false: the request was never sent and can be retried elsewhere).
   */
  request(headers: http2.OutgoingHttpHeaders, endStream: boolean): { stream: http2.ClientHttp2Stream; sent: boolean } {
    if (this.closed) throw new UpstreamError('MM_ERR_UPSTREAM_CLOSED', `the h2c client for ${this.origin} is closed`);
    const s = this.session ?? this.connect();
    const sent = this.connected;
    return { stream: s.request(headers, { endStream }), sent };
  }

  private connect(): http2.ClientHttp2Session {
    this.connected = false;
    const s = http2.connect(this.origin, { settings: { enablePush: false }, peerMaxConcurrentStreams: 1000 });
    this.session = s;
    const timer = setTimeout(() => {
      if (!this.connected && this.session === s) s.destroy(new H2ConnectTimeoutError(this.origin, this.connectTimeoutMs));
    }, this.connectTimeoutMs);
    timer.unref();
    s.once('connect', () => {
      clearTimeout(timer);
      if (this.session === s) this.connected = true;
    });
    const forget = (): void => {
      clearTimeout(timer);
      if (this.session === s) {
        this.session = undefined;
        this.connected = false;
      }
    };
    // Session errors are delivered to each open stream too; here we only forget the session.
    s.on('error', forget);
    s.on('close', forget);
    s.on('goaway', forget);
    s.setTimeout(this.idleTimeoutMs, () => {
      forget();
      s.close();
    });
    s.unref();
    return s;
  }

  /** Let open streams finish, then close. */
  close(): Promise<void> {
    this.closed = true;
    const s = this.session;
    this.session = undefined;
    if (!s || s.destroyed) return Promise.resolve();
    return new Promise((resolve) => s.close(() => resolve()));
  }

  destroy(): void {
    this.closed = true;
    const s = this.session;
    this.session = undefined;
    if (s && !s.destroyed) s.destroy(undefined, NGHTTP2_CANCEL);
  }
}
