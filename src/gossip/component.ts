// The gossip component of a running sidecar: binds UDP + TCP, joins the seeds, runs SWIM + Lifeguard, and
// runs the signed health plane (publish own observations, apply quorum verdicts). Started by src/runtime/sidecar.ts.
import { createHash, randomBytes, sign, verify } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { Counter, Gauge } from '../admin/metrics-registry.js';
import { formatHostPort, parseHostPort } from '../core/address.js';
import { MeshmedicError } from '../core/errors.js';
import { tcpProbe } from '../heal/probe-io.js';
import type { TimerHandle } from '../core/clock.js';
import type { Decision } from '../core/types.js';
import type { GossipConfig } from '../config/sections/gossip.js';
import type { Component, ComponentFactory, SidecarContext } from '../runtime/context.js';
import { HealthPlane, observerKeys } from './health-plane.js';
import { generateIdentity, identityFromPem, identityToPem, ObservationSigner, OFFER_RESULTS, QuorumBoard, type Identity } from './health.js';
import { Keyring } from './keyring.js';
import { applyKeys, readKeysFrom } from './keyring-file.js';
import { parseSeed, Seeds, systemSeedResolver, type SeedResolver, type SeedSpec } from './seeds.js';
import { LoopStarvationWatch } from './loop-delay.js';
import { Membership, type MemberInfo } from './membership.js';
import { NodeTransport } from './node-transport.js';
import { PROFILES, type GossipProfile } from './profile.js';
import type { Address } from './transport.js';

/** Direct member-to-member messages for the audit witness protocol (payloads are opaque to gossip). */
export interface AuditChannel {
  send(to: Address, body: Uint8Array): void;
  /** Receive audit messages; returns a function that stops it. */
  subscribe(fn: (body: Uint8Array, from: Address) => void): () => void;
  /** Live peers (not this member). */
  peers(): { id: string; host: string; port: number }[];
}

/**
 * Direct member-to-member messages for federated baselines (src/learn/federated-gossip.ts), with this
 * node's Ed25519 identity to sign and the pinned keys of live members to verify (payloads are opaque here).
 */
export interface LearnChannel extends AuditChannel {
  sign(data: Uint8Array): Uint8Array;
  /** Whether `signature` is `node`'s over `data`; undefined when `node` is not a live member with a pinned key. */
  verify(node: string, data: Uint8Array, signature: Uint8Array): boolean | undefined;
}

export interface GossipComponent extends Component {
  readonly nodeId: string;
  readonly auditChannel: AuditChannel;
  readonly learnChannel: LearnChannel;
  readonly membership: Membership;
  readonly board: QuorumBoard;
  readonly healthPlane: HealthPlane | undefined;
  readonly keyring: Keyring;
}

/** The effective protocol profile: the named profile with any explicitly configured timing on top. */
export function profileFromConfig(cfg: GossipConfig): GossipProfile {
  const base = PROFILES[cfg.profile ?? 'lan'];
  const pick = <K extends keyof GossipProfile>(k: K, v: GossipProfile[K] | undefined): GossipProfile[K] => (v === undefined ? base[k] : v);
  return Object.freeze({
    ...base,
    probeIntervalMs: pick('probeIntervalMs', cfg.probeIntervalMs),
    probeTimeoutMs: pick('probeTimeoutMs', cfg.probeTimeoutMs),
    gossipIntervalMs: pick('gossipIntervalMs', cfg.gossipIntervalMs),
    pushPullIntervalMs: pick('pushPullIntervalMs', cfg.pushPullIntervalMs),
    gossipToTheDeadMs: pick('gossipToTheDeadMs', cfg.gossipToTheDeadMs),
    indirectChecks: pick('indirectChecks', cfg.indirectChecks),
    gossipNodes: pick('gossipNodes', cfg.gossipNodes),
    suspicionMult: pick('suspicionMult', cfg.suspicionMult),
    suspicionMaxTimeoutMult: pick('suspicionMaxTimeoutMult', cfg.suspicionMaxTimeoutMult),
    retransmitMult: pick('retransmitMult', cfg.retransmitMult),
    awarenessMaxMultiplier: pick('awarenessMaxMultiplier', cfg.awarenessMaxMultiplier),
  });
}

function loadIdentity(file: string | undefined): Identity {
  if (!file) return generateIdentity();
  try {
    if (existsSync(file)) return identityFromPem(readFileSync(file, 'utf8'));
    const id = generateIdentity();
    writeFileSync(file, identityToPem(id), { mode: 0o600 });
    return id;
  } catch (err) {
    throw new MeshmedicError('MM_ERR_GOSSIP_IDENTITY', `gossip.identityKeyFile "${file}": ${(err as Error).message}`);
  }
}

function parseAddress(what: string, s: string, allowPortZero: boolean): Address {
  const hp = parseHostPort(s, { allowPortZero });
  if (typeof hp === 'string') throw new MeshmedicError('MM_ERR_ADDRESS', `${what}: ${hp}`);
  return hp;
}

/** What the component takes from its environment beyond the sidecar context (tests inject a fake DNS). */
export interface GossipDeps {
  readonly resolver?: SeedResolver;
}

export const startGossip: ComponentFactory = (ctx) => startGossipWith(ctx, {});

export function gossipFactory(deps: GossipDeps): ComponentFactory {
  return (ctx) => startGossipWith(ctx, deps);
}

async function startGossipWith(ctx: SidecarContext, deps: GossipDeps): Promise<GossipComponent> {
  const cfg = ctx.config.gossip;
  const log = ctx.log.child({ component: 'gossip' });
  const clock = ctx.clock;
  const profile = profileFromConfig(cfg);
  const listen = parseAddress('gossip.listen', cfg.listen, true);
  const specs: SeedSpec[] = cfg.join.map((s, i) => {
    const seed = parseSeed(s);
    if (typeof seed === 'string') throw new MeshmedicError('MM_ERR_ADDRESS', `gossip.join[${i}]: ${seed}`);
    return seed;
  });
  const seeds = new Seeds(specs, deps.resolver ?? systemSeedResolver, (seed, err) => log.warn('gossip seed did not resolve; its last addresses are kept', { seed, err: (err as NodeJS.ErrnoException).code ?? err.message }));
  const nodeId = ctx.config.node.id || `${hostname().slice(0, 200)}-${randomBytes(4).toString('hex')}`;
  if (Buffer.byteLength(nodeId) > 255) throw new MeshmedicError('MM_ERR_CONFIG_INVALID', `node.id "${nodeId.slice(0, 40)}…" is longer than 255 bytes of UTF-8`);
  let fileKeys: string[] | undefined;
  if (cfg.keysFile) {
    // Keys configured: encryption is on from the first packet, or the sidecar does not start.
    const read = readKeysFrom(cfg.keysFile);
    if (typeof read === 'string') throw new MeshmedicError('MM_ERR_GOSSIP_KEYS', read);
    fileKeys = read;
  }
  const keyring = new Keyring(fileKeys ?? cfg.keys ?? []);
  const identity = loadIdentity(cfg.identityKeyFile);
  const hc = cfg.health ?? {};
  const lim = cfg.limits ?? {};

  const advertised = cfg.advertise ? parseAddress('gossip.advertise', cfg.advertise, false) : undefined;
  if (!advertised && (listen.host === '0.0.0.0' || listen.host === '::')) {
    throw new MeshmedicError('MM_ERR_CONFIG_INVALID', 'gossip.listen binds every interface: set gossip.advertise to the address peers should use');
  }
  let transport: NodeTransport;
  try {
    transport = await NodeTransport.bind({
      host: listen.host,
      port: listen.port,
      maxStreamBytes: lim.maxStreamBytes,
      limits: {
        maxBufferedBytes: lim.maxBufferedBytes, packetsPerSecond: lim.packetsPerSecond, packetBurst: lim.packetBurst,
        streamsPerSecond: lim.streamsPerSecond, streamBurst: lim.streamBurst, maxStreamsPerPeer: lim.maxStreamsPerPeer,
      },
      onError: (err) => log.debug('gossip socket error', { err }),
    });
  } catch (err) {
    throw new MeshmedicError('MM_ERR_GOSSIP_BIND', `gossip.listen ${cfg.listen}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  // Anything failing from here on must not leave the sockets bound.
  try {
    const advertise: Address = advertised ?? transport.local;

    const board = new QuorumBoard(clock, {
      freshnessMs: hc.freshnessMs ?? 10_000,
      maxSkewMs: hc.maxSkewMs ?? 5_000,
      quorum: hc.quorum ?? 0,
      minQuorum: hc.minQuorum ?? 2,
      maxQuorum: hc.maxQuorum ?? 3,
      minRequests: hc.minRequests ?? 5,
      errorRateThreshold: hc.errorRateThreshold ?? 0.5,
      p99ThresholdUs: (hc.p99ThresholdMs ?? 0) * 1000,
      ratePerSecond: hc.ratePerSecond ?? 100,
      burst: hc.burst ?? 1000,
    });
    let membership: Membership;
    const auditHandlers = new Set<(body: Uint8Array, from: Address) => void>();
    const learnHandlers = new Set<(body: Uint8Array, from: Address) => void>();
    const keyOf = (observer: string) => keys(observer);
    const offsetOf = (observer: string) => membership.clockOffsetOf(observer);
    // Run the health plane out of band (coalesced) when something worth reacting to happens.
    let soonPending = false;
    let runSoon: () => void = () => {};
    const soon = () => {
      if (soonPending) return;
      soonPending = true;
      queueMicrotask(() => {
        soonPending = false;
        runSoon();
      });
    };
    membership = new Membership({
      id: nodeId,
      advertise,
      clock,
      transport,
      profile,
      keyring,
      publicKey: identity.publicKeyRaw,
      maxPacketBytes: cfg.maxPacketBytes ?? 1200,
      pushPullMaxMembers: lim.pushPullMaxMembers,
      pushPullMaxNewMembers: lim.pushPullMaxNewMembers,
      incarnationWindow: lim.incarnationWindow,
      observationShare: cfg.observationShare ?? 0.35,
      onObservation: (o) => {
        // Judged on the observer's own clock (its offset from our ping/ack round trips): skew-tolerant.
        const result = board.offer(o, keyOf, offsetOf);
        if (result !== 'accepted') {
          // Refused by the clock: the observer's offset may be unknown or out of date (it restarted with
          // another clock). Sample it now (one ping, at most one per probe interval); held observations are
          // judged again when the sample arrives.
          if (result === 'held' || ((result === 'stale' || result === 'future') && membership.clockOffsetOf(o.observer) === undefined)) membership.requestClockSample(o.observer);
          return false;
        }
        if (board.isBad(o)) soon(); // a verdict may have just formed: decide now, not at the next tick
        return true;
      },
      onClockSample: (id) => {
        if (board.release(id, keyOf, offsetOf).includes('accepted')) soon();
      },
      onAudit: (body, from) => {
        for (const h of auditHandlers) h(body, from);
      },
      onLearn: (body, from) => {
        for (const h of learnHandlers) h(body, from);
      },
      onChange: (m, prev) => {
        if (m.state === 'dead' || m.state === 'left') board.forgetObserver(m.id);
        if (prev !== undefined) log.info('member state changed', { member: m.id, from: prev, to: m.state, incarnation: m.incarnation });
      },
    });

    const keys = observerKeys(membership, nodeId);

    // Peer verdicts go to the healing engine when it runs: it judges them under the same guards as local
    // verdicts (max ejection, panic) and re-admits through its canary probation. Without it they are applied
    // to the mesh state directly and lifted by the health plane after the hold-down.
    const healing = asVerdictSink(ctx.components.get('healing'));
    const submit = (d: Decision): boolean => {
      if (!healing) return ctx.mesh.apply(d).applied;
      if (d.action !== 'eject') return false;
      return healing.submitVerdict({ target: d.target, detector: d.reason, kind: 'failure', severity: 'eject', source: 'peer', evidence: d.evidence });
    };

    const healthEnabled = hc.enabled ?? true;
    const plane = healthEnabled
      ? new HealthPlane({
          selfId: nodeId,
          clock,
          mesh: ctx.mesh,
          stats: ctx.stats,
          board,
          signer: new ObservationSigner(nodeId, identity, clock),
          acceptOwn: (o) => board.accept(o),
          publish: (o) => membership.publishObservation(o),
          submit,
          windows: hc.windows ?? 3,
          minRequests: hc.minRequests ?? 5,
          holdDownMs: hc.holdDownMs ?? 5_000,
          refreshMs: hc.refreshMs ?? Math.max(hc.intervalMs ?? 500, Math.floor((hc.freshnessMs ?? 10_000) / 4)),
          redundancy: hc.redundancy ?? 5,
          restoreOnQuorumLoss: !healing,
          probe: hc.probe === false ? undefined : connectProbe,
          probeEveryMs: hc.probeEveryMs ?? 2000,
        })
      : undefined;

    const threshold = cfg.loopDelayThresholdMs ?? 200;
    const loop = threshold > 0 ? new LoopStarvationWatch(threshold) : undefined;
    const keyringReloads = { applied: 0, failed: 0 };
    registerMetrics(ctx, membership, board, plane, loop, transport, keyringReloads);
    ctx.admin.route('GET', '/v1/members', () => ({ status: 200, body: membersBody(membership, nodeId) }));
    ctx.admin.route('GET', '/v1/gossip/verdicts', () => ({
      status: 200,
      body: { verdicts: plane?.verdicts() ?? [], peerEjected: plane?.peerEjectedEndpoints() ?? [], observations: board.results },
    }));

    membership.start();
    const timers: TimerHandle[] = [];
    let closed = false;

    // Join through the seeds, retrying with backoff until one answers (sidecars start in any order).
    const retryMs = cfg.joinRetryMs ?? 2000;
    let joinDelay = retryMs;
    let joinTimer: TimerHandle | undefined;
    let joining = false;
    const joinOnce = (cb: (answered: number) => void) => {
      const go = () => {
        if (closed) return;
        const list = seeds.current();
        if (list.length === 0) return cb(0);
        membership.join(list, cb);
      };
      // DNS seeds are resolved again before every attempt: peers may have moved since the last one.
      if (seeds.usesDns) seeds.refresh().then(go, go);
      else go();
    };
    const tryJoin = () => {
      if (closed || specs.length === 0 || joining) return;
      joining = true;
      joinOnce((n) => {
        joining = false;
        if (closed) return;
        if (n > 0) {
          joinDelay = retryMs;
          log.info('joined the gossip membership', { seedsAnswered: n, members: membership.liveCount });
          return;
        }
        log.warn('no gossip seed answered; retrying', { seeds: cfg.join, retryMs: joinDelay });
        joinTimer = clock.setTimeout(() => { joinTimer = undefined; tryJoin(); }, joinDelay);
        joinDelay = Math.min(joinDelay * 2, 30_000);
      });
    };
    tryJoin();
    // Alone again (every peer dead, e.g. after a long partition): go back to the seeds.
    if (specs.length > 0) {
      timers.push(clock.setInterval(() => {
        if (membership.liveCount <= 1 && !joinTimer) tryJoin();
      }, Math.max(retryMs, 5000)));
    }
    if (seeds.usesDns) timers.push(clock.setInterval(() => void seeds.refresh(), cfg.dnsRefreshMs ?? 30_000));

    // A mounted Secret changes under us: re-read it and rotate without a restart. A bad or empty file keeps
    // the keys in use (encryption never silently goes off) and is reported once per distinct problem.
    let lastKeyProblem = '';
    if (cfg.keysFile) {
      const file = cfg.keysFile;
      // A keyring change is a config change: audited (a fingerprint of the primary key, never keys).
      const audit = (e: Record<string, unknown>) => (ctx.components.get('audit') as { record?: (e: Record<string, unknown>) => void } | undefined)?.record?.({ kind: 'config', at: clock.now(), ...e });
      timers.push(clock.setInterval(() => {
        const read = readKeysFrom(file);
        if (typeof read === 'string') {
          if (read !== lastKeyProblem) {
            log.error('gossip keyring not reloaded; the keys in use are kept', { problem: read, code: 'MM_ERR_GOSSIP_KEYS' });
            audit({ event: 'gossip_keyring_reload_failed', problem: read });
          }
          lastKeyProblem = read;
          keyringReloads.failed++;
          return;
        }
        lastKeyProblem = '';
        const now = keyring.list();
        if (now.length === read.length && now.every((k, i) => k === read[i])) return;
        applyKeys(keyring, read);
        keyringReloads.applied++;
        log.info('gossip keyring reloaded', { keys: read.length, primaryChanged: now[0] !== read[0] });
        audit({ event: 'gossip_keyring_reloaded', keys: read.length, primaryChanged: now[0] !== read[0], primary: createHash('sha256').update(read[0] ?? '').digest('hex').slice(0, 16) });
      }, cfg.keysReloadMs ?? 5000));
    }

    let unsubscribe: () => void = () => {};
    if (plane) {
      const tick = () => {
        try {
          plane.tick();
        } catch (err) {
          log.error('health plane tick failed', { err });
        }
      };
      runSoon = () => { if (!closed) tick(); };
      timers.push(clock.setInterval(tick, hc.intervalMs ?? 500));
      // Our own engine just ejected an endpoint on local evidence: tell the mesh now.
      unsubscribe = ctx.mesh.subscribe((_snap, changes) => {
        if (changes.some((d) => d.applied && d.action === 'eject' && d.source === 'local')) soon();
      });
    }

    // A starved event loop makes our own probes late: tell Lifeguard, so we slow down instead of accusing peers.
    if (loop) {
      timers.push(clock.setInterval(() => {
        const { starved, worstLagMs } = loop.check();
        if (!starved) return;
        membership.awareness.applyDelta(1);
        log.debug('event loop starved: slowing gossip down', { worstLagMs, awareness: membership.awareness.health });
      }, profile.probeIntervalMs));
    }

    if (!keyring.enabled) {
      // Loud on purpose: without keys anyone who reaches the port is a member and can speak for others.
      log.warn('GOSSIP IS NOT ENCRYPTED: no gossip.keys are configured, so anyone who can reach the gossip port can join the mesh, invent members and forge membership messages; set gossip.keys (or gossip.keysFile) on every sidecar', { listen: formatHostPort(transport.local.host, transport.local.port) });
    }
    log.info('gossip started', { nodeId, listen: formatHostPort(transport.local.host, transport.local.port), advertise, encrypted: keyring.enabled, profile: cfg.profile ?? 'lan' });

    return {
      name: 'gossip',
      nodeId,
      membership,
      board,
      healthPlane: plane,
      keyring,
      auditChannel: directChannel(membership, nodeId, auditHandlers, (to, body) => membership.sendAudit(to, body)),
      learnChannel: {
        ...directChannel(membership, nodeId, learnHandlers, (to, body) => membership.sendLearn(to, body)),
        sign: (data) => new Uint8Array(sign(null, data, identity.privateKey)),
        verify: (node, data, signature) => {
          const key = keys(node);
          if (!key) return undefined;
          try {
            return verify(null, data, key, signature);
          } catch {
            return false;
          }
        },
      },
      addresses: { gossip: formatHostPort(transport.local.host, transport.local.port) },
      async close(deadlineMs = 1000): Promise<void> {
        if (closed) return;
        closed = true;
        joinTimer?.cancel();
        unsubscribe();
        for (const t of timers) t.cancel();
        loop?.stop();
        await new Promise<void>((resolve) => membership.leave(Math.min(1000, Math.max(0, deadlineMs)), resolve));
        membership.shutdown();
        await transport.close();
      },
    };
  } catch (err) {
    await transport.close();
    throw err;
  }
};

/** Connection attempts per probe run; all of them must fail for the run to count as evidence of failure. */
const PROBE_ATTEMPTS = 3;
/**
 * Per attempt: longer than the kernel's first SYN retransmission (1 s), so that one lost SYN or SYN-ACK on
 * a lossy path is retried by TCP instead of counting as a failed connect. With 500 ms and two attempts, 20 %
 * loss let a probe "confirm" a healthy endpoint often enough to complete a quorum (the chaos lab saw it).
 */
const PROBE_TIMEOUT_MS = 1500;

/**
 * Corroboration of a peer's report by a sidecar that has no traffic to the endpoint: PROBE_ATTEMPTS TCP
 * connection attempts, 100 ms apart. Refused, reset or timed-out connects count as failures.
 */
function connectProbe(spec: { host: string; port: number }, done: (attempts: number, failures: number) => void): void {
  let failures = 0;
  const attempt = (n: number): void => {
    void tcpProbe(spec.host, spec.port, PROBE_TIMEOUT_MS).then((ok) => {
      if (!ok) failures++;
      if (n + 1 < PROBE_ATTEMPTS) setTimeout(() => attempt(n + 1), 100).unref();
      else done(PROBE_ATTEMPTS, failures);
    });
  };
  attempt(0);
}

/** A member-to-member channel of opaque payloads (audit witness, federated baselines) over one message kind. */
function directChannel(membership: Membership, nodeId: string, handlers: Set<(body: Uint8Array, from: Address) => void>, send: (to: Address, body: Uint8Array) => void): AuditChannel {
  return {
    send,
    subscribe: (fn) => {
      handlers.add(fn);
      return () => handlers.delete(fn);
    },
    peers: () => membership.list().filter((m) => m.id !== nodeId && m.state === 'alive').map((m) => ({ id: m.id, host: m.host, port: m.port })),
  };
}

/** What the gossip component needs from the healing engine (structural, so that gossip does not import heal). */
interface VerdictSink {
  submitVerdict(v: {
    target: string;
    detector: string;
    kind: 'failure';
    severity: 'eject';
    source: 'peer';
    evidence: Readonly<Record<string, number | string | boolean>>;
  }): boolean;
}

function asVerdictSink(c: unknown): VerdictSink | undefined {
  return c && typeof (c as VerdictSink).submitVerdict === 'function' ? (c as VerdictSink) : undefined;
}

function membersBody(m: Membership, self: string) {
  return {
    self,
    incarnation: m.incarnation,
    awareness: m.awareness.health,
    counts: m.countByState(),
    // UDP bytes since start, so an operator (or the lab) can tell what gossip costs per host.
    traffic: { bytesSent: m.counters.bytesSent, bytesReceived: m.counters.bytesReceived },
    members: m.list()
      .sort((a, b) => a.id.localeCompare(b.id))
      .map((x: MemberInfo) => ({
        id: x.id,
        address: formatHostPort(x.host, x.port),
        state: x.state,
        incarnation: x.incarnation,
        lastChange: new Date(x.stateChange).toISOString(),
        publicKey: x.publicKey ? Buffer.from(x.publicKey).toString('base64') : null,
        self: x.id === self,
      })),
  };
}

function registerMetrics(ctx: SidecarContext, m: Membership, board: QuorumBoard, plane: HealthPlane | undefined, loop: LoopStarvationWatch | undefined, transport: NodeTransport, keyringReloads: { applied: number; failed: number }): void {
  const reg = ctx.metrics;
  const c = m.counters;
  // A restarted component replaces its predecessor's metrics in the same registry.
  const fresh = (name: string): string => {
    if (reg.getSingleMetric(name)) reg.removeSingleMetric(name);
    return name;
  };
  const setAll = (ctr: Counter<string>, pairs: readonly [Record<string, string>, number][]) => {
    ctr.reset();
    for (const [labels, v] of pairs) if (v > 0) ctr.inc(labels, v);
  };
  new Gauge({
    name: fresh('meshmedic_gossip_members'), help: 'Gossip members known to this sidecar, by state', labelNames: ['state'], registers: [reg],
    collect() {
      for (const [state, n] of Object.entries(m.countByState())) this.set({ state }, n);
    },
  });
  new Counter({
    name: fresh('meshmedic_gossip_packets_total'), help: 'Gossip UDP packets by direction and result', labelNames: ['direction', 'result'], registers: [reg],
    collect() {
      const bad = c.droppedMalformed + c.droppedUnknownKey + c.droppedPlaintext + c.droppedEncrypted;
      setAll(this, [
        [{ direction: 'out', result: 'sent' }, c.packetsSent],
        [{ direction: 'in', result: 'ok' }, Math.max(0, c.packetsReceived - bad)],
        [{ direction: 'in', result: 'malformed' }, c.droppedMalformed],
        [{ direction: 'in', result: 'unknown_key' }, c.droppedUnknownKey],
        [{ direction: 'in', result: 'plaintext_refused' }, c.droppedPlaintext],
        [{ direction: 'in', result: 'encrypted_refused' }, c.droppedEncrypted],
        [{ direction: 'in', result: 'rate_limited' }, transport.limiter.counters.packetsLimited],
      ]);
    },
  });
  new Counter({
    name: fresh('meshmedic_gossip_bytes_total'), help: 'Gossip UDP bytes by direction', labelNames: ['direction'], registers: [reg],
    collect() { setAll(this, [[{ direction: 'out' }, c.bytesSent], [{ direction: 'in' }, c.bytesReceived]]); },
  });
  new Counter({
    name: fresh('meshmedic_gossip_probes_total'), help: 'Failure-detector probes by result', labelNames: ['result'], registers: [reg],
    collect() { setAll(this, [[{ result: 'ok' }, c.probes - c.probesFailed], [{ result: 'failed' }, c.probesFailed]]); },
  });
  new Counter({
    name: fresh('meshmedic_gossip_events_total'), help: 'Membership protocol events', labelNames: ['event'], registers: [reg],
    collect() {
      setAll(this, [
        [{ event: 'suspicion' }, c.suspicionsRaised], [{ event: 'refutation' }, c.refutations], [{ event: 'reannouncement' }, c.reannouncements], [{ event: 'death_declared' }, c.deathsDeclared],
        [{ event: 'key_conflict' }, c.keyConflicts], [{ event: 'address_conflict' }, c.addressConflicts], [{ event: 'push_pull' }, c.pushPulls],
        [{ event: 'tcp_fallback_ack' }, c.tcpFallbackAcks], [{ event: 'handler_error' }, c.handlerErrors], [{ event: 'member_refused' }, c.membersRefused],
        [{ event: 'push_pull_refused' }, c.pushPullRefused], [{ event: 'push_pull_members_skipped' }, c.pushPullMembersSkipped],
        [{ event: 'implausible_incarnation' }, c.implausibleIncarnations], [{ event: 'clock_sample' }, c.clockSamples], [{ event: 'clock_sample_refused' }, c.clockSamplesRefused],
        [{ event: 'keyring_reloaded' }, keyringReloads.applied], [{ event: 'keyring_reload_failed' }, keyringReloads.failed],
        [{ event: 'stream_rate_limited' }, transport.limiter.counters.streamsLimited], [{ event: 'stream_over_budget' }, transport.limiter.counters.streamsOverBudget],
      ]);
    },
  });
  new Gauge({
    name: fresh('meshmedic_gossip_stream_buffered_bytes'), help: 'Bytes held by unfinished inbound gossip TCP frames (bounded by gossip.limits.maxBufferedBytes)', registers: [reg],
    collect() { this.set(transport.limiter.bufferedBytes); },
  });
  new Gauge({
    name: fresh('meshmedic_gossip_awareness'), help: 'Lifeguard local health score (0 = healthy; timeouts scale by score + 1)', registers: [reg],
    collect() { this.set(m.awareness.health); },
  });
  new Counter({
    name: fresh('meshmedic_gossip_loop_starved_total'), help: 'Checks that found the event loop starved (timer lag above gossip.loopDelayThresholdMs)', registers: [reg],
    collect() { this.reset(); if (loop && loop.starvedChecks > 0) this.inc(loop.starvedChecks); },
  });
  new Counter({
    name: fresh('meshmedic_gossip_observations_total'), help: 'Signed observations received, by result, and published', labelNames: ['result'], registers: [reg],
    collect() {
      setAll(this, [...OFFER_RESULTS.map((r) => [{ result: r }, board.results[r]] as [Record<string, string>, number]), [{ result: 'published' }, plane?.counters.published ?? 0], [{ result: 'suppressed' }, plane?.counters.suppressed ?? 0], [{ result: 'probe_runs' }, plane?.counters.probes ?? 0]]);
    },
  });
  new Counter({
    name: fresh('meshmedic_gossip_peer_decisions_total'), help: 'Mesh-wide verdicts acted on: eject (applied, or handed to the healing engine), restore, refused; kept_own_traffic: a verdict of failed probes alone not acted on, our own traffic to the endpoint being answered', labelNames: ['action'], registers: [reg],
    collect() {
      setAll(this, [[{ action: 'eject' }, plane?.counters.peerEjections ?? 0], [{ action: 'restore' }, plane?.counters.peerRestores ?? 0], [{ action: 'refused' }, plane?.counters.refused ?? 0], [{ action: 'kept_own_traffic' }, plane?.counters.keptByOwnTraffic ?? 0]]);
    },
  });
  new Gauge({
    name: fresh('meshmedic_gossip_failing_endpoints'), help: 'Endpoints with a failing mesh-wide verdict', registers: [reg],
    collect() { this.set(plane ? plane.verdicts().filter((v) => v.failing).length : 0); },
  });
}
