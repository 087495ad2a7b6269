// The status commands against a running sidecar's admin API: status, endpoints (contract: each endpoint
// id and its state), events [--follow], eject/drain/restore with --for and --reason, top --once,
// config-dump (redacted); --admin and MESHMEDIC_ADMIN; clear errors; "did you mean" for flags.
import t, { type Test } from 'tap';
import net from 'node:net';
import { validateConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/core/log.js';
import { Outcome } from '../../src/core/types.js';
import { startSidecar } from '../../src/runtime/sidecar.js';
import { main, type CliIo } from '../../src/cli/main.js';
import { parseDuration } from '../../src/cli/status.js';
import { quickConfig } from '../../src/cli/quick.js';
import { loadConfigFile } from '../../src/config/load.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

async function sidecar(t: Test) {
  const v = validateConfig({
    admin: { listen: '127.0.0.1:0', token: 'tok-123456789' },
    outbound: { enabled: false },
    services: [
      { name: 'pay', endpoints: [{ address: '127.0.0.1:9001' }, { address: '127.0.0.1:9002' }] },
      { name: 'cart', endpoints: [{ address: '127.0.0.1:9101' }] },
    ],
  });
  if (!v.valid) throw new Error(v.errors.join('\n'));
  const s = await startSidecar(v.result, { log: silentLogger, components: [] });
  t.teardown(() => s.close(0));
  return s;
}

async function run(argv: string[], env: Record<string, string> = {}) {
  let out = '';
  let err = '';
  const io: CliIo = { out: (s) => (out += s), err: (s) => (err += s), env };
  const code = await main(argv, io);
  return { code, out, err };
}

t.test('endpoints --admin H:P prints each endpoint id and its state', async (t) => {
  const s = await sidecar(t);
  const ev = s.context.mesh.snapshot().endpoints.get('pay/127.0.0.1:9001')!;
  const w = s.context.stats.ensure(ev.slot);
  for (let i = 0; i < 20; i++) w.record(i < 18 ? Outcome.Success : Outcome.Gateway, 4000, Date.now(), i < 18 ? 200 : 503);
  const r = await run(['endpoints', '--admin', s.addresses.admin!]);
  t.equal(r.code, 0, r.err);
  for (const id of s.context.mesh.snapshot().endpoints.keys()) t.match(r.out, new RegExp(`^${id.replace(/[./]/g, '\\$&')}\\s+healthy\\s`, 'm'), `${id} healthy`);
  t.match(r.out, /^ENDPOINT\s+STATE\s+WEIGHT\s+RPS\s+ERRORS\s+P50\s+P99$/m);
  t.match(r.out, /pay\/127\.0\.0\.1:9001\s+healthy\s+1\s+2\s+10\.0%\s+4\.\d\dms/);
  const svc = await run(['endpoints', '--service', 'cart', '-o', 'wide'], { MESHMEDIC_ADMIN: s.addresses.admin! });
  t.equal(svc.code, 0);
  t.notMatch(svc.out, /pay\//);
  t.match(svc.out, /REASON\s+SOURCE\s+SINCE\s+LOCALITY/);
  const json = await run(['endpoints', '-o', 'json', '--admin', s.addresses.admin!]);
  t.equal(JSON.parse(json.out).endpoints.length, 3);
});

t.test('eject / drain / restore with --for and --reason, token from the environment; events', async (t) => {
  const s = await sidecar(t);
  const admin = s.addresses.admin!;
  const env = { MESHMEDIC_ADMIN: admin, MESHMEDIC_ADMIN_TOKEN: 'tok-123456789' };
  const denied = await run(['eject', 'pay/127.0.0.1:9001'], { MESHMEDIC_ADMIN: admin });
  t.equal(denied.code, 1);
  t.match(denied.err, /MM_ERR_UNAUTHORIZED.*MESHMEDIC_ADMIN_TOKEN/);
  const ej = await run(['eject', 'pay/127.0.0.1:9001', '--for', '30s', '--reason', 'maintenance'], env);
  t.equal(ej.code, 0, ej.err);
  t.match(ej.out, /^pay\/127\.0\.0\.1:9001: ejected until \d{4}-.*\(decision 1\)$/m);
  const until = s.context.mesh.snapshot().endpoints.get('pay/127.0.0.1:9001')!.health.until!;
  t.ok(Math.abs(until - Date.now() - 30_000) < 5000, 'ejected for 30 s');
  // The only endpoint of cart: the healing guards refuse, --force overrides them.
  t.match(await run(['drain', 'cart/127.0.0.1:9101', '--token', 'tok-123456789', '--admin', admin]), { code: 1, err: /refused by the .* guard.*force/ });
  t.equal((await run(['drain', 'cart/127.0.0.1:9101', '--force', '--token', 'tok-123456789', '--admin', admin])).code, 0);
  const again = await run(['restore', 'cart/127.0.0.1:9101'], env);
  t.match(again.out, /cart\/127\.0\.0\.1:9101: healthy/);
  const ev = await run(['events'], env);
  t.match(ev.out, /eject\s+pay\/127\.0\.0\.1:9001\s+maintenance\s+operator\s+applied\s+via=admin-api/);
  t.match(ev.out, /drain\s+cart\/127\.0\.0\.1:9101/);
  const st = await run(['status'], env);
  t.match(st.out, /endpoints:\s+3 \(2 healthy, 1 ejected\)/);
  const top = await run(['top', '--once'], env);
  t.match(top.out, /meshmedic top/);
  t.match(top.out, /pay\/127\.0\.0\.1:9001\s+ejected/);
  const dump = await run(['config-dump'], env);
  t.equal(JSON.parse(dump.out).admin.token, '<redacted>');
  t.notMatch(dump.out, /tok-123456789/);
  t.match(await run(['eject', 'pay/10.0.0.1:1'], env), { code: 1, err: /MM_ERR_NOT_FOUND/ });
  t.match(await run(['eject'], env), { code: 2, err: /ID is required/ });
  t.match(await run(['eject', 'x', '--for', 'soon'], env), { code: 2, err: /--for must be a duration such as 30s/ });
});

t.test('events --follow prints decisions as they happen', async (t) => {
  const s = await sidecar(t);
  let out = '';
  let wake: (() => void) | undefined;
  const io: CliIo = { out: (x) => { out += x; wake?.(); }, err: () => {}, env: { MESHMEDIC_ADMIN: s.addresses.admin! } };
  const done = main(['events', '--follow'], io);
  // The stream is attached once the sidecar counts a dashboard client.
  while ((s.context.mesh.snapshot() && (await (await fetch(`http://${s.addresses.admin}/v1/status`)).json()).dashboardClients) === 0) await new Promise((r) => setTimeout(r, 20));
  s.context.mesh.apply({ action: 'eject', target: 'pay/127.0.0.1:9002', reason: 'consecutive_5xx', source: 'local', at: Date.now(), evidence: { consecutive5xx: 5 } });
  while (!out.includes('consecutive_5xx')) await new Promise<void>((r) => (wake = r));
  t.match(out, /eject\s+pay\/127\.0\.0\.1:9002\s+consecutive_5xx\s+local\s+applied\s+consecutive5xx=5/);
  process.emit('SIGINT');
  t.equal(await done, 0);
});

t.test('clear errors: unreachable admin, unknown flag with a suggestion, durations', async (t) => {
  // A port nothing listens on: bind one, then free it.
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  const r = await run(['status', '--admin', `127.0.0.1:${port}`]);
  t.equal(r.code, 1);
  t.match(r.err, new RegExp(`cannot reach the admin API at http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\).*--admin HOST:PORT or MESHMEDIC_ADMIN`));
  t.match(await run(['endpoints', '--servce', 'x']), { code: 2, err: /unknown flag --servce — did you mean --service\?/ });
  t.match(await run(['run', '--conifg', 'x.yaml']), { code: 2, err: /did you mean --config\?/ });
  t.match(await run(['endpoint']), { code: 2, err: /did you mean "endpoints"\?/ });
  t.match(await run(['endpoints', '-o', 'yaml']), { code: 2, err: /-o must be wide or json/ });
  t.equal(parseDuration('30s'), 30_000);
  t.equal(parseDuration('5m'), 300_000);
  t.equal(parseDuration('1500'), 1500);
  t.match(parseDuration('8d'), /duration/);
});

t.test('CLI polish: --upstream schemes and paths, env-override errors name the variable, YAML errors whole', async (t) => {
  const q = (upstream: string) => quickConfig({ listen: '127.0.0.1:0', upstream });
  t.match(q('grpc://127.0.0.1:9000'), { valid: false, errors: [/--upstream "grpc:\/\/127\.0\.0\.1:9000": scheme "grpc" is not supported.*--protocol h2c/] });
  t.match(q('https://127.0.0.1:9000'), { valid: false, errors: [/scheme "https" is not supported/] });
  t.match(q('http://127.0.0.1:9000/api/v1'), { valid: false, errors: [/the path "\/api\/v1" would be ignored/] });
  t.match(q('http://127.0.0.1:9000?x=1'), { valid: false, errors: [/the path "\?x=1" would be ignored/] });
  t.match(q('http://127.0.0.1:9000/,127.0.0.1:9001'), { valid: true });
  const dir = mkdtempSync(join(tmpdir(), 'meshmedic-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'c.yaml');
  writeFileSync(file, 'admin:\n  listen: 127.0.0.1:0\n');
  const env = loadConfigFile(file, { MESHMEDIC_ADMIN__LISTEN: 'nowhere' });
  t.match(env, { valid: false, errors: [/^\/admin\/listen \(set by MESHMEDIC_ADMIN__LISTEN\): /] });
  writeFileSync(file, 'admin:\n  listen: [1, 2\nlog: {}\n');
  const bad = loadConfigFile(file, {});
  t.notOk(bad.valid);
  if (!bad.valid) t.ok(bad.errors[0]!.split('\n').length > 1, `the whole parser message, with its code frame:\n${bad.errors[0]}`);
});
