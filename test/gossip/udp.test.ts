// Members on real loopback UDP + TCP (wall clock, fast profile): join and converge, a member killed with
// SIGKILL declared dead in bound, 5 % loss without false deaths, an asymmetric partition and its heal, a wrong key.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { Keyring } from '../../src/gossip/keyring.js';
import { suspicionTimeoutMs } from '../../src/gossip/profile.js';
import { FAST_PROFILE, joinP, stopAll, udpMember, waitFor, type UdpMember } from './udp-helpers.js';

async function cluster(n: number, keys?: string[]): Promise<UdpMember[]> {
  const list: UdpMember[] = [];
  for (let i = 0; i < n; i++) list.push(await udpMember(`m${i}`, { keys }));
  for (let i = 1; i < n; i++) await joinP(list[i]!.m, list[0]!.t.local);
  return list;
}

const allSee = (list: readonly UdpMember[], alive: number) => () => list.every((x) => x.m.countByState().alive === alive);

t.test('six members on loopback join through one seed and converge', async (t) => {
  const list = await cluster(6);
  t.teardown(() => stopAll(list));
  const took = await waitFor(allSee(list, 6), 10_000);
  t.ok(took >= 0, `converged in ${took} ms`);
  t.ok(list.every((x) => x.m.counters.droppedMalformed === 0));
});

t.test('a member killed with SIGKILL is declared dead within the expected bound', async (t) => {
  const list = await cluster(5);
  let child: ChildProcess | undefined;
  t.teardown(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await stopAll(list);
  });
  await waitFor(allSee(list, 5), 10_000);
  const fixture = fileURLToPath(new URL('./fixtures/member-process.ts', import.meta.url));
  child = spawn(process.execPath, ['--import', 'tsx', fixture, String(list[0]!.t.local.port), 'victim'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child!.stdout! });
    rl.once('line', resolve);
    child!.once('exit', (code) => reject(new Error(`member process exited early (${code})`)));
  });
  t.equal(JSON.parse(line).joined, 1, 'the child joined');
  t.ok(await waitFor(allSee(list, 6), 10_000) >= 0, 'everyone sees the child alive');
  const killedAt = Date.now();
  child.kill('SIGKILL');
  const dead = await waitFor(() => list.every((x) => x.m.get('victim')?.state === 'dead'), 25_000);
  // Bound: a probe round over 5 peers + one probe interval + the maximum suspicion timeout (6 × minimum).
  const n = 6;
  const bound = n * FAST_PROFILE.probeIntervalMs + FAST_PROFILE.probeIntervalMs + FAST_PROFILE.suspicionMaxTimeoutMult * suspicionTimeoutMs(FAST_PROFILE.suspicionMult, n, FAST_PROFILE.probeIntervalMs);
  t.ok(dead >= 0, `declared dead by all ${Date.now() - killedAt} ms after the kill`);
  t.ok(dead <= bound + 5000, `within the bound (${dead} ≤ ${bound} ms + 5 s slack for a shared, loaded machine)`);
  t.equal(list.reduce((s, x) => s + x.m.counters.deathsDeclared, 0) >= 1, true);
  t.ok(list.every((x) => x.m.countByState().alive === 5), 'nobody else was hurt');
});

t.test('5 % packet loss injected in the transport: no false deaths', async (t) => {
  const list = await cluster(6);
  t.teardown(() => stopAll(list));
  await waitFor(allSee(list, 6), 10_000);
  for (const x of list) x.t.loss = 0.05;
  await new Promise((r) => setTimeout(r, 6000));
  t.equal(list.reduce((s, x) => s + x.m.counters.deathsDeclared, 0), 0, 'no death declared');
  t.ok(list.every((x) => x.m.countByState().dead === 0), 'no member dead anywhere');
  t.ok(list.reduce((s, x) => s + x.m.counters.probes, 0) > 50, 'probes ran under loss');
});

t.test('asymmetric partition: a member that can hear but not speak is declared dead, then heals', async (t) => {
  const list = await cluster(5);
  t.teardown(() => stopAll(list));
  await waitFor(allSee(list, 5), 10_000);
  const mute = list[4]!;
  for (const x of list.slice(0, 4)) mute.t.blockedTo.add(x.t.local.port);
  const dead = await waitFor(() => list.slice(0, 4).every((x) => x.m.get('m4')?.state === 'dead'), 20_000);
  t.ok(dead >= 0, `declared dead after ${dead} ms`);
  t.ok(mute.m.counters.refutations > 0, 'the mute member heard the accusation and tried to refute');
  mute.t.blockedTo.clear();
  const healed = await waitFor(allSee(list, 5), 20_000);
  t.ok(healed >= 0, `all five alive again ${healed} ms after the heal`);
  t.ok(list[0]!.m.get('m4')!.incarnation > 1, 'through a refutation (higher incarnation)');
});

t.test('a wrong key is rejected: the member cannot join and its packets are dropped and counted', async (t) => {
  const good = Keyring.generateKey();
  const list = await cluster(3, [good]);
  const intruder = await udpMember('intruder', { keys: [Keyring.generateKey()] });
  const plain = await udpMember('plain');
  t.teardown(() => stopAll([...list, intruder, plain]));
  await waitFor(allSee(list, 3), 10_000);
  t.equal(await joinP(intruder.m, list[0]!.t.local), 0, 'join with the wrong key fails');
  t.equal(await joinP(plain.m, list[0]!.t.local), 0, 'join without encryption fails');
  // Datagrams too: make the intruder gossip at the members directly.
  intruder.m.bootstrapMembers(list.map((x) => ({ id: x.id, host: '127.0.0.1', port: x.t.local.port })));
  await waitFor(() => list[0]!.m.counters.droppedUnknownKey > 0, 5000);
  t.ok(list.reduce((s, x) => s + x.m.counters.droppedUnknownKey, 0) > 0, 'packets under an unknown key dropped and counted');
  t.ok(list.every((x) => x.m.get('intruder') === undefined && x.m.get('plain') === undefined), 'neither became a member');
  t.ok(list.every((x) => x.m.countByState().alive === 3));
});
