// gRPC over h2c through the proxy between a real @grpc/grpc-js server and client: unary and the three
// streaming kinds, trailers (metadata) preserved, grpc-status mapped to outcomes, upstream failures
// answered as gRPC errors, and the inbound listener in front of an h2c app.
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import t from 'tap';
import { Outcome } from '../../src/core/types.js';
import { refusedEndpoint, rawServer, request, startTestProxy, until, type TestProxy } from './helpers.js';

interface EchoRequest {
  text: string;
  failWith?: number;
}
interface EchoReply {
  text: string;
  index: number;
}
type EchoClient = grpc.Client & {
  Unary(req: EchoRequest, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, r?: EchoReply) => void): grpc.ClientUnaryCall;
  ServerStream(req: EchoRequest): grpc.ClientReadableStream<EchoReply>;
  ClientStream(cb: (err: grpc.ServiceError | null, r?: EchoReply) => void): grpc.ClientWritableStream<EchoRequest>;
  Bidi(): grpc.ClientDuplexStream<EchoRequest, EchoReply>;
};

const def = protoLoader.loadSync(fileURLToPath(new URL('./fixtures/echo.proto', import.meta.url)), { keepCase: false, defaults: true });
const pkg = grpc.loadPackageDefinition(def) as unknown as { meshmedic: { test: { Echo: grpc.ServiceClientConstructor } } };
const Echo = pkg.meshmedic.test.Echo;

function fail(code: number): grpc.ServiceError {
  return Object.assign(new Error(`failing with ${code}`), { code, details: `failing with ${code}`, metadata: new grpc.Metadata() });
}

async function echoServer(name: string): Promise<{ port: number; close(): Promise<void> }> {
  const server = new grpc.Server();
  server.addService(Echo.service, {
    Unary(call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) {
      if (call.request.failWith) return cb(fail(call.request.failWith));
      const md = new grpc.Metadata();
      md.set('x-served-by', name);
      cb(null, { text: `${name}:${call.request.text}`, index: 0 }, md);
    },
    ServerStream(call: grpc.ServerWritableStream<EchoRequest, EchoReply>) {
      for (let i = 0; i < 5; i++) call.write({ text: `${call.request.text}#${i}`, index: i });
      const md = new grpc.Metadata();
      md.set('x-count', '5');
      call.end(md);
    },
    ClientStream(call: grpc.ServerReadableStream<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) {
      const parts: string[] = [];
      call.on('data', (m: EchoRequest) => parts.push(m.text));
      call.on('end', () => cb(null, { text: parts.join('+'), index: parts.length }));
    },
    Bidi(call: grpc.ServerDuplexStream<EchoRequest, EchoReply>) {
      let i = 0;
      call.on('data', (m: EchoRequest) => call.write({ text: m.text.toUpperCase(), index: i++ }));
      call.on('end', () => call.end());
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return { port, close: () => new Promise<void>((r) => server.tryShutdown(() => r())) };
}

function client(port: number, authority: string): EchoClient {
  return new Echo(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': authority }) as unknown as EchoClient;
}

const unary = (c: EchoClient, req: EchoRequest) =>
  new Promise<{ err: grpc.ServiceError | null; reply?: EchoReply; trailers?: grpc.Metadata }>((resolve) => {
    let trailers: grpc.Metadata | undefined;
    const call = c.Unary(req, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (err, reply) => setImmediate(() => resolve({ err, reply, trailers })));
    call.on('status', (s) => (trailers = s.metadata));
  });

function windowsOf(p: TestProxy, port: number) {
  const ev = [...p.mesh.snapshot().endpoints.values()].find((e) => e.spec.port === port)!;
  return p.stats.ensure(ev.slot); // windows come with the first request: an endpoint never called reads as empty
}

t.test('unary and streaming gRPC through the outbound listener', async (t) => {
  const s = await echoServer('s1');
  const p = await startTestProxy({ services: [{ name: 'echo', protocol: 'h2c', endpoints: [{ address: `127.0.0.1:${s.port}` }] }] });
  const c = client(p.port, 'echo');
  t.teardown(async () => {
    c.close();
    await p.close();
    await s.close();
  });

  const u = await unary(c, { text: 'hi' });
  t.error(u.err);
  t.equal(u.reply?.text, 's1:hi', 'unary reply');
  t.same(u.trailers?.get('x-served-by'), ['s1'], 'trailing metadata preserved');

  const got: EchoReply[] = [];
  const ss = c.ServerStream({ text: 'tick' });
  const ssTrailers = await new Promise<grpc.Metadata>((resolve, reject) => {
    ss.on('data', (m: EchoReply) => got.push(m));
    ss.on('status', (st: grpc.StatusObject) => resolve(st.metadata));
    ss.on('error', reject);
  });
  t.same(got.map((m) => m.text), ['tick#0', 'tick#1', 'tick#2', 'tick#3', 'tick#4'], 'server streaming');
  t.same(ssTrailers.get('x-count'), ['5'], 'server-stream trailers preserved');

  const cs = await new Promise<EchoReply>((resolve, reject) => {
    const call = c.ClientStream((err, r) => (err ? reject(err) : resolve(r!)));
    for (const w of ['a', 'b', 'c']) call.write({ text: w });
    call.end();
  });
  t.same(cs, { text: 'a+b+c', index: 3 }, 'client streaming');

  const bidi = c.Bidi();
  const echoed: string[] = [];
  const bidiDone = new Promise<void>((resolve, reject) => {
    bidi.on('data', (m: EchoReply) => {
      echoed.push(m.text);
      if (echoed.length < 3) bidi.write({ text: `msg${echoed.length}` });
      else bidi.end();
    });
    bidi.on('end', () => resolve());
    bidi.on('error', reject);
  });
  bidi.write({ text: 'msg0' });
  await bidiDone;
  t.same(echoed, ['MSG0', 'MSG1', 'MSG2'], 'bidi ping-pong, each reply before the next message');

  const w = windowsOf(p, s.port);
  await until(() => w.lifetime[Outcome.Success] === 4, 3000, 'four successes');
  t.equal(w.lifetime[Outcome.Success], 4, 'each call recorded as a success');
});

t.test('grpc-status mapped to outcomes and passed through', async (t) => {
  const s = await echoServer('s1');
  const p = await startTestProxy({ services: [{ name: 'echo', protocol: 'h2c', endpoints: [{ address: `127.0.0.1:${s.port}` }] }] });
  const c = client(p.port, 'echo');
  t.teardown(async () => {
    c.close();
    await p.close();
    await s.close();
  });
  const cases: [number, Outcome][] = [
    [grpc.status.NOT_FOUND, Outcome.Success],
    [grpc.status.INVALID_ARGUMENT, Outcome.Success],
    [grpc.status.UNAVAILABLE, Outcome.Error5xx],
    [grpc.status.INTERNAL, Outcome.Error5xx],
    [grpc.status.UNKNOWN, Outcome.Error5xx],
    [grpc.status.DATA_LOSS, Outcome.Error5xx],
    [grpc.status.DEADLINE_EXCEEDED, Outcome.Gateway],
  ];
  const w = windowsOf(p, s.port);
  for (const [code, outcome] of cases) {
    const before = w.lifetime[outcome]!;
    const r = await unary(c, { text: 'x', failWith: code });
    t.equal(r.err?.code, code, `status ${grpc.status[code]} reaches the client`);
    await until(() => w.lifetime[outcome] === before + 1, 3000, `outcome for ${code}`);
    t.pass(`${grpc.status[code]} recorded as outcome ${outcome}`);
  }
});

t.test('upstream failures become gRPC errors (UNAVAILABLE, DEADLINE_EXCEEDED)', async (t) => {
  const dead = await refusedEndpoint(t);
  const p = await startTestProxy({ services: [{ name: 'echo', protocol: 'h2c', endpoints: [{ address: dead.address }] }] });
  const c = client(p.port, 'echo');
  const cUnknown = client(p.port, 'nosuch');
  t.teardown(async () => {
    c.close();
    cUnknown.close();
    await p.close();
  });
  const r = await unary(c, { text: 'x' });
  t.equal(r.err?.code, grpc.status.UNAVAILABLE);
  t.match(r.err?.details, /MM_ERR_UPSTREAM_CONNECT/, `details name the cause: ${r.err?.details}`);
  t.equal(windowsOf(p, dead.port).lifetime[Outcome.LocalOrigin], 1);
  const u = await unary(cUnknown, { text: 'x' });
  t.equal(u.err?.code, grpc.status.UNIMPLEMENTED, 'unknown service');
  t.match(u.err?.details, /MM_ERR_UNKNOWN_SERVICE/);
});

t.test('black-holed h2c endpoint → DEADLINE_EXCEEDED after headersTimeoutMs', async (t) => {
  const hole = await rawServer(() => {}); // accepts TCP, never speaks HTTP/2
  const p = await startTestProxy({ proxy: { headersTimeoutMs: 300 }, services: [{ name: 'echo', protocol: 'h2c', endpoints: [{ address: `127.0.0.1:${hole.port}` }] }] });
  const c = client(p.port, 'echo');
  t.teardown(async () => {
    c.close();
    await p.close();
    await hole.close();
  });
  const started = Date.now();
  const r = await unary(c, { text: 'x' });
  t.equal(r.err?.code, grpc.status.DEADLINE_EXCEEDED, `status ${r.err?.code}: ${r.err?.details}`);
  t.match(r.err?.details, /MM_ERR_UPSTREAM_TIMEOUT/);
  t.ok(Date.now() - started < 3000, 'answered after the proxy timeout, well before the client deadline');
  await until(() => windowsOf(p, hole.port).lifetime[Outcome.LocalOrigin] === 1, 3000, 'local-origin recorded');
  t.pass('local-origin recorded');
});

t.test('retry on refused h2c endpoint, and the inbound listener in front of an h2c app', async (t) => {
  const dead = await refusedEndpoint(t);
  const s = await echoServer('app');
  const p = await startTestProxy({
    services: [{ name: 'echo', protocol: 'h2c', endpoints: [{ address: dead.address }, { address: `127.0.0.1:${s.port}` }] }],
    inbound: { enabled: true, app: `http://127.0.0.1:${s.port}`, protocol: 'h2c' },
  });
  const c = client(p.port, 'echo');
  const ci = client(p.inboundPort, 'anything');
  t.teardown(async () => {
    c.close();
    ci.close();
    await p.close();
    await s.close();
  });
  for (let i = 0; i < 6; i++) {
    const r = await unary(c, { text: `r${i}` });
    t.error(r.err, `call ${i} served despite the dead endpoint`);
  }
  const r = await unary(ci, { text: 'in' });
  t.error(r.err);
  t.equal(r.reply?.text, 'app:in', 'inbound h2c → app');
  await until(() => p.handle.core.app!.windows.lifetime[Outcome.Success] === 1, 3000, 'app measured');
  t.pass('app measured');
});

t.test('protocols are not bridged: HTTP/1.1 to an h2c service is a clear 502', async (t) => {
  const s = await echoServer('s1');
  const p = await startTestProxy({ services: [{ name: 'echo', protocol: 'h2c', endpoints: [{ address: `127.0.0.1:${s.port}` }] }] });
  t.teardown(async () => {
    await p.close();
    await s.close();
  });
  const r = await request(p.port, { headers: { host: 'echo' } });
  t.equal(r.status, 502);
  t.match(JSON.parse(r.body).message, /speaks h2c/);
});

t.test('a client cancelling a streaming call cancels the upstream stream; outcome Cancelled', async (t) => {
  let upstreamCancelled = false;
  let started!: () => void;
  const startedP = new Promise<void>((r) => (started = r));
  const server = new grpc.Server();
  server.addService(Echo.service, {
    Unary: (_c: unknown, cb: grpc.sendUnaryData<EchoReply>) => cb(null, { text: '', index: 0 }),
    ServerStream(call: grpc.ServerWritableStream<EchoRequest, EchoReply>) {
      call.write({ text: 'first', index: 0 });
      started();
      call.on('cancelled', () => (upstreamCancelled = true)); // never ends on its own
    },
    ClientStream: (_c: unknown, cb: grpc.sendUnaryData<EchoReply>) => cb(null, { text: '', index: 0 }),
    Bidi: (call: grpc.ServerDuplexStream<EchoRequest, EchoReply>) => call.end(),
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  const p = await startTestProxy({ services: [{ name: 'echo', protocol: 'h2c', endpoints: [{ address: `127.0.0.1:${port}` }] }] });
  const c = client(p.port, 'echo');
  t.teardown(async () => {
    c.close();
    await p.close();
    server.forceShutdown();
  });
  const call = c.ServerStream({ text: 'x' });
  call.on('error', () => {});
  await new Promise<void>((resolve) => call.once('data', () => resolve()));
  await startedP;
  call.cancel();
  await until(() => upstreamCancelled, 3000, 'upstream stream cancelled');
  const w = windowsOf(p, port);
  await until(() => w.lifetime[Outcome.Cancelled] === 1, 3000, 'cancelled outcome');
  t.equal(w.lifetime[Outcome.LocalOrigin], 0, 'not charged to the endpoint');
  t.equal(p.handle.core.inflight, 0);
});
