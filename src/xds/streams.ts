// One ADS stream, State-of-the-World or Delta: subscriptions, nonces, ACK/NACK bookkeeping and what to
// send after each request or cache change. Pure protocol logic over a small transport interface, so the
// conformance rules are testable without sockets; the gRPC wiring lives in server.ts.
import type { SnapshotCache, EncodedResource, TypeSnapshot } from './cache.js';
import type { ClientFlavor } from './resources.js';
import type { DeltaRequest, NodeInfo, SotwRequest } from './requests.js';
import { deltaFrame, deltaHead, sotwFrame, sotwHead } from './wire.js';
import { ADS_ORDER, CLUSTER_TYPE, ENDPOINT_TYPE, isFullStateType, isIstioTypeUrl, LISTENER_TYPE, ROUTE_TYPE } from './types.js';

/** gRPC status codes used here (numeric, to keep this file free of the transport). */
export const Code = { INVALID_ARGUMENT: 3, RESOURCE_EXHAUSTED: 8, UNAVAILABLE: 14 } as const;

export interface StreamLimits {
  /** Most names one request may carry (subscribe list or SotW resource_names). */
  readonly maxNamesPerRequest: number;
  /** Most names a stream may hold subscribed per type. */
  readonly maxSubscribedNames: number;
  /** Most distinct type URLs one stream may use. */
  readonly maxTypesPerStream: number;
  /** Longest accepted resource name or type URL. */
  readonly maxNameLength: number;
  /** Most names one stream may hold subscribed (or declared held) over all its types together. */
  readonly maxSubscribedNamesPerStream: number;
  /** Estimated bytes of subscription state one stream may hold (names plus per-entry overhead). */
  readonly maxSubscriptionBytesPerStream: number;
}

/** Bytes charged per name held by a stream beyond its characters: set and map entries, and the string header. */
export const SUBSCRIPTION_ENTRY_OVERHEAD = 160;
const nameCost = (n: string) => n.length + SUBSCRIPTION_ENTRY_OVERHEAD;

export interface StreamTransport {
  /** Returns false when the transport buffers are full; `onDrain` is then called once they empty. */
  write(frame: Buffer): boolean;
  onDrain(fn: () => void): void;
  /** End the stream with a gRPC status. */
  fail(code: number, details: string): void;
}

export interface StreamHooks {
  /** A response went out. */
  sent(typeUrl: string, mode: 'sotw' | 'delta', bytes: number, resources: number): void;
  ack(typeUrl: string): void;
  nack(stream: AdsStream, typeUrl: string, detail: string): void;
  /** A request was refused or ignored (stale nonce, unknown type...). */
  refused(reason: string): void;
}

export interface StreamEnv {
  readonly cache: SnapshotCache;
  readonly limits: StreamLimits;
  readonly controlPlaneId: string;
  flavorOf(node: NodeInfo | undefined): ClientFlavor;
  /** Make sure the flavor's resources are built (first stream of that flavor). */
  activate(flavor: ClientFlavor): void;
  readonly hooks: StreamHooks;
  now(): number;
}

export type TypeState = 'REQUESTED' | 'SENT' | 'ACKED' | 'NACKED';

/** What the admin API shows per stream and type (like Envoy's CSDS ClientConfig). */
export interface TypeStatus {
  readonly typeUrl: string;
  readonly state: TypeState;
  readonly subscribed: number | '*';
  readonly sentVersion: string;
  readonly ackedVersion: string;
  readonly nonce: string;
  readonly error?: string;
  readonly acks: number;
  readonly nacks: number;
  readonly updatedAt: number;
}

export interface StreamStatus {
  readonly id: number;
  readonly mode: 'sotw' | 'delta';
  readonly peer: string;
  readonly node: { id: string; cluster: string; userAgent: string } | undefined;
  readonly flavor: ClientFlavor | undefined;
  readonly startedAt: number;
  /** Subscription state charged against the per-stream limits. */
  readonly held: { names: number; bytes: number };
  readonly types: TypeStatus[];
}

interface Sub {
  readonly typeUrl: string;
  wildcard: boolean;
  /** True once any request for the type was processed (legacy wildcard is decided on the first one). */
  seen: boolean;
  readonly names: Set<string>;
  /** Resource versions the client has (SotW: last sent; Delta: last sent or declared on reconnect). */
  readonly sent: Map<string, string>;
  /** Delta: names subscribed that did not exist, owed a `removed_resources` answer. */
  readonly owedRemoved: Set<string>;
  /** SotW: force a response for these names even if unchanged. */
  readonly forced: Set<string>;
  nonce: string;
  sentVersion: string;
  ackedVersion: string;
  nackedVersion: string;
  state: TypeState;
  error?: string;
  acks: number;
  nacks: number;
  updatedAt: number;
  responded: boolean;
  /** Sequence number of the newest nonce this stream got for the type. */
  lastSeq: number;
  /** The nonce a NACK was last recorded for: a repeated NACK of the same response is counted, not logged again. */
  nackedNonce: string;
  /** Names charged to the stream's subscription budget for this type (subscribed, or declared held). */
  charged: number;
  chargedBytes: number;
}

let streamIds = 0;

/** Characters of a client's NACK error_detail kept (status, log, recent list); the rest is cut. */
export const MAX_NACK_DETAIL = 512;

/**
 * Nonces come from one process-wide counter, so they are unique per stream and type, and a response frame
 * built for one stream can be reused as is (same bytes, same nonce) by every other stream that needs
 * exactly the same response: a fan-out to N streams builds the frame once. A stream only takes a cached
 * frame whose nonce is newer than any it has seen, so its nonces never repeat.
 */
let nonceSeq = 0;
const FRAME_CACHE_ENTRIES = 64;
const frameCache = new WeakMap<TypeSnapshot, Map<string, { frame: Buffer; seq: number }>>();

/**
 * Longest cache key kept: responses for long explicit name lists are particular to one client and would
 * make the cache hold memory that one client controls (64 entries × key and frame), so they are not cached.
 */
const MAX_CACHED_KEY = 4096;

function cachedFrame(snap: TypeSnapshot, key: string, after: number, build: (nonce: string) => Buffer): { frame: Buffer; seq: number } {
  if (key.length > MAX_CACHED_KEY) {
    const seq = ++nonceSeq;
    return { frame: build(seq.toString(36)), seq };
  }
  let m = frameCache.get(snap);
  if (!m) frameCache.set(snap, (m = new Map()));
  const hit = m.get(key);
  if (hit && hit.seq > after) return hit;
  const seq = ++nonceSeq;
  const entry = { frame: build(seq.toString(36)), seq };
  if (m.size >= FRAME_CACHE_ENTRIES && !m.has(key)) m.delete(m.keys().next().value!);
  m.set(key, entry);
  return entry;
}

export abstract class AdsStream {
  readonly id = ++streamIds;
  abstract readonly mode: 'sotw' | 'delta';
  protected readonly subs = new Map<string, Sub>();
  protected node: NodeInfo | undefined;
  protected flavor: ClientFlavor | undefined;
  protected unwatch: (() => void) | undefined;
  private blocked = false;
  private pending = false;
  protected closed = false;
  readonly startedAt: number;
  /** Subscription state held over every type (see StreamLimits). */
  private heldNames = 0;
  private heldBytes = 0;

  constructor(
    protected readonly env: StreamEnv,
    protected readonly transport: StreamTransport,
    readonly peer: string,
  ) {
    this.startedAt = env.now();
  }

  /** Stop watching; safe to call more than once. */
  close(): void {
    this.closed = true;
    this.unwatch?.();
    this.unwatch = undefined;
  }

  status(): StreamStatus {
    return {
      id: this.id,
      mode: this.mode,
      peer: this.peer,
      node: this.node ? { id: this.node.id, cluster: this.node.cluster, userAgent: this.node.user_agent_name } : undefined,
      flavor: this.flavor,
      startedAt: this.startedAt,
      held: this.held(),
      types: [...this.subs.values()].map((s) => ({
        typeUrl: s.typeUrl,
        state: s.state,
        subscribed: s.wildcard ? '*' : s.names.size,
        sentVersion: s.sentVersion,
        ackedVersion: s.ackedVersion,
        nonce: s.nonce,
        ...(s.error ? { error: s.error } : {}),
        acks: s.acks,
        nacks: s.nacks,
        updatedAt: s.updatedAt,
      })),
    };
  }

  nodeId(): string {
    return this.node?.id ?? '';
  }

  /** Check the parts of a request every mode shares; returns the subscription or fails the stream. */
  protected begin(typeUrl: string, nodeIn: NodeInfo | undefined, names: readonly string[], malformed?: string): Sub | undefined {
    if (this.closed) return undefined;
    if (malformed) return this.failWith(Code.INVALID_ARGUMENT, malformed);
    if (!this.node && nodeIn) this.node = nodeIn; // node is only guaranteed on the first request
    if (!this.flavor) {
      this.flavor = this.env.flavorOf(this.node);
      this.env.activate(this.flavor);
      this.unwatch = this.env.cache.watch(this.flavor, (changed) => this.onCacheChange(changed));
    }
    const lim = this.env.limits;
    if (!typeUrl) return this.failWith(Code.INVALID_ARGUMENT, 'type_url is empty: ADS requests must name their type');
    if (typeUrl.length > lim.maxNameLength) return this.failWith(Code.INVALID_ARGUMENT, `type_url is ${typeUrl.length} characters long; the limit is ${lim.maxNameLength}`);
    if (names.length > lim.maxNamesPerRequest) {
      return this.failWith(Code.RESOURCE_EXHAUSTED, `request for ${typeUrl} names ${names.length} resources; the limit is ${lim.maxNamesPerRequest} (xds.limits.maxNamesPerRequest)`);
    }
    for (const n of names) {
      if (n.length > lim.maxNameLength) return this.failWith(Code.INVALID_ARGUMENT, `a resource name of ${n.length} characters exceeds the limit of ${lim.maxNameLength}`);
    }
    let sub = this.subs.get(typeUrl);
    if (!sub) {
      if (this.subs.size >= lim.maxTypesPerStream) return this.failWith(Code.RESOURCE_EXHAUSTED, `stream already uses ${this.subs.size} types; the limit is ${lim.maxTypesPerStream}`);
      sub = {
        typeUrl, wildcard: false, seen: false, names: new Set(), sent: new Map(), owedRemoved: new Set(), forced: new Set(),
        nonce: '', sentVersion: '', ackedVersion: '', nackedVersion: '', state: 'REQUESTED', acks: 0, nacks: 0, updatedAt: this.env.now(), responded: false, lastSeq: 0,
        nackedNonce: '', charged: 0, chargedBytes: 0,
      };
      this.subs.set(typeUrl, sub);
    }
    return sub;
  }

  /**
   * Re-charge a type's subscription state to the stream budget: `names` is what the type will hold. Fails
   * the stream (RESOURCE_EXHAUSTED, naming the limit) when the stream would hold more than its limits.
   */
  protected charge(sub: Sub, names: Iterable<string>): boolean {
    let count = 0;
    let bytes = 0;
    for (const n of names) {
      count++;
      bytes += nameCost(n);
    }
    return this.adjust(sub, count - sub.charged, bytes - sub.chargedBytes);
  }

  /** Change a type's charge by the given differences (Delta requests change subscriptions name by name). */
  protected adjust(sub: Sub, dNames: number, dBytes: number): boolean {
    const lim = this.env.limits;
    const heldNames = this.heldNames + dNames;
    const heldBytes = this.heldBytes + dBytes;
    if (heldNames > lim.maxSubscribedNamesPerStream) {
      this.failWith(Code.RESOURCE_EXHAUSTED, `the stream would hold ${heldNames} subscribed names over all types; the limit is ${lim.maxSubscribedNamesPerStream} (xds.limits.maxSubscribedNamesPerStream)`);
      return false;
    }
    if (heldBytes > lim.maxSubscriptionBytesPerStream) {
      this.failWith(Code.RESOURCE_EXHAUSTED, `the stream would hold ${heldBytes} bytes of subscriptions; the limit is ${lim.maxSubscriptionBytesPerStream} (xds.limits.maxSubscriptionBytesPerStream)`);
      return false;
    }
    this.heldNames = heldNames;
    this.heldBytes = heldBytes;
    sub.charged += dNames;
    sub.chargedBytes += dBytes;
    return true;
  }

  /** Subscription state this stream holds, as charged against its limits. */
  held(): { names: number; bytes: number } {
    return { names: this.heldNames, bytes: this.heldBytes };
  }

  protected failWith(code: number, details: string): undefined {
    this.env.hooks.refused(code === Code.RESOURCE_EXHAUSTED ? 'limit' : 'invalid');
    this.close();
    this.transport.fail(code, details);
    return undefined;
  }

  /** Whether this server answers the type: Envoy's four, and Istio kinds when MCP is on. Others are parked. */
  protected serves(typeUrl: string): boolean {
    return this.env.cache.serves(this.flavor!, typeUrl) || (isIstioTypeUrl(typeUrl) && this.env.cache.serves(this.flavor!, 'networking.istio.io/v1/DestinationRule'));
  }

  protected recordAckNack(sub: Sub, error: { message: string } | undefined): void {
    sub.updatedAt = this.env.now();
    if (error) {
      sub.nacks++;
      if (sub.nackedNonce === sub.nonce) {
        // The same response NACKed again (a client in a loop): counted per stream and type, not re-reported.
        this.env.hooks.refused('repeated_nack');
        return;
      }
      sub.nackedNonce = sub.nonce;
      sub.state = 'NACKED';
      sub.error = error.message.slice(0, MAX_NACK_DETAIL);
      sub.nackedVersion = sub.sentVersion;
      this.env.hooks.nack(this, sub.typeUrl, sub.error);
    } else {
      sub.state = 'ACKED';
      sub.acks++;
      sub.ackedVersion = sub.sentVersion;
      sub.error = undefined;
      this.env.hooks.ack(sub.typeUrl);
    }
  }

  /** Push every subscribed type in ADS order (clusters, endpoints, listeners, routes, then the rest). */
  protected pushAll(types?: ReadonlySet<string>): void {
    if (this.closed) return;
    if (this.blocked) {
      this.pending = true; // latest state wins: recomputed once the transport drains
      return;
    }
    const ordered = [...this.subs.keys()].sort((a, b) => rank(a) - rank(b));
    for (const t of ordered) {
      if (types && !types.has(t) && !this.subs.get(t)!.forced.size) continue;
      this.push(this.subs.get(t)!);
      if (this.closed) return;
    }
  }

  private onCacheChange(changed: ReadonlySet<string>): void {
    // Istio kinds are keyed by kind: a change to any version of the URL concerns every subscribed variant.
    const types = new Set<string>();
    for (const t of this.subs.keys()) {
      if (changed.has(t)) types.add(t);
      else if (isIstioTypeUrl(t)) {
        const kind = t.slice(t.lastIndexOf('/'));
        for (const c of changed) if (c.endsWith(kind)) types.add(t);
      }
    }
    if (types.size) this.pushAll(types);
  }

  protected send(frame: Buffer, typeUrl: string, resources: number): void {
    this.env.hooks.sent(typeUrl, this.mode, frame.length, resources);
    const ok = this.transport.write(frame);
    if (!ok && !this.blocked) {
      this.blocked = true;
      this.transport.onDrain(() => {
        this.blocked = false;
        if (this.pending) {
          this.pending = false;
          this.pushAll();
        }
      });
    }
  }

  /** Make before break: a changed cluster (listener) gets its endpoints (routes) again. */
  protected resendDependents(typeUrl: string, changedNames: readonly string[]): void {
    const dep = typeUrl === CLUSTER_TYPE ? ENDPOINT_TYPE : typeUrl === LISTENER_TYPE ? ROUTE_TYPE : undefined;
    if (!dep || changedNames.length === 0) return;
    const d = this.subs.get(dep);
    if (!d) return;
    for (const n of changedNames) {
      if (d.sent.delete(n) || d.names.has(n)) d.forced.add(n);
    }
  }

  protected abstract push(sub: Sub): void;
}

function rank(t: string): number {
  const i = ADS_ORDER.indexOf(t);
  return i < 0 ? ADS_ORDER.length : i;
}

/** Names of a subscription resolved against a snapshot: wildcard = everything plus explicit names. */
function interesting(sub: Sub, snap: TypeSnapshot): Iterable<string> {
  if (!sub.wildcard) return sub.names;
  if (sub.names.size === 0) return snap.resources.keys();
  return new Set([...snap.resources.keys(), ...sub.names]);
}

export class SotwStream extends AdsStream {
  readonly mode = 'sotw' as const;

  handle(req: SotwRequest): void {
    const sub = this.begin(req.type_url, req.node, req.resource_names, req.malformed);
    if (!sub) return;
    // 1: once something was sent for this type, only a request carrying the latest nonce counts. Before that
    // (a new stream, maybe resuming from another server) any nonce is accepted (15).
    if (sub.nonce && req.response_nonce !== sub.nonce) {
      this.env.hooks.refused('stale_nonce');
      return;
    }
    // 3: a NACK is recognised by error_detail, whatever version_info says.
    if (sub.nonce && req.response_nonce === sub.nonce) this.recordAckNack(sub, req.error_detail);
    const first = !sub.seen;
    sub.seen = true;
    // 10: legacy wildcard = first request with no names; `*` is an explicit wildcard.
    const names = req.resource_names;
    const explicitWildcard = names.includes('*');
    const wasWildcard = sub.wildcard;
    sub.wildcard = explicitWildcard || (names.length === 0 && (first || (wasWildcard && sub.names.size === 0)));
    const next = new Set(names.filter((n) => n !== '*'));
    if (next.size > this.env.limits.maxSubscribedNames) {
      this.failWith(Code.RESOURCE_EXHAUSTED, `subscription to ${next.size} ${req.type_url} resources exceeds ${this.env.limits.maxSubscribedNames} (xds.limits.maxSubscribedNames)`);
      return;
    }
    if (!this.charge(sub, next)) return;
    for (const n of next) if (!sub.names.has(n)) sub.forced.add(n); // 7: newly requested names are sent even if unchanged
    for (const n of sub.names) if (!next.has(n)) { sub.sent.delete(n); sub.forced.delete(n); }
    sub.names.clear();
    for (const n of next) sub.names.add(n);
    if (sub.wildcard && !wasWildcard) for (const n of sub.sent.keys()) sub.forced.add(n);
    if (!this.serves(req.type_url)) {
      this.env.hooks.refused('unknown_type'); // parked: answered if this server ever serves the type
      return;
    }
    this.pushAll(new Set([req.type_url]));
  }

  protected push(sub: Sub): void {
    const snap = this.env.cache.get(this.flavor!, sub.typeUrl);
    if (!this.serves(sub.typeUrl)) return;
    const full = isFullStateType(sub.typeUrl);
    const include: EncodedResource[] = [];
    let changed = !sub.responded && (full || isIstioTypeUrl(sub.typeUrl)); // full-state types always get a first answer
    const changedNames: string[] = [];
    const seen = new Set<string>();
    for (const n of interesting(sub, snap)) {
      const r = snap.resources.get(n);
      if (!r || seen.has(n)) continue; // 8: missing names stay subscribed and are sent when they appear
      seen.add(n); // 14: never the same name twice
      const had = sub.sent.get(n);
      const differs = had !== r.version || sub.forced.has(n);
      // Full-state types (LDS, CDS) list everything; for EDS and RDS an omitted resource means "unchanged"
      // (Envoy's protocol; grpc-js-xds follows it), so only what changed or was newly requested is sent.
      if (full || differs) include.push(r);
      if (differs) {
        changed = true;
        if (had !== undefined && had !== r.version) changedNames.push(n);
      }
    }
    // 9: full-state types also change when a resource the client has disappeared.
    if (full) for (const n of sub.sent.keys()) if (!seen.has(n)) changed = true;
    sub.forced.clear();
    // 6 and 4: nothing new → nothing sent. What was sent counts as held even when NACKed, so a rejected
    // version is not resent until it changes (newly requested names are still answered: 7).
    if (!changed) return;
    include.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const key = include.length === snap.resources.size ? '*' : include.map((r) => r.name).join('\u0000');
    const { frame, seq } = cachedFrame(snap, `sotw\u0001${sub.typeUrl}\u0001${key}`, sub.lastSeq, (nonce) =>
      sotwFrame(sotwHead(snap.version, sub.typeUrl, this.env.controlPlaneId), include.map((r) => r.sotwField), nonce),
    );
    sub.lastSeq = seq;
    sub.nonce = seq.toString(36);
    sub.responded = true;
    sub.sentVersion = snap.version;
    sub.state = 'SENT';
    sub.updatedAt = this.env.now();
    if (full) sub.sent.clear();
    for (const r of include) sub.sent.set(r.name, r.version);
    this.send(frame, sub.typeUrl, include.length);
    this.resendDependents(sub.typeUrl, changedNames);
  }
}

export class DeltaStream extends AdsStream {
  readonly mode = 'delta' as const;

  handle(req: DeltaRequest): void {
    const sub = this.begin(req.type_url, req.node, req.resource_names_subscribe, req.malformed);
    if (!sub) return;
    if (req.resource_names_unsubscribe.length > this.env.limits.maxNamesPerRequest) {
      this.failWith(Code.RESOURCE_EXHAUSTED, `unsubscribe list of ${req.resource_names_unsubscribe.length} names exceeds ${this.env.limits.maxNamesPerRequest}`);
      return;
    }
    const first = !sub.seen;
    sub.seen = true;
    // ACK/NACK only for the latest nonce; subscription changes are honoured whatever the nonce (2).
    if (sub.nonce && req.response_nonce === sub.nonce) this.recordAckNack(sub, req.error_detail);
    else if (sub.nonce && req.response_nonce) this.env.hooks.refused('stale_nonce');
    const lim = this.env.limits;
    if (first) {
      // 12: what the client already has (reconnect) is not sent again unless it changed.
      const declared = Object.entries(req.initial_resource_versions);
      if (declared.length > lim.maxNamesPerRequest) {
        this.failWith(Code.RESOURCE_EXHAUSTED, `initial_resource_versions lists ${declared.length} resources; the limit is ${lim.maxNamesPerRequest} (xds.limits.maxNamesPerRequest)`);
        return;
      }
      let bytes = 0;
      for (const [n, v] of declared) {
        if (n.length > lim.maxNameLength) {
          this.failWith(Code.INVALID_ARGUMENT, `a resource name of ${n.length} characters in initial_resource_versions exceeds the limit of ${lim.maxNameLength}`);
          return;
        }
        bytes += nameCost(n);
      }
      // Declared versions are charged once, for the stream's life (conservative, and O(1) per request later).
      if (!this.adjust(sub, declared.length, bytes)) return;
      for (const [n, v] of declared) {
        if (sub.sent.size >= lim.maxSubscribedNames) break;
        sub.sent.set(n, String(v).slice(0, lim.maxNameLength));
      }
      // 10: legacy wildcard = first request subscribing nothing.
      if (req.resource_names_subscribe.length === 0) sub.wildcard = true;
    }
    for (const n of req.resource_names_subscribe) {
      if (n === '*') {
        sub.wildcard = true;
        continue;
      }
      if (!sub.names.has(n)) {
        if (sub.names.size >= this.env.limits.maxSubscribedNames) {
          this.failWith(Code.RESOURCE_EXHAUSTED, `subscription to more than ${this.env.limits.maxSubscribedNames} ${req.type_url} resources (xds.limits.maxSubscribedNames)`);
          return;
        }
        if (!this.adjust(sub, 1, nameCost(n))) return;
        sub.names.add(n);
        sub.owedRemoved.add(n); // 11: answered either with the resource or in removed_resources
      }
    }
    for (const n of req.resource_names_unsubscribe) {
      if (n === '*') sub.wildcard = false;
      else if (sub.names.delete(n)) { sub.sent.delete(n); sub.owedRemoved.delete(n); this.adjust(sub, -1, -nameCost(n)); } // unknown names: ignored
    }
    if (!this.serves(req.type_url)) {
      this.env.hooks.refused('unknown_type');
      return;
    }
    this.pushAll(new Set([req.type_url]));
  }

  protected push(sub: Sub): void {
    if (!this.serves(sub.typeUrl)) return;
    const snap = this.env.cache.get(this.flavor!, sub.typeUrl);
    const include: EncodedResource[] = [];
    const removed: string[] = [];
    const changedNames: string[] = [];
    const seen = new Set<string>();
    for (const n of interesting(sub, snap)) {
      if (seen.has(n)) continue;
      seen.add(n);
      const r = snap.resources.get(n);
      if (r) {
        const had = sub.sent.get(n);
        if (had !== r.version || sub.forced.has(n)) {
          include.push(r);
          if (had !== undefined && had !== r.version) changedNames.push(n);
        }
        sub.owedRemoved.delete(n);
      } else if (sub.sent.has(n) || sub.owedRemoved.has(n)) {
        removed.push(n);
      }
    }
    // Resources the client holds that are no longer of interest or no longer exist.
    for (const n of sub.sent.keys()) if (!seen.has(n) && (sub.wildcard || sub.names.has(n)) && !snap.resources.has(n)) removed.push(n);
    for (const n of sub.sent.keys()) if (!sub.wildcard && !sub.names.has(n)) sub.sent.delete(n);
    sub.forced.clear();
    const first = !sub.responded && isIstioTypeUrl(sub.typeUrl);
    if (include.length === 0 && removed.length === 0 && !first) return; // 6
    const key = `delta\u0001${sub.typeUrl}\u0001${include.map((r) => r.name).join('\u0000')}\u0001${removed.join('\u0000')}`;
    const { frame, seq } = cachedFrame(snap, key, sub.lastSeq, (nonce) =>
      deltaFrame(deltaHead(snap.version, sub.typeUrl, this.env.controlPlaneId), include.map((r) => r.deltaField), removed, nonce),
    );
    sub.lastSeq = seq;
    sub.nonce = seq.toString(36);
    sub.responded = true;
    sub.sentVersion = snap.version;
    sub.state = 'SENT';
    sub.updatedAt = this.env.now();
    for (const r of include) sub.sent.set(r.name, r.version);
    for (const n of removed) { sub.sent.delete(n); sub.owedRemoved.delete(n); }
    this.send(frame, sub.typeUrl, include.length);
    this.resendDependents(sub.typeUrl, changedNames);
  }
}
