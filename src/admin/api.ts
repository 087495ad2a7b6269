// The core admin routes: health, readiness, metrics, endpoints (with window stats), operator
// eject/restore through the same decision path and guards as automatic healing, and the decision log.
import type { Registry } from './metrics-registry.js';
import type { Clock } from '../core/clock.js';
import { formatHostPort } from '../core/address.js';
import type { Decision } from '../core/types.js';
import type { MeshState } from '../mesh/state.js';
import type { ResolvedPolicySettings } from '../config/sections/healing.js';
import { OperatorGuards } from './operator-guards.js';
import type { AdminRoutes, AdminRequest, AdminResponse } from '../runtime/context.js';
import { emptySummary, newHistogram, type StatsTable } from '../stats/window.js';
import { decisionJson } from './decision-log.js';
import { encodeFamilies, prefersProtobuf, PROTOBUF_CONTENT_TYPE, type FamilyJson } from './protobuf-exposition.js';
import { apiError } from './server.js';

export interface CoreRoutesOptions {
  readonly mesh: MeshState;
  readonly stats: StatsTable;
  readonly clock: Clock;
  readonly registry: Registry;
  /** Whether the sidecar is ready (components started, not draining). */
  readonly ready: () => boolean;
  /** The healing settings of a service: operator ejections and drains pass its guards unless forced. */
  readonly settingsFor: (service: string) => ResolvedPolicySettings;
}

const MAX_DURATION_MS = 7 * 24 * 3600 * 1000;

export function registerCoreRoutes(admin: AdminRoutes, o: CoreRoutesOptions): void {
  admin.route('GET', '/healthz', () => ({ status: 200, body: { status: 'ok' } }));
  admin.route('GET', '/readyz', () => (o.ready() ? { status: 200, body: { status: 'ready' } } : { status: 503, body: { status: 'not ready' } }));
  admin.route('GET', '/metrics', async (req) => {
    // Native histograms exist only in the protobuf exposition: served when the scraper prefers it.
    const accept = req.headers?.accept;
    if (prefersProtobuf(typeof accept === 'string' ? accept : undefined)) return { status: 200, body: encodeFamilies((await o.registry.getMetricsAsJSON()) as unknown as FamilyJson[]), contentType: PROTOBUF_CONTENT_TYPE };
    return { status: 200, body: await o.registry.metrics(), contentType: o.registry.contentType };
  });

  const view = endpointsView(o);
  admin.route('GET', '/v1/endpoints', (req) => ({ status: 200, body: view(req.query.get('service') ?? undefined) }));

  const guards = new OperatorGuards(o.settingsFor);
  admin.route('POST', '/v1/endpoints/{id}/eject', (req) => operatorDecision(o, guards, req, 'eject'), { mutating: true });
  admin.route('POST', '/v1/endpoints/{id}/drain', (req) => operatorDecision(o, guards, req, 'drain'), { mutating: true });
  admin.route('POST', '/v1/endpoints/{id}/restore', (req) => operatorDecision(o, guards, req, 'restore'), { mutating: true });

  admin.route('GET', '/v1/events', (req) => {
    const since = Number(req.query.get('since') ?? 0);
    const limit = Number(req.query.get('limit') ?? 500);
    if (!Number.isInteger(since) || since < 0) return apiError(400, 'MM_ERR_BAD_REQUEST', `since must be a non-negative integer, got "${req.query.get('since')}"`);
    if (!Number.isInteger(limit) || limit < 1 || limit > 5000) return apiError(400, 'MM_ERR_BAD_REQUEST', `limit must be an integer from 1 to 5000, got "${req.query.get('limit')}"`);
    const events = o.mesh.eventsSince(since, limit).map(decisionJson);
    return { status: 200, body: { events, last: events.length ? events[events.length - 1]!.seq : since } };
  });
}

function operatorDecision(o: CoreRoutesOptions, guards: OperatorGuards, req: AdminRequest, action: 'eject' | 'drain' | 'restore'): AdminResponse {
  const id = req.params.id!;
  if (!o.mesh.snapshot().endpoints.has(id)) return apiError(404, 'MM_ERR_NOT_FOUND', `no endpoint "${id}" (ids are service/host:port, URL-encoded)`);
  const body = req.body ?? {};
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return apiError(400, 'MM_ERR_BAD_REQUEST', 'body must be a JSON object');
  const b = body as Record<string, unknown>;
  const allowed = action === 'restore' ? ['reason'] : ['reason', 'durationMs', 'force'];
  const unknown = Object.keys(b).filter((k) => !allowed.includes(k));
  if (unknown.length) return apiError(400, 'MM_ERR_BAD_REQUEST', `unknown field(s) ${unknown.map((k) => `"${k}"`).join(', ')} (allowed: ${allowed.join(', ')})`);
  let durationMs = 0;
  if (b.durationMs !== undefined) {
    if (typeof b.durationMs !== 'number' || !Number.isInteger(b.durationMs) || b.durationMs < 0 || b.durationMs > MAX_DURATION_MS) {
      return apiError(400, 'MM_ERR_BAD_REQUEST', `durationMs must be an integer from 0 (until restored) to ${MAX_DURATION_MS}, got ${JSON.stringify(b.durationMs)}`);
    }
    durationMs = b.durationMs;
  }
  if (b.reason !== undefined && (typeof b.reason !== 'string' || b.reason.length > 200)) return apiError(400, 'MM_ERR_BAD_REQUEST', 'reason must be a string of at most 200 characters');
  if (b.force !== undefined && typeof b.force !== 'boolean') return apiError(400, 'MM_ERR_BAD_REQUEST', `force must be true or false, got ${JSON.stringify(b.force)}`);
  const force = b.force === true;
  const reason = (b.reason as string | undefined) || 'operator';
  if (action !== 'restore' && !force) {
    const refusal = guards.check(o.mesh.snapshot(), id, o.clock.now());
    if (refusal) {
      return {
        status: 409,
        body: {
          error: 'MM_ERR_GUARD_REFUSED',
          message: `${action} of ${id} refused by the ${refusal.guard} guard (${Object.entries(refusal.evidence).map(([k, v]) => `${k}=${v}`).join(', ')}); send "force": true to override`,
          guard: refusal.guard,
          evidence: refusal.evidence,
        },
      };
    }
  }
  const d: Decision = { action, target: id, reason, source: 'operator', at: o.clock.now(), durationMs: durationMs || undefined, evidence: force ? { via: 'admin-api', forced: true } : { via: 'admin-api' } };
  const rec = o.mesh.apply(d);
  const ev = o.mesh.snapshot().endpoints.get(id)!;
  return { status: 200, body: { applied: rec.applied, refused: rec.refused, event: rec.seq, endpoint: { id, state: ev.health.state, until: ev.health.until ? new Date(ev.health.until).toISOString() : null } } };
}

function round(v: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/**
 * The body of GET /v1/endpoints (also the dashboard stream's snapshot): every endpoint with its health
 * and window stats, and each service's priority plan. The returned function reuses its scratch space.
 */
export function endpointsView(o: Pick<CoreRoutesOptions, 'mesh' | 'stats' | 'clock'>): (service?: string) => { version: number; endpoints: unknown[]; services: unknown[] } {
  const summary = emptySummary();
  const scratch = newHistogram(o.stats.opts);
  return (service) => {
    const now = o.clock.now();
    const snap = o.mesh.snapshot();
    const endpoints = [];
    for (const svc of snap.services.values()) {
      if (service && svc.name !== service) continue;
      for (const ev of svc.endpoints) {
        const w = o.stats.get(ev.slot);
        if (w) w.summarize(now, o.stats.opts.windows, summary, scratch);
        const total = w ? summary.total : 0;
        const spanS = (o.stats.opts.windows * o.stats.opts.windowMs) / 1000;
        endpoints.push({
          id: ev.spec.id,
          service: ev.spec.service,
          address: formatHostPort(ev.spec.host, ev.spec.port),
          locality: ev.spec.locality,
          priority: ev.spec.priority,
          weight: ev.spec.weight,
          labels: ev.spec.labels,
          state: ev.health.state,
          health: ev.health.state,
          weightFactor: ev.health.weightFactor,
          reason: ev.health.reason,
          source: ev.health.source,
          since: ev.health.since ? new Date(ev.health.since).toISOString() : null,
          until: ev.health.until ? new Date(ev.health.until).toISOString() : null,
          ejections: ev.health.ejections,
          window: {
            seconds: spanS,
            requests: total,
            rps: round(total / spanS),
            failures: w ? summary.failures : 0,
            errorRate: total > 0 ? round(summary.failures / total, 4) : 0,
            p50Ms: total > 0 ? round(summary.p50 / 1000, 3) : null,
            p99Ms: total > 0 ? round(summary.p99 / 1000, 3) : null,
            consecutive5xx: w?.consecutive5xx ?? 0,
          },
        });
      }
    }
    const services = [...snap.services.values()].map((s) => ({ name: s.name, version: s.version, panic: s.plan.panic, priorityLoad: s.plan.load }));
    return { version: snap.version, endpoints, services };
  };
}
