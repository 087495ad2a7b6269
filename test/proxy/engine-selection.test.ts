// proxy.http1Engine: auto falls back to the portable engine with the native probe's reason; a forced
// engine that cannot run is a coded error; the start-up log and /metrics name the engine and read mode;
// the native engine is reachable only through a dynamic import (so `meshmedic --help` never loads it).
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { Registry } from '../../src/admin/metrics-registry.js';
import { systemClock } from '../../src/core/clock.js';
import { createLogger } from '../../src/core/log.js';
import { endpointId, NO_LOCALITY } from '../../src/core/types.js';
import { validateConfig } from '../../src/config/load.js';
import { MeshState } from '../../src/mesh/state.js';
import { StatsTable } from '../../src/stats/window.js';
import type { SidecarContext } from '../../src/runtime/context.js';
import { startProxy, type ProxyHandle } from '../../src/proxy/component.js';
import { selectHttp1Engine, type Http1Engine } from '../../src/proxy/engine/index.js';
import { backend, request } from './helpers.js';

const broken = (): Promise<Http1Engine> => Promise.reject(new Error('HTTPParser.kOnExecute is not a number'));
const portable = async (): Promise<Http1Engine> => (await selectHttp1Engine('portable')).engine;

t.test('auto falls back with the reason; forced engines fail with MM_ERR_HTTP1_ENGINE', async (t) => {
  const auto = await selectHttp1Engine('auto', { native: broken, portable });
  t.equal(auto.engine.name, 'portable');
  t.equal(auto.fallbackReason, 'HTTPParser.kOnExecute is not a number');
  await t.rejects(selectHttp1Engine('native', { native: broken, portable }), { code: 'MM_ERR_HTTP1_ENGINE', message: /"native".*kOnExecute/ });
  await t.rejects(selectHttp1Engine('portable', { native: portable, portable: broken }), { code: 'MM_ERR_HTTP1_ENGINE', message: /"portable"/ });
  await t.rejects(selectHttp1Engine('auto', { native: broken, portable: broken }), { code: 'MM_ERR_HTTP1_ENGINE', message: /no HTTP\/1 engine can run/ });
});

t.test('the start-up log and /metrics say which engine and read mode run', async (t) => {
  const b = await backend((_req, res) => res.end('ok'));
  t.teardown(() => b.close());
  for (const [setting, engine, readMode] of [['portable', 'portable', 'data'], ['native', 'native', 'consume'], ['auto', 'native', 'consume']] as const) {
    const v = validateConfig({ outbound: { listen: '127.0.0.1:0' }, proxy: { http1Engine: setting }, services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${b.port}` }] }] });
    if (!v.valid) throw new Error(v.errors.join('; '));
    const mesh = new MeshState(systemClock);
    mesh.setServices([{ spec: { name: 'svc', endpoints: [{ id: endpointId('svc', '127.0.0.1', b.port), service: 'svc', host: '127.0.0.1', port: b.port, locality: NO_LOCALITY, priority: 0, weight: 1, labels: {} }] } }]);
    const lines: string[] = [];
    const metrics = new Registry();
    const ctx = { config: v.result, clock: systemClock, mesh, stats: new StatsTable(), log: createLogger('info', (l) => lines.push(l)), metrics, admin: { route() {} }, components: new Map() } as SidecarContext;
    const c = (await startProxy(ctx)) as ProxyHandle;
    try {
      const line = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'HTTP/1 engine');
      t.match(line, { level: 'info', engine, readMode, setting }, `${setting}: logged at start`);
      t.notOk(lines.some((l) => l.includes('"level":"warn"')), `${setting}: no warning`);
      const text = await metrics.metrics();
      t.match(text, `meshmedic_proxy_http1_engine_info{engine="${engine}",read_mode="${readMode}"} 1`, `${setting}: the gauge`);
      const port = Number(c.addresses.outbound!.split(':')[1]);
      t.equal((await request(port, { headers: { host: 'svc' } })).body, 'ok', `${setting}: proxies`);
    } finally {
      await c.close(1000);
    }
  }
});

t.test('only engine/index.ts reaches the native engine, and only by a dynamic import', async (t) => {
  const dir = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../../src');
  const offenders: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith('.ts')) {
        const src = readFileSync(p, 'utf8');
        if (/from\s+['"][^'"]*engine\/native\.js['"]|from\s+['"]\.\/native\.js['"]/.test(src)) offenders.push(`${p}: static import`);
        if (/['"]_http_common['"]/.test(src) && !p.endsWith(join('engine', 'native.ts'))) offenders.push(`${p}: _http_common`);
        if (/import\(\s*['"]\.\/native\.js['"]\s*\)/.test(src) && !p.endsWith(join('engine', 'index.ts'))) offenders.push(`${p}: dynamic import`);
      }
    }
  };
  walk(dir);
  t.same(offenders, []);
});
