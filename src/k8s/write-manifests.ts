// `npm run k8s:manifests`: write k8s/*.yaml and k8s/grafana-dashboard.json from src/k8s/manifests.ts.
// With --check, compare instead and exit 1 when the committed files differ from the generated ones.
import { readFileSync, writeFileSync, mkdirSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { renderManifests } from './manifests.js';

export function writeManifests(dir: string, check: boolean): string[] {
  const rendered = renderManifests();
  const problems: string[] = [];
  if (!check) mkdirSync(dir, { recursive: true });
  for (const [file, text] of rendered) {
    const path = join(dir, file);
    if (check) {
      let current = '';
      try {
        current = readFileSync(path, 'utf8');
      } catch {
        problems.push(`${path}: missing`);
        continue;
      }
      if (current !== text) problems.push(`${path}: differs from the generated output`);
    } else {
      writeFileSync(path, text);
    }
  }
  if (check) {
    for (const f of readdirSync(dir)) {
      if ((f.endsWith('.yaml') || f.endsWith('.json')) && !rendered.has(f)) problems.push(`${join(dir, f)}: not generated (stale?)`);
    }
  }
  return problems;
}

const isMain = process.argv[1] && resolve(process.argv[1]).replace(/\.[jt]s$/, '') === resolve(new URL(import.meta.url).pathname).replace(/\.[jt]s$/, '');
if (isMain) {
  const check = process.argv.includes('--check');
  const dir = resolve(process.argv.find((a, i) => i >= 2 && !a.startsWith('--')) ?? 'k8s');
  const problems = writeManifests(dir, check);
  if (problems.length) {
    process.stderr.write(`${problems.join('\n')}\nrun: npm run k8s:manifests\n`);
    process.exitCode = 1;
  } else {
    process.stdout.write(check ? `k8s manifests in ${dir} are up to date\n` : `wrote k8s manifests to ${dir}\n`);
  }
}
