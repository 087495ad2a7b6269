// The audit component of a running sidecar: appends every decision (applied or refused, any source), every
// mutating admin call and every config load/change to the signed Merkle log; serves checkpoint, entries and
// proofs on the admin API; reports an unwritable directory loudly while the sidecar keeps working.
import { createHash, generateKeyPairSync, createPrivateKey, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Counter, Gauge } from '../admin/metrics-registry.js';
import { MeshmedicError } from '../core/errors.js';
import type { Component, ComponentFactory, SidecarContext } from '../runtime/context.js';
import type { RecordedDecision } from '../mesh/state.js';
import { apiError } from '../admin/server.js';
import { DEFAULT_AUDIT_DIR } from '../config/sections/audit.js';
import { AuditLog, AuditRangeError } from './log.js';
import { canonicalJson } from './record.js';
import { consistencyProofDoc, type InclusionProofDoc } from './verify.js';
import { noteKeyFromPrivate, parseCheckpointBody, parseNote } from './note.js';
import { loadWitness, witnessStatePath, WitnessStateWriter } from './witness-store.js';
import { Witnessing, type WitnessChannel } from './witness-gossip.js';

export interface AuditEvent {
  readonly at: number;
  readonly event: 'outage' | 'resumed' | 'corruption' | 'fork' | 'witness_state';
  readonly message: string;
}

export interface AuditComponent extends Component {
  readonly log: AuditLog;
  /** Append an entry of any other kind (config changes from the Kubernetes watcher, witness alerts). */
  record(entry: Readonly<Record<string, unknown>>): void;
  /** Recent audit alerts (outages, corruption found at open, forks seen as a witness). */
  events(): readonly AuditEvent[];
  /** Raise an alert: event + metric + log line (used by the witness). */
  alert(event: AuditEvent['event'], message: string, details?: Record<string, unknown>): void;
  /** The latest signed checkpoint with the witnesses' cosignatures collected so far (what the admin API serves). */
  checkpointText(): string | undefined;
}

/** The audit component among started components, if any (structural: others need not import this module). */
export function auditOf(components: ReadonlyMap<string, Component>): AuditComponent | undefined {
  const c = components.get('audit') as AuditComponent | undefined;
  return c && typeof c.record === 'function' ? c : undefined;
}

/** A key name / origin from a node id: no whitespace and no '+'. */
export function auditOrigin(nodeId: string): string {
  const id = (nodeId || hostname()).replace(/[\s+]+/g, '-').slice(0, 200) || 'node';
  return `meshmedic.io/audit/${id}`;
}

function loadKey(file: string): { key: KeyObject; created: boolean } {
  try {
    if (existsSync(file)) {
      const key = createPrivateKey(readFileSync(file, 'utf8'));
      if (key.asymmetricKeyType !== 'ed25519') throw new Error(`the key is ${key.asymmetricKeyType}, not Ed25519`);
      return { key, created: false };
    }
    const { privateKey } = generateKeyPairSync('ed25519');
    writeFileSync(file, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
    return { key: privateKey, created: true };
  } catch (err) {
    throw new MeshmedicError('MM_ERR_AUDIT_KEY', `audit key "${file}": ${(err as Error).message}`);
  }
}

/** The decision as logged: everything MeshState recorded, evidence included. */
function decisionEntry(d: RecordedDecision): Record<string, unknown> {
  return {
    kind: 'decision', at: d.at, seq: d.seq, action: d.action, target: d.target, reason: d.reason, source: d.source,
    applied: d.applied, refused: d.refused, durationMs: d.durationMs, weight: d.weight, evidence: d.evidence,
  };
}

/** The config as logged: secrets redacted. */
function redactedConfig(ctx: SidecarContext): Record<string, unknown> {
  const c = JSON.parse(JSON.stringify(ctx.config)) as Record<string, Record<string, unknown>>;
  if (c.admin && c.admin.token) c.admin.token = '<redacted>';
  if (c.gossip && Array.isArray(c.gossip.keys) && c.gossip.keys.length) c.gossip.keys = c.gossip.keys.map(() => '<redacted>');
  return c;
}

export const startAudit: ComponentFactory = async (ctx: SidecarContext): Promise<AuditComponent> => {
  const cfg = { ...ctx.config.audit, dir: ctx.config.audit.dir || DEFAULT_AUDIT_DIR };
  const log = ctx.log.child({ component: 'audit' });
  // A named key file must work (a bad one is a configuration error); the default one lives with the log and
  // an unusable directory must not stop the sidecar: then a key of this run signs, and the outage is reported.
  const namedKey = cfg.keyFile || ctx.config.gossip.identityKeyFile;
  let privateKey: KeyObject;
  if (namedKey) privateKey = loadKey(namedKey).key;
  else {
    try {
      mkdirSync(cfg.dir, { recursive: true });
      privateKey = loadKey(join(cfg.dir, 'node-key.pem')).key;
    } catch (err) {
      privateKey = generateKeyPairSync('ed25519').privateKey;
      log.error('audit key cannot be stored with the log; signing with a key of this run only', { code: 'MM_ERR_AUDIT_KEY', dir: cfg.dir, err });
    }
  }

  const recentEvents: AuditEvent[] = [];
  let outageSince = 0;
  const alerts = new Map<string, number>();
  const alert = (event: AuditEvent['event'], message: string, details: Record<string, unknown> = {}) => {
    recentEvents.push({ at: ctx.clock.now(), event, message });
    if (recentEvents.length > 100) recentEvents.shift();
    alerts.set(event, (alerts.get(event) ?? 0) + 1);
    const code = event === 'fork' ? 'MM_ERR_AUDIT_FORK' : event === 'corruption' ? 'MM_ERR_AUDIT_TAMPERED' : event === 'witness_state' ? 'MM_ERR_AUDIT_WITNESS_STATE' : 'MM_ERR_AUDIT_UNAVAILABLE';
    if (event === 'resumed') log.warn('audit log resumed', { ...details, message });
    else log.error(`audit ${event}`, { code, message, ...details });
  };

  // Witnessing runs once the gossip component is up (it starts after this one): peers cosign our checkpoints
  // and we check and cosign theirs.
  // What this witness cosigned survives restarts (witness.json next to the log).
  const witnessFile = witnessStatePath(cfg.dir);
  const loaded = loadWitness(witnessFile, noteKeyFromPrivate(auditOrigin(ctx.config.node.id).replace('/audit/', '/witness/'), privateKey), () => ctx.clock.now());
  const witness = loaded.witness;
  if (loaded.problem) alert('witness_state', loaded.problem, { file: witnessFile });
  let lastStoreError = -Infinity;
  const witnessStore = new WitnessStateWriter(witnessFile, witness, (err) => {
    // Cosigning goes on from memory; say so at most once a minute.
    if (ctx.clock.now() - lastStoreError < 60_000) return;
    lastStoreError = ctx.clock.now();
    log.error('witness state not stored: after a restart this witness would not remember what it cosigned', { code: 'MM_ERR_AUDIT_WITNESS_STATE', file: witnessFile, err });
  });
  let witnessing: Witnessing | undefined;
  let closing = false;
  const ensureWitnessing = (): Witnessing | undefined => {
    if (witnessing || closing) return witnessing;
    const channel = (ctx.components.get('gossip') as { auditChannel?: WitnessChannel } | undefined)?.auditChannel;
    if (!channel) return undefined;
    witnessing = new Witnessing({
      witness,
      channel,
      logKey: audit.verifierKey,
      persist: () => witnessStore.save(),
      consistencyProof: (oldSize, size) => {
        const cur = audit.current();
        return cur && size <= cur.tree.size ? cur.tree.consistencyProof(oldSize, size) : undefined;
      },
      onFork: (a) => {
        alert('fork', a.message, { origin: a.origin });
        record({ kind: 'audit', event: 'fork', at: ctx.clock.now(), origin: a.origin, message: a.message, evidence: [...a.evidence] });
      },
    });
    return witnessing;
  };

  const audit = AuditLog.open({
    dir: cfg.dir,
    origin: auditOrigin(ctx.config.node.id),
    privateKey,
    clock: ctx.clock,
    fsyncIntervalMs: cfg.fsyncIntervalMs,
    checkpointIntervalMs: cfg.checkpointIntervalMs,
    retention: cfg.retention,
    maxQueued: cfg.maxQueued,
    onOutage: (err) => {
      if (err) {
        outageSince = ctx.clock.now();
        alert('outage', `the audit log directory cannot be written: ${err.message}; proxying and healing continue, entries queue`, { dir: cfg.dir });
      } else alert('resumed', `the audit log is written again after ${ctx.clock.now() - outageSince} ms`, { dir: cfg.dir });
    },
    onCorruption: (message) => alert('corruption', `${message}; logging continues in a new segment`, { dir: cfg.dir }),
    onCheckpoint: (text, size, origin) => ensureWitnessing()?.publish(text, size, origin),
  });
  // Witnesses also hear about a quiet log now and then (its latest checkpoint, unchanged).
  const republish = ctx.clock.setInterval(() => {
    const c = audit.checkpoint();
    if (c) ensureWitnessing()?.publish(c.text, c.size, c.origin);
  }, Math.max(5000, cfg.checkpointIntervalMs));

  const record = (entry: Readonly<Record<string, unknown>>) => {
    try {
      audit.append(entry);
    } catch (err) {
      log.error('audit entry not recorded', { code: 'MM_ERR_INTERNAL', err, kind: entry.kind });
    }
  };

  const config = redactedConfig(ctx);
  record({ kind: 'config', event: 'loaded', at: ctx.clock.now(), sha256: createHash('sha256').update(canonicalJson(config)).digest('hex'), config });
  if (loaded.problem) record({ kind: 'audit', event: 'witness_state_unusable', at: ctx.clock.now(), file: witnessFile, problem: loaded.problem });
  const unsubscribe = ctx.mesh.subscribe((_snap, changes) => {
    for (const d of changes) record(decisionEntry(d));
  });
  const unobserve = ctx.admin.observeMutatingCalls?.((call) => {
    record({ kind: 'operator', at: ctx.clock.now(), method: call.method, path: call.path, body: call.body ?? null, status: call.status, ...(call.refused ? { refused: call.refused } : {}), ...(call.remote ? { remote: call.remote } : {}) });
  }) ?? (() => {});

  const checkpointText = (): string | undefined => {
    const c = audit.checkpoint();
    if (!c) return undefined;
    // With the witnesses' cosignatures when they have answered for this very checkpoint.
    const cosigned = witnessing?.cosigned();
    return cosigned && cosigned.startsWith(c.text) ? cosigned : c.text;
  };
  registerRoutes(ctx, audit, checkpointText, () => recentEvents, () => witnessing);
  registerMetrics(ctx, audit, alerts, () => witnessing);
  log.info('audit log open', { dir: cfg.dir, origin: audit.origin, key: audit.verifierKey, state: audit.status().state });

  return {
    name: 'audit',
    log: audit,
    record,
    events: () => recentEvents,
    alert,
    checkpointText,
    async close() {
      closing = true;
      republish.cancel();
      witnessing?.close();
      witnessing = undefined; // the final checkpoint written below is not sent to a gossip layer that has stopped
      unsubscribe();
      unobserve();
      await witnessStore.save();
      await audit.close();
    },
  };
};

function intParam(q: URLSearchParams, name: string, def: number | undefined, min: number, max: number): number | string {
  const v = q.get(name);
  if (v === null || v === '') return def ?? `${name} is required`;
  if (!/^\d{1,16}$/.test(v) || Number(v) < min || Number(v) > max) return `${name} must be an integer from ${min} to ${max}, got "${v.slice(0, 30)}"`;
  return Number(v);
}

function registerRoutes(ctx: SidecarContext, audit: AuditLog, checkpointText: () => string | undefined, events: () => readonly AuditEvent[], witnessing: () => Witnessing | undefined): void {
  ctx.admin.route('GET', '/v1/audit/checkpoint', () => {
    const text = checkpointText();
    if (!text) return apiError(503, 'MM_ERR_AUDIT_UNAVAILABLE', 'no checkpoint signed yet');
    return { status: 200, body: text, contentType: 'text/plain; charset=utf-8' };
  });
  ctx.admin.route('GET', '/v1/audit/status', () => ({
    status: 200,
    body: { ...audit.status(), origin: audit.origin, key: audit.verifierKey, witnesses: witnessing()?.witnessCount() ?? 0, witnessing: witnessing()?.counters ?? null, events: events() },
  }));
  ctx.admin.route('GET', '/v1/audit/entries', (req) => {
    const segment = req.query.has('segment') ? intParam(req.query, 'segment', undefined, 1, Number.MAX_SAFE_INTEGER) : undefined;
    const from = intParam(req.query, 'from', 0, 0, Number.MAX_SAFE_INTEGER);
    const limit = intParam(req.query, 'limit', 100, 1, 1000);
    for (const p of [segment, from, limit]) if (typeof p === 'string') return apiError(400, 'MM_ERR_BAD_REQUEST', p);
    try {
      const page = audit.readPage(segment as number | undefined, from as number, limit as number);
      return { status: 200, body: { ...page, entries: page.entries.map((e) => JSON.parse(e) as unknown) } };
    } catch (err) {
      if (err instanceof AuditRangeError) return apiError(err.status, err.status === 404 ? 'MM_ERR_NOT_FOUND' : 'MM_ERR_BAD_REQUEST', err.message);
      if (err instanceof MeshmedicError) return apiError(500, err.code, err.message);
      throw err;
    }
  });
  ctx.admin.route('GET', '/v1/audit/proof', (req) => {
    const cur = audit.current();
    const latest = audit.checkpoint();
    if (!cur || !latest || latest.origin !== cur.origin) return apiError(503, 'MM_ERR_AUDIT_UNAVAILABLE', 'no checkpoint of the current segment signed yet');
    const size = intParam(req.query, 'size', latest.size, 1, cur.signed);
    if (typeof size === 'string') return apiError(400, 'MM_ERR_BAD_REQUEST', `${size} (the signed size)`);
    const text = size === latest.size ? latest.text : audit.checkpointOfSize(size);
    if (!text) return apiError(404, 'MM_ERR_NOT_FOUND', `no signed checkpoint of size ${size} is held; the latest has size ${latest.size}`);
    if (req.query.has('from')) {
      const from = intParam(req.query, 'from', undefined, 0, size);
      if (typeof from === 'string') return apiError(400, 'MM_ERR_BAD_REQUEST', from);
      const cp = { ...parseCheckpointBody(parseNote(text).body), note: parseNote(text), text };
      const held = audit.checkpointOfSize(from);
      const doc = consistencyProofDoc(cur.tree, held ? [{ ...parseCheckpointBody(parseNote(held).body), note: parseNote(held), text: held }] : [], cp, from);
      return { status: 200, body: doc };
    }
    const index = intParam(req.query, 'index', undefined, 0, size - 1);
    if (typeof index === 'string') return apiError(400, 'MM_ERR_BAD_REQUEST', index);
    let entry: string | undefined;
    try {
      entry = audit.readPage(cur.n, index, 1).entries[0];
    } catch (err) {
      if (err instanceof MeshmedicError) return apiError(500, err.code, err.message);
      if (!(err instanceof AuditRangeError)) throw err;
    }
    if (entry === undefined) return apiError(404, 'MM_ERR_NOT_FOUND', `entry ${index} is not readable`);
    const doc: InclusionProofDoc = {
      type: 'inclusion', checkpoint: text, leaf_index: index, tree_size: size, entry,
      inclusion_path: cur.tree.inclusionProof(index, size).map((h) => h.toString('base64')),
    };
    return { status: 200, body: doc };
  });
}

function registerMetrics(ctx: SidecarContext, audit: AuditLog, alerts: Map<string, number>, witnessing: () => Witnessing | undefined): void {
  const reg = ctx.metrics;
  const fresh = (name: string): string => {
    if (reg.getSingleMetric(name)) reg.removeSingleMetric(name);
    return name;
  };
  new Counter({
    name: fresh('meshmedic_audit_entries_total'), help: 'Entries handed to the audit log (written, queued or dropped)', registers: [reg],
    collect() { this.reset(); this.inc(audit.status().appended); },
  });
  new Gauge({
    name: fresh('meshmedic_audit_tree_size'), help: 'Entries in the current audit segment: in the tree, durable (fsynced), signed (latest checkpoint)', labelNames: ['stage'], registers: [reg],
    collect() {
      const s = audit.status();
      this.set({ stage: 'tree' }, s.size);
      this.set({ stage: 'durable' }, s.durable);
      this.set({ stage: 'signed' }, s.signed);
    },
  });
  new Gauge({
    name: fresh('meshmedic_audit_outage'), help: '1 while the audit log cannot be written (proxying and healing continue)', registers: [reg],
    collect() { this.set(audit.status().state === 'outage' ? 1 : 0); },
  });
  new Gauge({
    name: fresh('meshmedic_audit_queued_entries'), help: 'Entries waiting in memory to be written', registers: [reg],
    collect() { this.set(audit.status().queued); },
  });
  new Counter({
    name: fresh('meshmedic_audit_dropped_entries_total'), help: 'Entries lost because the queue was full during an outage', registers: [reg],
    collect() { this.reset(); this.inc(audit.status().dropped); },
  });
  new Counter({
    name: fresh('meshmedic_audit_alerts_total'), help: 'Audit alerts: outage, resumed, corruption found at open, fork seen as a witness, witness state unreadable at start', labelNames: ['event'], registers: [reg],
    collect() {
      this.reset();
      for (const e of ['outage', 'resumed', 'corruption', 'fork', 'witness_state']) this.inc({ event: e }, alerts.get(e) ?? 0);
    },
  });
  new Gauge({
    name: fresh('meshmedic_audit_cosignatures'), help: 'Witness cosignatures collected for the latest checkpoint', registers: [reg],
    collect() { this.set(witnessing()?.witnessCount() ?? 0); },
  });
  new Counter({
    name: fresh('meshmedic_audit_witness_events_total'), help: 'Witness protocol: checkpoints we cosigned for peers, conflicts, forks seen, refused and malformed messages', labelNames: ['event'], registers: [reg],
    collect() {
      this.reset();
      const c = witnessing()?.counters;
      if (c) for (const [k, v] of Object.entries(c)) this.inc({ event: k }, v);
    },
  });
}
