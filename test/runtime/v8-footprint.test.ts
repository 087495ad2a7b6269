// The V8 heap flags the meshmedic command sets for its long-running commands: when, which, and that the
// user's own heap sizing (NODE_OPTIONS, node's command line, MESHMEDIC_V8_FOOTPRINT=default) wins.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { footprintFlags, SMALL_FOOTPRINT_FLAGS } from '../../src/runtime/v8-footprint.js';

const both = [SMALL_FOOTPRINT_FLAGS.young, SMALL_FOOTPRINT_FLAGS.old];

t.test('long-running commands get both flags; short ones none', async (t) => {
  for (const cmd of ['run', 'proxy', 'control']) t.same(footprintFlags([cmd, '--config', 'f'], {}, []).flags, both, cmd);
  for (const argv of [[], ['version'], ['status'], ['sim'], ['webhook'], ['--help']]) t.same(footprintFlags(argv, {}, []).flags, [], argv.join(' ') || '(none)');
});

t.test('the user\'s heap sizing wins, per generation', async (t) => {
  t.same(footprintFlags(['run'], { NODE_OPTIONS: '--max-semi-space-size=1 --max-old-space-size=128' }, []).flags, [], 'the injector\'s NODE_OPTIONS');
  t.same(footprintFlags(['run'], { NODE_OPTIONS: '--max_semi_space_size=4' }, []).flags, [SMALL_FOOTPRINT_FLAGS.old], 'young sized (underscores too): old still set');
  t.same(footprintFlags(['run'], {}, ['--max-old-space-size=512']).flags, [SMALL_FOOTPRINT_FLAGS.young], 'old sized on node\'s command line');
  t.same(footprintFlags(['run'], {}, ['--max-heap-size=300']).flags, [], '--max-heap-size sizes both');
  t.same(footprintFlags(['run'], { MESHMEDIC_V8_FOOTPRINT: 'default' }, []).flags, [], 'MESHMEDIC_V8_FOOTPRINT=default: none');
  t.same(footprintFlags(['run'], { MESHMEDIC_V8_FOOTPRINT: 'small' }, []), { flags: both }, 'small: both, no warning');
  const odd = footprintFlags(['run'], { MESHMEDIC_V8_FOOTPRINT: 'tiny' }, []);
  t.same(odd.flags, both, 'an unknown value: small');
  t.match(odd.warning, /MESHMEDIC_V8_FOOTPRINT="tiny" is not "small" or "default"/, 'and a warning naming it');
});

t.test('V8 accepts the flags after start, and the command still runs', async (t) => {
  // setFlagsFromString ignores unknown flags silently: check that this V8 knows both names.
  const options = spawnSync(process.execPath, ['--v8-options'], { encoding: 'utf8', timeout: 30_000 }).stdout;
  for (const f of both) t.ok(options.includes(`  ${f.split('=')[0]} `), `${f.split('=')[0]} is a flag of this V8`);
  const bin = fileURLToPath(new URL('../../bin/meshmedic.js', import.meta.url));
  const r = spawnSync(process.execPath, [bin, 'run', '--help'], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, MESHMEDIC_V8_FOOTPRINT: 'tiny' } });
  t.equal(r.status, 0, `meshmedic run --help exits 0\n${r.stderr}`);
  t.match(r.stderr, /MESHMEDIC_V8_FOOTPRINT="tiny"/, 'the warning reaches stderr');
});
