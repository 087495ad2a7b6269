// Runs on `npm install`/`npm ci` in a checkout: builds dist/ when TypeScript (a dev dependency) is installed;
// a production install (`--omit=dev`) keeps the dist/ that `npm pack` (prepack) or an earlier build produced.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));

function findTsc() {
  try { return require.resolve('typescript/bin/tsc'); } catch { return undefined; }
}

// `npm pack`/`npm publish` run prepack (which builds) before prepare: one build is enough.
if (process.env.npm_command === 'pack' || process.env.npm_command === 'publish') process.exit(0);
const tsc = findTsc();
if (tsc) {
  const built = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.json')], { stdio: 'inherit', cwd: root });
  process.exit(built.status ?? 1);
}
if (existsSync(join(root, 'dist', 'cli', 'main.js'))) {
  console.log('meshmedic: production install (TypeScript not installed): using the dist/ already built');
  process.exit(0);
}
console.error(
  'meshmedic: dist/ is missing and TypeScript is not installed, so there is nothing to run.\n' +
  '  From a checkout: run `npm ci` (with dev dependencies) to build, or `npm run build` before `npm ci --omit=dev`.\n' +
  '  For production: install the packed tarball (`npm pack` builds dist/ and includes it).',
);
process.exit(1);
