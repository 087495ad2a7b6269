// The engines' socket writers (heads and small bodies): bytes leave in the order written, mixed with the
// socket's own writes; a write the kernel cannot take at once returns false and is reported drained; a
// write to a closed socket is handled as socket.write handles it. On Node 20 the native engine writes
// straight to the handle once it has learnt Node's write request from one socket.write.
import t, { type Test } from 'tap';
import net, { type Socket } from 'node:net';
import { once } from 'node:events';
import { nativeEngine, directWritesActive } from '../../src/proxy/engine/native.js';
import { portableEngine } from '../../src/proxy/engine/portable.js';
import type { Http1Engine } from '../../src/proxy/engine/types.js';

/** A connected pair on loopback: `client` (ours) and the server's end, paused until read. */
async function pair(t: Test): Promise<{ client: Socket; peer: Socket }> {
  const srv = net.createServer({ pauseOnConnect: true });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const accepted = once(srv, 'connection');
  const client = net.connect((srv.address() as net.AddressInfo).port, '127.0.0.1');
  await once(client, 'connect');
  const [peer] = (await accepted) as [Socket];
  t.teardown(() => {
    client.destroy();
    peer.destroy();
    srv.close();
  });
  client.on('error', () => {});
  peer.on('error', () => {});
  return { client, peer };
}

/** Everything the peer receives until the client's side ends. */
async function readAll(peer: Socket): Promise<Buffer> {
  const parts: Buffer[] = [];
  peer.on('data', (d: Buffer) => parts.push(d));
  peer.resume();
  await once(peer, 'end');
  return Buffer.concat(parts);
}

/** Teach the native engine Node's write request (a socket.write of a Buffer through a writer's socket). */
async function learn(t: Test, engine: Http1Engine): Promise<void> {
  const { client, peer } = await pair(t);
  engine.socketWriter(client, () => {});
  client.write(Buffer.from('x'));
  peer.resume();
  await once(peer, 'data');
}

const native = nativeEngine();
const engines: [string, Http1Engine][] = [['native', native], ['portable', portableEngine()]];

t.test('the native engine writes directly on Node 20 (where writeBuffer is handed a request)', async (t) => {
  await learn(t, native);
  const major = Number(process.versions.node.split('.')[0]);
  if (major === 20) t.equal(directWritesActive(), true, 'Node 20: the write request is learnt');
  const { client } = await pair(t);
  const w = native.socketWriter(client, () => {});
  t.equal(w.constructor.name, directWritesActive() ? 'DirectSocketWriter' : 'StreamSocketWriter');
  t.equal(portableEngine().socketWriter(client, () => {}).constructor.name, 'StreamSocketWriter');
});

for (const [name, engine] of engines) {
  t.test(`${name}: a write the kernel cannot take is queued (false), drained, and stays in order with socket.write`, async (t) => {
    await learn(t, native);
    const { client, peer } = await pair(t);
    let drains = 0;
    const onDrain = (): void => {
      drains++;
    };
    const w = engine.socketWriter(client, onDrain);
    client.on('drain', onDrain);
    t.equal(w.write(Buffer.from('head;')), true, 'a small write is taken at once');
    t.equal(w.queued, false);
    const big = Buffer.alloc(16 << 20, 0x61); // more than loopback's socket buffers hold while the peer is paused
    t.equal(w.write(big), false, 'a write left queued answers false');
    t.equal(w.queued, true);
    client.write(Buffer.from(';node;'));
    w.write(Buffer.from('tail'));
    t.equal(w.queued, true, 'behind queued bytes: queued too');
    const all = readAll(peer);
    while (w.queued) await new Promise((r) => setTimeout(r, 5));
    client.end();
    const got = await all;
    t.equal(got.length, 5 + big.length + 6 + 4);
    t.equal(got.subarray(0, 5).toString(), 'head;');
    t.ok(got.subarray(5, 5 + big.length).every((b) => b === 0x61), 'the large write arrives whole');
    t.equal(got.subarray(5 + big.length).toString(), ';node;tail', 'socket.write and later writes keep their order');
    t.ok(drains >= 1, 'drained reported');
  });

  t.test(`${name}: writing to a destroyed socket neither throws nor sends`, async (t) => {
    await learn(t, native);
    const { client, peer } = await pair(t);
    const w = engine.socketWriter(client, () => {});
    client.destroy();
    t.doesNotThrow(() => w.write(Buffer.from('late')));
    peer.resume();
    await once(peer, 'close');
  });

  t.test(`${name}: a peer that resets fails the socket, not the process`, async (t) => {
    await learn(t, native);
    const { client, peer } = await pair(t);
    const w = engine.socketWriter(client, () => {});
    const closed = new Promise((r) => client.once('close', r)); // (events.once would reject on 'error')
    peer.resetAndDestroy();
    // Write until the reset is seen: the socket is destroyed (by the write's error or the read's).
    for (let i = 0; i < 200 && !client.destroyed; i++) {
      w.write(Buffer.alloc(64 * 1024));
      await new Promise((r) => setTimeout(r, 5));
    }
    await closed;
    t.equal(client.destroyed, true);
  });
}
