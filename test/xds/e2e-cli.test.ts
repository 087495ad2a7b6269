// The acceptance contract, end to end: `meshmedic proxy ... --service hello --xds ... --admin ...` serves
// `xds:///hello` to a real grpc-js-xds client; after the admin eject of G1, G1 gets no further calls.
import t from 'tap';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { register } from '@grpc/grpc-js-xds';
import { distribution, setBootstrap, startBackend, waitFor } from './helpers.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

// Runs the CLI from source (no build needed); exits with its code.
const RUN_CLI = "const { main } = await import('./src/cli/main.ts'); process.exitCode = await main(process.argv.slice(1));";


t.test('meshmedic proxy --xds: xds:///hello reaches all three; after the admin eject G1 gets no calls', async (t) => {
  const backends = await Promise.all([startBackend(), startBackend(), startBackend()]);
  // Every listener on port 0: the child reports the ports it bound (a port freed by the test could be
  // taken by another process before the child binds it).
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', RUN_CLI, 'proxy', '--listen', '127.0.0.1:0', '--upstream', backends.map((b) => `http://127.0.0.1:${b.port}`).join(','), '--service', 'hello', '--xds', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--protocol', 'h2c', '--log-level', 'warn'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let client: grpc.Client | undefined;
  t.teardown(async () => {
    client?.close();
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
    await Promise.all(backends.map((b) => b.close()));
  });
  // The "meshmedic ready" line carries the bound addresses (a guard against a hang, not a bound on speed).
  const ready = await waitFor(async () => stdout.includes('"meshmedic ready"') || child.exitCode !== null, 60_000, 50);
  const line = stdout.split('\n').find((l) => l.includes('"meshmedic ready"'));
  t.ok(ready && line, `the sidecar starts ${line ? '' : stderr}`);
  if (!line) return;
  const { admin, xds } = (JSON.parse(line) as { addresses: Record<string, string> }).addresses;
  t.ok(admin && xds, `admin and xDS addresses reported: ${line}`);
  const up = await waitFor(async () => {
    try {
      return (await fetch(`http://${admin}/readyz`)).ok;
    } catch {
      return false;
    }
  }, 30_000, 100);
  t.ok(up, `the sidecar is ready ${up ? '' : stderr}`);
  if (!up) return;
  setBootstrap(xds!, 'cli-node');
  register();
  const xdsClient = (client = new grpc.Client('xds:///hello', grpc.credentials.createInsecure()));
  const before = await distribution(xdsClient, 60);
  for (const b of backends) t.ok((before.get(b.port) ?? 0) > 0, `backend ${b.port} is reached via xds:///hello`);
  const g1 = backends[0]!;
  const res = await fetch(`http://${admin}/v1/endpoints/${encodeURIComponent(`hello/127.0.0.1:${g1.port}`)}/eject`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'acceptance' }) });
  t.ok(res.ok, `the admin eject is accepted (${res.status})`);
  t.ok(await waitFor(async () => {
    const c = g1.calls;
    await distribution(xdsClient, 10);
    return g1.calls === c;
  }, 8000), 'the ejection reaches the client');
  const c = g1.calls;
  const after = await distribution(xdsClient, 60);
  t.equal(g1.calls, c, 'G1 gets no further calls');
  t.notOk(after.get(0), 'no call fails');
  const st = (await (await fetch(`http://${admin}/v1/xds`)).json()) as { nodes: Record<string, { types: { state: string }[] }[]> };
  t.ok(st.nodes['cli-node']?.[0]?.types.some((x) => x.state === 'ACKED'), 'GET /v1/xds shows the client’s ACKs');
});
