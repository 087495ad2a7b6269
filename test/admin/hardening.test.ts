// Admin API hardening (the edge-security review's A1-A3) against a real listener: mutations need
// application/json even without a body, the Host header must name the listener (DNS rebinding), operator
// ejections pass the healing guards unless forced and do not count towards automatic backoff, and an
// off-loopback admin API without a strong token refuses to start (or runs read-only, said at start).
import t, { type Test } from 'tap';
import { request } from 'undici';
import { main } from '../../src/cli/main.js';
import { validateConfig } from '../../src/config/load.js';
import { VirtualClock, type Clock } from '../../src/core/clock.js';
import { createLogger, silentLogger, type Logger } from '../../src/core/log.js';
import { startSidecar } from '../../src/runtime/sidecar.js';

function config(extra: Record<string, unknown> = {}, endpoints = 2) {
  const v = validateConfig({
    admin: { listen: '127.0.0.1:0' },
    outbound: { enabled: false },
    services: [{ name: 'pay', endpoints: Array.from({ length: endpoints }, (_, i) => ({ address: `127.0.0.1:${9001 + i}` })) }],
    ...extra,
  });
  if (!v.valid) throw new Error(v.errors.join('\n'));
  return v.result;
}

async function sidecar(t: Test, extra?: Record<string, unknown>, endpoints = 2, log: Logger = silentLogger, clock?: Clock) {
  const s = await startSidecar(config(extra, endpoints), { log, components: [], clock });
  t.teardown(() => s.close(0));
  const base = `http://${s.addresses.admin}`;
  const call = async (method: string, path: string, opts: { body?: string; headers?: Record<string, string> } = {}) => {
    const r = await request(base + path, { method: method as 'GET', body: opts.body, headers: opts.headers ?? {} });
    const text = await r.body.text();
    let json: any;
    try { json = JSON.parse(text); } catch { json = undefined; }
    return { status: r.statusCode, json };
  };
  const json = { 'content-type': 'application/json' };
  const state = async (id: string) => (await call('GET', '/v1/endpoints')).json.endpoints.find((e: { id: string }) => e.id === id);
  return { s, call, json, state };
}

const ID = 'pay/127.0.0.1:9001';
const enc = encodeURIComponent;

t.test('A1: a POST without a body and without content-type does not eject (no CORS-simple mutation)', async (t) => {
  const { call, state } = await sidecar(t);
  const bare = await call('POST', `/v1/endpoints/${enc(ID)}/eject`);
  t.equal(bare.status, 415, 'no content-type, no body → 415');
  t.equal(bare.json.error, 'MM_ERR_UNSUPPORTED_MEDIA_TYPE');
  t.match(bare.json.message, /application\/json \(also without a body\)/);
  for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx']) {
    t.equal((await call('POST', `/v1/endpoints/${enc(ID)}/eject`, { headers: { 'content-type': ct } })).status, 415, `${ct} → 415`);
  }
  t.equal((await state(ID)).state, 'healthy', 'still healthy');
  const ok = await call('POST', `/v1/endpoints/${enc(ID)}/eject`, { headers: { 'content-type': 'application/json; charset=utf-8' } });
  t.equal(ok.status, 200, 'application/json with no body is accepted');
  t.equal((await state(ID)).state, 'ejected');
});

t.test('A1: the Host header must name the admin listener (DNS rebinding)', async (t) => {
  const { s, call } = await sidecar(t, { admin: { listen: '127.0.0.1:0', allowedHosts: ['meshmedic.internal'] } });
  const port = s.addresses.admin!.split(':').pop();
  for (const host of ['evil.example', `evil.example:${port}`, 'localhost.evil.example', `127.0.0.1.nip.io:${port}`]) {
    const r = await call('GET', '/v1/endpoints', { headers: { host } });
    t.equal(r.status, 421, `Host: ${host} → 421`);
    t.equal(r.json.error, 'MM_ERR_ADMIN_HOST');
  }
  t.equal((await call('POST', `/v1/endpoints/${enc(ID)}/eject`, { headers: { host: 'evil.example', 'content-type': 'application/json' } })).status, 421, 'mutations too');
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'localhost', '127.0.0.2', `[::1]:${port}`, 'meshmedic.internal', `MeshMedic.Internal:${port}`]) {
    t.equal((await call('GET', '/healthz', { headers: { host } })).status, 200, `Host: ${host} → 200`);
  }
});

t.test('A2: operator ejections pass the guards unless forced', async (t) => {
  const { call, json, state } = await sidecar(t);
  t.equal((await call('POST', `/v1/endpoints/${enc(ID)}/eject`, { headers: json, body: '{}' })).status, 200, 'one of two: allowed (always eject one)');
  const second = await call('POST', `/v1/endpoints/${enc('pay/127.0.0.1:9002')}/eject`, { headers: json, body: '{}' });
  t.equal(second.status, 409, 'both endpoints out would put the service in panic: refused');
  t.equal(second.json.error, 'MM_ERR_GUARD_REFUSED');
  t.match(second.json.guard, /panic|max_ejection_pct/);
  t.match(second.json.message, /"force": true/);
  t.equal((await state('pay/127.0.0.1:9002')).state, 'healthy');
  t.equal((await call('POST', `/v1/endpoints/${enc('pay/127.0.0.1:9002')}/eject`, { headers: json, body: '{"force": true}' })).status, 200, 'forced: applied');
  t.equal((await state('pay/127.0.0.1:9002')).state, 'ejected');
  t.equal((await call('POST', `/v1/endpoints/${enc(ID)}/eject`, { headers: json, body: '{"force": "yes"}' })).status, 400, 'force must be a boolean');
});

t.test('A2: operator eject/restore cycles are rate limited and do not inflate the ejection count', async (t) => {
  // Virtual time: the bucket (burst 5, 2 a second) refills only when the test moves the clock, so the count is
  // exact however slow the machine.
  const clock = new VirtualClock();
  const { call, json, state } = await sidecar(t, {}, 10, silentLogger, clock);
  const cycles = async (n: number) => {
    let applied = 0;
    let limited = 0;
    for (let i = 0; i < n; i++) {
      const r = await call('POST', `/v1/endpoints/${enc(ID)}/eject`, { headers: json, body: '{}' });
      if (r.status === 200 && r.json.applied) applied++;
      if (r.status === 409 && r.json.guard === 'rate_limit') limited++;
      await call('POST', `/v1/endpoints/${enc(ID)}/restore`, { headers: json, body: '{}' });
    }
    return { applied, limited };
  };
  const burst = await cycles(50);
  t.equal(burst.applied, 5, 'the burst (5) is applied');
  t.equal(burst.limited, 45, 'the rest refused by the rate limit');
  clock.advance(1000);
  const refill = await cycles(10);
  t.same(refill, { applied: 2, limited: 8 }, 'one second later: the refill (2/s) is applied, no more');
  for (let i = 0; i < 20; i++) {
    await call('POST', `/v1/endpoints/${enc(ID)}/eject`, { headers: json, body: '{"force": true}' });
    await call('POST', `/v1/endpoints/${enc(ID)}/restore`, { headers: json, body: '{}' });
  }
  t.equal((await state(ID)).ejections, 0, 'operator ejections do not count towards automatic backoff');
});

t.test('A3: an off-loopback admin API needs a token of at least 16 characters, or readOnly', async (t) => {
  const base = { outbound: { enabled: false } };
  const noToken = validateConfig({ ...base, admin: { listen: '0.0.0.0:17999' } });
  t.notOk(noToken.valid);
  t.match(noToken.valid ? '' : noToken.errors.join('\n'), /\/admin\/token: the admin API listens off loopback \(0\.0\.0\.0:17999\) and admin\.token is not set: set a token of at least 16 characters/);
  const short = validateConfig({ ...base, admin: { listen: '0.0.0.0:17999', token: 'x' } });
  t.match(short.valid ? '' : short.errors.join('\n'), /only 1 characters long/);
  t.ok(validateConfig({ ...base, admin: { listen: '0.0.0.0:17999', token: 'a'.repeat(16) } }).valid, '16 characters: accepted');
  t.ok(validateConfig({ ...base, admin: { listen: '0.0.0.0:17999', readOnly: true } }).valid, 'read-only without a token: accepted');
  t.ok(validateConfig({ ...base, admin: { listen: '127.0.0.1:17999' } }).valid, 'loopback without a token: accepted');

  let err = '';
  const code = await main(['proxy', '--listen', '127.0.0.1:0', '--upstream', 'http://127.0.0.1:9', '--admin', '0.0.0.0:0'], { out: () => {}, err: (s) => { err += s; }, env: {} });
  t.equal(code, 2, 'meshmedic proxy --admin 0.0.0.0:P without a token exits 2');
  t.match(err, /admin\.token/, `with a clear error: ${err.trim().split('\n').pop()}`);
  let err2 = '';
  const code2 = await main(['proxy', '--listen', '127.0.0.1:0', '--upstream', 'http://127.0.0.1:9', '--admin', '0.0.0.0:0'], { out: () => {}, err: (s) => { err2 += s; }, env: { MESHMEDIC_ADMIN__TOKEN: 'short' } });
  t.equal(code2, 2, 'and with a 5-character token');
});

t.test('A3: a read-only admin API says so at start and refuses every change', async (t) => {
  const lines: string[] = [];
  const { call, json, state } = await sidecar(t, { admin: { listen: '127.0.0.1:0', readOnly: true } }, 2, createLogger('info', (l) => { lines.push(l); }));
  t.ok(lines.some((l) => l.includes('read-only')), 'a warning at start says the admin API is read-only');
  const r = await call('POST', `/v1/endpoints/${enc(ID)}/eject`, { headers: json, body: '{"force": true}' });
  t.equal(r.status, 403);
  t.equal(r.json.error, 'MM_ERR_ADMIN_READ_ONLY');
  t.equal((await state(ID)).state, 'healthy');
  t.equal((await call('GET', '/v1/endpoints')).status, 200, 'reads work');
});
