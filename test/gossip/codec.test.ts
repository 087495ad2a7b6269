// Wire codec and keyring: round trips, envelope rules, and a fuzz run of random and mutated packets that
// must never throw nor change any member's state.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { decodePacket, encodePacket, MsgType, observationSignedBytes, PLAIN_MAGIC, WIRE_VERSION, type Message } from '../../src/gossip/codec.js';
import { Keyring, SEAL_OVERHEAD } from '../../src/gossip/keyring.js';
import { seededRandom } from '../../src/gossip/sim.js';
import { simCluster } from './sim-cluster.js';

const key32 = new Uint8Array(32).fill(7);
const signedFields = { observer: 'n1', endpoint: 'svc/10.0.0.1:80', windowEnd: 1_700_000_000_123, requests: 42, errorRate: 0.25, p99Us: 12_345, seq: 1_700_000_000_000_001, flags: 1 };
const samples: Message[] = [
  { type: MsgType.Ping, seq: 1, target: 'b', source: 'a', sourceHost: '127.0.0.1', sourcePort: 7946 },
  { type: MsgType.IndirectPing, seq: 0xffffffff, target: 'b', targetHost: '::1', targetPort: 1, wantNack: true, source: 'a', sourceHost: '127.0.0.1', sourcePort: 65535 },
  { type: MsgType.Ack, seq: 7 },
  { type: MsgType.Nack, seq: 8 },
  { type: MsgType.Suspect, incarnation: 3, node: 'b', from: 'a' },
  { type: MsgType.Alive, incarnation: 4, node: 'ünïcode-node', host: '127.0.0.2', port: 17946, publicKey: key32 },
  { type: MsgType.Alive, incarnation: 5, node: 'nokey', host: '127.0.0.2', port: 17946, publicKey: undefined },
  { type: MsgType.Dead, incarnation: 9, node: 'b', from: 'b' },
  { type: MsgType.Observation, ...signedFields, signed: new Uint8Array(observationSignedBytes(signedFields)), signature: new Uint8Array(64).fill(3) },
  { type: MsgType.PushPull, join: true, entries: [{ node: 'a', host: '127.0.0.1', port: 1, incarnation: 2, state: 'suspect', publicKey: key32 }, { node: 'b', host: '::1', port: 2, incarnation: 1, state: 'left', publicKey: undefined }] },
];

t.test('every message type round-trips, alone and compound', async (t) => {
  for (const m of samples) {
    const back = decodePacket(encodePacket([m]));
    t.ok(back, `type ${m.type} decodes`);
    t.same(back![0], m, `type ${m.type} round-trips`);
  }
  const all = decodePacket(encodePacket(samples));
  t.equal(all?.length, samples.length, 'a compound packet keeps every message');
  t.same(all, samples);
});

t.test('the envelope is versioned: wrong magic, wrong version, empty and trailing bytes are refused', async (t) => {
  const good = encodePacket([samples[0]!]);
  t.equal(good[0], PLAIN_MAGIC);
  t.equal(good[1], WIRE_VERSION);
  const badVersion = Buffer.from(good);
  badVersion[1] = WIRE_VERSION + 1;
  t.equal(decodePacket(badVersion), undefined, 'future version refused');
  const badMagic = Buffer.from(good);
  badMagic[0] = 0;
  t.equal(decodePacket(badMagic), undefined);
  t.equal(decodePacket(Buffer.from([PLAIN_MAGIC, WIRE_VERSION])), undefined, 'no messages');
  t.equal(decodePacket(Buffer.concat([good, Buffer.from([1])])), undefined, 'a truncated trailing message rejects the packet');
  t.equal(decodePacket(good.subarray(0, good.length - 1)), undefined, 'truncated body');
  // Invalid UTF-8 in an id
  const ping = encodePacket([{ type: MsgType.Ping, seq: 1, target: 'bb', source: 'a', sourceHost: '1.2.3.4', sourcePort: 1 }]);
  const i = ping.indexOf(Buffer.from('bb'));
  ping[i] = 0xff;
  t.equal(decodePacket(ping), undefined, 'invalid UTF-8 refused');
});

t.test('keyring: seal/open, unknown key and tampering fail, install/use/remove like memberlist', async (t) => {
  const k1 = Keyring.generateKey();
  const k2 = Keyring.generateKey();
  const a = new Keyring([k1]);
  const b = new Keyring([k1]);
  const plain = encodePacket(samples);
  const sealed = a.seal(plain);
  t.equal(sealed.length, plain.length + SEAL_OVERHEAD);
  t.same(b.open(sealed), plain);
  t.equal(new Keyring([k2]).open(sealed), undefined, 'unknown key');
  for (const pos of [0, 1, 13, sealed.length - 1, Math.floor(sealed.length / 2)]) {
    const x = Buffer.from(sealed);
    x[pos]! ^= 0x01;
    t.equal(b.open(x), undefined, `bit flip at ${pos} detected`);
  }
  // Rotation: install k2 everywhere, use it on a, then b still reads; remove k1 on b afterwards.
  b.install(k2);
  a.install(k2);
  a.use(k2);
  const s2 = a.seal(plain);
  t.same(b.open(s2), plain, 'new primary readable by a member that installed it');
  t.throws(() => b.remove(k1), /primary/, 'the primary cannot be removed');
  b.use(k2);
  b.remove(k1);
  t.equal(b.open(sealed), undefined, 'old key gone');
  t.throws(() => new Keyring(['short']), /32 bytes/);
  t.throws(() => a.use(Keyring.generateKey()), /not installed/);
});

t.test('fuzz: thousands of random and mutated packets never throw and change no state', async (t) => {
  const rnd = seededRandom(42);
  const c = simCluster({ n: 3, seed: 3 });
  c.startAll();
  c.joinAll();
  c.run(3000);
  const victim = c.members[1]!.m;
  const before = JSON.stringify(victim.list());
  const incBefore = victim.incarnation;
  const corpus = [encodePacket(samples), ...samples.map((m) => encodePacket([m]))];
  const deliver = (buf: Buffer) => {
    // Through the real receive path (the transport handler), as a datagram and as a stream.
    (c.members[1]!.t as unknown as { receivePacket(b: Buffer, f: unknown): void }).receivePacket(buf, { host: '10.9.9.9', port: 1 });
    (c.members[1]!.t as unknown as { receiveStream(b: Buffer, f: unknown): unknown }).receiveStream(buf, { host: '10.9.9.9', port: 1 });
  };
  let decoded = 0;
  const N = 6000;
  for (let i = 0; i < N; i++) {
    let buf: Buffer;
    if (i % 3 === 0) {
      buf = randomBytes(Math.floor(rnd() * 1400));
      if (i % 2 === 0 && buf.length > 2) { buf[0] = PLAIN_MAGIC; buf[1] = WIRE_VERSION; }
    } else {
      buf = Buffer.from(corpus[Math.floor(rnd() * corpus.length)]!);
      const flips = 1 + Math.floor(rnd() * 4);
      for (let f = 0; f < flips; f++) {
        const pos = 2 + Math.floor(rnd() * (buf.length - 2));
        buf[pos] = Math.floor(rnd() * 256);
      }
      if (rnd() < 0.3) buf = buf.subarray(0, Math.floor(rnd() * buf.length));
    }
    let msgs: Message[] | undefined;
    try {
      msgs = decodePacket(buf);
    } catch (err) {
      t.fail(`decodePacket threw: ${(err as Error).message}`);
      break;
    }
    if (msgs) {
      decoded++;
      // Mutations that still decode could be legitimate gossip; only feed those that cannot be.
      continue;
    }
    try {
      deliver(buf);
    } catch (err) {
      t.fail(`receive path threw: ${(err as Error).message}`);
      break;
    }
  }
  t.equal(JSON.stringify(victim.list()), before, 'no member changed');
  t.equal(victim.incarnation, incBefore, 'own incarnation unchanged');
  t.ok(victim.counters.droppedMalformed >= N - decoded - 10, `malformed packets counted (${victim.counters.droppedMalformed})`);
  t.ok(decoded < N / 2, `most mutations are refused (${decoded} of ${N} still decoded)`);
  c.shutdown();
});

t.test('fuzz with encryption: random bytes and tampered sealed packets are dropped and counted', async (t) => {
  const k = Keyring.generateKey();
  const c = simCluster({ n: 2, keyring: () => new Keyring([k]) });
  c.startAll();
  c.joinAll();
  c.run(2000);
  const victim = c.members[1]!;
  const before = JSON.stringify(victim.m.list());
  const sealed = new Keyring([k]).seal(encodePacket(samples));
  const rnd = seededRandom(9);
  for (let i = 0; i < 2000; i++) {
    const buf = Buffer.from(i % 2 ? sealed : randomBytes(1 + Math.floor(rnd() * 1200)));
    if (i % 2) buf[1 + Math.floor(rnd() * (buf.length - 1))]! ^= 1 + Math.floor(rnd() * 255);
    else buf[0] = 0xe1;
    (victim.t as unknown as { receivePacket(b: Buffer, f: unknown): void }).receivePacket(buf, { host: '10.9.9.9', port: 1 });
  }
  t.equal(JSON.stringify(victim.m.list()), before, 'no member changed');
  t.equal(victim.m.counters.droppedUnknownKey, 2000, 'every one counted as unopenable');
  // A plaintext packet is refused when encryption is on.
  (victim.t as unknown as { receivePacket(b: Buffer, f: unknown): void }).receivePacket(encodePacket([samples[4]!]), { host: '10.9.9.9', port: 1 });
  t.equal(victim.m.counters.droppedPlaintext, 1);
  c.shutdown();
});
