// HTTP CONNECT on the outbound listener: a real grpc-js client with http_proxy set tunnels to a mesh service
// and each call is measured; HTTP/1.1 inside a tunnel is routed and measured per request; TLS (any stream
// starting with a handshake record) is passed through to one endpoint and measured per connection;
// destinations outside the mesh are refused; the inbound listener still refuses CONNECT.
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import t from 'tap';
import { Outcome } from '../../src/core/types.js';
import { backend, rawExchange, rawServer, startTestProxy, until, type TestProxy } from './helpers.js';

interface EchoRequest { text: string }
interface EchoReply { text: string; index: number }
type EchoClient = grpc.Client & {
  Unary(req: EchoRequest, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, r?: EchoReply) => void): grpc.ClientUnaryCall;
};
const def = protoLoader.loadSync(fileURLToPath(new URL('./fixtures/echo.proto', import.meta.url)), { keepCase: false, defaults: true });
const Echo = (grpc.loadPackageDefinition(def) as unknown as { meshmedic: { test: { Echo: grpc.ServiceClientConstructor } } }).meshmedic.test.Echo;

async function echoServer(): Promise<{ port: number; close(): Promise<void> }> {
  const server = new grpc.Server();
  server.addService(Echo.service, {
    Unary(call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) {
      cb(null, { text: `echo:${call.request.text}`, index: 0 });
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return { port, close: () => new Promise<void>((r) => server.tryShutdown(() => r())) };
}

function windowsOf(p: TestProxy, port: number) {
  const ev = [...p.mesh.snapshot().endpoints.values()].find((e) => e.spec.port === port)!;
  return p.stats.ensure(ev.slot); // windows come with the first request: an endpoint never called reads as empty
}

/** Open a tunnel: resolves with the socket and the proxy's answer head. */
function tunnel(port: number, target: string): Promise<{ socket: net.Socket; head: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      resolve({ socket, head: buf.subarray(0, end).toString('latin1'), rest: buf.subarray(end + 4) });
    };
    socket.on('data', onData);
    socket.on('error', reject);
    socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  });
}

function readUntil(socket: net.Socket, first: Buffer, done: (all: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    let all = first.toString('latin1');
    if (done(all)) return resolve(all);
    const timer = setTimeout(() => reject(new Error(`timed out; got ${JSON.stringify(all)}`)), 5000);
    socket.on('data', (c: Buffer) => {
      all += c.toString('latin1');
      if (done(all)) {
        clearTimeout(timer);
        resolve(all);
      }
    });
  });
}

t.test('a grpc-js client with http_proxy reaches a mesh service through CONNECT, measured per call', async (t) => {
  const s = await echoServer();
  const p = await startTestProxy({ services: [{ name: 'echo', protocol: 'h2c', endpoints: [{ address: `127.0.0.1:${s.port}` }] }] });
  const saved = { http_proxy: process.env.http_proxy, no_proxy: process.env.no_proxy, grpc_proxy: process.env.grpc_proxy };
  process.env.http_proxy = `http://127.0.0.1:${p.port}`;
  delete process.env.no_proxy;
  delete process.env.grpc_proxy;
  // grpc-js reads the proxy settings when the channel is created; it tunnels to echo:50051 unresolved.
  const c = new Echo('dns:///echo:50051', grpc.credentials.createInsecure()) as unknown as EchoClient;
  t.teardown(async () => {
    c.close();
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
    await p.close();
    await s.close();
  });
  const w = windowsOf(p, s.port);
  const before = w.lifetime[Outcome.Success]!;
  for (let i = 0; i < 5; i++) {
    const reply = await new Promise<EchoReply>((resolve, reject) => c.Unary({ text: `n${i}` }, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (err, r) => (err ? reject(err) : resolve(r!))));
    t.equal(reply.text, `echo:n${i}`);
  }
  await until(() => w.lifetime[Outcome.Success]! - before === 5, 3000, 'five calls measured');
  t.equal(w.lifetime[Outcome.Success]! - before, 5, 'each call through the tunnel is one sample at the endpoint');
});

t.test('HTTP/1.1 inside a tunnel is routed by Host and measured per request; non-mesh targets refused', async (t) => {
  const b = await backend((req, res) => res.end(`ok ${req.url}`));
  const p = await startTestProxy({ services: [{ name: 'web', endpoints: [{ address: `127.0.0.1:${b.port}` }] }] });
  t.teardown(async () => {
    await p.close();
    await b.close();
  });
  const { socket, head, rest } = await tunnel(p.port, 'web:80');
  t.teardown(() => socket.destroy());
  t.match(head, /^HTTP\/1\.1 200 /, 'tunnel established');
  socket.write('GET /a HTTP/1.1\r\nHost: web\r\n\r\n');
  const one = await readUntil(socket, rest, (all) => all.includes('ok /a'));
  t.match(one, /^HTTP\/1\.1 200 /);
  socket.removeAllListeners('data');
  socket.write('GET /b HTTP/1.1\r\nHost: web\r\n\r\n');
  await readUntil(socket, Buffer.alloc(0), (all) => all.includes('ok /b'));
  const w = windowsOf(p, b.port);
  await until(() => w.lifetime[Outcome.Success] === 2, 3000, 'two requests measured');
  t.equal(w.lifetime[Outcome.Success], 2, 'two requests in one tunnel: two samples');

  // By endpoint address, as a client that resolved the name first would ask.
  const byAddr = await tunnel(p.port, `127.0.0.1:${b.port}`);
  t.teardown(() => byAddr.socket.destroy());
  t.match(byAddr.head, /^HTTP\/1\.1 200 /, 'an endpoint address of a mesh service is a mesh destination');

  const outside = await rawExchange(p.port, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
  t.match(outside, /^HTTP\/1\.1 403 /, 'non-mesh destination refused');
  t.match(outside, /MM_ERR_UNKNOWN_SERVICE/);
  t.match(outside, /not a mesh service or endpoint/);
  const bad = await rawExchange(p.port, 'CONNECT web HTTP/1.1\r\nHost: web\r\n\r\n');
  t.match(bad, /^HTTP\/1\.1 400 /, 'target without a port: 400');
  t.match(bad, /MM_ERR_BAD_REQUEST/);
});

t.test('TLS in a tunnel is passed through to one endpoint and measured per connection', async (t) => {
  // The proxy never reads TLS: a server that answers whatever arrives stands in for the TLS endpoint.
  const seen: Buffer[] = [];
  const srv = await rawServer((sock) => {
    sock.on('data', (d: Buffer) => {
      seen.push(d);
      sock.write(Buffer.from([0x16, 0x03, 0x03, 0x00, 0x02, 0xaa, 0xbb])); // "ServerHello"
    });
    sock.on('error', () => undefined);
  });
  const p = await startTestProxy({ services: [{ name: 'secure', endpoints: [{ address: `127.0.0.1:${srv.port}` }] }] });
  t.teardown(async () => {
    await p.close();
    await srv.close();
  });
  const { socket, head } = await tunnel(p.port, 'secure:443');
  t.match(head, /^HTTP\/1\.1 200 /);
  const hello = Buffer.from([0x16, 0x03, 0x01, 0x00, 0x03, 0x01, 0x02, 0x03]);
  socket.write(hello);
  const back = await new Promise<Buffer>((resolve) => socket.once('data', resolve));
  t.same([...back], [0x16, 0x03, 0x03, 0x00, 0x02, 0xaa, 0xbb], 'the endpoint\'s bytes come back unchanged');
  t.same([...Buffer.concat(seen)], [...hello], 'the client\'s bytes reach the endpoint unchanged');
  const w = windowsOf(p, srv.port);
  await until(() => w.lifetime[Outcome.Success] === 1, 3000, 'connection measured');
  socket.destroy();
  t.equal(w.lifetime[Outcome.Success], 1, 'one sample for the connection');
});

t.test('TLS pass-through to an endpoint that refuses is a local-origin failure at that endpoint', async (t) => {
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(a));
    });
  });
  const p = await startTestProxy({ services: [{ name: 'gone', endpoints: [{ address: `127.0.0.1:${port}` }] }] });
  t.teardown(() => p.close());
  const { socket, head } = await tunnel(p.port, 'gone:443');
  t.match(head, /^HTTP\/1\.1 200 /);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => undefined);
  socket.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x00]));
  await closed;
  const w = windowsOf(p, port);
  await until(() => w.lifetime[Outcome.LocalOrigin] === 1, 3000, 'failure measured');
  t.equal(w.lifetime[Outcome.LocalOrigin], 1);
});

t.test('the inbound listener still refuses CONNECT', async (t) => {
  const b = await backend((_req, res) => res.end('app'));
  const p = await startTestProxy({ inbound: { enabled: true, app: `http://127.0.0.1:${b.port}` }, services: [] });
  t.teardown(async () => {
    await p.close();
    await b.close();
  });
  const got = await rawExchange(p.inboundPort, 'CONNECT web:80 HTTP/1.1\r\nHost: web:80\r\n\r\n');
  t.match(got, /^HTTP\/1\.1 405 /);
});
