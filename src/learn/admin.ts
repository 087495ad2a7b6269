// The learning layer's admin surface: GET /v1/learn (each service's predictor models) and the
// meshmedic_learn_* metrics, read from the healing engine at request or scrape time.
import { Counter, Gauge, type Registry } from '../admin/metrics-registry.js';
import type { Clock } from '../core/clock.js';
import type { HealingEngine } from '../heal/engine.js';
import type { AdminRoutes } from '../runtime/context.js';

/** The federated-baseline view of a running sidecar (src/learn/federated-gossip.ts), per engine. */
const federatedStatus = new WeakMap<HealingEngine, () => unknown>();

export function setFederatedStatus(engine: HealingEngine, status: (() => unknown) | undefined): void {
  if (status) federatedStatus.set(engine, status);
  else federatedStatus.delete(engine);
}

export function learnStatus(engine: HealingEngine, clock: Clock): Record<string, unknown> {
  const services = [];
  for (const name of engine.serviceNames()) {
    const policy = engine.policyOf(name);
    if (!policy) {
      // Never evaluated (no traffic yet): its policy is not built; report what a fresh one would show.
      const settings = engine.settingsOf(name);
      const predicts = settings?.policy === 'meshmedic' || settings?.policy === 'learned';
      services.push({
        service: name,
        policy: settings?.policy ?? null,
        learned: null,
        prediction: settings && predicts
          ? { enabled: settings.prediction.enabled, horizonMs: settings.prediction.horizonMs, counters: { assessments: 0, degrade: 0, drain: 0 }, endpoints: [] }
          : null,
      });
      continue;
    }
    const p = policy.predictor;
    const cfg = policy.settings.prediction;
    services.push({
      service: name,
      policy: policy.name,
      learned: policy.learned?.() ?? null,
      prediction: p && cfg
        ? {
            enabled: cfg.enabled,
            horizonMs: cfg.horizonMs,
            counters: { ...p.counters },
            endpoints: p.views().map((v) => ({ id: v.id, windows: v.points, stateBytes: v.stateBytes, drainStreak: v.streak, forecast: v.prediction.severity === 'none' ? null : v.prediction })),
          }
        : null,
    });
  }
  return { time: new Date(clock.now()).toISOString(), services, federated: federatedStatus.get(engine)?.() ?? { enabled: false } };
}

export function registerLearnRoutes(admin: AdminRoutes, engine: HealingEngine, clock: Clock): void {
  admin.route('GET', '/v1/learn', () => ({ status: 200, body: learnStatus(engine, clock) }));
}

/** Registers meshmedic_learn_* on `registry`; returns the function that removes them. */
export function registerLearnMetrics(registry: Registry, engine: HealingEngine): () => void {
  const names: string[] = [];
  const sum = (pick: (c: { assessments: number; degrade: number; drain: number }) => number): number => {
    let n = 0;
    for (const s of engine.serviceNames()) {
      const c = engine.policyOf(s)?.predictor?.counters;
      if (c) n += pick(c);
    }
    return n;
  };
  if (!registry.getSingleMetric('meshmedic_learn_predictions_total')) {
    names.push('meshmedic_learn_predictions_total');
    new Counter({
      name: 'meshmedic_learn_predictions_total',
      help: 'Failure forecasts raised by the predictor, by the action they asked for (the guards may still refuse it).',
      labelNames: ['action'],
      registers: [registry],
      collect() {
        this.reset();
        this.inc({ action: 'deweight' }, sum((c) => c.degrade));
        this.inc({ action: 'drain' }, sum((c) => c.drain));
      },
    });
  }
  if (!registry.getSingleMetric('meshmedic_learn_assessments_total')) {
    names.push('meshmedic_learn_assessments_total');
    new Counter({
      name: 'meshmedic_learn_assessments_total',
      help: 'Predictor model assessments (one per endpoint in rotation per completed window).',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(sum((c) => c.assessments));
      },
    });
  }
  if (!registry.getSingleMetric('meshmedic_learn_endpoints_at_risk')) {
    names.push('meshmedic_learn_endpoints_at_risk');
    new Gauge({
      name: 'meshmedic_learn_endpoints_at_risk',
      help: 'Endpoints whose newest assessment forecasts a failure within the horizon.',
      registers: [registry],
      collect() {
        let n = 0;
        for (const s of engine.serviceNames()) for (const v of engine.policyOf(s)?.predictor?.views() ?? []) if (v.prediction.severity !== 'none') n++;
        this.set(n);
      },
    });
  }
  if (!registry.getSingleMetric('meshmedic_learn_model_bytes')) {
    names.push('meshmedic_learn_model_bytes');
    new Gauge({
      name: 'meshmedic_learn_model_bytes',
      help: 'Bytes held by the predictor models of every endpoint.',
      registers: [registry],
      collect() {
        let n = 0;
        for (const s of engine.serviceNames()) for (const v of engine.policyOf(s)?.predictor?.views() ?? []) n += v.stateBytes;
        this.set(n);
      },
    });
  }
  return () => {
    for (const n of names) registry.removeSingleMetric(n);
  };
}
