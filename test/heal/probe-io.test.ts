// Probes on plain sockets: what passes (an HTTP status below 500, an accepted connection) and what fails
// (5xx, refused, silence, garbage, an early close), each against a real loopback server.
import t, { type Test } from 'tap';
import { createServer, type Server, type Socket } from 'node:net';
import { httpProbe, tcpProbe } from '../../src/heal/probe-io.js';

async function rawServer(t: Test, onSocket: (s: Socket, request: () => Promise<string>) => void): Promise<number> {
  const sockets = new Set<Socket>();
  const srv: Server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    let buf = '';
    const request = () => new Promise<string>((resolve) => {
      const onData = (c: Buffer) => {
        buf += c.toString('latin1');
        if (buf.includes('\r\n\r\n')) {
          s.off('data', onData);
          resolve(buf);
        }
      };
      s.on('data', onData);
    });
    onSocket(s, request);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => {
    for (const s of sockets) s.destroy();
    srv.close(() => r());
  }));
  return (srv.address() as { port: number }).port;
}

// The servers live in this process, so a starved machine can hold an answer past any short deadline: a
// probe that must pass or fail on what the server does gets this hang guard as its timeout (only the
// silent server is probed with a short one, which it always misses).
const GUARD_MS = 20_000;

const answering = (status: string) => (s: Socket, request: () => Promise<string>) => {
  void request().then(() => s.end(`${status}\r\ncontent-length: 0\r\n\r\n`));
};

t.test('a status below 500 passes, 5xx fails', async (t) => {
  for (const [line, ok] of [['HTTP/1.1 200 OK', true], ['HTTP/1.1 404 Not Found', true], ['HTTP/1.0 302 Found', true], ['HTTP/1.1 500 Internal Server Error', false], ['HTTP/1.1 503 Service Unavailable', false]] as const) {
    const port = await rawServer(t, answering(line));
    t.equal(await httpProbe('127.0.0.1', port, '/healthz', GUARD_MS), ok, line);
  }
});

t.test('the request names the path and the host', async (t) => {
  let seen = '';
  const port = await rawServer(t, (s, request) => void request().then((r) => { seen = r; s.end('HTTP/1.1 204 No Content\r\n\r\n'); }));
  t.equal(await httpProbe('127.0.0.1', port, '/ready?x=1', GUARD_MS), true);
  t.match(seen, new RegExp(`^GET /ready\\?x=1 HTTP/1\\.1\\r\\nhost: 127\\.0\\.0\\.1:${port}\\r\\n`));
  t.match(seen, /\r\nconnection: close\r\n/);
});

t.test('a status line split over several reads passes', async (t) => {
  const port = await rawServer(t, (s, request) => void request().then(() => {
    s.write('HTT');
    setImmediate(() => { s.write('P/1.1 2'); setImmediate(() => s.end('00 OK\r\n\r\n')); });
  }));
  t.equal(await httpProbe('127.0.0.1', port, '/', GUARD_MS), true);
});

t.test('refused, silent, closed early or not HTTP: fails', async (t) => {
  const closed = await rawServer(t, () => undefined);
  // Refused on a port no other process can take meanwhile: 127.0.0.1:P is held (by the silent server),
  // nothing listens on 127.0.0.2:P. A closed listener's port may be handed to a test running alongside.
  t.equal(await httpProbe('127.0.0.2', closed, '/', GUARD_MS), false, 'refused');
  t.equal(await tcpProbe('127.0.0.2', closed, GUARD_MS), false, 'refused (TCP)');
  const started = Date.now();
  t.equal(await httpProbe('127.0.0.1', closed, '/', 300), false, 'accepted, never answered');
  t.ok(Date.now() - started >= 250, 'it waited for its timeout');
  t.equal(await tcpProbe('127.0.0.1', closed, GUARD_MS), true, 'accepted (TCP)');
  const early = await rawServer(t, (s, request) => void request().then(() => s.destroy()));
  t.equal(await httpProbe('127.0.0.1', early, '/', GUARD_MS), false, 'closed before answering');
  const garbage = await rawServer(t, (s, request) => void request().then(() => s.end('SSH-2.0-OpenSSH_9.2\r\n')));
  t.equal(await httpProbe('127.0.0.1', garbage, '/', GUARD_MS), false, 'not HTTP');
  const endless = await rawServer(t, (s, request) => void request().then(() => s.write('x'.repeat(4096))));
  t.equal(await httpProbe('127.0.0.1', endless, '/', GUARD_MS), false, 'no line end within 1 KiB');
  const weird = await rawServer(t, answering('HTTP/1.1 099 Odd'));
  t.equal(await httpProbe('127.0.0.1', weird, '/', GUARD_MS), false, 'a status below 100 is not a status');
});
