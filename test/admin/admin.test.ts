import t, { type Test } from 'tap';
import { request } from 'undici';
import { validateConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/types.js';
import { silentLogger } from '../../src/core/log.js';
import { Outcome } from '../../src/core/types.js';
import { startSidecar } from '../../src/runtime/sidecar.js';

function config(extra: Record<string, unknown> = {}): Config {
  const v = validateConfig({
    admin: { listen: '127.0.0.1:0' },
    outbound: { enabled: false },
    services: [{ name: 'pay', endpoints: [{ address: '127.0.0.1:9001' }, { address: '127.0.0.1:9002', priority: 1 }] }],
    ...extra,
  });
  if (!v.valid) throw new Error(v.errors.join('\n'));
  return v.result;
}

async function sidecar(t: Test, extra?: Record<string, unknown>) {
  const s = await startSidecar(config(extra), { log: silentLogger, components: [] });
  t.teardown(() => s.close(0));
  const base = `http://${s.addresses.admin}`;
  const call = async (method: 'GET' | 'POST', path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const r = await request(base + path, { method, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });
    const text = await r.body.text();
    let json: unknown;
    try { json = JSON.parse(text); } catch { json = undefined; }
    return { status: r.statusCode, json: json as any, text, headers: r.headers };
  };
  return { s, call };
}


t.test('health, readiness and endpoints', async (t) => {
  const { call } = await sidecar(t);
  t.same((await call('GET', '/healthz')).json, { status: 'ok' });
  t.equal((await call('GET', '/readyz')).status, 200);
  const r = await call('GET', '/v1/endpoints');
  t.equal(r.status, 200);
  t.equal(r.json.endpoints.length, 2);
  t.match(r.json.endpoints[0], { id: 'pay/127.0.0.1:9001', address: '127.0.0.1:9001', state: 'healthy', priority: 0 });
  t.equal((await call('GET', '/v1/nope')).status, 404);
  t.equal((await call('POST', '/healthz')).status, 405);
});

t.test('operator eject and restore go through the decision path', async (t) => {
  const { call, s } = await sidecar(t);
  const id = encodeURIComponent('pay/127.0.0.1:9001');
  const e = await call('POST', `/v1/endpoints/${id}/eject`, { durationMs: 60000, reason: 'maintenance' });
  t.equal(e.status, 200);
  t.match(e.json, { applied: true, endpoint: { state: 'ejected' } });
  const eps = (await call('GET', '/v1/endpoints')).json.endpoints;
  t.match(eps.find((x: any) => x.id === 'pay/127.0.0.1:9001'), { state: 'ejected', reason: 'maintenance', source: 'operator' });
  t.same((await call('GET', '/v1/endpoints')).json.services[0].priorityLoad, [0, 1], 'traffic fails over to priority 1');
  const ev = (await call('GET', '/v1/events')).json;
  t.match(ev.events.at(-1), { action: 'eject', reason: 'maintenance', source: 'operator', target: 'pay/127.0.0.1:9001', applied: true });
  const since = ev.last;
  t.equal((await call('POST', `/v1/endpoints/${id}/restore`, {})).json.endpoint.state, 'healthy');
  const ev2 = (await call('GET', `/v1/events?since=${since}`)).json;
  t.equal(ev2.events.length, 1);
  t.equal(ev2.events[0].action, 'restore');
  t.equal(s.context.mesh.snapshot().endpoints.get('pay/127.0.0.1:9001')!.health.state, 'healthy');
});

t.test('bad admin input gets a clear error and changes nothing', async (t) => {
  const { call, s } = await sidecar(t);
  const id = encodeURIComponent('pay/127.0.0.1:9001');
  const v = s.context.mesh.snapshot().version;
  t.match(await call('POST', `/v1/endpoints/${encodeURIComponent('pay/10.0.0.1:1')}/eject`, {}), { status: 404, json: { error: 'MM_ERR_NOT_FOUND' } });
  t.match(await call('POST', `/v1/endpoints/${id}/eject`, '{not json'), { status: 400, json: { error: 'MM_ERR_BAD_REQUEST', message: /not valid JSON/ } });
  t.match(await call('POST', `/v1/endpoints/${id}/eject`, { durationMs: -5 }), { status: 400, json: { message: /durationMs/ } });
  t.match(await call('POST', `/v1/endpoints/${id}/eject`, { duration: 5 }), { status: 400, json: { message: /unknown field\(s\) "duration"/ } });
  t.match(await call('POST', `/v1/endpoints/${id}/eject`, { a: 1 }, { 'content-type': 'text/plain' }), { status: 415 });
  t.match(await call('GET', '/v1/events?since=-1'), { status: 400 });
  t.match(await call('GET', '/v1/endpoints/%E0%A4%A/x'), { status: 400 });
  t.equal(s.context.mesh.snapshot().version, v, 'mesh state untouched');
  t.equal((await call('GET', '/healthz')).status, 200, 'still serving');
});

t.test('/metrics exposes the core metrics, parsed back', async (t) => {
  const { call, s } = await sidecar(t);
  const ev = s.context.mesh.snapshot().endpoints.get('pay/127.0.0.1:9001')!;
  const w = s.context.stats.ensure(ev.slot);
  const now = Date.now();
  for (let i = 0; i < 90; i++) w.record(Outcome.Success, 2000, now);
  for (let i = 0; i < 10; i++) w.record(Outcome.Gateway, 50_000, now);
  await call('POST', `/v1/endpoints/${encodeURIComponent(ev.spec.id)}/eject`, { reason: 'test' });
  const r = await call('GET', '/metrics');
  t.equal(r.status, 200);
  t.match(String(r.headers['content-type']), /text\/plain/);
  const lines = r.text.split('\n');
  const value = (name: string, labels: Record<string, string>) => {
    const line = lines.find((l) => l.startsWith(name + '{') && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
    return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
  };
  t.equal(value('meshmedic_requests_total', { endpoint: ev.spec.id, outcome: 'success', direction: 'outbound' }), 90);
  t.equal(value('meshmedic_requests_total', { endpoint: ev.spec.id, outcome: 'gateway' }), 10);
  t.ok(r.text.includes('# TYPE meshmedic_requests_total counter'));
  t.equal(value('meshmedic_request_duration_seconds_bucket', { service: 'pay', le: '0.001' }), 0);
  t.equal(value('meshmedic_request_duration_seconds_bucket', { service: 'pay', le: '0.0025' }), 90);
  t.equal(value('meshmedic_request_duration_seconds_bucket', { service: 'pay', le: '0.05' }), 100);
  t.equal(value('meshmedic_request_duration_seconds_bucket', { service: 'pay', le: '+Inf' }), 100);
  t.equal(value('meshmedic_request_duration_seconds_count', { service: 'pay' }), 100);
  t.notOk(r.text.includes('NaN'), 'no NaN');
  t.notOk(r.text.includes('pay/127.0.0.1:9002'), 'no series for the idle endpoint');
  t.equal(value('meshmedic_endpoint_health', { endpoint: ev.spec.id, state: 'ejected' }), 1);
  t.equal(value('meshmedic_endpoint_health', { endpoint: ev.spec.id, state: 'healthy' }), undefined, 'one health series per endpoint: its current state');
  t.notOk(lines.some((l) => l.startsWith('meshmedic_request_duration_seconds_count{') && l.includes('endpoint=')), 'latency per service by default');
  t.equal(value('meshmedic_decisions_total', { action: 'eject', reason: 'test', source: 'operator' }), 1);
});

t.test('off loopback, mutating calls need the token', async (t) => {
  const { call } = await sidecar(t, { admin: { listen: '127.0.0.1:0', token: 's3cret' } });
  const id = encodeURIComponent('pay/127.0.0.1:9001');
  t.equal((await call('POST', `/v1/endpoints/${id}/eject`, {})).status, 401);
  t.equal((await call('POST', `/v1/endpoints/${id}/eject`, {}, { authorization: 'Bearer wrong' })).status, 401);
  t.equal((await call('POST', `/v1/endpoints/${id}/eject`, {}, { authorization: 'Bearer s3cret' })).status, 200);
  t.equal((await call('GET', '/v1/endpoints')).status, 200, 'reads need no token');
});
