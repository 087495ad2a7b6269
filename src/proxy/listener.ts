// A proxy listener: one TCP port that accepts HTTP/1.1 and HTTP/2 prior knowledge (h2c). The first bytes
// of each connection are sniffed for the HTTP/2 preface; HTTP/1 connections are served by H1ServerConn
// (the HTTP/1 engine's strict llhttp parser, malformed input answered 400/431 on its own connection),
// HTTP/2 ones are handed to a node:http2 server that never listens itself — loaded with the first HTTP/2
// connection: node:http2 and the h2c forwarding cost a sidecar whose clients speak HTTP/1.1 only ~1–2 MB
// of RSS (docs/kubernetes.md, "Memory budget").
import type http2 from 'node:http2';
import net from 'node:net';
import { parseHostPort, formatHostPort } from '../core/address.js';
import type { ProxyCore } from './core.js';
import { handleHttp1 } from './http1.js';
import { ExpiryQueue, type Expirable } from './expiry-queue.js';
import { H1ServerConn, type H1Io, type H1ServerOptions } from './h1server.js';
import { handleConnect } from './connect.js';
import { fittedConnectionCap, noteFdExhaustion, openFileLimit } from './fd-limit.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export interface ProxyListener {
  readonly role: 'outbound' | 'inbound';
  /** Bound address, HOST:PORT (port 0 resolved). */
  readonly address: string;
  /** Stop accepting; let in-flight exchanges finish up to `deadlineMs` (shared with the core); then cut. */
  close(deadlineMs: number): Promise<void>;
  /** Downstream connections: open now, the cap, and how many were refused at the cap. */
  connections(): { open: number; cap: number; refused: number };
}

/** How often the client-side deadlines (request head, body rate) are checked. */
const CLIENT_SWEEP_MS = 250;
/** Late connections answered per turn of the event loop, and per sweep (see ExpiryQueue). */
const EXPIRE_PER_TURN = 4;
const EXPIRE_PER_SWEEP = 64;
/** A larger backlog is answered within this many sweeps (5 s) whatever its size. */
const EXPIRE_DRAIN_SWEEPS = 20;

function noop(): void {}

/** `listeners`: how many listeners this process runs (they share the file-descriptor limit). */
/**
 * `reusePort`: bind with SO_REUSEPORT, so that worker processes each own a socket on the same port (see
 * src/workers); Node versions without the option ignore it.
 */
export async function startListener(core: ProxyCore, role: 'outbound' | 'inbound', listen: string, listeners = 1, reusePort = false): Promise<ProxyListener> {
  const hp = parseHostPort(listen, { allowPortZero: true });
  if (typeof hp === 'string') throw new Error(`${role}.listen: ${hp}`);
  const cfg = core.deps.config.proxy;
  const log = core.deps.log.child({ listener: role });
  const fdLimit = openFileLimit();
  const cap = fittedConnectionCap(cfg.maxConnections, fdLimit, listeners);
  if (cap < cfg.maxConnections) log.info('proxy.maxConnections lowered to fit the file-descriptor limit', { configured: cfg.maxConnections, cap, fdLimit });
  let refused = 0;

  // Late and idle client connections are answered or closed through one queue, spread over turns of the
  // event loop and sweeps (see ExpiryQueue): a flood opened together times out together.
  const late = new ExpiryQueue<Expirable>(EXPIRE_PER_TURN, EXPIRE_PER_SWEEP, EXPIRE_DRAIN_SWEEPS, setImmediate);
  // Timers run before the loop polls the sockets: an idle timer that fires after this process stalled (GC,
  // a busy machine) comes before the poll that reads what the client sent meanwhile. So idleness is judged
  // after the next poll, and again when the queue's turn comes: a byte read since the timer fired means
  // the connection is in use (the reads re-armed its timer, which judges it again).
  const closeIdle = (socket: net.Socket): void => {
    const read = socket.bytesRead;
    setImmediate(() => {
      if (socket.destroyed || socket.bytesRead !== read) return;
      late.add({
        expire: () => {
          if (socket.destroyed || socket.bytesRead !== read) return false;
          socket.destroy();
          return true;
        },
      }, 'idle');
    });
  };
  // CONNECT tunnels (outbound only) come back to sniff(): HTTP/1.1 or h2c inside is served as if direct.
  const h1Opts: H1ServerOptions = {
    engine: core.http1,
    onIdleTimeout: closeIdle,
    maxHeaderBytes: cfg.maxHeaderBytes,
    idleTimeoutMs: cfg.idleTimeoutMs,
    requestHeadersTimeoutMs: cfg.requestHeadersTimeoutMs,
    bodyMinBytesPerSecond: cfg.requestBodyMinBytesPerSecond,
    bodyGraceMs: cfg.requestBodyGraceMs,
    ...(role === 'outbound' ? { onConnect: (socket: net.Socket, target: string) => handleConnect(core, socket, target, sniff) } : {}),
  };
  const h1Conns = new Set<H1ServerConn>();
  const onH1Request = (io: H1Io): void => {
    try {
      handleHttp1(core, role, io);
    } catch (err) {
      log.error('request handler failed', { err });
      io.destroy();
    }
  };
  const onH1Close = (c: H1ServerConn): void => {
    h1Conns.delete(c);
  };
  let draining = false;

  const sessions = new Set<http2.ServerHttp2Session>();
  /** The HTTP/2 server, created with the first HTTP/2 connection (see the file's comment). */
  let h2: Promise<http2.Http2Server> | undefined;
  const h2Server = async (): Promise<http2.Http2Server> => {
    const [{ default: http2 }, { handleH2Stream }] = await Promise.all([import('node:http2'), import('./h2.js')]);
    const server = http2.createServer({
      settings: { maxHeaderListSize: cfg.maxHeaderBytes, enablePush: false },
      peerMaxConcurrentStreams: 1000,
    });
    server.on('session', (s: http2.ServerHttp2Session) => {
      sessions.add(s);
      s.on('close', () => sessions.delete(s));
      s.on('error', noop); // reported per stream; a broken peer must not crash the process
      s.setTimeout(cfg.idleTimeoutMs, () => s.close());
    });
    server.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number) => {
      stream.on('error', noop);
      try {
        handleH2Stream(core, role, stream, headers, flags);
      } catch (err) {
        log.error('h2 stream handler failed', { err });
        if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      }
    });
    server.on('sessionError', noop);
    return server;
  };
  const handToH2 = (socket: net.Socket): void => {
    (h2 ??= h2Server()).then((server) => {
      // The connection waited paused for the module: it may have closed, or the listener begun closing.
      if (socket.destroyed) return;
      if (draining) return void socket.destroy();
      server.emit('connection', socket);
    }, (err: unknown) => {
      log.error('HTTP/2 could not be loaded', { err });
      socket.destroy();
    });
  };

  const sockets = new Set<net.Socket>();
  const server = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    sniff(socket);
  });
  // Over the cap, node closes new connections right after accept (before any byte is read).
  server.maxConnections = cap;
  server.on('drop', () => {
    refused++;
  });
  // Client deadlines: found here, answered through the expiry queue (spread over turns and sweeps). As for
  // idleness, a due sweep would judge a head or body before reading what arrived while this process
  // stalled: it judges after the next poll (setImmediate), as of the moment its timer fired. A timer that
  // fired late means this process itself was stalled (the clients' bytes may be waiting unread, and the
  // time was not theirs): that round is skipped, never two in a row.
  let lastFiredAt = performance.now();
  let sweepFiredAt = 0;
  let sweepTick = 0;
  let skippedSweep = false;
  const sweep = (): void => {
    for (const c of h1Conns) {
      const why = c.check(sweepFiredAt, sweepTick);
      if (why !== null) late.add(c, why);
    }
    late.refill();
  };
  const sweepTimer = setInterval(() => {
    const firedAt = performance.now();
    const tick = firedAt - lastFiredAt;
    lastFiredAt = firedAt;
    if (tick - CLIENT_SWEEP_MS > CLIENT_SWEEP_MS && !skippedSweep) {
      skippedSweep = true;
      return;
    }
    skippedSweep = false;
    sweepFiredAt = firedAt;
    sweepTick = tick;
    setImmediate(sweep);
  }, CLIENT_SWEEP_MS);
  sweepTimer.unref();

  function sniff(socket: net.Socket): void {
    let head: Buffer | null = null;
    const onError = (): void => {
      socket.destroy();
    };
    const onTimeout = (): void => {
      closeIdle(socket);
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
          handToH2(socket);
        } else {
          const c = new H1ServerConn(socket, onH1Request, h1Opts, onH1Close);
          h1Conns.add(c);
          if (draining) c.draining = true;
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
    // `reusePort` is not in Node 20's types; net ignores options it does not know.
    server.listen({ port: hp.port, host: hp.host, ...(reusePort ? { reusePort: true } : {}) } as net.ListenOptions, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => {
    if (!noteFdExhaustion(err, log, `${role} listener accept`)) log.error('listener error', { err });
  });
  const a = server.address() as net.AddressInfo;
  const address = formatHostPort(a.address, a.port);
  log.info('listening', { address });

  let closing: Promise<void> | undefined;
  return {
    role,
    address,
    connections: () => ({ open: sockets.size, cap, refused }),
    close(deadlineMs: number): Promise<void> {
      closing ??= (async () => {
        core.draining = true;
        draining = true;
        server.close();
        // Idle keep-alive connections close now; busy ones after their response (sent with connection: close).
        for (const c of h1Conns) {
          c.draining = true;
          c.whenIdle((idle) => idle.socket.end());
        }
        for (const s of sessions) s.close(); // GOAWAY: open streams finish
        await core.whenIdle(deadlineMs);
        clearInterval(sweepTimer);
        // Exchanges still open at the deadline: a status where nothing was sent yet, else a cut.
        const answered = new Set<net.Socket>();
        for (const c of h1Conns) if (c.cutAtDeadline()) answered.add(c.socket);
        for (const s of sessions) s.destroy();
        for (const s of sockets) {
          // An answered socket is ending (FIN after its 503); a client that never reads is cut shortly.
          if (answered.has(s)) setTimeout(() => s.destroy(), 1000).unref();
          else s.destroy();
        }
      })();
      return closing;
    },
  };
}

