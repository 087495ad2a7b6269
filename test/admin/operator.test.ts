// Operator routes: decision log lines, runtime log level, status, redacted config, the event stream and
// the dashboard's static files.
import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import http from 'node:http';
import { validateConfig } from '../../src/config/load.js';
import { VirtualClock, type Clock } from '../../src/core/clock.js';
import { createLogger } from '../../src/core/log.js';
import { startSidecar } from '../../src/runtime/sidecar.js';
import { redactConfig } from '../../src/admin/operator-routes.js';
import { renderAssets, UI_DIR } from '../../src/admin/ui/build.js';

async function sidecar(t: Test, extra: Record<string, unknown> = {}, clock?: Clock) {
  const lines: string[] = [];
  const log = createLogger('info', (l) => lines.push(l));
  const v = validateConfig({ admin: { listen: '127.0.0.1:0' }, outbound: { enabled: false }, services: [{ name: 'pay', endpoints: [{ address: '127.0.0.1:9001' }, { address: '127.0.0.1:9002' }] }], ...extra });
  if (!v.valid) throw new Error(v.errors.join('\n'));
  const s = await startSidecar(v.result, { log, components: [], ...(clock ? { clock } : {}) });
  t.teardown(() => s.close(0));
  const base = `http://${s.addresses.admin}`;
  const call = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(base + path, { method, redirect: 'manual', body: body === undefined ? undefined : JSON.stringify(body), headers: body === undefined ? {} : { 'content-type': 'application/json' } });
    const text = await r.text();
    let json: any;
    try { json = JSON.parse(text); } catch { json = undefined; }
    return { status: r.status, json, text, headers: r.headers };
  };
  return { s, call, lines, base };
}

const ID = encodeURIComponent('pay/127.0.0.1:9001');

t.test('every line has an ISO time and a level; one info line per decision with its evidence', async (t) => {
  const { call, lines } = await sidecar(t);
  await call('POST', `/v1/endpoints/${ID}/eject`, { reason: 'maintenance', durationMs: 60000 });
  await call('POST', `/v1/endpoints/${ID}/restore`, {});
  await call('POST', `/v1/endpoints/${ID}/restore`, {}); // refused: no change → debug only
  const parsed = lines.map((l) => JSON.parse(l));
  for (const p of parsed) {
    t.match(p.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'ISO time');
    t.ok(['debug', 'info', 'warn', 'error'].includes(p.level), 'level');
  }
  const decisions = parsed.filter((p) => p.component === 'decisions');
  t.equal(decisions.length, 2, 'the no-change repeat is not an info line');
  const events = (await call('GET', '/v1/events')).json.events;
  t.same(decisions[0].decision, events[0], 'the same JSON as /v1/events');
  t.equal(decisions[0].msg, 'decision applied');
  t.equal(decisions[0].level, 'info');
});

t.test('a refused decision is logged at info with why', async (t) => {
  const { s, lines } = await sidecar(t);
  s.context.mesh.apply({ action: 'eject', target: 'pay/10.9.9.9:1', reason: 'test', source: 'local', at: Date.now(), evidence: { n: 3 } });
  const refused = lines.map((l) => JSON.parse(l)).find((p) => p.msg === 'decision refused');
  t.match(refused, { level: 'info', decision: { refused: /unknown endpoint/, evidence: { n: 3 } } });
});

t.test('log level changes at run time through the admin API', async (t) => {
  const { call, s, lines } = await sidecar(t);
  t.same((await call('GET', '/v1/log')).json, { level: 'info' });
  s.context.log.child({ component: 'x' }).debug('hidden');
  t.same((await call('PUT', '/v1/log', { level: 'debug' })).json, { level: 'debug', previous: 'info' });
  s.context.log.child({ component: 'x' }).debug('shown');
  t.ok(lines.some((l) => l.includes('"shown"')) && !lines.some((l) => l.includes('"hidden"')));
  t.match(await call('PUT', '/v1/log', { level: 'loud' }), { status: 400, json: { error: 'MM_ERR_BAD_REQUEST', message: /level must be one of debug, info, warn, error, silent, got "loud"/ } });
  t.match(await call('PUT', '/v1/log', { level: 'info', x: 1 }), { status: 400, json: { message: /unknown field/ } });
  t.equal((await call('GET', '/v1/log')).json.level, 'debug', 'unchanged by bad input');
});

t.test('status and the effective config with secrets redacted', async (t) => {
  const { call } = await sidecar(t, { admin: { listen: '127.0.0.1:0', token: 'hunter2-hunter2' }, node: { id: 'n1', workload: 'checkout' } });
  const st = (await call('GET', '/v1/status')).json;
  t.match(st, { node: 'n1', workload: 'checkout', ready: true, endpoints: 2, endpointsByState: { healthy: 2 }, logLevel: 'info' });
  const cfg = await call('GET', '/v1/config');
  t.equal(cfg.json.admin.token, '<redacted>');
  t.notOk(cfg.text.includes('hunter2'));
  t.equal(cfg.json.services[0].name, 'pay');
  t.same(redactConfig({ gossip: { keys: ['a', 'b'] }, admin: { token: '' }, x: { bearerToken: 'z' } }), { gossip: { keys: ['<redacted>', '<redacted>'] }, admin: { token: '' }, x: { bearerToken: '<redacted>' } });
});

t.test('/v1/stream: the view at once, then each decision as it happens', async (t) => {
  // On a clock that never moves, the stream's periodic view never comes: a decision that arrives was
  // pushed when it happened, not picked up by a poll (whatever the machine's load).
  const { base, call } = await sidecar(t, {}, new VirtualClock());
  const frames: { event: string; data: any }[] = [];
  let buf = '';
  let wake: (() => void) | undefined;
  const req = http.get(base + '/v1/stream', (res) => {
    t.match(res.headers['content-type'], /text\/event-stream/);
    res.setEncoding('utf8');
    res.on('data', (c: string) => {
      buf += c;
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const ev = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (ev && data) frames.push({ event: ev, data: JSON.parse(data) });
      }
      wake?.();
    });
  });
  t.teardown(() => req.destroy());
  const until = async (pred: () => boolean) => {
    while (!pred()) await new Promise<void>((r) => (wake = r));
  };
  await until(() => frames.some((f) => f.event === 'view'));
  t.same(frames[0]!.data.endpoints.map((e: any) => e.id), ['pay/127.0.0.1:9001', 'pay/127.0.0.1:9002']);
  t.equal((await call('GET', '/v1/status')).json.dashboardClients, 1);
  const sent = Date.now();
  await call('POST', `/v1/endpoints/${ID}/eject`, { reason: 'stream-test' });
  // A guard against a hang (a decision never pushed), not a bound on speed.
  const pushed = await Promise.race([
    until(() => frames.some((f) => f.event === 'decision' && f.data.reason === 'stream-test')).then(() => true),
    new Promise<false>((r) => setTimeout(() => r(false), 60_000).unref()),
  ]);
  t.ok(pushed, `pushed, not polled (on a stopped clock; arrived ${Date.now() - sent} ms after the eject was sent)`);
  await until(() => frames.some((f) => f.event === 'view' && f.data.endpoints[0].state === 'ejected'));
  t.pass('the view follows the decision');
});

t.test('dashboard: / redirects to /ui/, files served with types and revalidation', async (t) => {
  const { call, base } = await sidecar(t);
  const root = await call('GET', '/');
  t.equal(root.status, 302);
  t.equal(root.headers.get('location'), '/ui/');
  t.equal((await call('GET', '/ui')).headers.get('location'), '/ui/');
  const page = await call('GET', '/ui/');
  t.equal(page.status, 200);
  t.match(page.headers.get('content-type'), /text\/html/);
  t.match(page.text, /<script src="app.js"/);
  const js = await call('GET', '/ui/app.js');
  t.match(js.headers.get('content-type'), /text\/javascript/);
  const again = await fetch(base + '/ui/app.js', { headers: { 'if-none-match': js.headers.get('etag')! } });
  t.equal(again.status, 304);
  t.match(await call('GET', '/ui/nope.js'), { status: 404, json: { error: 'MM_ERR_NOT_FOUND' } });
  t.match(await call('GET', '/ui/..%2Fpackage.json'), { status: 404 });
});

t.test('src/admin/ui/assets.ts is generated from static/ (npm run ui)', async (t) => {
  t.equal(readFileSync(join(UI_DIR, 'assets.ts'), 'utf8'), renderAssets(join(UI_DIR, 'static')), 'run `npm run ui` after editing src/admin/ui/static/');
});
