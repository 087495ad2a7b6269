// Admin routes for operators: the web dashboard (/ui/), its event stream (/v1/stream), a status
// summary (/v1/status), the effective configuration with secrets redacted (/v1/config) and the log
// level (/v1/log, changeable at run time).
import type http from 'node:http';
import type { Clock } from '../core/clock.js';
import { LOG_LEVELS, type Logger, type LogLevel } from '../core/log.js';
import type { Config } from '../config/types.js';
import type { MeshState } from '../mesh/state.js';
import type { StatsTable } from '../stats/window.js';
import { HEALTH_STATES } from '../core/types.js';
import { endpointsView } from './api.js';
import { logDecisions } from './decision-log.js';
import { apiError, type AdminServer } from './server.js';
import { EventStream } from './stream.js';
import type { UiAsset } from './ui/assets.js';

export interface OperatorRoutesOptions {
  readonly config: Config;
  readonly mesh: MeshState;
  readonly stats: StatsTable;
  readonly clock: Clock;
  readonly log: Logger;
  readonly version: string;
  /** Names of the components running (healing, proxy, xds…). */
  readonly components: () => string[];
  /** Bound addresses by role. */
  readonly addresses: () => Readonly<Record<string, string>>;
  readonly ready: () => boolean;
}

const REDACTED = '<redacted>';
/** Config keys whose values are secrets. */
const SECRET_KEY = /^(token|keys|secret|password)$|(Token|Secret|Password)$/;

/** A deep copy of the config with secret values replaced (empty ones are left: they show "not set"). */
export function redactConfig(value: unknown, key = ''): unknown {
  if (SECRET_KEY.test(key)) {
    if (Array.isArray(value)) return value.map(() => REDACTED);
    return value === '' || value === undefined ? value : REDACTED;
  }
  if (Array.isArray(value)) return value.map((v) => redactConfig(v));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactConfig(v, k);
    return out;
  }
  return value;
}

/** Register the routes; returns a function that closes the stream and stops the decision log. */
export function registerOperatorRoutes(admin: AdminServer, o: OperatorRoutesOptions): () => void {
  const startedAt = o.clock.now();
  const view = endpointsView(o);
  const stream = new EventStream({ mesh: o.mesh, clock: o.clock, view: () => view() });
  const stopLog = logDecisions(o.mesh, o.log.child({ component: 'decisions' }));

  admin.rawRoute('GET', '/v1/stream', (req, res) => stream.attach(req, res));

  admin.route('GET', '/v1/status', () => {
    const snap = o.mesh.snapshot();
    const byState: Record<string, number> = Object.fromEntries(HEALTH_STATES.map((s) => [s, 0]));
    for (const ev of snap.endpoints.values()) byState[ev.health.state]!++;
    return {
      status: 200,
      body: {
        node: o.config.node.id || '(generated)',
        workload: o.config.node.workload || null,
        version: o.version,
        ready: o.ready(),
        uptimeS: Math.round((o.clock.now() - startedAt) / 1000),
        policy: o.config.healing.policy,
        logLevel: o.log.level(),
        components: o.components(),
        addresses: o.addresses(),
        services: snap.services.size,
        endpoints: snap.endpoints.size,
        endpointsByState: byState,
        panicServices: [...snap.services.values()].filter((s) => s.plan.panic).map((s) => s.name),
        lastDecision: o.mesh.eventsSince(0, 1)[0]?.seq ?? 0,
        dashboardClients: stream.size,
      },
    };
  });

  admin.route('GET', '/v1/config', () => ({ status: 200, body: redactConfig(o.config) }));

  admin.route('GET', '/v1/log', () => ({ status: 200, body: { level: o.log.level() } }));
  admin.route(
    'PUT',
    '/v1/log',
    (req) => {
      const b = req.body as { level?: unknown } | undefined;
      const level = b && typeof b === 'object' && !Array.isArray(b) ? b.level : undefined;
      const extra = b && typeof b === 'object' ? Object.keys(b).filter((k) => k !== 'level') : [];
      if (extra.length) return apiError(400, 'MM_ERR_BAD_REQUEST', `unknown field(s) ${extra.map((k) => `"${k}"`).join(', ')} (allowed: level)`);
      if (typeof level !== 'string' || !LOG_LEVELS.includes(level as LogLevel)) {
        return apiError(400, 'MM_ERR_BAD_REQUEST', `level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(level)}`);
      }
      const previous = o.log.level();
      o.log.setLevel(level as LogLevel);
      o.log.warn('log level changed', { from: previous, to: level, via: 'admin-api' });
      return { status: 200, body: { level, previous } };
    },
    { mutating: true },
  );

  // The dashboard: static files compiled into the package (src/admin/ui/static → assets.ts).
  const redirect = (to: string) => (_req: http.IncomingMessage, res: http.ServerResponse) => {
    res.writeHead(302, { location: to, 'content-length': 0 });
    res.end();
  };
  admin.rawRoute('GET', '/', redirect('/ui/'));
  admin.rawRoute('GET', '/ui', (req, res) => (req.url?.startsWith('/ui/') ? serveAsset(req, res, 'index.html') : redirect('/ui/')(req, res)));
  admin.rawRoute('GET', '/ui/{file}', (req, res) => serveAsset(req, res, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname.slice(4))));

  return () => {
    stream.close();
    stopLog();
  };
}

// The dashboard's files (~30 KB of source text kept on the heap once loaded) load with its first request:
// most sidecars are never asked for it.
let uiAssets: Promise<Readonly<Record<string, UiAsset>>> | undefined;
const loadUiAssets = () => (uiAssets ??= import('./ui/assets.js').then((m) => m.UI_ASSETS));

function serveAsset(req: http.IncomingMessage, res: http.ServerResponse, name: string): void {
  loadUiAssets().then(
    (assets) => sendAsset(req, res, assets, name),
    (e: Error) => {
      uiAssets = undefined;
      const text = JSON.stringify({ error: 'MM_ERR_INTERNAL', message: `the dashboard's files could not be loaded: ${e.message}` });
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    },
  );
}

function sendAsset(req: http.IncomingMessage, res: http.ServerResponse, assets: Readonly<Record<string, UiAsset>>, name: string): void {
  const a = Object.hasOwn(assets, name) ? assets[name] : undefined;
  if (a === undefined) {
    const text = JSON.stringify({ error: 'MM_ERR_NOT_FOUND', message: `no dashboard file "${name}"` });
    res.writeHead(404, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
    res.end(text);
    return;
  }
  const etag = `"${a.etag}"`;
  // Revalidated on every load (cheap: a 304), so an upgraded sidecar never serves a stale page.
  const headers = { 'content-type': a.type, etag, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff', 'content-security-policy': "default-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:" };
  if (req.headers['if-none-match'] === etag) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  res.writeHead(200, { ...headers, 'content-length': Buffer.byteLength(a.body) });
  res.end(req.method === 'HEAD' ? undefined : a.body);
}
