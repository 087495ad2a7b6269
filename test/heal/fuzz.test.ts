// Bad input never crashes anything: random healing settings, random external verdicts, random argv.
import t from 'tap';
import { validateConfig } from '../../src/config/load.js';
import { resolvePolicySettings } from '../../src/config/sections/healing.js';
import { runSimCli } from '../../src/sim/cli.js';
import { Rng } from '../../src/sim/rng.js';
import { harness } from './_harness.js';

const rng = new Rng(2024);
const safeString = (v: unknown): string => {
  try {
    return String(v);
  } catch {
    return '[object]'; // e.g. an object whose prototype the fuzzer set to null
  }
};
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng.next() * xs.length)]!;
const KEYS = ['policy', 'consecutive', 'peerLatency', 'ejection', 'probation', 'envoy', 'errors5xx', 'baseMs', 'enabled', '__proto__', 'constructor', ''];
function randomValue(depth = 0): unknown {
  switch (Math.floor(rng.next() * (depth > 2 ? 6 : 8))) {
    case 0: return rng.next() * 1e6 - 5e5;
    case 1: return pick([NaN, Infinity, -0, 1e308, -1, 0, 0.5]);
    case 2: return pick(['', 'meshmedic', 'envoy-default', 'none', '\u0000', 'x'.repeat(300)]);
    case 3: return rng.next() < 0.5;
    case 4: return null;
    case 5: return String.fromCharCode(...Array.from({ length: 8 }, () => Math.floor(rng.next() * 65536)));
    case 6: return Array.from({ length: 3 }, () => randomValue(depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = 0; i < 3; i++) o[pick(KEYS)] = randomValue(depth + 1);
      return o;
    }
  }
}

t.test('random healing settings: validation answers, never throws; valid ones resolve', async (t) => {
  let valid = 0;
  for (let i = 0; i < 500; i++) {
    const healing = randomValue();
    let r: ReturnType<typeof validateConfig> | undefined;
    t.doesNotThrow(() => (r = validateConfig({ healing, services: [{ name: 'a', endpoints: [{ address: '127.0.0.1:1' }], healing: randomValue() }] })));
    if (r?.valid) {
      valid++;
      t.doesNotThrow(() => resolvePolicySettings(r!.valid ? r!.result.healing : undefined, r!.valid ? r!.result.services[0]!.healing : undefined));
    } else if (r) t.ok(r.errors.length > 0 && r.errors.every((e) => typeof e === 'string' && e.startsWith('/')), 'errors name a path');
  }
  t.comment(`${valid} of 500 random documents were valid`);
  // Random but well-formed documents: always valid, and resolved with the service winning.
  for (let i = 0; i < 200; i++) {
    const base = 100 + Math.floor(rng.next() * 100_000);
    const own = 100 + Math.floor(rng.next() * 100_000);
    const r = validateConfig({ healing: { policy: pick(['meshmedic', 'envoy-default', 'none']), ejection: { baseMs: base, maxEjectionPct: rng.next() * 100 } }, services: [{ name: 'a', endpoints: [{ address: '127.0.0.1:1' }], healing: { ejection: { baseMs: own } } }] });
    if (!r.valid) {
      t.fail(r.errors.join('; '));
      break;
    }
    const s = resolvePolicySettings(r.result.healing, r.result.services[0]!.healing);
    if (s.ejection.baseMs !== own || s.ejection.maxEjectionPct !== r.result.healing.ejection!.maxEjectionPct) {
      t.fail('merge order broken');
      break;
    }
  }
});

t.test('random external verdicts: refused or queued, never thrown; the engine keeps working', async (t) => {
  const h = harness({ endpoints: 3 });
  h.run(300, () => ({ n: 2 }));
  for (let i = 0; i < 300; i++) {
    const v = rng.next() < 0.3 ? { target: pick(h.ids), detector: 'x', kind: 'failure', severity: pick(['eject', 'degrade', 'drain', 'boom']), source: pick(['peer', 'predicted', 'local', 'operator']), evidence: {} } : randomValue();
    t.doesNotThrow(() => h.engine.submitVerdict(v as never));
  }
  t.doesNotThrow(() => h.run(500, () => ({ n: 2 })));
  t.equal(h.engine.counters.policyErrors, 0);
  t.ok(h.decisions('eject').length <= 1, 'the guards still hold: at most one of three out');
});

t.test('random argv to meshmedic sim: a usage error, never a crash', async (t) => {
  for (let i = 0; i < 200; i++) {
    const argv = Array.from({ length: 1 + Math.floor(rng.next() * 4) }, () => pick(['--scenario', '--policy', '--seed', '--rps', '--duration-ms', '--bogus', '-x', '', '=', '--seed=-1', '--rps=0', safeString(randomValue())]));
    if (!argv.some((a) => a.startsWith('--bogus') || a === '-x' || a === '' || a === '=' || a === '--seed=-1' || a === '--rps=0')) argv.push('--bogus');
    let code = -1;
    t.doesNotThrow(() => (code = runSimCli(argv, { out: () => {}, err: () => {} })));
    t.equal(code, 2, JSON.stringify(argv));
  }
});
