// The README doc-test. Every block of README.md is accounted for: shell blocks are run as written (quick
// mode: two backends, the proxy, a request through it, the endpoints call, the eject with its JSON body,
// the endpoints command; only the ports are swapped for free ones) or listed below as not runnable here,
// with the reason; YAML blocks must validate as a configuration; every command of the usage synopsis
// answers --help. A new block or command that none of this covers fails the test.
import t from 'tap';
import { validateConfig } from '../../src/config/load.js';
import { parse as parseYaml } from 'yaml';
import { readFileSync } from 'node:fs';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { childPorts } from '../helpers/free-port.js';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const README = readFileSync(path.join(ROOT, 'README.md'), 'utf8').split('\n');

/** README commands this test cannot run, with the reason. Keep it short: everything else is run. */
const NOT_RUN_HERE = new Map<string, string>([
  ['npm install && npm start', 'npm install needs the package registry, and npm start rebuilds dist/ while other tests run from it; the demo it then starts is run by test/cli/demo.test.ts'],
  ['npm install && npm test', 'the whole test suite, of which this test is a part'],
]);

interface Block {
  /** 1-based line of the block's first line in README.md. */
  readonly line: number;
  /** The fence's language ('' for none), or undefined for an indented block. */
  readonly lang: string | undefined;
  readonly lines: string[];
}

/** Every fenced block and every indented (4 spaces, after a blank line) block of README.md. */
function readmeBlocks(): Block[] {
  const blocks: Block[] = [];
  for (let i = 0; i < README.length; i++) {
    const l = README[i]!;
    const fence = /^```(\S*)\s*$/.exec(l);
    if (fence) {
      const b: Block = { line: i + 2, lang: fence[1]!, lines: [] };
      for (i++; i < README.length && !README[i]!.startsWith('```'); i++) b.lines.push(README[i]!);
      blocks.push(b);
    } else if (l.startsWith('    ') && (i === 0 || README[i - 1]!.trim() === '')) {
      const b: Block = { line: i + 1, lang: undefined, lines: [] };
      for (; i < README.length && README[i]!.startsWith('    '); i++) b.lines.push(README[i]!.trim());
      blocks.push(b);
    }
  }
  return blocks;
}

/**
 * `meshmedic <args> --help`, each distinct one run once per file: one process start each,
 * which on a loaded machine costs seconds, so they run two at a time (the machine's cores) rather than one after the other.
 */
const helpRuns = new Map<string, Promise<{ status: number | null; stdout: string; stderr: string }>>();
let helpSlots = 2;
const helpWaiters: (() => void)[] = [];
function help(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const key = args.join(' ');
  let run = helpRuns.get(key);
  if (!run) {
    run = (async () => {
      if (helpSlots === 0) await new Promise<void>((r) => helpWaiters.push(r));
      else helpSlots--;
      try {
        return await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
          execFile(process.execPath, ['bin/meshmedic.js', ...args, '--help'], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 }, (err, stdout, stderr) => {
            const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null) : 0;
            resolve({ status: code, stdout, stderr: err && code === null ? `${stderr}${err.message}` : stderr });
          });
        });
      } finally {
        const next = helpWaiters.shift();
        if (next) next();
        else helpSlots++;
      }
    })();
    helpRuns.set(key, run);
  }
  return run;
}

/** A shell line without its trailing comment. */
const command = (line: string) => line.replace(/\s+#.*$/, '').trim();

/** The shell block that follows the paragraph starting "Quick mode sends every request". */
function quickModeBlock(): Block | undefined {
  const start = README.findIndex((l) => l.startsWith('Quick mode sends every request'));
  return readmeBlocks().find((b) => b.lang === undefined && b.line > start + 1);
}

t.test('every README block is run by this test, validated, or listed as not runnable here with the reason', async (t) => {
  const quick = quickModeBlock();
  t.ok(quick, 'the quick-mode block is there');
  const listed = new Set<string>();
  for (const b of readmeBlocks()) {
    const where = `README.md:${b.line}`;
    if (b.lang === 'yaml') {
      const v = validateConfig(parseYaml(b.lines.join('\n')));
      t.ok(v.valid, `${where}: the YAML example is a valid configuration${v.valid ? '' : `: ${v.errors.join('; ')}`}`);
    } else if (b.lang === 'text') {
      // Diagrams and the usage synopsis: its commands are checked below with --help.
    } else if (b.lang === undefined || b.lang === 'sh' || b.lang === 'bash') {
      if (b.line === quick?.line) continue; // run line by line by the quick-mode test below
      for (const line of b.lines) {
        const cmd = command(line);
        if (NOT_RUN_HERE.has(cmd)) listed.add(cmd);
        else t.fail(`${where}: "${cmd}" is neither run by this test nor listed in NOT_RUN_HERE with a reason`);
      }
    } else {
      t.fail(`${where}: a \`\`\`${b.lang || '(no language)'} block; tag it text, yaml or sh so that this test knows what to do with it`);
    }
  }
  t.same([...NOT_RUN_HERE.keys()].filter((c) => !listed.has(c)), [], 'every command listed as not runnable is still in the README');
});

t.test('every command of the usage synopsis answers --help', async (t) => {
  const synopsis = readmeBlocks().find((b) => b.lang === 'text' && b.lines.some((l) => l.startsWith('meshmedic run')));
  t.ok(synopsis, 'the synopsis block');
  const commands = new Set<string>();
  for (const l of synopsis?.lines ?? []) {
    const m = /^meshmedic ([a-z|-]+)/.exec(l);
    if (m) for (const c of m[1]!.split('|')) commands.add(c);
  }
  t.ok(commands.size >= 12, `found the commands: ${[...commands].join(' ')}`);
  const runs = [...commands].map((c) => [c, help([c])] as const);
  for (const [c, run] of runs) {
    const r = await run;
    t.equal(r.status, 0, `meshmedic ${c} --help exits 0${r.status === 0 ? '' : `\n${r.stdout}${r.stderr}`}`);
    t.match(r.stdout, new RegExp(`Usage: meshmedic ${c}\\b`), `meshmedic ${c} --help prints its usage`);
  }
});

t.test('README quick mode, followed literally', async (t) => {
  if (spawnSync('curl', ['--version']).error) throw new Error('curl is missing: run scripts/ensure-peers.sh');
  const block = quickModeBlock()?.lines ?? [];
  t.ok(block.length >= 6, `found the quick-mode block:\n${block.join('\n')}`);
  const ports = new Map<string, string>();
  // The README's commands name their ports, so the children are told theirs (see childPorts).
  const given = await childPorts(4);
  for (const [i, p] of ['8081', '8082', '17000', '17001'].entries()) ports.set(p, String(given[i]));
  const swap = (cmd: string) => cmd.replace(/(?<!\d)(8081|8082|17000|17001)(?!\d)/g, (p) => ports.get(p)!);
  const background: ChildProcess[] = [];
  t.teardown(async () => {
    for (const c of background) if (c.exitCode === null) c.kill('SIGTERM');
    await Promise.all(background.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
  });
  const admin = `127.0.0.1:${ports.get('17000')}`;
  let waited = false;
  for (const raw of block) {
    const cmd = swap(raw);
    if (cmd.endsWith('&')) {
      const c = spawn('bash', ['-c', `exec ${cmd.slice(0, -1).trim()}`], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      c.stdout!.resume();
      c.stderr!.resume();
      background.push(c);
      continue;
    }
    if (!waited) {
      // The background processes start in parallel: wait until the proxy's admin API answers.
      for (let i = 0; i < 150; i++) {
        if (spawnSync('curl', ['-sf', `http://${admin}/readyz`]).status === 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      waited = true;
    }
    const r = spawnSync('bash', ['-c', cmd], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
    t.equal(r.status, 0, `${raw}\n${r.stdout}${r.stderr}`);
    t.ok(r.stdout.trim().length > 0, `${raw} printed something`);
    if (raw.includes('/eject')) t.match(JSON.parse(r.stdout), { applied: true, endpoint: { state: 'ejected' } }, 'the eject was applied');
    if (raw.includes(' endpoints --admin')) t.match(r.stdout, new RegExp(`default/127\\.0\\.0\\.1:${ports.get('8081')}\\s+ejected`), 'the CLI shows the ejection');
  }
});

t.test('commands named inline in the README exist: npm scripts in package.json, meshmedic commands answer --help', async (t) => {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  // Inline spans are references in prose (the blocks above are what a reader runs): each must name
  // something that exists. npm install/test/pack/ci/link and node are npm's and Node's own.
  const spans = README.flatMap((l) => [...l.matchAll(/`((?:npm|meshmedic) [^`]+)`/g)].map((m) => m[1]!));
  t.ok(spans.length >= 10, `found ${spans.length} inline commands`);
  const own = new Set(['install', 'test', 'pack', 'ci', 'link', 'start']);
  const checks: { span: string; args: string[]; run: ReturnType<typeof help> }[] = [];
  for (const span of spans) {
    const words = span.split(/\s+/);
    if (words[0] === 'npm') {
      if (words[1] === 'run') t.ok(pkg.scripts[words[2]!] !== undefined, `${span}: package.json has the script ${words[2]}`);
      else if (words[1] === 'start') t.ok(pkg.scripts.start !== undefined, `${span}: package.json has a start script`);
      else t.ok(own.has(words[1]!.replace(/&&.*/, '')), `${span}: an npm command`);
    } else {
      for (const c of words[1]!.split('|')) {
        const sub = words[2] !== undefined && !words[2].startsWith('-') && /^[a-z|-]+$/.test(words[2]) ? words[2].split('|') : [undefined];
        for (const s of sub) {
          const args = s === undefined ? [c] : [c, s];
          checks.push({ span, args, run: help(args) });
        }
      }
    }
  }
  for (const { span, args, run } of checks) {
    const r = await run;
    t.equal(r.status, 0, `${span}: meshmedic ${args.join(' ')} --help exits 0${r.status === 0 ? '' : `\n${r.stdout}${r.stderr}`}`);
  }
});
