// Header rewriting for forwarded requests and responses, on flat raw arrays ([name, value, name, value…]):
// hop-by-hop fields removed (RFC 9110 §7.6.1), X-Forwarded-For/-Proto and Via added. Names are matched by
// length and first letter before any lower-casing, so ordinary headers cost two integer compares.

/** What a request header scan found, filled into a caller-owned object (reused per connection). */
export interface RequestScan {
  /** Value of the Host header ('' when absent). */
  host: string;
  /** A body follows (Content-Length > 0 or Transfer-Encoding present). */
  hasBody: boolean;
  /** The client sent `Expect: 100-continue` (the proxy answers it; the field is not forwarded). */
  expectContinue: boolean;
  /** Why the request must be refused with 400 ('' = fine): two Host fields, an invalid Host value. */
  problem: string;
}

// Codes of the headers that need attention; 0 = forward unchanged.
const H_OTHER = 0;
const H_HOP = 1; // removed
const H_HOST = 2;
const H_XFF = 3;
const H_XFP = 4;
const H_VIA = 5;
const H_TE = 6;
const H_CONTENT_LENGTH = 7;
const H_TRANSFER_ENCODING = 8;
const H_CONNECTION = 9;
const H_EXPECT = 10;

/**
 * Whether `s` equals `lower` (lower-case ASCII) ignoring ASCII case, without allocating a lower-cased
 * copy (most fields arrive capitalised: `Connection`, `Keep-Alive`, `Date`).
 */
export function isNamed(s: string, lower: string): boolean {
  const n = lower.length;
  if (s.length !== n) return false;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    const l = lower.charCodeAt(i);
    // Only an upper-case letter may stand for its lower-case one.
    if (c !== l && (l < 0x61 || l > 0x7a || c !== l - 0x20)) return false;
  }
  return true;
}

/** Classify a header name (any case). Hot: switch on length and first letter, then compare without lower-casing. */
function classify(name: string): number {
  const c = name.charCodeAt(0) | 0x20; // ASCII lower-case of the first letter
  switch (name.length) {
    case 2:
      return c === 0x74 && isNamed(name, 'te') ? H_TE : H_OTHER;
    case 3:
      return c === 0x76 && isNamed(name, 'via') ? H_VIA : H_OTHER;
    case 4:
      return c === 0x68 && isNamed(name, 'host') ? H_HOST : H_OTHER;
    case 6:
      return c === 0x65 && isNamed(name, 'expect') ? H_EXPECT : H_OTHER; // the proxy answers 100-continue itself
    case 7:
      if (c === 0x74) return isNamed(name, 'trailer') ? H_HOP : H_OTHER;
      if (c === 0x75) return isNamed(name, 'upgrade') ? H_HOP : H_OTHER;
      return H_OTHER;
    case 10:
      if (c === 0x63) return isNamed(name, 'connection') ? H_CONNECTION : H_OTHER;
      if (c === 0x6b) return isNamed(name, 'keep-alive') ? H_HOP : H_OTHER;
      return H_OTHER;
    case 14:
      return c === 0x63 && isNamed(name, 'content-length') ? H_CONTENT_LENGTH : H_OTHER;
    case 15:
      return c === 0x78 && isNamed(name, 'x-forwarded-for') ? H_XFF : H_OTHER;
    case 16:
      return c === 0x70 && isNamed(name, 'proxy-connection') ? H_HOP : H_OTHER;
    case 17:
      if (c === 0x74) return isNamed(name, 'transfer-encoding') ? H_TRANSFER_ENCODING : H_OTHER;
      if (c === 0x78) return isNamed(name, 'x-forwarded-proto') ? H_XFP : H_OTHER;
      return H_OTHER;
    case 18:
      return c === 0x70 && isNamed(name, 'proxy-authenticate') ? H_HOP : H_OTHER;
    case 19:
      return c === 0x70 && isNamed(name, 'proxy-authorization') ? H_HOP : H_OTHER;
    default:
      return H_OTHER;
  }
}

/**
 * Tokens of a Connection header other than the usual close/keep-alive, lower-cased, added to `named`
 * (created when the first one is found). The usual lone `keep-alive` or `close` (nearly every request
 * and response carries one) is recognised without splitting: it names nothing, and nothing is allocated.
 */
function connectionTokens(value: string, named: string[] | null): string[] | null {
  if (isNamed(value, 'keep-alive') || isNamed(value, 'close')) return named;
  for (const part of value.split(',')) {
    const tok = part.trim().toLowerCase();
    if (tok !== '' && tok !== 'close' && tok !== 'keep-alive') (named ??= []).push(tok);
  }
  return named;
}

function isConnectionNamed(name: string, named: string[] | null): boolean {
  if (named === null) return false;
  const lower = name.toLowerCase();
  for (let i = 0; i < named.length; i++) if (named[i] === lower) return true;
  return false;
}

export interface ForwardOptions {
  readonly xForwardedFor: boolean;
  readonly via: boolean;
  /** The Via value added, e.g. `1.1 meshmedic`. */
  readonly viaValue: string;
}

/**
 * Judge a downstream request's raw header fields (Host, body, Expect, problems) into `scan`: the one pass
 * made when the request arrives. It only classifies (no Connection tokens, no X-Forwarded-For or Via
 * merging, no field handed on): the forwarded head is written later, from the same raw fields, by
 * forEachForwardedRequestField.
 */
export function scanRequestFields(raw: readonly string[], scan: RequestScan): void {
  scan.host = '';
  scan.hasBody = false;
  scan.expectContinue = false;
  scan.problem = '';
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const value = raw[i + 1]!;
    switch (classify(raw[i]!)) {
      case H_HOST:
        // RFC 9112 §3.2: more than one Host, or an invalid one, is answered 400 (never routed by either).
        if (++hosts > 1) scan.problem = 'more than one Host header';
        else if (!isValidAuthority(value)) scan.problem = `invalid Host header "${value.slice(0, 100)}"`;
        scan.host = value;
        break;
      case H_CONTENT_LENGTH:
        if (value !== '0') scan.hasBody = true;
        break;
      case H_TRANSFER_ENCODING:
        scan.hasBody = true; // re-framed upstream by the client pool
        break;
      case H_EXPECT:
        if (isNamed(value, '100-continue')) scan.expectContinue = true;
        break;
      default:
        break;
    }
  }
}

/**
 * The headers sent upstream for a downstream request's raw headers, in order, each handed to `emit`:
 * hop-by-hop fields dropped, as are fields the Connection header names, X-Forwarded-For/-Proto and Via
 * merged and ours appended. `authority`, when not '', replaces the Host header (absolute-form request
 * target, RFC 9112 §3.2.2). The request was judged before (scanRequestFields); this pass only writes.
 * Builds no array: the upstream pool serializes a request head straight from this (and again on a retry:
 * the same raw fields give the same head). Returns whether a Content-Length was among the fields emitted.
 */
export function forEachForwardedRequestField(
  raw: readonly string[],
  clientIp: string,
  authority: string,
  opts: ForwardOptions,
  emit: (name: string, value: string) => void,
): boolean {
  let named: string[] | null = null;
  // Names listed in Connection are hop-by-hop too: find them first (almost never present).
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === 10 && classify(raw[i]!) === H_CONNECTION) named = connectionTokens(raw[i + 1]!, named);
  }
  let xff = '';
  let sawXfp = false;
  let sawHost = false;
  let via = '';
  let hasLength = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const code = classify(name);
    if (code === H_OTHER) {
      if (named === null || !isConnectionNamed(name, named)) emit(name, value);
      continue;
    }
    switch (code) {
      case H_HOST:
        sawHost = true;
        emit(name, authority === '' ? value : authority);
        break;
      case H_XFF:
        xff = xff === '' ? value : `${xff}, ${value}`;
        break;
      case H_XFP:
        sawXfp = true;
        emit(name, value);
        break;
      case H_VIA:
        via = via === '' ? value : `${via}, ${value}`;
        break;
      case H_TE:
        // Only "trailers" survives (gRPC needs it); any transfer coding is hop-by-hop.
        if (/(^|,)\s*trailers\s*(,|;|$)/i.test(value)) emit('te', 'trailers');
        break;
      case H_CONTENT_LENGTH:
        hasLength = true;
        emit(name, value);
        break;
      default:
        break; // hop-by-hop (Transfer-Encoding is the pool's, Expect answered by the proxy): dropped
    }
  }
  if (authority !== '' && !sawHost) emit('host', authority);
  if (opts.xForwardedFor) {
    emit('x-forwarded-for', xff === '' ? clientIp : `${xff}, ${clientIp}`);
    if (!sawXfp) emit('x-forwarded-proto', 'http');
  } else if (xff !== '') emit('x-forwarded-for', xff);
  if (opts.via) emit('via', via === '' ? opts.viaValue : `${via}, ${opts.viaValue}`);
  else if (via !== '') emit('via', via);
  return hasLength;
}

/** The request judged into `scan` and the fields forEachForwardedRequestField emits, as a new flat array (tests, and callers off the hot path). */
export function forwardRequestHeaders(raw: readonly string[], scan: RequestScan, clientIp: string, authority: string, opts: ForwardOptions): string[] {
  scanRequestFields(raw, scan);
  const out: string[] = [];
  forEachForwardedRequestField(raw, clientIp, authority, opts, (name, value) => {
    out.push(name, value);
  });
  return out;
}

/**
 * Whether `s` is a valid `host[:port]` (RFC 3986 authority without userinfo): a DNS-style name or IPv4
 * address (letters, digits, `-._~`), or a bracketed IPv6 literal; port digits only. '' is valid (RFC 9112
 * allows an empty Host). Rejects userinfo (`user@host`), spaces, paths and anything else.
 */
export function isValidAuthority(s: string): boolean {
  let i = 0;
  const n = s.length;
  if (n > 0 && s.charCodeAt(0) === 0x5b /* [ */) {
    i = 1;
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c === 0x5d /* ] */) break;
      if (!((c >= 0x30 && c <= 0x3a) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66) || c === 0x2e)) return false; // hex digit, ':' or '.'
      i++;
    }
    if (i === n || i === 1) return false;
    i++;
  } else {
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c === 0x3a /* : */) break;
      const l = c | 0x20;
      if (!((l >= 0x61 && l <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e)) return false;
      i++;
    }
  }
  if (i === n) return true;
  if (s.charCodeAt(i) !== 0x3a || n - i - 1 > 5) return false;
  for (let j = i + 1; j < n; j++) {
    const c = s.charCodeAt(j);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

/**
 * Why an upstream response cannot be forwarded faithfully, or '' when it can: a status outside
 * 100–599, a transfer coding other than chunked (the proxy re-frames bodies, so another coding would
 * be silently lost), a 204 announcing a body (RFC 9110 §15.3.5).
 */
export function responseFramingProblem(status: number, raw: readonly string[]): string {
  if (status < 100 || status > 599) return `status ${status} outside 100–599`;
  for (let i = 0; i < raw.length; i += 2) {
    const len = raw[i]!.length;
    if (len !== 17 && len !== 14) continue;
    const code = classify(raw[i]!);
    if (code === H_TRANSFER_ENCODING) {
      const value = raw[i + 1]!;
      if (!isNamed(value, 'chunked')) {
        for (const part of value.split(',')) {
          const coding = part.trim().toLowerCase();
          if (coding !== 'chunked') return `unsupported transfer coding "${coding.slice(0, 50)}"`;
        }
      }
      if (status === 204) return '204 with a body';
    } else if (code === H_CONTENT_LENGTH && status === 204 && raw[i + 1] !== '0') return '204 with a body';
  }
  return '';
}

/**
 * The headers written to the client from an upstream response's raw headers (flat strings, as the HTTP
 * parser produced them), in order, each handed to `emit`: hop-by-hop fields dropped (the client connection
 * has its own framing and keep-alive), as are fields the Connection header names; Via merged and ours
 * appended. Builds no array (the HTTP/1 server serializes a response head straight from this). Returns
 * whether a Content-Length was among the fields emitted.
 */
export function forEachForwardedResponseField(raw: readonly string[], opts: ForwardOptions, emit: (name: string, value: string) => void): boolean {
  let named: string[] | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === 10 && classify(raw[i]!) === H_CONNECTION) named = connectionTokens(raw[i + 1]!, named);
  }
  let via = '';
  let hasLength = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const code = classify(name);
    if (code === H_OTHER || code === H_CONTENT_LENGTH || code === H_HOST || code === H_XFF || code === H_XFP) {
      if (named === null || !isConnectionNamed(name, named)) {
        if (code === H_CONTENT_LENGTH) hasLength = true;
        emit(name, raw[i + 1]!);
      }
    } else if (code === H_VIA) {
      const v = raw[i + 1]!;
      via = via === '' ? v : `${via}, ${v}`;
    }
    // everything else (connection, keep-alive, transfer-encoding, te, trailer, upgrade, proxy-*) dropped
  }
  if (opts.via) emit('via', via === '' ? opts.viaValue : `${via}, ${opts.viaValue}`);
  else if (via !== '') emit('via', via);
  return hasLength;
}

/** The fields forEachForwardedResponseField emits, as a new flat array (tests, and callers off the hot path). */
export function forwardResponseHeaders(raw: readonly string[], opts: ForwardOptions): string[] {
  const out: string[] = [];
  forEachForwardedResponseField(raw, opts, (name, value) => {
    out.push(name, value);
  });
  return out;
}

/** HTTP/2 request pseudo- and hop-by-hop headers never forwarded as ordinary fields. */
export const H2_FORBIDDEN: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings', 'host', 'proxy-authorization', 'proxy-authenticate', 'trailer']);
