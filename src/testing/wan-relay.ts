// The chaos lab's WAN (bench/chaos): this kernel has no netem, so inter-region latency comes from this
// relay. It runs in the lab's router namespace; each host's nftables DNAT their packets for hosts of other
// regions to one port here per (destination host, port), and the relay forwards UDP datagrams and TCP bytes
// to the real destination after a fixed one-way delay, in both directions of a TCP stream.
// Limits: a TCP connect completes at the relay at once (the upstream connect follows after the delay; if it
// fails, the client's connection is reset); the receiver sees the relay's address as the source.
import dgram from 'node:dgram';
import net from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { host: { type: 'string' }, 'delay-ms': { type: 'string' }, route: { type: 'string', multiple: true, default: [] } },
  strict: true,
});
const delayMs = Number(values['delay-ms']);
if (!values.host || !Number.isFinite(delayMs) || delayMs < 0) {
  process.stderr.write('wan-relay: --host IP and --delay-ms N (≥ 0) are required; --route PORT=HOST:PORT for each destination\n');
  process.exit(2);
}
interface Route { readonly port: number; readonly host: string; readonly targetPort: number }
const routes: Route[] = values.route.map((r) => {
  const m = /^(\d+)=([\d.]+):(\d+)$/.exec(r);
  if (!m) {
    process.stderr.write(`wan-relay: --route ${JSON.stringify(r)} is not PORT=HOST:PORT\n`);
    process.exit(2);
  }
  return { port: Number(m[1]), host: m[2]!, targetPort: Number(m[3]) };
});

let forwarded = 0;
const later = (fn: () => void) => setTimeout(fn, delayMs);

function relayUdp(r: Route): Promise<void> {
  const inbound = dgram.createSocket('udp4');
  const outbound = dgram.createSocket('udp4');
  // Datagrams are fire-and-forget: gossip answers to the address its peer advertises, not to the source,
  // so the way back is relayed on its own (the other host's DNAT) and needs no flow state here.
  inbound.on('message', (msg) => later(() => { forwarded++; outbound.send(msg, r.targetPort, r.host); }));
  inbound.on('error', () => {});
  outbound.on('error', () => {});
  return new Promise((resolve) => inbound.bind(r.port, values.host, () => resolve()));
}

/** Copy `from` to `to`, every chunk and the end delayed; either side failing resets both. */
function pipeDelayed(from: net.Socket, to: net.Socket): void {
  from.on('data', (chunk) => later(() => { if (!to.destroyed) to.write(chunk); }));
  from.on('end', () => later(() => { if (!to.destroyed) to.end(); }));
  from.on('error', () => later(() => to.resetAndDestroy()));
}

function relayTcp(r: Route): Promise<void> {
  const server = net.createServer({ pauseOnConnect: true }, (client) => {
    client.on('error', () => {});
    later(() => {
      const upstream = net.connect({ host: r.host, port: r.targetPort });
      upstream.on('error', () => {});
      upstream.once('connect', () => {
        if (client.destroyed) return upstream.destroy();
        forwarded++;
        pipeDelayed(client, upstream);
        pipeDelayed(upstream, client);
        client.resume();
      });
      // Refused or unreachable upstream: the client learns after the way back's delay.
      upstream.once('error', () => later(() => client.resetAndDestroy()));
      client.once('close', () => later(() => upstream.destroy()));
    });
  });
  server.on('error', () => {});
  return new Promise((resolve) => server.listen(r.port, values.host, () => resolve()));
}

await Promise.all(routes.flatMap((r) => [relayUdp(r), relayTcp(r)]));
process.stdout.write(`${JSON.stringify({ ready: true, routes: routes.length, delayMs })}\n`);
// How much was relayed, for the harness's report.
setInterval(() => process.stdout.write(`${JSON.stringify({ t: Date.now(), forwarded })}\n`), 5000).unref();
process.on('SIGTERM', () => process.exit(0));
// Keep running until killed.
setInterval(() => {}, 1 << 30);
