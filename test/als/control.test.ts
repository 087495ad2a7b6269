// `meshmedic control` end to end with real processes: an access-log stream with 503s from one endpoint
// makes it non-healthy within 2 s while endpoints answering 200 stay healthy; bad input on the stream is
// counted and dropped, the stream and the server keep going.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request, setGlobalDispatcher } from 'undici';
import { encodeHttpLogs, encodeTcpLogs, openAccessLogStream } from '../../src/testing/als-client.js';
import { startMeshmedic } from '../helpers/spawn.js';
import { refusingAddress } from '../helpers/refusing-address.js';
import { waitForValue } from '../helpers/wait-value.js';

// A fresh connection per admin request: a kept-alive one that the child's server closes (after its 5 s
// idle timeout) while a starved test process still counts it alive is reset under the next request
// (a full run at load 30 failed on 'read ECONNRESET' that way). What is tested is not connection reuse.
setGlobalDispatcher(new Agent({ pipelining: 0 }));

interface EndpointRow { id: string; state: string }

async function endpoints(admin: string): Promise<Map<string, string>> {
  const r = await request(`http://${admin}/v1/endpoints`);
  const body = (await r.body.json()) as { endpoints: EndpointRow[] };
  return new Map(body.endpoints.map((e) => [e.id, e.state]));
}

t.test('control mode: ALS entries with 503s eject that endpoint, 200s keep the others healthy', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mm-als-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // Refusing addresses: the endpoints' probes fail, so nothing restores the ejected one during the test
  // (on held ports: a closed port could be taken meanwhile by a test running alongside, and answer).
  const addrs = await Promise.all([0, 1, 2].map(async () => {
    const a = await refusingAddress(t);
    return `${a.host}:${a.port}`;
  }));
  const cfg = join(dir, 'control.yaml');
  writeFileSync(cfg, `services:\n  - name: hello\n    endpoints:\n${addrs.map((a) => `      - address: ${a}\n`).join('')}`);
  const mm = await startMeshmedic(t, ['control', '--xds', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--config', cfg, '--log-level', 'warn']);
  const admin = mm.addresses.admin!;
  const xds = mm.addresses.xds!;
  t.ok(xds, `xDS (and ALS) on ${xds}`);
  const before = await endpoints(admin);
  t.same([...before.values()], ['healthy', 'healthy', 'healthy'], 'all healthy at start');

  const stream = openAccessLogStream(xds);
  t.teardown(() => stream.close());
  // The stream's first message (with its Identifier) opens the channel; the clock starts after it.
  await stream.send(encodeHttpLogs([{ cluster: 'hello', upstream: addrs[1]!, code: 200, upstreamMs: 3 }], { id: 'envoy-sidecar-1', cluster: 'shop' }));
  await waitForValue('the stream to open', async () => ((await (await request(`http://${admin}/v1/als`)).body.json()) as { streams: unknown[] }).streams.length > 0 || undefined, 5000, 25);
  // As Envoy sends them: a batch per flush, entries interleaved across hosts.
  const batch = () => {
    const entries = [];
    for (let i = 0; i < 5; i++) {
      entries.push({ cluster: 'hello', upstream: addrs[0]!, code: 503, upstreamMs: 2 });
      entries.push({ cluster: 'hello', upstream: addrs[1]!, code: 200, upstreamMs: 3 });
      entries.push({ cluster: 'hello', upstream: addrs[2]!, code: 200, upstreamMs: 3 });
    }
    return encodeHttpLogs(entries);
  };
  const sentAt = Date.now();
  await stream.send(batch());
  // The 2 s target is measured on the sidecar's own clock, from receiving the first failing batch to the
  // decision, so that a starved test process (slow to send, slow to ask) cannot break it.
  const receivedAt = await waitForValue('the first failing batch to be received', async () => {
    const s = ((await (await request(`http://${admin}/v1/als`)).body.json()) as { streams: { messages: number; lastMessageAt: number }[] }).streams[0];
    return s !== undefined && s.messages >= 2 ? s.lastMessageAt : undefined;
  }, 30_000, 25);
  for (let i = 1; i < 4; i++) await stream.send(batch());
  const victim = `hello/${addrs[0]}`;
  // A guard against a hang, not the target (checked below on the sidecar's clock).
  const state = await waitForValue('the failing endpoint to leave rotation', async () => {
    const s = (await endpoints(admin)).get(victim);
    return s !== 'healthy' ? s : undefined;
  }, 30_000, 25);
  t.ok(state && state !== 'healthy', `the failing endpoint left rotation: ${state} (${Date.now() - sentAt} ms after the first failing batch was sent, as the test saw it)`);
  const after = await endpoints(admin);
  t.equal(after.get(`hello/${addrs[1]}`), 'healthy', 'an endpoint answering 200 stays healthy');
  t.equal(after.get(`hello/${addrs[2]}`), 'healthy', 'so does the third');

  const events = (await (await request(`http://${admin}/v1/events`)).body.json()) as { events: { action: string; target: string; applied: boolean; at: number }[] };
  const ejection = events.events.find((e) => e.action === 'eject' && e.target === victim && e.applied);
  t.ok(ejection, 'the ejection is a recorded decision');
  const tookMs = ejection!.at - receivedAt!;
  t.ok(tookMs >= 0 && tookMs <= 2000, `decided ${tookMs} ms after the sidecar received the first failing batch (≤ 2,000, the sidecar's clock)`);
  const als = (await (await request(`http://${admin}/v1/als`)).body.json()) as { streams: { node: string; logName: string; entries: number }[]; recorded: Record<string, number> };
  t.equal(als.streams[0]?.node, 'envoy-sidecar-1', 'the stream is known by the node id of its first message');
  t.equal(als.recorded.success, 41, '41 successes recorded');
  t.equal(als.recorded.gateway, 20, '20 gateway errors recorded');

  t.equal((await stream.end())?.code, 0, 'the stream closes with OK');
});

t.test('bad input on the stream is counted and dropped; the stream and the server go on', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mm-als-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cfg = join(dir, 'control.yaml');
  writeFileSync(cfg, 'services:\n  - name: hello\n    endpoints:\n      - address: 127.0.0.1:9\n      - address: 127.0.0.1:10\nals:\n  maxEntriesPerMessage: 100\n');
  const mm = await startMeshmedic(t, ['control', '--xds', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--config', cfg, '--log-level', 'error']);
  const stream = openAccessLogStream(mm.addresses.xds!);
  t.teardown(() => stream.close());
  await stream.send(Buffer.from('this is not a protobuf message at all \xff\xff\xff'));
  await stream.send(Buffer.from([0x12, 0x7f, 0x0a]));
  await stream.send(encodeHttpLogs([{ cluster: 'nope', upstream: '127.0.0.1:9', code: 200 }]));
  await stream.send(encodeHttpLogs([{ cluster: 'hello', upstream: '127.0.0.1:11', code: 200 }]));
  await stream.send(encodeHttpLogs([{ cluster: 'hello', upstream: '', code: 503, flags: ['no_healthy_upstream'] }]));
  await stream.send(encodeHttpLogs(Array.from({ length: 150 }, () => ({ cluster: 'hello', upstream: '127.0.0.1:9', code: 200 }))));
  await stream.send(encodeTcpLogs([{ cluster: 'hello', upstream: '127.0.0.1:10', failed: false }]));
  // A valid batch after all that is still recorded on the same stream.
  await stream.send(encodeHttpLogs([{ cluster: 'hello', upstream: '127.0.0.1:10', code: 200 }]));
  t.equal((await stream.end())?.code, 0, 'the stream closes with OK');

  const als = (await (await request(`http://${mm.addresses.admin}/v1/als`)).body.json()) as { recorded: Record<string, number>; dropped: Record<string, number> };
  t.same(als.dropped, { no_upstream_host: 1, local_reply: 0, unknown_cluster: 1, unknown_endpoint: 1, batch_too_large: 50, malformed: 2, invalid_sample_rate: 0 }, 'every drop counted by reason');
  t.equal(als.recorded.success, 102, '100 entries of the big batch, the TCP entry and the last batch recorded');
  const metrics = await (await request(`http://${mm.addresses.admin}/metrics`)).body.text();
  t.match(metrics, /meshmedic_als_dropped_total\{reason="malformed"\} 2/);
  t.match(metrics, /meshmedic_als_entries_total\{outcome="success"\} 102/);

  // The server still serves a new stream.
  const again = openAccessLogStream(mm.addresses.xds!);
  await again.send(encodeHttpLogs([{ cluster: 'hello', upstream: '127.0.0.1:9', code: 200 }]));
  t.equal((await again.end())?.code, 0, 'a new stream works');
});

t.test('control mode refuses bad flags and config with exit 2, naming the problem', async (t) => {
  const { spawnSync } = await import('node:child_process');
  const { BIN } = await import('../helpers/spawn.js');
  let r = spawnSync(process.execPath, [BIN, 'control'], { encoding: 'utf8' });
  t.equal(r.status, 2);
  t.match(r.stderr, /--xds HOST:PORT is required/);
  r = spawnSync(process.execPath, [BIN, 'control', '--xds', 'nowhere'], { encoding: 'utf8' });
  t.equal(r.status, 2);
  t.match(r.stderr, /--xds/);
  const dir = mkdtempSync(join(tmpdir(), 'mm-als-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'bad.yaml'), 'als:\n  maxStreams: -1\n  colour: blue\n');
  r = spawnSync(process.execPath, [BIN, 'control', '--xds', '127.0.0.1:0', '--config', join(dir, 'bad.yaml')], { encoding: 'utf8' });
  t.equal(r.status, 2);
  t.match(r.stderr, /\/als\/maxStreams/);
  t.match(r.stderr, /colour/);
});

t.test('--learn-endpoints: an upstream host first seen in the log joins its known service, bounded', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mm-als-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cfg = join(dir, 'control.yaml');
  writeFileSync(cfg, 'services:\n  - name: hello\n    endpoints:\n      - address: 127.0.0.1:9\nals:\n  maxLearnedEndpoints: 2\n');
  const mm = await startMeshmedic(t, ['control', '--xds', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--config', cfg, '--learn-endpoints', '--log-level', 'error']);
  const stream = openAccessLogStream(mm.addresses.xds!);
  t.teardown(() => stream.close());
  await stream.send(encodeHttpLogs([
    { cluster: 'hello', upstream: '127.0.0.1:11', code: 200 },
    { cluster: 'hello', upstream: '127.0.0.1:12', code: 200 },
    { cluster: 'hello', upstream: '127.0.0.1:13', code: 200 },
    { cluster: 'unknown', upstream: '127.0.0.1:14', code: 200 },
  ], { id: 'envoy-1' }));
  const eps = await waitForValue('learned endpoints', async () => {
    const m = await endpoints(mm.addresses.admin!);
    return m.size >= 3 ? m : undefined;
  }, 5000, 25);
  t.same([...(eps?.keys() ?? [])].sort(), ['hello/127.0.0.1:11', 'hello/127.0.0.1:12', 'hello/127.0.0.1:9'], 'two hosts learned (the limit), none for an unknown cluster');
  // Entries of a learned endpoint are recorded from then on.
  await stream.send(encodeHttpLogs([{ cluster: 'hello', upstream: '127.0.0.1:11', code: 200 }]));
  t.equal((await stream.end())?.code, 0);
  const als = (await (await request(`http://${mm.addresses.admin}/v1/als`)).body.json()) as { recorded: Record<string, number> };
  t.equal(als.recorded.success, 1, 'the learned endpoint\'s next entry is recorded');
});
