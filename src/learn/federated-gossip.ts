// The federated-baseline component of a running sidecar (learning.federated): sends this sidecar's signed
// parameter vector to a few gossip peers, accepts theirs through FederatedBoard, keeps the robust mesh
// aggregate and lets the healing engine seed fresh baselines from it. The decisions live in the pure
// modules (federated.ts, federated-codec.ts); this file only moves bytes and runs timers.
import { Counter, Gauge } from '../admin/metrics-registry.js';
import { MeshmedicError } from '../core/errors.js';
import type { TimerHandle } from '../core/clock.js';
import type { HealingEngine } from '../heal/engine.js';
import type { Component, ComponentFactory } from '../runtime/context.js';
import type { GossipComponent } from '../gossip/component.js';
import type { Address } from '../gossip/transport.js';
import { adoptAggregate, aggregate, localParams, PARAM_KEYS, type ServiceAggregate, type ServiceParams } from './federated.js';
import { decodeMessage, encodePull, encodeVector, FederatedBoard, FederatedVectorError, type FederatedVector } from './federated-codec.js';
import { setFederatedStatus } from './admin.js';

/** While this sidecar has no aggregate yet, it asks peers this often (it just started: adopt at once). */
const STARTUP_PULL_MS = 250;
/** Ask at start for this long at the fast pace, then at the ordinary interval. */
const STARTUP_MS = 15_000;

export const startFederated: ComponentFactory = async (ctx) => {
  const cfg = ctx.config.learning.federated;
  const gossip = ctx.components.get('gossip') as GossipComponent | undefined;
  const engine = (ctx.components.get('healing') as { engine?: HealingEngine } | undefined)?.engine;
  if (!gossip?.learnChannel || !engine) throw new MeshmedicError('MM_ERR_CONFIG_INVALID', 'learning.federated.enabled needs gossip.enabled and the healing engine');
  const log = ctx.log.child({ component: 'federated' });
  const clock = ctx.clock;
  const ch = gossip.learnChannel;
  const self = gossip.nodeId;
  const board = new FederatedBoard(cfg);
  const started = clock.now();
  let seq = 0;
  let ownBytes: Uint8Array | undefined;
  let own: FederatedVector | undefined;
  let aggregates = new Map<string, ServiceAggregate>();
  let dirty = true;
  let adopted = 0;
  const lastReplyTo = new Map<string, number>();

  const current = (): Map<string, ServiceAggregate> => {
    if (dirty) {
      aggregates = aggregate(board.contributions(clock.now()), clock.now(), cfg);
      dirty = false;
    }
    return aggregates;
  };

  const refreshOwn = () => {
    const services = new Map<string, ServiceParams>();
    for (const name of engine.serviceNames()) {
      const settings = engine.policyOf(name)?.settings;
      const p = settings ? localParams(engine.signalsOf(name), settings) : undefined;
      if (p) services.set(name, p);
    }
    if (services.size === 0) return;
    const now = clock.now();
    // The sequence follows the clock in µs, so it still grows after a restart (receivers refuse replays).
    seq = Math.max(seq + 1, Math.floor(now * 1000));
    own = { node: self, issuedAt: now, seq, services };
    board.own(own, now);
    ownBytes = encodeVector(own, (d) => ch.sign(d), cfg.maxServices);
    dirty = true;
  };

  const pick = <T>(xs: T[], k: number): T[] => {
    const a = [...xs];
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [a[i], a[j]] = [a[j]!, a[i]!];
    }
    return a.slice(0, k);
  };

  /** One round: refresh and push our vector (ordinary rounds only), and pull while we have no aggregate. */
  const round = (push: boolean) => {
    try {
      if (push) refreshOwn();
      dirty = true; // expiry
      const peers = ch.peers();
      if (push && ownBytes) for (const p of pick(peers, cfg.fanout)) ch.send({ host: p.host, port: p.port }, ownBytes);
      if (current().size === 0 && peers.length > 0) {
        const pull = encodePull(self);
        for (const p of pick(peers, 2 * cfg.fanout)) ch.send({ host: p.host, port: p.port }, pull);
      }
    } catch (err) {
      log.warn('federated baseline round failed', { err });
    }
  };

  const onMessage = (body: Uint8Array, from: Address) => {
    const now = clock.now();
    let kind: string;
    try {
      kind = decodeMessage(body).kind;
    } catch (err) {
      if (err instanceof FederatedVectorError) {
        board.rejected[err.reason]++;
        log.debug('federated vector refused', { from: `${from.host}:${from.port}`, reason: err.reason, err: err.message });
      }
      return;
    }
    if (kind === 'pull') {
      // Answer a pull with our vector, at most once per half interval per asker (no amplification).
      const key = `${from.host}:${from.port}`;
      if (!ownBytes || now - (lastReplyTo.get(key) ?? -Infinity) < cfg.intervalMs / 2) return;
      if (lastReplyTo.size > 10_000) lastReplyTo.clear();
      lastReplyTo.set(key, now);
      ch.send(from, ownBytes);
      return;
    }
    try {
      board.offer(body, now, (node, data, sig) => (node === self ? false : ch.verify(node, data, sig)));
      dirty = true;
    } catch (err) {
      if (err instanceof FederatedVectorError) log.debug('federated vector refused', { from: `${from.host}:${from.port}`, reason: err.reason, err: err.message });
      else throw err;
    }
  };
  const unsubscribe = ch.subscribe(onMessage);

  if (cfg.adopt) {
    engine.adoptBaselines = (service, signals, settings) => {
      const a = current().get(service);
      if (a) adopted += adoptAggregate(signals, a.params, settings);
    };
  }

  const status = () => ({
    enabled: true,
    adopt: cfg.adopt,
    node: self,
    own: own ? { issuedAt: new Date(own.issuedAt).toISOString(), services: Object.fromEntries([...own.services].map(([s, p]) => [s, jsonParams(p)])) } : null,
    aggregate: [...current().values()].map((a) => ({ service: a.service, params: jsonParams(a.params), contributors: a.contributors, clipped: a.clipped })),
    contributors: board.contributions(clock.now()).map((c) => ({ node: c.node, ageMs: clock.now() - c.receivedAt, services: [...c.services.keys()] })),
    accepted: board.accepted,
    rejected: { ...board.rejected },
    baselinesSeeded: adopted,
  });
  setFederatedStatus(engine, status);

  const metricNames = registerMetrics(ctx.metrics, board, () => adopted, () => board.contributions(clock.now()).length);

  const timers: TimerHandle[] = [];
  // Fast pulls at start until an aggregate forms (or STARTUP_MS), then the ordinary interval.
  const fast = clock.setInterval(() => {
    if (current().size > 0 || clock.now() - started > STARTUP_MS) {
      fast.cancel();
      return;
    }
    round(false);
  }, Math.min(STARTUP_PULL_MS, cfg.intervalMs));
  timers.push(fast, clock.setInterval(() => round(true), cfg.intervalMs));
  round(true);
  log.info('federated baselines started', { intervalMs: cfg.intervalMs, adopt: cfg.adopt });

  const component: Component = {
    name: 'federated',
    async close(): Promise<void> {
      for (const t of timers) t.cancel();
      unsubscribe();
      if (engine.adoptBaselines) engine.adoptBaselines = undefined;
      setFederatedStatus(engine, undefined);
      for (const n of metricNames) ctx.metrics.removeSingleMetric(n);
    },
  };
  return component;
};

/** Parameters as JSON (a coordinate not learned is null, not NaN). */
function jsonParams(p: ServiceParams): Record<string, number | null> {
  const out: Record<string, number | null> = { samples: p.samples };
  for (const k of PARAM_KEYS) out[k] = Number.isFinite(p[k]) ? Math.round(p[k] * 1e6) / 1e6 : null;
  return out;
}

function registerMetrics(registry: import('../admin/metrics-registry.js').Registry, board: FederatedBoard, seeded: () => number, contributors: () => number): string[] {
  const names: string[] = [];
  if (!registry.getSingleMetric('meshmedic_learn_federated_vectors_total')) {
    names.push('meshmedic_learn_federated_vectors_total');
    new Counter({
      name: 'meshmedic_learn_federated_vectors_total',
      help: 'Federated baseline vectors received from peers: accepted, or refused (MM_ERR_LEARN_FEDERATED; reasons in GET /v1/learn).',
      labelNames: ['result'],
      registers: [registry],
      collect() {
        this.reset();
        this.inc({ result: 'accepted' }, board.accepted);
        this.inc({ result: 'refused' }, Object.values(board.rejected).reduce((a, b) => a + b, 0));
      },
    });
  }
  if (!registry.getSingleMetric('meshmedic_learn_federated_contributors')) {
    names.push('meshmedic_learn_federated_contributors');
    new Gauge({
      name: 'meshmedic_learn_federated_contributors',
      help: 'Sidecars (this one included) whose fresh federated baseline vectors this sidecar holds.',
      registers: [registry],
      collect() {
        this.set(contributors());
      },
    });
  }
  if (!registry.getSingleMetric('meshmedic_learn_federated_seeded_total')) {
    names.push('meshmedic_learn_federated_seeded_total');
    new Counter({
      name: 'meshmedic_learn_federated_seeded_total',
      help: 'Endpoint baselines (p50, p90, errors) seeded from the mesh aggregate before their own warm-up ended.',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(seeded());
      },
    });
  }
  return names;
}
