// A proxy listener: one TCP port that accepts HTTP/1.1 and HTTP/2 prior knowledge (h2c). The first bytes
// of each connection are sniffed for the HTTP/2 preface, then the socket is handed to a node:http or a
// node:http2 server that never listens itself. Malformed HTTP/1 is answered 400/431 on its own connection.
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { parseHostPort, formatHostPort } from '../core/address.js';
import type { ProxyCore } from './core.js';
import { errorBody } from './failure.js';
import { handleH2Stream } from './h2.js';
import { handleHttp1, watchClientSocket } from './http1.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export interface ProxyListener {
  readonly role: 'outbound' | 'inbound';
  /** Bound address, HOST:PORT (port 0 resolved). */
  readonly address: string;
  /** Stop accepting; let in-flight exchanges finish up to `deadlineMs` (shared with the core); then cut. */
  close(deadlineMs: number): Promise<void>;
}

function noop(): void {}

/** Raw 400/431 for bytes the HTTP/1 parser rejected (no request object exists). */
function onClientError(err: NodeJS.ErrnoException & { bytesParsed?: number }, socket: net.Socket): void {
  const busy = (socket as net.Socket & { _httpMessage?: http.ServerResponse | null })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || (busy && busy.headersSent)) {
    socket.destroy();
    return;
  }
  if (busy) {
    // The request line and headers were fine but the body is not (bad chunked encoding): answer on the
    // response object that exists, then close (the stream position is lost).
    const body = errorBody('MM_ERR_BAD_REQUEST', `malformed request body (${err.code ?? err.message})`, '');
    busy.writeHead(400, ['content-type', 'application/json', 'content-length', String(Buffer.byteLength(body)), 'connection', 'close']);
    busy.end(body);
    return;
  }
  let status = 400;
  let reason = 'Bad Request';
  let message = `malformed HTTP request (${err.code ?? err.message})`;
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    status = 431;
    reason = 'Request Header Fields Too Large';
    message = 'request headers exceed the configured maximum (proxy.maxHeaderBytes)';
  } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    status = 408;
    reason = 'Request Timeout';
    message = 'the request headers did not arrive in time';
  }
  const body = errorBody('MM_ERR_BAD_REQUEST', message, '');
  socket.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  socket.destroySoon?.();
}

export async function startListener(core: ProxyCore, role: 'outbound' | 'inbound', listen: string): Promise<ProxyListener> {
  const hp = parseHostPort(listen, { allowPortZero: true });
  if (typeof hp === 'string') throw new Error(`${role}.listen: ${hp}`);
  const cfg = core.deps.config.proxy;
  const log = core.deps.log.child({ listener: role });

  const h1 = http.createServer(
    {
      maxHeaderSize: cfg.maxHeaderBytes,
      requestTimeout: 0, // long uploads are bounded by the idle timeout instead
      headersTimeout: Math.min(60_000, cfg.idleTimeoutMs),
      keepAliveTimeout: cfg.idleTimeoutMs,
      noDelay: true,
      requireHostHeader: false, // answered by the proxy with a JSON 400 instead of an empty one
      connectionsCheckingInterval: 1_000,
    },
    (req, res) => handleHttp1(core, role, req, res),
  );
  h1.timeout = cfg.idleTimeoutMs;
  h1.on('clientError', onClientError);
  h1.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
    const body = errorBody('MM_ERR_BAD_REQUEST', `protocol upgrade to "${String(req.headers.upgrade).slice(0, 50)}" is not supported`, '');
    socket.end(`HTTP/1.1 501 Not Implemented\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  });
  h1.on('connect', (_req: http.IncomingMessage, socket: net.Socket) => {
    const body = errorBody('MM_ERR_BAD_REQUEST', 'CONNECT is not supported', '');
    socket.end(`HTTP/1.1 405 Method Not Allowed\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  });
  // The HTTP server never listens; 'listening' starts its connection tracking (header/idle timeouts).
  h1.emit('listening');

  const h2 = http2.createServer({
    settings: { maxHeaderListSize: cfg.maxHeaderBytes, enablePush: false },
    peerMaxConcurrentStreams: 1000,
  });
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on('session', (s: http2.ServerHttp2Session) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
    s.on('error', noop); // reported per stream; a broken peer must not crash the process
    s.setTimeout(cfg.idleTimeoutMs, () => s.close());
  });
  h2.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number) => {
    stream.on('error', noop);
    try {
      handleH2Stream(core, role, stream, headers, flags);
    } catch (err) {
      log.error('h2 stream handler failed', { err });
      if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    }
  });
  h2.on('sessionError', noop);

  const sockets = new Set<net.Socket>();
  const server = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    sniff(socket);
  });

  function sniff(socket: net.Socket): void {
    let head: Buffer | null = null;
    const onError = (): void => {
      socket.destroy();
    };
    const onTimeout = (): void => {
      socket.destroy();
    };
    socket.on('error', onError);
    socket.setTimeout(Math.min(60_000, cfg.idleTimeoutMs), onTimeout);
    const onData = (chunk: Buffer): void => {
      const buf: Buffer = head === null ? chunk : Buffer.concat([head, chunk]);
      // A partial preface: wait for the rest (it is 24 bytes; clients send it in one write).
      if (buf.length < PREFACE.length && PREFACE.subarray(0, buf.length).equals(buf)) {
        head = buf;
        return;
      }
      socket.removeListener('data', onData);
      socket.removeListener('error', onError);
      socket.setTimeout(0);
      socket.removeListener('timeout', onTimeout);
      socket.pause();
      socket.unshift(buf);
      const isH2 = buf.length >= PREFACE.length && buf.subarray(0, PREFACE.length).equals(PREFACE);
      try {
        if (isH2) {
          // The http2 session reads what is buffered on the socket itself; it must not be resumed here.
          h2.emit('connection', socket);
        } else {
          watchClientSocket(socket);
          h1.emit('connection', socket);
          socket.resume();
        }
      } catch (err) {
        log.warn('connection hand-off failed', { err });
        socket.destroy();
      }
    };
    socket.on('data', onData);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(hp.port, hp.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => log.error('listener error', { err }));
  const a = server.address() as net.AddressInfo;
  const address = formatHostPort(a.address, a.port);
  log.info('listening', { address });

  let closing: Promise<void> | undefined;
  return {
    role,
    address,
    close(deadlineMs: number): Promise<void> {
      closing ??= (async () => {
        core.draining = true;
        server.close();
        h1.closeIdleConnections();
        for (const s of sessions) s.close(); // GOAWAY: open streams finish
        await core.whenIdle(deadlineMs);
        h1.close();
        h1.closeAllConnections();
        for (const s of sessions) s.destroy();
        for (const s of sockets) s.destroy();
      })();
      return closing;
    },
  };
}

