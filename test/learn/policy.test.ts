// The learned recovery policy: training is deterministic for a seed and beats a random policy; policy
// files are verified (truncated, checksum, version, shape → MM_ERR_LEARN_POLICY, exit 2); learned
// decisions go through the same guards and carry source "learned".
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { main, type CliIo } from '../../src/cli/main.js';
import { validateConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/core/log.js';
import { startSidecar } from '../../src/runtime/sidecar.js';
import { backend, request, type Backend } from '../proxy/helpers.js';
import { MeshmedicError } from '../../src/core/errors.js';
import { provideLearnedModel, withdrawLearnedModel, type LearnedModel } from '../../src/learn/learned-policy.js';
import { checksumOf, modelOf, parsePolicy, policyDocument, serializePolicy, type PolicyDocument } from '../../src/learn/policy-file.js';
import { readPolicyFile } from '../../src/learn/policy-io.js';
import { QTable } from '../../src/learn/q-table.js';
import { ACTIONS, ACTION_COUNT, DEFAULT_REWARD, STATE_COUNT } from '../../src/learn/recovery-state.js';
import { scorePolicy, trainPolicy } from '../../src/learn/train.js';
import { scenarioByName } from '../../src/sim/scenarios.js';
import { runScenario } from '../../src/sim/simulator.js';

const gray = scenarioByName('gray-3x-5')!;
const noise = scenarioByName('noise-5')!;

function capture(): { io: CliIo; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return { io: { out: (s) => (out += s), err: (s) => (err += s), env: {} }, out: () => out, err: () => err };
}

t.test('training is deterministic for a seed and differs between seeds', async (t) => {
  const run = (seed: number) => trainPolicy({ scenarios: [gray, noise], episodes: 6, seed }).document;
  const a = run(7);
  const b = run(7);
  const c = run(8);
  t.equal(a.checksum, b.checksum, 'same seed → the same policy, byte for byte');
  t.equal(serializePolicy(a), serializePolicy(b));
  t.not(a.checksum, c.checksum, 'another seed explores differently');
  t.ok(a.visits.some((r) => r.some((v) => v > 0)), 'the table was updated');
});

t.test('a short training run beats a random policy on a tuning scenario', async (t) => {
  // Learned (and random) verdicts count only on endpoints the rules flag, so the choice matters only there:
  // on gray-3x-5 the rules eject the slow endpoint before any choice changes the reward (learned and
  // random both score −0.231); a 10× endpoint leaves the table windows where its choice counts.
  const seed = 3;
  const gray10 = scenarioByName('gray-10x-5')!;
  const { document } = trainPolicy({ scenarios: [gray10], episodes: 30, seed });
  const evalSeeds = [901, 902];
  const learned = scorePolicy(modelOf(document), [gray10], evalSeeds);
  const random = scorePolicy(null, [gray10], evalSeeds);
  t.ok(learned > random, `mean reward per endpoint-window: learned ${learned.toFixed(3)} > random ${random.toFixed(3)} (training seed ${seed}, evaluation seeds ${evalSeeds.join(',')})`);
});

t.test('policy files are verified on load', async (t) => {
  const table = new QTable();
  table.update(5, 1, -0.5, 0.1);
  const doc = policyDocument(table, { seed: 1, episodes: 1, scenarios: ['x'], gamma: 0.8, alphaMin: 0.05, epsilon: [0.3, 0.02], reward: DEFAULT_REWARD, meshmedicVersion: 'test' });
  const text = serializePolicy(doc);
  const ok = parsePolicy(text);
  t.ok(ok.valid, 'a written policy reads back');
  if (ok.valid) t.equal(modelOf(ok.result).table.q(5, 1), -0.5);

  const errorsOf = (s: string): string => {
    const v = parsePolicy(s);
    return v.valid ? '(valid)' : v.errors.join('; ');
  };
  const resign = (d: Record<string, unknown>): string => JSON.stringify({ ...d, checksum: checksumOf(d) });
  const raw = JSON.parse(text) as Record<string, unknown> & PolicyDocument;

  t.match(errorsOf(text.slice(0, Math.floor(text.length / 2))), /not valid JSON \(truncated or corrupted\?\)/, 'truncated');
  const edited = JSON.parse(text) as { q: number[][] };
  edited.q[5]![1] = 3;
  t.match(errorsOf(JSON.stringify(edited)), /checksum mismatch: the file says sha256:[0-9a-f]{64}, its content hashes to sha256:/, 'an edited value fails the checksum');
  t.match(errorsOf(JSON.stringify({ ...raw, checksum: 'md5:abc' })), /checksum: expected "sha256:<64 hex digits>"/);
  t.match(errorsOf(resign({ ...raw, version: 2 })), /version: this meshmedic reads version 1, the file is version 2/, 'wrong version');
  t.match(errorsOf(resign({ ...raw, format: 'other' })), /format: expected "meshmedic-learned-policy", got "other"/);
  t.match(errorsOf(resign({ ...raw, q: raw.q.slice(1) })), new RegExp(`q: expected ${STATE_COUNT} rows \\(one per state\\), got ${STATE_COUNT - 1}`), 'a missing row');
  t.match(errorsOf(resign({ ...raw, q: raw.q.map((r, i) => (i === 3 ? r.slice(1) : r)) })), new RegExp(`q\\[3\\]: expected ${ACTION_COUNT} finite numbers \\(one per action\\), got ${ACTION_COUNT - 1}`), 'a short row');
  t.match(errorsOf(resign({ ...raw, visits: raw.visits.map((r, i) => (i === 9 ? [1, 2, -3, 4, 5] : r)) })), /visits\[9\]\[2\]: expected visit counts \(integers ≥ 0\), got -3/);
  t.match(errorsOf(resign({ ...raw, features: [{ name: 'errorZ', bins: 5 }] })), /features: the table was trained for state features errorZ:5, this meshmedic uses errorZ:3,/, 'another state layout');
  t.match(errorsOf(resign({ ...raw, actions: ['none'] })), /actions: expected \["none","deweight","drain","eject","restore"\]/);
  t.match(errorsOf('[1,2]'), /expected a JSON object, got an array/);

  const dir = mkdtempSync(path.join(tmpdir(), 'mm-policy-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const good = path.join(dir, 'good.json');
  const bad = path.join(dir, 'bad.json');
  writeFileSync(good, text);
  writeFileSync(bad, text.slice(0, 100));
  t.equal(readPolicyFile(good).checksum, doc.checksum);
  const failure = (file: string): MeshmedicError | undefined => {
    try {
      readPolicyFile(file);
    } catch (e) {
      return e instanceof MeshmedicError ? e : undefined;
    }
    return undefined;
  };
  t.equal(failure(bad)?.code, 'MM_ERR_LEARN_POLICY');
  t.match(failure(bad)?.message, `learned policy file ${bad}: not valid JSON`);
  t.match(failure(path.join(dir, 'missing.json'))?.message, /cannot be read: ENOENT/);

  // The command line: verify exits 0 / 2; a sidecar given a bad file does not start and exits 2.
  let c = capture();
  t.equal(await main(['learn', 'verify', good], c.io), 0);
  t.match(c.out(), /valid \(version 1, sha256:/);
  c = capture();
  t.equal(await main(['learn', 'verify', bad], c.io), 2);
  t.match(c.err(), /MM_ERR_LEARN_POLICY: learned policy file .*bad\.json: not valid JSON/);
  c = capture();
  t.equal(await main(['proxy', '--listen', '127.0.0.1:0', '--upstream', 'http://127.0.0.1:9', '--policy', 'learned', '--policy-file', bad, '--log-level', 'silent'], c.io), 2, 'a sidecar with a bad policy file exits 2');
  t.match(c.err(), /MM_ERR_LEARN_POLICY/);
  c = capture();
  t.equal(await main(['proxy', '--listen', '127.0.0.1:0', '--upstream', 'http://127.0.0.1:9', '--policy', 'learned'], c.io), 2, 'policy learned without a file is a configuration error');
  t.match(c.err(), /--policy-file: required by policy learned/);
  c = capture();
  t.equal(await main(['learn', 'train', '--scenarios', 'gray-1.8x-10', '--out', path.join(dir, 'p.json')], c.io), 2, 'held-out scenarios are refused for training');
  t.match(c.err(), /"gray-1.8x-10" is held out/);
});

/** A table that always prefers `action` (tried often enough to be taken live). */
function always(action: (typeof ACTIONS)[number]): LearnedModel {
  const table = new QTable();
  const a = ACTIONS.indexOf(action);
  for (let s = 0; s < STATE_COUNT; s++) {
    for (let k = 0; k < ACTION_COUNT; k++) {
      table.values[s * ACTION_COUNT + k] = k === a ? 1 : -1;
      table.visits[s * ACTION_COUNT + k] = 100;
    }
  }
  return { table, reward: DEFAULT_REWARD, gamma: 0.8, minVisits: 5, minAdvantage: 0.5, checksum: 'test' };
}

t.test('learned decisions act only where the rules\' evidence flags the endpoint', async (t) => {
  // No fault: a table that would eject, drain or de-weight every endpoint in every state acts on none.
  // (Before the gate it ejected or drained up to 3 of these 10 healthy endpoints at once.)
  const noise = scenarioByName('noise-10')!;
  for (const action of ['eject', 'drain', 'deweight'] as const) {
    const key = `test:noise-always-${action}`;
    provideLearnedModel(key, always(action));
    t.teardown(() => withdrawLearnedModel(key));
    const r = runScenario(noise, { policy: 'learned', seed: 5, settings: { policyFile: key, ejection: { maxEjectionPct: 30, alwaysEjectOne: false } } });
    t.equal(r.decisions.filter((d) => d.source === 'learned' && d.applied).length, 0, `${action}: no learned decision on healthy endpoints`);
    t.equal(r.falseEjections + r.falseDeweights, 0, `${action}: nothing false`);
  }
  // One endpoint 3× slower: where the rules flag it, the table's stronger choice is taken, with its source.
  const key = 'test:gray-always-drain';
  provideLearnedModel(key, always('drain'));
  t.teardown(() => withdrawLearnedModel(key));
  const gray = runScenario(scenarioByName('gray-3x-10')!, { policy: 'learned', seed: 5, settings: { policyFile: key } });
  const learned = gray.decisions.filter((d) => d.source === 'learned' && d.applied);
  t.ok(learned.some((d) => d.action === 'drain' && d.reason === 'learned_drain'), 'a learned drain of the flagged endpoint is applied with its source');
  t.equal(gray.falseEjections + gray.falseDeweights, 0, 'and nothing else is touched');
});

t.test('learned decisions pass the same guards', async (t) => {
  // A rolling deploy restarts one endpoint after another cold: the rules flag each, the table drains or
  // ejects them, and the guards bound it as any decision.
  const spec = scenarioByName('rolling-deploy-10')!;
  for (const action of ['eject', 'drain'] as const) {
    const key = `test:always-${action}`;
    provideLearnedModel(key, always(action));
    t.teardown(() => withdrawLearnedModel(key));
    const r = runScenario(spec, { policy: 'learned', seed: 5, settings: { policyFile: key, ejection: { maxEjectionPct: 30, alwaysEjectOne: false } } });
    const learned = r.decisions.filter((d) => d.source === 'learned');
    t.ok(learned.some((d) => d.applied && d.action === action && d.reason === `learned_${action}`), `${action}: learned decisions are applied with their source`);
    // Replay the applied decisions: never more than 30 % of the 10 endpoints out at once.
    const out = new Set<string>();
    let most = 0;
    let firstSecond = 0;
    for (const d of r.decisions) {
      if (!d.applied) continue;
      if (d.action === 'eject' || d.action === 'drain') out.add(d.target);
      else if (d.action === 'restore' || d.action === 'probation') out.delete(d.target);
      most = Math.max(most, out.size);
      if (d.source === 'learned' && d.at - r.decisions[0]!.at < 1000) firstSecond++;
    }
    t.ok(most <= 3, `${action}: at most 3 of 10 out at once (max ejection 30 %), saw ${most}`);
    t.ok(most >= 1, `${action}: the table's choice was acted on`);
    t.ok(firstSecond <= 5, `${action}: the rate limit's burst (5) bounds the first second, saw ${firstSecond}`);
  }
});

t.test('live: a sidecar runs a learned policy file; its decisions show in /v1/events, /v1/endpoints, /v1/learn and /metrics', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mm-policy-live-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // A table that drains every endpoint in every state: it acts only where the rules flag one (the slow
  // backend below, de-weighted by the rules at first: a cold endpoint is not ejected on latency), and the
  // guards and the rate limit still apply.
  const model = always('drain');
  const doc = policyDocument(model.table, { seed: 0, episodes: 0, scenarios: [], gamma: 0.8, alphaMin: 0.05, epsilon: [0.3, 0.02], reward: DEFAULT_REWARD, meshmedicVersion: 'test' });
  const file = path.join(dir, 'policy.json');
  writeFileSync(file, serializePolicy(doc));
  const backends: Backend[] = [];
  for (let i = 0; i < 3; i++) backends.push(await backend(i === 0 ? (_req, res) => void setTimeout(() => res.end('ok'), 40) : (_req, res) => res.end('ok')));
  const v = validateConfig({
    admin: { listen: '127.0.0.1:0' },
    outbound: { listen: '127.0.0.1:0' },
    services: [{ name: 'web', endpoints: backends.map((b) => ({ address: `127.0.0.1:${b.port}` })) }],
    // The rules only de-weight on latency here (eject ratio out of reach), so the table's drain is the
    // stronger action whenever they flag the slow endpoint, however loaded the machine.
    healing: { policy: 'learned', policyFile: file, peerLatency: { ejectRatio: 1000 } },
  });
  if (!v.valid) throw new Error(v.errors.join('\n'));
  const sc = await startSidecar(v.result, { log: silentLogger });
  t.teardown(async () => {
    await sc.close(1000);
    for (const b of backends) await b.close();
  });
  const proxy = Number(sc.addresses.outbound!.split(':').pop());
  const admin = Number(sc.addresses.admin!.split(':').pop());
  const getJson = async (p: string): Promise<any> => JSON.parse((await request(admin, { path: p })).body);
  // Traffic until a learned de-weight is applied (bounded: 20 s of batches).
  interface Event { source: string; reason: string; target: string; applied: boolean }
  let learned: Event | undefined;
  const deadline = Date.now() + 20_000;
  while (!learned && Date.now() < deadline) {
    await Promise.all(Array.from({ length: 8 }, () => request(proxy, { headers: { host: 'web' } })));
    const ev = await getJson('/v1/events');
    learned = (ev.events as Event[]).find((e) => e.source === 'learned' && e.applied);
  }
  t.ok(learned, 'a learned decision was applied within 20 s of traffic');
  t.equal(learned?.reason, 'learned_drain');
  t.ok(learned?.target.endsWith(`:${backends[0]!.port}`), 'of the slow endpoint, the one the rules flag');
  const eps = await getJson('/v1/endpoints?service=web');
  const target = (eps.endpoints as { id: string; state: string; source: string }[]).find((e) => e.id === learned?.target);
  t.not(target?.state, 'healthy', `/v1/endpoints shows the drain (state ${target?.state})`);
  const status = await getJson('/v1/learn');
  const web = (status.services as { service: string; policy: string; learned: { loaded: boolean; checksum: string; choices: Record<string, number> } }[]).find((s) => s.service === 'web');
  t.equal(web?.policy, 'learned');
  t.equal(web?.learned.loaded, true);
  t.equal(web?.learned.checksum, doc.checksum, '/v1/learn names the policy file\'s checksum');
  t.ok((web?.learned.choices.drain ?? 0) > 0);
  const metrics = (await request(admin, { path: '/metrics' })).body;
  t.match(metrics, /meshmedic_decisions_total\{[^}]*source="learned"[^}]*\} [1-9]/, 'decisions are counted with their source');
});
