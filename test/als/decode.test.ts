// The in-place access-log reader against Envoy's own message types: random entries encoded by protobufjs
// from the protos decode to the same cluster, host, code, flags and timings; malformed bytes are refused.
import t from 'tap';
import { AccessLogDecoder, ENTRY_HTTP, ENTRY_TCP, Flag, type AlsEntry } from '../../src/als/decode.js';
import { classifyEntry, latencyOf } from '../../src/als/classify.js';
import { WireError } from '../../src/als/wire.js';
import { Outcome } from '../../src/core/types.js';
import { seededRandom as mulberry32 } from '../../src/core/random.js';
import { encodeHttpLogs, encodeTcpLogs, type HttpLogInput } from '../../src/testing/als-client.js';

const FLAG_NAMES = ['failed_local_healthcheck', 'no_healthy_upstream', 'upstream_request_timeout', 'local_reset', 'upstream_remote_reset',
  'upstream_connection_failure', 'upstream_connection_termination', 'upstream_overflow', 'no_route_found', 'delay_injected', 'fault_injected',
  'rate_limited'];

function collect(buf: Buffer, max = 1e9): { entries: AlsEntry[]; res: ReturnType<AccessLogDecoder['decode']> } {
  const entries: AlsEntry[] = [];
  const res = new AccessLogDecoder().decode(buf, max, (e) => entries.push({ ...e }));
  return { entries, res: { ...res } };
}

t.test('random HTTP entries decode to what was encoded (seeded)', async (t) => {
  const seed = Number(process.env.MESHMEDIC_TEST_SEED ?? 20261206);
  t.comment(`seed ${seed} (MESHMEDIC_TEST_SEED to replay)`);
  const rnd = mulberry32(seed);
  for (let round = 0; round < 50; round++) {
    const inputs: HttpLogInput[] = [];
    const n = 1 + Math.floor(rnd() * 20);
    for (let i = 0; i < n; i++) {
      const flags = FLAG_NAMES.filter(() => rnd() < 0.1);
      const v6 = rnd() < 0.2;
      inputs.push({
        cluster: ['hello', 'payments', 'outbound|8080||hello.shop.svc.cluster.local', 'ünïcode'][Math.floor(rnd() * 4)]!,
        upstream: rnd() < 0.1 ? '' : v6 ? `[fd00::${Math.floor(rnd() * 255)}]:${1 + Math.floor(rnd() * 65535)}` : `10.0.${Math.floor(rnd() * 255)}.${Math.floor(rnd() * 255)}:${1 + Math.floor(rnd() * 65535)}`,
        code: rnd() < 0.1 ? 0 : [200, 201, 404, 500, 502, 503, 504][Math.floor(rnd() * 7)],
        flags,
        upstreamMs: Math.round(rnd() * 5_000_000) / 1000,
        sampleRate: rnd() < 0.5 ? 1 : Math.round(rnd() * 1000) / 1000 || 0.5,
      });
    }
    const { entries, res } = collect(encodeHttpLogs(inputs, round === 0 ? { id: 'envoy-1' } : undefined));
    if (round === 0) t.ok(res.identifierStart >= 0, 'identifier located on the first message');
    t.equal(entries.length, n, `round ${round}: ${n} entries`);
    for (let i = 0; i < n; i++) {
      const want = inputs[i]!;
      const got = entries[i]!;
      const host = want.upstream ? want.upstream.slice(0, want.upstream.lastIndexOf(':')).replace(/^\[|\]$/g, '') : '';
      const port = want.upstream ? Number(want.upstream.slice(want.upstream.lastIndexOf(':') + 1)) : 0;
      const ok = got.kind === ENTRY_HTTP && got.cluster === want.cluster && got.host === host && got.port === port
        && got.code === (want.code ?? 0) && Math.abs(got.sampleRate - want.sampleRate!) < 1e-12
        && (want.upstream ? Math.abs(got.upstreamUs - want.upstreamMs! * 1000) <= 1 : got.upstreamUs === -1)
        && FLAG_NAMES.every((f, j) => Boolean(got.flags & (1 << (j + 1))) === want.flags!.includes(f));
      if (!ok) {
        t.fail(`seed ${seed} round ${round} entry ${i}: ${JSON.stringify(got)} vs ${JSON.stringify(want)}`);
        return;
      }
    }
  }
  t.pass('every entry matched');
});

t.test('TCP entries: host and connect failure', async (t) => {
  const { entries } = collect(encodeTcpLogs([{ cluster: 'db', upstream: '10.0.0.5:5432', failed: true }, { cluster: 'db', upstream: '10.0.0.6:5432', failed: false }]));
  t.equal(entries.length, 2);
  t.equal(entries[0]!.kind, ENTRY_TCP);
  t.equal(entries[0]!.host, '10.0.0.5');
  t.equal(classifyEntry(entries[0]!), Outcome.LocalOrigin);
  t.equal(classifyEntry(entries[1]!), Outcome.Success);
});

t.test('outcome classes follow Envoy response flags, then the code', async (t) => {
  const cases: [HttpLogInput, Outcome | string][] = [
    [{ cluster: 'c', upstream: '10.0.0.1:80', code: 200 }, Outcome.Success],
    [{ cluster: 'c', upstream: '10.0.0.1:80', code: 404 }, Outcome.Success],
    [{ cluster: 'c', upstream: '10.0.0.1:80', code: 500 }, Outcome.Error5xx],
    [{ cluster: 'c', upstream: '10.0.0.1:80', code: 503 }, Outcome.Gateway],
    [{ cluster: 'c', upstream: '10.0.0.1:80', code: 503, flags: ['upstream_connection_failure'] }, Outcome.LocalOrigin],
    [{ cluster: 'c', upstream: '10.0.0.1:80', code: 504, flags: ['upstream_request_timeout'] }, Outcome.LocalOrigin],
    [{ cluster: 'c', upstream: '10.0.0.1:80', code: 503, flags: ['upstream_remote_reset'] }, Outcome.LocalOrigin],
    [{ cluster: 'c', upstream: '10.0.0.1:80', code: 0, flags: ['downstream_connection_termination'] }, Outcome.Cancelled],
    [{ cluster: 'c', upstream: '10.0.0.1:80', code: 0, flags: ['local_reset'] }, Outcome.Cancelled],
    [{ cluster: 'c', upstream: '', code: 503, flags: ['no_healthy_upstream'] }, 'no_upstream_host'],
    [{ cluster: 'c', upstream: '10.0.0.1:80', code: 503, flags: ['upstream_overflow'] }, 'local_reply'],
    [{ cluster: 'c', upstream: '10.0.0.1:80', code: 429, flags: ['rate_limited'] }, 'local_reply'],
    [{ cluster: 'c', upstream: '10.0.0.1:80', code: 0 }, 'local_reply'],
  ];
  for (const [input, want] of cases) {
    const { entries } = collect(encodeHttpLogs([input]));
    t.equal(classifyEntry(entries[0]!), want, `${input.code} ${JSON.stringify(input.flags ?? [])} ${input.upstream || 'no host'}`);
  }
  const { entries } = collect(encodeHttpLogs([{ cluster: 'c', upstream: '10.0.0.1:80', code: 200, upstreamMs: 12.5 }]));
  t.equal(latencyOf(entries[0]!), 12500, 'latency from time_to_last_upstream_rx_byte, µs');
  t.equal(Flag.UpstreamConnectionFailure, 1 << 6);
});

t.test('a batch over the limit is cut, the rest counted', async (t) => {
  const inputs = Array.from({ length: 30 }, () => ({ cluster: 'c', upstream: '10.0.0.1:80', code: 200 }));
  const { entries, res } = collect(encodeHttpLogs(inputs), 10);
  t.equal(entries.length, 10);
  t.equal(res.overLimit, 20);
});

t.test('malformed bytes are refused with a WireError, never a crash or a hang', async (t) => {
  const good = encodeHttpLogs([{ cluster: 'c', upstream: '10.0.0.1:80', code: 200 }]);
  const bad: [string, Buffer][] = [
    ['truncated', good.subarray(0, good.length - 3)],
    ['length past the end', Buffer.from([0x12, 0x7f, 0x0a, 0x01])],
    ['endless varint', Buffer.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])],
    ['unknown wire type', Buffer.from([0x0f])],
  ];
  for (const [name, buf] of bad) t.throws(() => collect(buf), WireError, name);
  // Random garbage: every outcome is entries or a WireError.
  const rnd = mulberry32(7);
  for (let i = 0; i < 2000; i++) {
    const b = Buffer.alloc(1 + Math.floor(rnd() * 64));
    for (let j = 0; j < b.length; j++) b[j] = Math.floor(rnd() * 256);
    try {
      collect(b);
    } catch (err) {
      if (!(err instanceof WireError)) {
        t.fail(`garbage #${i} threw ${(err as Error).name}: ${(err as Error).message}`);
        return;
      }
    }
  }
  t.pass('2,000 garbage messages: entries or WireError');
});
