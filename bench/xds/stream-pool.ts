// Child process of the xDS benchmark: opens many raw ADS streams (SotW or Delta) on several channels,
// ACKs every response, and reports when each stream received the response following a change. Responses
// are not decoded beyond the nonce, so the client side costs little CPU next to the server under test.
import * as grpc from '@grpc/grpc-js';
import { messageType } from '../../src/xds/proto.js';

interface OpenCmd { cmd: 'open'; address: string; mode: 'sotw' | 'delta'; streams: number; channels: number; typeUrl: string; names: string[] }
interface MarkCmd { cmd: 'mark' }
interface CollectCmd { cmd: 'collect'; timeoutMs: number }
interface CloseCmd { cmd: 'close' }
type Cmd = OpenCmd | MarkCmd | CollectCmd | CloseCmd;

const SOTW = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
const DELTA = '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources';
const now = () => performance.timeOrigin + performance.now();

/** The nonce (field 5) and version (field 1) of a (Delta)DiscoveryResponse, scanning top-level fields only. */
function scan(buf: Buffer): { nonce: string; version: string } {
  let p = 0;
  let nonce = '';
  let version = '';
  const varint = () => {
    let v = 0;
    let m = 1;
    for (;;) {
      const b = buf[p++]!;
      v += (b & 0x7f) * m;
      if (b < 0x80) return v;
      m *= 128;
    }
  };
  while (p < buf.length) {
    const tag = varint();
    const wt = tag & 7;
    const field = tag >>> 3;
    if (wt === 2) {
      const len = varint();
      if (field === 5) nonce = buf.toString('utf8', p, p + len);
      else if (field === 1) version = buf.toString('utf8', p, p + len);
      p += len;
    } else if (wt === 0) varint();
    else if (wt === 1) p += 8;
    else if (wt === 5) p += 4;
    else break;
  }
  return { nonce, version };
}

interface S { call: grpc.ClientDuplexStream<Buffer, Buffer>; got: number; at: number; bytes: number }
const streams: S[] = [];
const ackCache = new Map<string, Buffer>();
const clients: grpc.Client[] = [];
let markAt = 0;

function open(c: OpenCmd): void {
  for (let i = 0; i < c.channels; i++) clients.push(new grpc.Client(c.address, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': 512 * 1024 * 1024,
    // Like Envoy's large default windows: a 64 KiB window would turn a 60 KB push into round trips.
    'grpc-node.flow_control_window': 16 * 1024 * 1024,
    'meshmedic.channel': i,
  }));
  const Req = messageType('envoy.service.discovery.v3.DiscoveryRequest');
  const DReq = messageType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
  const node = { id: 'bench', cluster: 'bench', user_agent_name: 'grpc-node-js', locality: { zone: 'z' } };
  for (let i = 0; i < c.streams; i++) {
    const client = clients[i % clients.length]!;
    const call = client.makeBidiStreamRequest(c.mode === 'sotw' ? SOTW : DELTA, (x: Buffer) => x, (x: Buffer) => x);
    const s: S = { call, got: 0, at: 0, bytes: 0 };
    call.on('error', () => {});
    call.on('data', (buf: Buffer) => {
      const t = now();
      s.got++;
      s.bytes += buf.length;
      if (markAt && !s.at) s.at = t;
      const { nonce, version } = scan(buf);
      // Streams that got the same response (same nonce) send the same ACK: encode it once.
      let ack = ackCache.get(nonce);
      if (!ack) {
        ack = Buffer.from(c.mode === 'sotw'
          ? Req.encode(Req.fromObject({ type_url: c.typeUrl, resource_names: c.names, version_info: version, response_nonce: nonce })).finish()
          : DReq.encode(DReq.fromObject({ type_url: c.typeUrl, response_nonce: nonce })).finish());
        if (ackCache.size > 1000) ackCache.clear();
        ackCache.set(nonce, ack);
      }
      call.write(ack);
    });
    const first = c.mode === 'sotw'
      ? Req.encode(Req.fromObject({ node, type_url: c.typeUrl, resource_names: c.names })).finish()
      : DReq.encode(DReq.fromObject({ node, type_url: c.typeUrl, resource_names_subscribe: c.names })).finish();
    call.write(Buffer.from(first));
    streams.push(s);
  }
  const started = Date.now();
  const check = () => {
    const ready = streams.filter((s) => s.got > 0).length;
    if (ready === streams.length || Date.now() - started > 60_000) process.send!({ ev: 'ready', ready, total: streams.length });
    else setTimeout(check, 20);
  };
  check();
}

process.on('message', (m: Cmd) => {
  if (m.cmd === 'open') open(m);
  else if (m.cmd === 'mark') {
    for (const s of streams) { s.at = 0; s.bytes = 0; }
    markAt = now();
    process.send!({ ev: 'marked' });
  } else if (m.cmd === 'collect') {
    const until = Date.now() + m.timeoutMs;
    const done = () => {
      const all = streams.every((s) => s.at > 0);
      if (all || Date.now() > until) {
        process.send!({ ev: 'collected', at: streams.map((s) => s.at), bytes: streams.map((s) => s.bytes) });
        markAt = 0;
      } else setTimeout(done, 10);
    };
    done();
  } else if (m.cmd === 'close') {
    for (const s of streams) s.call.cancel();
    for (const c of clients) c.close();
    process.send!({ ev: 'closed' }, () => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0));
