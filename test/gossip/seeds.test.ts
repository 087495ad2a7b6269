// Gossip on Kubernetes: seeds from DNS (dns://name:port and dns+srv://…, answered by an injected resolver,
// no DNS traffic) re-resolved before every join attempt, and the keyring read from a mounted file or
// directory and rotated without a restart, with encryption on from the start when keys are configured.
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Registry } from '../../src/admin/metrics-registry.js';
import { systemClock } from '../../src/core/clock.js';
import { createLogger, silentLogger, type Logger } from '../../src/core/log.js';
import { validateConfig } from '../../src/config/load.js';
import { MeshState } from '../../src/mesh/state.js';
import { StatsTable } from '../../src/stats/window.js';
import type { AdminHandler, Component, SidecarContext } from '../../src/runtime/context.js';
import { gossipFactory, type GossipComponent } from '../../src/gossip/component.js';
import { Keyring } from '../../src/gossip/keyring.js';
import { readKeysFrom } from '../../src/gossip/keyring-file.js';
import { parseSeed, Seeds, type SeedResolver } from '../../src/gossip/seeds.js';
import { waitFor } from './udp-helpers.js';

/** A DNS answered from a table the test edits; counts the lookups. */
class FakeDns implements SeedResolver {
  readonly a = new Map<string, string[]>();
  readonly srvRecords = new Map<string, { name: string; port: number }[]>();
  lookups = 0;
  async addresses(name: string): Promise<string[]> {
    this.lookups++;
    const r = this.a.get(name);
    if (!r) throw Object.assign(new Error(`ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
    return r;
  }
  async srv(name: string): Promise<{ name: string; port: number }[]> {
    const r = this.srvRecords.get(name);
    if (!r) throw Object.assign(new Error(`ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
    return r;
  }
}

async function member(t: Test, id: string, gossip: Record<string, unknown>, dns: FakeDns, log: Logger = silentLogger): Promise<GossipComponent> {
  const v = validateConfig({ node: { id }, gossip: { enabled: true, listen: '127.0.0.1:0', joinRetryMs: 100, probeIntervalMs: 200, probeTimeoutMs: 100, gossipIntervalMs: 50, pushPullIntervalMs: 1000, health: { enabled: false }, ...gossip } });
  if (!v.valid) throw new Error(v.errors.join('; '));
  const routes = new Map<string, AdminHandler>();
  const ctx: SidecarContext = {
    config: v.result, clock: systemClock, mesh: new MeshState(systemClock), stats: new StatsTable(), log, metrics: new Registry(),
    admin: { route: (m, p, h) => routes.set(`${m} ${p}`, h) }, components: new Map<string, Component>(),
  };
  const c = (await gossipFactory({ resolver: dns })(ctx)) as GossipComponent;
  t.teardown(() => c.close(0));
  return c;
}

const portOf = (c: GossipComponent) => Number(c.addresses!.gossip!.split(':').pop());

t.test('join entries: IP literals, dns://name:port and dns+srv:// names; anything else named clearly', async (t) => {
  t.match(parseSeed('10.0.0.1:7946'), { kind: 'ip', address: { host: '10.0.0.1', port: 7946 } });
  t.match(parseSeed('dns://meshmedic-gossip.default.svc.cluster.local:7946'), { kind: 'dns', name: 'meshmedic-gossip.default.svc.cluster.local', port: 7946 });
  t.match(parseSeed('dns+srv://_gossip._tcp.meshmedic.default.svc.cluster.local'), { kind: 'srv', name: '_gossip._tcp.meshmedic.default.svc.cluster.local' });
  for (const bad of ['dns://name', 'dns://:7946', 'dns://bad_name!:1', 'dns+srv://no-underscore.example', 'seed.example:7946']) t.type(parseSeed(bad), 'string', bad);
  const v = validateConfig({ gossip: { join: ['dns://ok.example:1', 'dns://nope'] } });
  t.notOk(v.valid);
  t.match(v.valid ? '' : v.errors.join('\n'), /\/gossip\/join\/1: "dns:\/\/nope": expected dns:\/\/name:port/);
});

t.test('a sidecar joins through a dns:// seed, and a DNS failure keeps the last answer', async (t) => {
  const dns = new FakeDns();
  const seed = await member(t, 'seed', {}, dns);
  dns.a.set('gossip.mesh.test', ['127.0.0.1']);
  const joiner = await member(t, 'joiner', { join: [`dns://gossip.mesh.test:${portOf(seed)}`] }, dns);
  t.ok(await waitFor(() => joiner.membership.liveCount === 2 && seed.membership.liveCount === 2, 5000) >= 0, 'joined through the name');
  const s = new Seeds([parseSeed(`dns://gossip.mesh.test:${portOf(seed)}`) as never], dns);
  await s.refresh();
  t.same(s.current(), [{ host: '127.0.0.1', port: portOf(seed) }]);
  dns.a.delete('gossip.mesh.test');
  await s.refresh();
  t.same(s.current(), [{ host: '127.0.0.1', port: portOf(seed) }], 'kept after ENOTFOUND');
});

t.test('dns+srv:// seeds, re-resolved before each join attempt: a seed that appears later is found', async (t) => {
  const dns = new FakeDns();
  const lines: string[] = [];
  // No answer yet: the headless Service has no ready pods.
  const joiner = await member(t, 'joiner', { join: ['dns+srv://_gossip._tcp.meshmedic.mesh.test'] }, dns, createLogger('warn', (l) => { lines.push(l); }));
  t.ok(await waitFor(() => dns.lookups === 0 && lines.some((l) => l.includes('did not resolve')), 3000) >= 0, 'the failed resolution is reported');
  const seed = await member(t, 'seed', {}, dns);
  dns.srvRecords.set('_gossip._tcp.meshmedic.mesh.test', [{ name: 'seed-0.meshmedic.mesh.test', port: portOf(seed) }]);
  dns.a.set('seed-0.meshmedic.mesh.test', ['127.0.0.1']);
  t.ok(await waitFor(() => joiner.membership.liveCount === 2, 8000) >= 0, 'joined once the record appeared (retry with a fresh resolution)');
  t.ok(dns.lookups >= 1);
});

t.test('keys from a mounted Secret directory: encryption on at start, rotation without restart', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mm-gossip-keys-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const k1 = Keyring.generateKey();
  const k2 = Keyring.generateKey();
  const secretA = path.join(dir, 'a');
  const secretB = path.join(dir, 'b');
  // Like a Secret update: the new content appears at once (written aside, then renamed into place).
  const put = (d: string, keys: string[]) => { writeFileSync(path.join(d, '.next'), keys.join('\n') + '\n'); renameSync(path.join(d, '.next'), path.join(d, 'keys')); };
  for (const d of [secretA, secretB]) { mkdirSync(d); put(d, [k1]); }
  const dns = new FakeDns();
  const reload = { keysReloadMs: 100 };
  const aLog: string[] = [];
  const a = await member(t, 'a', { keysFile: secretA, ...reload }, dns, createLogger('info', (l) => { aLog.push(l); }));
  const b = await member(t, 'b', { keysFile: secretB, join: [`127.0.0.1:${portOf(a)}`], ...reload }, dns);
  t.ok(a.keyring.enabled && b.keyring.enabled, 'encrypted from the start');
  t.ok(await waitFor(() => a.membership.liveCount === 2 && b.membership.liveCount === 2, 5000) >= 0, 'joined under key 1');
  // 1. install key 2 everywhere; 2. make it primary (first line); 3. remove key 1.
  for (const d of [secretA, secretB]) put(d, [k1, k2]);
  t.ok(await waitFor(() => a.keyring.size === 2 && b.keyring.size === 2, 3000) >= 0, 'key 2 installed on both');
  for (const d of [secretA, secretB]) put(d, [k2, k1]);
  t.ok(await waitFor(() => a.keyring.list()[0] === k2 && b.keyring.list()[0] === k2, 3000) >= 0, 'key 2 primary on both');
  for (const d of [secretA, secretB]) put(d, [k2]);
  t.ok(await waitFor(() => a.keyring.size === 1 && b.keyring.size === 1, 3000) >= 0, 'key 1 removed');
  const before = a.membership.counters.packetsReceived;
  t.ok(await waitFor(() => a.membership.counters.packetsReceived > before + 5, 3000) >= 0, 'still talking');
  t.equal(a.membership.counters.droppedUnknownKey + b.membership.counters.droppedUnknownKey, 0, 'no packet lost to the rotation');
  t.equal(a.membership.get('b')?.state, 'alive');
  // A broken edit keeps the keys in use.
  put(secretA, ['not a key']);
  t.ok(await waitFor(() => aLog.some((l) => l.includes('gossip keyring not reloaded') && l.includes('MM_ERR_GOSSIP_KEYS')), 3000) >= 0, 'the bad edit is reported');
  t.same(a.keyring.list(), [k2], 'a bad file changes nothing');
});

t.test('keysFile problems are clear start-up errors; keys and keysFile exclude each other', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mm-gossip-keys-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.match(readKeysFrom(path.join(dir, 'missing')), /ENOENT/);
  writeFileSync(path.join(dir, 'empty'), '# nothing yet\n');
  t.match(readKeysFrom(path.join(dir, 'empty')), /holds no key/);
  writeFileSync(path.join(dir, 'bad'), 'abc\n');
  t.match(readKeysFrom(path.join(dir, 'bad')), /line 1: a gossip key must be 32 bytes/);
  await t.rejects(member(t, 'x', { keysFile: path.join(dir, 'empty') }, new FakeDns()), { code: 'MM_ERR_GOSSIP_KEYS' });
  const v = validateConfig({ gossip: { keys: [Keyring.generateKey()], keysFile: '/x' } });
  t.match(v.valid ? '' : v.errors.join('\n'), /either gossip\.keys or gossip\.keysFile/);
});
