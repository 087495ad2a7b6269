// Probes of ejected endpoints on plain sockets: a TCP connect, or one HTTP/1.1 GET read up to its status
// line. No HTTP client library: loading one at the first ejection stalled the event loop for ~200 ms
// (every request in flight waited), and a probe only needs the status code.
import { connect } from 'node:net';

/** The longest status line a probe waits for; anything longer is not an HTTP answer. */
const MAX_STATUS_LINE = 1024;
const STATUS_LINE = /^HTTP\/1\.[01] ([1-9]\d\d)(?: |\r|$)/;

/** Passes when a TCP connection is accepted within `timeoutMs`. */
export function tcpProbe(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return socketProbe(host, port, timeoutMs, undefined);
}

/**
 * Passes when `GET path` on a fresh connection is answered with a status below 500 within `timeoutMs`
 * (a refused or reset connection, no answer, or anything that is not an HTTP/1 status line fails).
 */
export function httpProbe(host: string, port: number, path: string, timeoutMs: number): Promise<boolean> {
  const authority = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return socketProbe(host, port, timeoutMs, `GET ${path} HTTP/1.1\r\nhost: ${authority}\r\nuser-agent: meshmedic-probe\r\nconnection: close\r\n\r\n`);
}

function socketProbe(host: string, port: number, timeoutMs: number, request: string | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    let settled = false;
    let head = '';
    const done = (ok: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    timer.unref(); // the socket holds the event loop while the probe is pending
    sock.once('error', () => done(false));
    sock.once('close', () => done(false));
    sock.once('connect', () => {
      if (request === undefined) return done(true);
      sock.setEncoding('latin1');
      sock.write(request);
    });
    sock.on('data', (chunk: string) => {
      head += chunk;
      const eol = head.indexOf('\n');
      if (eol < 0 && head.length < MAX_STATUS_LINE) return;
      const m = STATUS_LINE.exec(eol < 0 ? head : head.slice(0, eol));
      done(m !== null && Number(m[1]) < 500);
    });
  });
}
