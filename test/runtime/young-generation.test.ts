// The young-generation governor: the pure policy tick by tick, and in a real process that the new space
// grows under a burst of allocation whose scavenges are costly and shrinks back to its small size once quiet.
import t from 'tap';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { YoungGenerationPolicy, YOUNG_GENERATION_LIMITS, type YoungGenerationSample } from '../../src/runtime/young-generation.js';

const MB = 2 ** 20;
const small = 2 * MB; // both 1 MB semi-spaces
const grown = 2 * YOUNG_GENERATION_LIMITS.maxSemiSpaceBytes;
/** Scavenge time of a tick where scavenges take just the share that grows the young generation. */
const costlyMs = YOUNG_GENERATION_LIMITS.growScavengeShare * YOUNG_GENERATION_LIMITS.tickMs;
/**
 * A tick: `allocatedMb` allocated without a scavenge, or `scavenges` of a full new space taking `scavengeMs`
 * in all (default 0.5 ms each: a proxy's, whose requests die young); `requests` served (default none).
 */
const tick = (newSpaceBytes: number, o: { scavenges?: number; scavengeMs?: number; usedMb?: number; requests?: number } = {}): YoungGenerationSample =>
  ({ scavenges: o.scavenges ?? 0, scavengeMs: o.scavengeMs ?? 0.5 * (o.scavenges ?? 0), newSpaceBytes, newSpaceUsedBytes: (o.usedMb ?? 0.2) * MB, requests: o.requests ?? 0 });
/** A tick of a steady 1,000 requests/s (500 per tick, ~3 KB each): ~1.5 MB, one or two scavenges of the 1 MB semi-spaces. */
const moderate = (i: number): YoungGenerationSample => tick(small, { scavenges: 1 + (i % 2), usedMb: i % 2 ? 0.2 : 0.7, requests: 500 });
/** A busy tick whose scavenges are costly: many objects survive them. */
const costly = (newSpaceBytes: number, o: { usedMb?: number } = {}): YoungGenerationSample => tick(newSpaceBytes, { scavenges: 12, scavengeMs: costlyMs, requests: 100, ...o });

t.test('start-up: no growth for its burst, the first quiet spell shrinks once, later quiet ticks do nothing', async (t) => {
  const p = new YoungGenerationPolicy(true);
  t.equal(p.step(tick(small, { scavenges: 20, scavengeMs: 4 * costlyMs })), undefined, 'the start-up\'s burst: busy and costly, but not grown for');
  t.equal(p.step(tick(grown)), undefined, 'one quiet tick');
  t.equal(p.step(tick(grown, { usedMb: 0.5 })), 'reduce', 'second quiet tick in a row: shrink');
  for (let i = 0; i < 10; i++) t.equal(p.step(tick(small, { usedMb: 0.5 + i * 0.1 })), undefined, `quiet tick ${i}: nothing`);
});

t.test('a busy data plane whose scavenges are cheap keeps the small young generation', async (t) => {
  // bench:memory's load: ~10k requests/s, ~25 MB/s, ~12 scavenges of the 1 MB semi-spaces a tick at ~0.4 ms
  // each (~1 % of the time). Growing would save a fraction of that and cost 2 MB of RSS per MB of semi-space.
  const p = new YoungGenerationPolicy(true);
  p.step(tick(small)); p.step(tick(small)); // the start-up shrink
  for (let i = 0; i < 40; i++) t.equal(p.step(tick(small, { scavenges: 12, scavengeMs: 5, requests: 5_000 })), undefined, `busy tick ${i}: scavenges 1 % of the time, no growth`);
  t.equal(p.step(tick(small, { scavenges: 12, scavengeMs: costlyMs - 0.1, requests: 5_000 })), undefined, 'just under the share: no growth');
  t.equal(p.step(tick(small, { usedMb: 0.3 })), undefined, 'traffic stops: quiet 1');
  t.equal(p.step(tick(small, { usedMb: 0.4 })), 'reduce', 'quiet 2: the shrink (the old space compacted)');
});

t.test('costly scavenges grow it one doubling at a time, up to the maximum; quiet shrinks it', async (t) => {
  const p = new YoungGenerationPolicy(true);
  p.step(tick(small)); p.step(tick(small)); // the start-up shrink
  t.equal(p.step(costly(small)), 'grow', 'scavenges take the share: grow one doubling');
  t.equal(p.step(costly(small)), undefined, 'V8 has not doubled it yet: nothing more to say');
  t.equal(p.step(costly(2 * small)), 'hold', 'doubled (2 MB semi-spaces): hold there');
  t.equal(p.step(tick(2 * small, { scavenges: 6, requests: 5_000 })), undefined, 'busy but cheap now: stays at 2 MB');
  t.equal(p.step(costly(2 * small)), 'grow', 'costly again: the next doubling');
  t.equal(p.step(costly(4 * small)), 'hold', '4 MB semi-spaces: hold');
  let size = 4 * small;
  while (size < grown) {
    t.equal(p.step(costly(size)), 'grow', `at ${size / MB} MB: grow`);
    size *= 2;
    t.equal(p.step(costly(size)), 'hold', `at ${size / MB} MB: hold`);
  }
  t.equal(p.step(costly(grown)), undefined, 'at the maximum: no further growth');
  t.equal(p.step(tick(grown, { usedMb: 0.5 })), undefined, 'one quiet tick is not enough');
  t.equal(p.step(tick(grown, { usedMb: 1 })), 'reduce', 'two quiet ticks in a row: shrink');
  t.equal(p.step(tick(small, { usedMb: 0.3 })), undefined);
  t.equal(p.step(tick(small, { usedMb: 0.4 })), undefined, 'no busy spell since: no second shrink');
});

t.test('an idle sidecar\'s own allocation (~1 MB a tick) is quiet, a busy tick between quiet ones resets the count', async (t) => {
  const p = new YoungGenerationPolicy(true);
  p.step(tick(small)); p.step(tick(small));
  t.equal(p.step(tick(small, { scavenges: 1, scavengeMs: costlyMs, usedMb: 0.3 })), undefined, 'one (slow) scavenge of 1 MB semi-spaces: quiet, not grown for');
  t.equal(p.step(tick(small, { scavenges: 9, scavengeMs: costlyMs })), 'grow');
  t.equal(p.step(tick(small, { usedMb: 1 })), undefined, 'quiet 1');
  t.equal(p.step(tick(2 * small, { scavenges: 5, usedMb: 0.5 })), 'hold', 'doubled, and busy again (cheap scavenges)');
  t.equal(p.step(tick(2 * small, { usedMb: 1 })), undefined, 'quiet 1 again');
  t.equal(p.step(tick(2 * small, { usedMb: 1.5 })), 'reduce', 'quiet 2: shrink');
});

t.test('a steady 1,000 requests/s after a burst: under the quiet bytes, but serving — no shrink until it stops', async (t) => {
  // bench:proxy's sequence (saturation, then a fixed 1,000 requests/s): the shrink's two full GCs landed
  // ~1.3 s into the fixed rate and delayed the requests in flight by ~30 ms.
  const p = new YoungGenerationPolicy(true);
  t.equal(p.step(tick(small, { scavenges: 20, requests: 15_000 })), undefined, 'saturation right after start: busy');
  t.ok(YOUNG_GENERATION_LIMITS.quietBytes > 1.5 * MB, 'the moderate ticks below allocate under the quiet bytes');
  for (let i = 0; i < 40; i++) t.equal(p.step(moderate(i)), undefined, `1,000 requests/s, tick ${i}: no shrink`);
  t.equal(p.step(tick(small, { usedMb: 0.3 })), undefined, 'traffic stops: one quiet tick');
  t.equal(p.step(tick(small, { usedMb: 0.4 })), 'reduce', 'two quiet ticks: the shrink, now that nothing is served');
});

t.test('a few requests a tick are quiet; from quietRequests on they are not, and they reset the count', async (t) => {
  const few = YOUNG_GENERATION_LIMITS.quietRequests - 1;
  const p = new YoungGenerationPolicy(true);
  t.equal(p.step(tick(small, { requests: few })), undefined, `${few} requests: quiet 1`);
  t.equal(p.step(tick(small, { requests: few, usedMb: 0.3 })), 'reduce', `${few} requests again: quiet 2, the start-up shrink`);
  t.equal(p.step(costly(small, { usedMb: 0.2 })), 'grow', 'a burst with costly scavenges');
  t.equal(p.step(tick(2 * small, { usedMb: 0.5 })), 'hold', 'doubled');
  t.equal(p.step(tick(2 * small, { usedMb: 0.6 })), undefined, 'quiet 1');
  t.equal(p.step(tick(2 * small, { usedMb: 0.7, requests: YOUNG_GENERATION_LIMITS.quietRequests })), undefined, `${YOUNG_GENERATION_LIMITS.quietRequests} requests: not quiet`);
  t.equal(p.step(tick(2 * small, { usedMb: 0.8 })), undefined, 'quiet 1 again');
  t.equal(p.step(tick(2 * small, { usedMb: 0.9 })), 'reduce', 'quiet 2: shrink');
});

t.test('a young generation the user sized is never grown, only shrunk when quiet', async (t) => {
  const p = new YoungGenerationPolicy(false);
  p.step(tick(small)); t.equal(p.step(tick(small)), 'reduce', 'the start-up shrink');
  t.equal(p.step(costly(small)), undefined, 'busy and costly: no growth');
  p.step(tick(small, { usedMb: 0.3 }));
  t.equal(p.step(tick(small, { usedMb: 0.4 })), 'reduce', 'quiet after the busy spell: shrink');
});

t.test('in a process: the new space grows under a burst of survivors and is small again once quiet', async (t) => {
  // The child drives a real governor: it allocates objects that survive scavenges (costly ones) until the
  // new space has grown by a doubling (bounded: 60 s), then stops allocating and waits until it is small
  // again (bounded: 60 s). Generous bounds on events, not timings: on a loaded machine it only takes longer.
  const mod = fileURLToPath(new URL('../../src/runtime/young-generation.ts', import.meta.url));
  const script = `
    import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
    const { startYoungGenerationGovernor } = await import(${JSON.stringify(mod)});
    setFlagsFromString('--semi-space-growth-factor=1');
    let started;
    const startedUp = new Promise((r) => { started = r; });
    const stop = startYoungGenerationGovernor(true, (e) => { console.log('error ' + e.message); process.exit(1); }, (a) => { if (a === 'reduce') started(); });
    const newSpace = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    // The start-up shrink first (the governor grows only after it), bounded: 60 s.
    const startTimer = setTimeout(() => { console.log('no start-up shrink'); process.exit(1); }, 60000);
    await startedUp;
    clearTimeout(startTimer);
    let keep = [];
    let until = Date.now() + 60000;
    // Objects that survive a scavenge or two (more than a semi-space of them: each scavenge copies them), in 20 ms slices.
    const before = newSpace();
    while (newSpace() < 2 * before) {
      if (Date.now() > until) { console.log('never grew: ' + newSpace()); process.exit(1); }
      const end = Date.now() + 20;
      while (Date.now() < end) { keep.push({ a: keep.length, b: [1, 2, 3] }); if (keep.length > 20000) keep = []; }
      await sleep(1);
    }
    console.log('grown ' + newSpace());
    keep = [];
    until = Date.now() + 60000;
    while (newSpace() > 2 * 2 ** 20) {
      if (Date.now() > until) { console.log('never shrank: ' + newSpace()); process.exit(1); }
      await sleep(50);
    }
    console.log('small ' + newSpace());
    stop();
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  t.equal(code, 0, `the child grew and shrank the new space\n${out}`);
  t.match(out, /grown \d+/, 'grown by a doubling');
  t.match(out, /small \d+/, 'small again once quiet');
});
