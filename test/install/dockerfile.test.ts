// Structural checks of the Dockerfile and .dockerignore (no container builder on the test machine: see
// docs/kubernetes.md, "Image"): multi-stage, distroless runtime as UID 65532, production dependencies and
// the packaged runtime files only, and the same user the injected sidecar's securityContext asks for.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DEFAULT_INJECTOR_CONFIG } from '../../src/k8s/injector-config.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

interface Instruction { readonly op: string; readonly args: string }
interface Stage { readonly from: string; readonly name: string | undefined; readonly steps: Instruction[] }

/** Dockerfile instructions grouped by stage (continuation lines joined, comments dropped). */
function parseDockerfile(text: string): { args: Instruction[]; stages: Stage[] } {
  const joined = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const args: Instruction[] = [];
  const stages: Stage[] = [];
  for (const line of joined) {
    const m = /^([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`unparsable Dockerfile line: ${line}`);
    const op = m[1]!.toUpperCase();
    const rest = m[2]!;
    if (op === 'FROM') {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest);
      stages.push({ from: f![1]!, name: f![2], steps: [] });
    } else if (stages.length === 0) args.push({ op, args: rest });
    else stages[stages.length - 1]!.steps.push({ op, args: rest });
  }
  return { args, stages };
}

const dockerfile = parseDockerfile(readFileSync(`${root}Dockerfile`, 'utf8'));
const runtime = dockerfile.stages[dockerfile.stages.length - 1]!;

t.test('multi-stage: build with dev dependencies, production dependencies apart, a distroless runtime', async (t) => {
  t.ok(dockerfile.stages.length >= 3, 'at least build, deps and runtime stages');
  const build = dockerfile.stages.find((s) => s.name === 'build');
  const deps = dockerfile.stages.find((s) => s.name === 'deps');
  t.ok(build?.steps.some((s) => s.op === 'RUN' && /npm ci\b/.test(s.args) && !/--omit=dev/.test(s.args)), 'build stage installs dev dependencies');
  t.ok(build?.steps.some((s) => s.op === 'RUN' && /tsc -p tsconfig\.json/.test(s.args)), 'build stage compiles');
  t.ok(deps?.steps.some((s) => s.op === 'RUN' && /npm ci --omit=dev --ignore-scripts/.test(s.args)), 'deps stage: production dependencies, no install scripts');
  t.match(runtime.from, /^gcr\.io\/distroless\/nodejs20-debian12(:nonroot)?$/, 'runtime: distroless Node 20');
  t.notOk(runtime.steps.some((s) => s.op === 'RUN'), 'the runtime stage runs nothing (no shell in distroless)');
  const nodeVersion = dockerfile.args.find((a) => a.args.startsWith('NODE_VERSION='))?.args.split('=')[1] ?? '';
  const engines = (JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { engines: { node: string } }).engines.node;
  const [maj, min] = nodeVersion.split('.').map(Number);
  const [emaj, emin] = engines.replace('>=', '').split('.').map(Number);
  t.ok(maj === 20 && maj! >= emaj! && (maj! > emaj! || min! >= emin!), `build Node ${nodeVersion} satisfies engines ${engines} and matches the runtime's major`);
});

t.test('runtime: UID 65532, only dist/, production node_modules and the packaged runtime files', async (t) => {
  const user = runtime.steps.filter((s) => s.op === 'USER').pop();
  t.equal(user?.args, `${DEFAULT_INJECTOR_CONFIG.runAsUser}:${DEFAULT_INJECTOR_CONFIG.runAsUser}`, 'same UID/GID as the injected securityContext');
  t.equal(DEFAULT_INJECTOR_CONFIG.runAsUser, 65532);
  const copies = runtime.steps.filter((s) => s.op === 'COPY').map((s) => s.args.replace(/--chown=\S+\s*/, ''));
  t.ok(copies.includes('--from=deps /app/node_modules ./node_modules'), 'node_modules from the production-only stage');
  t.ok(copies.includes('--from=build /src/dist ./dist'), 'dist/ from the build stage');
  const local = copies.filter((c) => !c.startsWith('--from=')).map((c) => c.split(/\s+/)[0]!.replace(/\/$/, ''));
  const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { files: string[] };
  const runtimeFiles = pkg.files.filter((f) => !f.startsWith('!') && !/^(dist|scripts|README)/.test(f)).map((f) => f.replace(/\/$/, ''));
  t.same(local.sort(), ['package.json', ...runtimeFiles].sort(), 'exactly the packaged runtime files (package.json "files"), nothing else from the context');
  t.match(runtime.steps.find((s) => s.op === 'ENTRYPOINT')?.args ?? '', /"\/nodejs\/bin\/node", "\/app\/bin\/meshmedic\.js"/);
  const exposed = runtime.steps.filter((s) => s.op === 'EXPOSE').flatMap((s) => s.args.split(/\s+/));
  const p = DEFAULT_INJECTOR_CONFIG.ports;
  for (const port of [p.admin, p.outbound, p.gossip]) t.ok(exposed.includes(String(port)), `port ${port} exposed`);
});

t.test('.dockerignore: deny by default, allow only what the stages copy', async (t) => {
  const lines = readFileSync(`${root}.dockerignore`, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  t.equal(lines[0], '**', 'everything ignored first');
  const allowed = lines.slice(1).map((l) => l.replace(/^!/, '').replace(/\/\*\*$/, ''));
  const copiedFromContext = dockerfile.stages.flatMap((s) => s.steps).filter((s) => s.op === 'COPY' && !s.args.includes('--from='))
    .flatMap((s) => s.args.replace(/--chown=\S+\s*/, '').split(/\s+/).slice(0, -1)).map((p) => p.replace(/\/$/, ''));
  for (const p of new Set(copiedFromContext)) t.ok(allowed.includes(p), `${p} is let through .dockerignore`);
  for (const p of allowed) t.ok(copiedFromContext.includes(p), `${p} is let through because a stage copies it`);
  t.notOk(allowed.some((p) => /node_modules|dist|\.git|test|\.env/.test(p)), 'no local build, dependencies, tests or secrets');
});
