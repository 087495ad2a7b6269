// A client for the multi-host lab (bench/chaos): runs inside a host's network namespace, sends requests at
// a fixed rate through the local sidecar, and prints one JSON line per 250 ms with how many succeeded and
// which region answered (from the backend's x-backend id, e.g. "b2" → region b), plus, every second, what
// each sidecar named by --admin (comma-separated) says about endpoints, gossip members and gossip bytes.
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';

const { values } = parseArgs({
  options: {
    target: { type: 'string' }, service: { type: 'string', default: 'app' }, rps: { type: 'string', default: '100' },
    admin: { type: 'string' }, timeoutMs: { type: 'string', default: '2000' }, 'duration-s': { type: 'string', default: '600' },
  },
  strict: true,
});
if (!values.target) {
  process.stderr.write('chaos-client: --target HOST:PORT is required\n');
  process.exit(2);
}
const rps = Number(values.rps);
const timeout = Number(values.timeoutMs);
const agent = new Agent({ connections: 64, headersTimeout: timeout, bodyTimeout: timeout });
const url = `http://${values.target}/`;
let ok = 0;
let fail = 0;
const by: Record<string, number> = {};
const endAt = Date.now() + Number(values['duration-s']) * 1000;

function one(): void {
  request(url, { dispatcher: agent, headers: { host: values.service! }, headersTimeout: timeout, bodyTimeout: timeout }).then(
    async (r) => {
      await r.body.dump();
      if (r.statusCode >= 200 && r.statusCode < 300) {
        ok++;
        const region = String(r.headers['x-backend'] ?? '?').charAt(0);
        by[region] = (by[region] ?? 0) + 1;
      } else fail++;
    },
    () => fail++,
  );
}

const send = setInterval(() => {
  if (Date.now() > endAt) process.exit(0);
  for (let i = 0; i < rps / 100; i++) one();
}, 10);
const report = setInterval(() => {
  process.stdout.write(`${JSON.stringify({ t: Date.now(), ok, fail, by })}\n`);
  ok = 0;
  fail = 0;
  for (const k of Object.keys(by)) delete by[k];
}, 250);
// Every admin API named is polled (the local sidecar first): one line per sidecar per second.
const admins = (values.admin ?? '').split(',').filter(Boolean);
type EndpointsBody = { endpoints: { id: string; state: string; reason?: string; source?: string; since?: string | null }[] };
type MembersBody = { members?: { state: string }[]; traffic?: { bytesSent: number; bytesReceived: number } };
const poll = (addr: string) => Promise.all([
  request(`http://${addr}/v1/endpoints`, { headersTimeout: 900, bodyTimeout: 900 }).then((r) => r.body.json() as Promise<EndpointsBody>),
  request(`http://${addr}/v1/members`, { headersTimeout: 900, bodyTimeout: 900 }).then((r) => r.body.json() as Promise<MembersBody>).catch(() => ({ members: [] }) as MembersBody),
]).then(([e, m]) => {
  const endpoints = e.endpoints.map((x) => (x.state === 'healthy' ? { id: x.id, state: x.state } : { id: x.id, state: x.state, reason: x.reason, source: x.source, since: x.since ? Date.parse(x.since) : null }));
  process.stdout.write(`${JSON.stringify({ t: Date.now(), admin: addr, endpoints, alive: (m.members ?? []).filter((x) => x.state === 'alive').length, gossipBytesSent: m.traffic?.bytesSent ?? null })}\n`);
}, () => {});
const admin = admins.length > 0 ? setInterval(() => { for (const a of admins) void poll(a); }, 1000) : undefined;
process.on('SIGTERM', () => {
  clearInterval(send);
  clearInterval(report);
  if (admin) clearInterval(admin);
  process.exit(0);
});
