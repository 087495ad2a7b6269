// HTTP CONNECT on the outbound listener, for clients that reach the sidecar as an HTTP proxy by tunnel
// (grpc-js and gRPC C-core with http_proxy, HTTPS clients): only to mesh services. After "200", the first
// bytes in the tunnel decide: TLS is passed through to one endpoint and measured per connection; anything
// else (HTTP/1.1, h2c) is served by the listener exactly like a direct connection, routed and measured per
// request. Any other destination is refused with 403 and MM_ERR_UNKNOWN_SERVICE.
import net from 'node:net';
import { Outcome } from '../core/types.js';
import type { EndpointView, ServiceView } from '../mesh/state.js';
import type { ProxyCore } from './core.js';
import { errorBody, UpstreamError } from './failure.js';
import { Attempt, KIND_TUNNEL } from './attempt.js';
import type { Upstream } from './upstream.js';

/** A tunnel's destination: the service, by name or by one of its endpoints' addresses. */
export function connectTarget(core: ProxyCore, target: string): { view: ServiceView; authority: string } | { error: string } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-_]+):(\d{1,5})$/.exec(target);
  if (m === null || Number(m[2]) < 1 || Number(m[2]) > 65535) return { error: `CONNECT target "${target.slice(0, 200)}" is not HOST:PORT` };
  const view = core.service(target);
  if (view !== undefined) return { view, authority: target };
  // Clients that resolve names first tunnel to an endpoint's address: that endpoint's service.
  const host = m[1]!.replace(/^\[|\]$/g, '').toLowerCase();
  const port = Number(m[2]);
  const snap = core.deps.mesh.snapshot();
  for (const ev of snap.endpoints.values()) {
    if (ev.spec.port === port && ev.spec.host.toLowerCase() === host) {
      const v = snap.services.get(ev.spec.service);
      if (v !== undefined) return { view: v, authority: target };
    }
  }
  return { error: `CONNECT to "${target.slice(0, 200)}" refused: not a mesh service or endpoint (only mesh destinations are tunnelled)` };
}

function refuse(socket: net.Socket, status: 400 | 403 | 503, code: 'MM_ERR_BAD_REQUEST' | 'MM_ERR_UNKNOWN_SERVICE' | 'MM_ERR_NO_ENDPOINT', message: string): void {
  const body = errorBody(code, message, '');
  const text = status === 403 ? 'Forbidden' : status === 400 ? 'Bad Request' : 'Service Unavailable';
  socket.end(`HTTP/1.1 ${status} ${text}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`, 'latin1');
}

/**
 * Take over a client socket whose CONNECT head has been read (nothing else: clients wait for the answer).
 * `serve` hands a socket to the listener's own protocol sniffing (HTTP/1.1 or h2c).
 */
export function handleConnect(core: ProxyCore, socket: net.Socket, target: string, serve: (socket: net.Socket) => void): void {
  const dest = connectTarget(core, target);
  if ('error' in dest) {
    refuse(socket, dest.error.startsWith('CONNECT target') ? 400 : 403, dest.error.startsWith('CONNECT target') ? 'MM_ERR_BAD_REQUEST' : 'MM_ERR_UNKNOWN_SERVICE', dest.error);
    return;
  }
  socket.write('HTTP/1.1 200 Connection Established\r\n\r\n', 'latin1');
  const onFirst = (chunk: Buffer): void => {
    socket.pause();
    socket.unshift(chunk);
    // TLS record, handshake type (RFC 8446 §5.1): the client speaks TLS end to end; pass it through.
    if (chunk[0] === 0x16) passThrough(core, socket, dest.view);
    else {
      serve(socket);
      socket.resume(); // paused above; the listener's sniffing reads it like a new connection
    }
  };
  socket.once('data', onFirst);
  socket.resume();
}

/**
 * A TLS tunnel measured as one attempt (one sample per connection): sent once the connection to the endpoint
 * is up (the client's bytes flow from then on), its "response head" the endpoint's first byte (the TLS
 * ServerHello). Never retried: the client's bytes are not kept.
 */
class TunnelAttempt extends Attempt {
  constructor(core: ProxyCore, up: Upstream) {
    super(core, KIND_TUNNEL, null, up, false);
    this.beginAttempt();
  }

  connected(): void {
    this.markSent();
  }

  firstByte(): void {
    this.markHeaders(0);
  }

  end(outcome: Outcome): void {
    this.settle(outcome);
  }
}

/** TLS inside the tunnel: one endpoint per connection, bytes copied both ways, one sample per connection. */
function passThrough(core: ProxyCore, client: net.Socket, view: ServiceView): void {
  const ev: EndpointView | undefined = core.balancer.pick(view);
  const up = ev === undefined ? undefined : core.upstream(ev);
  if (ev === undefined || up === undefined) {
    client.destroy(); // the 200 is sent: a TLS client sees the connection close
    return;
  }
  const attempt = new TunnelAttempt(core, up);
  let firstByte = false;
  const server = net.connect({ host: ev.spec.host, port: ev.spec.port, noDelay: true });
  const connectTimeoutMs = core.deps.config.proxy.connectTimeoutMs;
  const connectTimer = setTimeout(() => server.destroy(new UpstreamError('MM_ERR_UPSTREAM_CONNECT_TIMEOUT', `connect to ${up.id} timed out after ${connectTimeoutMs} ms`)), connectTimeoutMs);
  // The sample is the time from connected to the endpoint's first byte; a connection that never got one
  // is a local-origin failure charged to the endpoint.
  const settle = (outcome: Outcome): void => {
    clearTimeout(connectTimer);
    attempt.end(outcome);
  };
  server.once('connect', () => {
    clearTimeout(connectTimer);
    attempt.connected();
  });
  server.once('data', () => {
    firstByte = true;
    attempt.firstByte();
    settle(Outcome.Success);
  });
  server.on('error', (err: NodeJS.ErrnoException) => {
    if (!firstByte && err.code === 'ECONNREFUSED') attempt.refused = true;
    settle(firstByte ? Outcome.Success : Outcome.LocalOrigin);
    client.destroy();
  });
  client.on('error', () => server.destroy());
  server.on('close', () => {
    if (!attempt.settled) settle(client.destroyed ? Outcome.Cancelled : Outcome.LocalOrigin);
    client.end();
  });
  client.on('close', () => {
    if (!attempt.settled) settle(Outcome.Cancelled);
    server.end();
  });
  client.pipe(server);
  server.pipe(client);
}
