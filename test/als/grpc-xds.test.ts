// The loop closed with a real proxyless client: a @grpc/grpc-js-xds channel follows meshmedic's EDS while
// an access-log stream (as Envoy would send it) shows one endpoint failing; the client stops calling it.
// One scenario per file: grpc-js-xds registers globally.
import t from 'tap';
import * as grpc from '@grpc/grpc-js';
import { register } from '@grpc/grpc-js-xds';
import { validateConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/core/log.js';
import { startSidecar } from '../../src/runtime/sidecar.js';
import { encodeHttpLogs, openAccessLogStream } from '../../src/testing/als-client.js';
import { distribution, setBootstrap, startBackend, waitFor } from '../xds/helpers.js';

t.test('an endpoint failing in the access log gets no more calls from a grpc-js-xds client', async (t) => {
  const backends = await Promise.all([startBackend(), startBackend(), startBackend()]);
  const v = validateConfig({
    outbound: { enabled: false },
    admin: { enabled: false },
    xds: { enabled: true, listen: '127.0.0.1:0' },
    als: { enabled: true },
    // A long backoff: the ejection must hold for the whole test, whatever the probes find.
    healing: { ejection: { baseMs: 120_000 } },
    services: [{ name: 'hello', protocol: 'h2c', endpoints: backends.map((b) => ({ address: b.address })) }],
  });
  if (!v.valid) throw new Error(v.errors.join('\n'));
  const sidecar = await startSidecar(v.result, { log: silentLogger });
  const xds = sidecar.addresses.xds!;
  setBootstrap(xds);
  register();
  const client = new grpc.Client('xds:///hello', grpc.credentials.createInsecure());
  const stream = openAccessLogStream(xds);
  t.teardown(async () => {
    stream.close();
    client.close();
    await sidecar.close(500);
    await Promise.all(backends.map((b) => b.close()));
  });

  const before = await distribution(client, 60);
  for (const b of backends) t.ok((before.get(b.port) ?? 0) > 0, `backend ${b.port} is called before`);

  const victim = backends[0]!;
  // What an Envoy in front of these backends would report: the victim answers 503, the others 200.
  await stream.send(encodeHttpLogs([
    ...Array.from({ length: 6 }, () => ({ cluster: 'hello', upstream: victim.address, code: 503, upstreamMs: 1 })),
    ...backends.slice(1).map((b) => ({ cluster: 'hello', upstream: b.address, code: 200, upstreamMs: 2 })),
  ], { id: 'envoy-gw' }));
  t.ok(await waitFor(async () => {
    const c = victim.calls;
    await distribution(client, 10);
    return victim.calls === c;
  }, 5000), 'the client stops calling the endpoint the log shows failing');
  const calls = victim.calls;
  const after = await distribution(client, 60);
  t.equal(victim.calls, calls, 'no further call reaches it');
  t.notOk(after.get(0), 'and no call fails');
  t.equal((await stream.end())?.code, 0);
});
