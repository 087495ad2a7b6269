// A tiny stand-in for the Kubernetes API server (no cluster can run here): serves list and watch for
// Services and EndpointSlices in the API's own JSON (lists with metadata.resourceVersion, watch events
// as newline-delimited {"type","object"} over a chunked response, 410 Expired as an ERROR event); paginated
// lists (limit/continue, label and field selectors) of Pods and Namespaces, Event creation (409 on a
// name taken), and merge/strategic-merge patches of a pod's status, with scripted failures.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

type Obj = { metadata: { name: string; namespace: string; resourceVersion?: string; [k: string]: unknown }; [k: string]: unknown };

interface Resource {
  readonly listKind: string;
  readonly apiVersion: string;
  readonly items: Map<string, Obj>;
  /** Every change, for watches resuming from a resourceVersion. */
  readonly history: { rv: number; type: string; object: Obj }[];
  /** Watches from a resourceVersion below this get 410 Expired. */
  compactedBelow: number;
  readonly watchers: Set<ServerResponse>;
}

export interface RequestRecord { method: string; path: string; watch: boolean; resourceVersion: string | null; authorization: string | undefined; query: URLSearchParams; contentType: string | undefined; body?: unknown; at: number }

/** A scripted failure: the next `count` requests whose "METHOD path" matches get this status. */
export interface Fault { match: RegExp; status: number; count: number; /** Cut the connection instead of answering. */ reset?: boolean }

type Kind = 'pods' | 'namespaces' | 'events';

export class FakeApiServer {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private rv = 100;
  port = 0;
  readonly requests: RequestRecord[] = [];
  private readonly resources: Record<'services' | 'endpointslices', Resource> = {
    services: { listKind: 'ServiceList', apiVersion: 'v1', items: new Map(), history: [], compactedBelow: 0, watchers: new Set() },
    endpointslices: { listKind: 'EndpointSliceList', apiVersion: 'discovery.k8s.io/v1', items: new Map(), history: [], compactedBelow: 0, watchers: new Set() },
  };

  /** Pods, namespaces and events by namespace/name (namespaces by name). */
  readonly objects: Record<Kind, Map<string, Obj>> = { pods: new Map(), namespaces: new Map(), events: new Map() };
  readonly faults: Fault[] = [];
  /** Called after each status patch is applied (tests wait on it). */
  onStatusPatch?: (pod: Obj, record: RequestRecord) => void;

  putObject(kind: Kind, obj: Obj): void {
    const stored = structuredClone(obj);
    stored.metadata.resourceVersion = String(++this.rv);
    this.objects[kind].set(kind === 'namespaces' ? obj.metadata.name : `${obj.metadata.namespace}/${obj.metadata.name}`, stored);
  }

  deleteObject(kind: Kind, namespace: string, name: string): void {
    this.objects[kind].delete(kind === 'namespaces' ? name : `${namespace}/${name}`);
  }

  getObject(kind: Kind, namespace: string, name: string): Obj | undefined {
    return this.objects[kind].get(kind === 'namespaces' ? name : `${namespace}/${name}`);
  }

  async start(port = 0): Promise<void> {
    const server = createServer((req, res) => this.handle(req, res));
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Stop answering: connections cut, port closed (an API server going down). */
  async stop(): Promise<void> {
    for (const r of Object.values(this.resources)) r.watchers.clear();
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    for (const sock of this.sockets) sock.destroy();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  upsert(kind: 'services' | 'endpointslices', obj: Obj): void {
    const r = this.resources[kind];
    const key = `${obj.metadata.namespace}/${obj.metadata.name}`;
    const type = r.items.has(key) ? 'MODIFIED' : 'ADDED';
    const stored = structuredClone(obj);
    stored.metadata.resourceVersion = String(++this.rv);
    r.items.set(key, stored);
    this.emit(r, type, stored);
  }

  remove(kind: 'services' | 'endpointslices', namespace: string, name: string): void {
    const r = this.resources[kind];
    const key = `${namespace}/${name}`;
    const obj = r.items.get(key);
    if (!obj) return;
    r.items.delete(key);
    const gone = structuredClone(obj);
    gone.metadata.resourceVersion = String(++this.rv);
    this.emit(r, 'DELETED', gone);
  }

  /**
   * Compact history (as etcd does): open watches get `ERROR 410 Expired` and are closed, and any watch
   * resuming from an older resourceVersion gets the same. Changes made now reach clients only by relisting.
   */
  expire(kind: 'services' | 'endpointslices'): void {
    const r = this.resources[kind];
    r.compactedBelow = this.rv;
    r.history.length = 0;
    for (const w of r.watchers) this.sendGone(w, 'expired');
    r.watchers.clear();
  }

  /** Change an object without telling current watchers (only a relist shows it): tests a real relist. */
  silentUpsert(kind: 'services' | 'endpointslices', obj: Obj): void {
    const r = this.resources[kind];
    const stored = structuredClone(obj);
    stored.metadata.resourceVersion = String(++this.rv);
    r.items.set(`${obj.metadata.namespace}/${obj.metadata.name}`, stored);
  }

  /** Replace the stored objects with a list fixture (its items keep their own resourceVersions). */
  loadList(kind: 'services' | 'endpointslices', list: { metadata: { resourceVersion: string }; items: Obj[] }): void {
    const r = this.resources[kind];
    r.items.clear();
    for (const o of list.items) r.items.set(`${o.metadata.namespace}/${o.metadata.name}`, structuredClone(o));
    this.rv = Math.max(this.rv, Number(list.metadata.resourceVersion));
  }

  /**
   * Send fixture watch lines (newline-delimited JSON as the API server streams them) to every open
   * watch of this kind, unchanged. An ERROR line ends the streams, as the API server does.
   */
  replay(kind: 'services' | 'endpointslices', lines: string[]): void {
    const r = this.resources[kind];
    for (const line of lines) {
      const ev = JSON.parse(line) as { type: string; object: Obj };
      for (const w of r.watchers) w.write(line + '\n');
      if (ev.type === 'ERROR') {
        for (const w of r.watchers) w.end();
        r.watchers.clear();
        r.compactedBelow = this.rv;
        return;
      }
      if (ev.type === 'ADDED' || ev.type === 'MODIFIED') r.items.set(`${ev.object.metadata.namespace}/${ev.object.metadata.name}`, structuredClone(ev.object));
      if (ev.type === 'DELETED') r.items.delete(`${ev.object.metadata.namespace}/${ev.object.metadata.name}`);
      const rv = Number(ev.object.metadata?.resourceVersion);
      if (rv > this.rv) this.rv = rv;
    }
  }

  watchers(kind: 'services' | 'endpointslices'): number {
    return this.resources[kind].watchers.size;
  }

  /** Pods, namespaces, events and pod status patches; false when the path is not one of these. */
  private handleObjects(req: IncomingMessage, res: ServerResponse, url: URL, record: RequestRecord): boolean {
    const list = /^\/api\/v1(?:\/namespaces\/([^/]+))?\/(pods|events)$/.exec(url.pathname) ?? (url.pathname === '/api/v1/namespaces' ? [url.pathname, undefined, 'namespaces'] : null);
    const statusPath = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/status$/.exec(url.pathname);
    if (!list && !statusPath) return false;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: any;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        return status(res, 400, 'the body is not JSON', 'BadRequest');
      }
      record.body = body;
      if (statusPath) return this.patchStatus(res, decodeURIComponent(statusPath[1]!), decodeURIComponent(statusPath[2]!), record);
      const ns = list![1] === undefined ? undefined : decodeURIComponent(list![1]);
      const kind = list![2] as Kind;
      if (req.method === 'POST' && kind === 'events' && ns) {
        const name = body?.metadata?.name;
        if (typeof name !== 'string' || !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(name)) return status(res, 422, `Event name ${JSON.stringify(name)} is invalid`, 'Invalid');
        if (body?.involvedObject?.namespace !== ns || body?.metadata?.namespace !== ns) return status(res, 422, 'the Event\'s namespace does not match', 'Invalid');
        if (this.objects.events.has(`${ns}/${name}`)) return status(res, 409, `events "${name}" already exists`, 'AlreadyExists');
        this.putObject('events', body);
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end(JSON.stringify(this.objects.events.get(`${ns}/${name}`)));
        return;
      }
      if (req.method !== 'GET') return status(res, 405, 'method not allowed', 'MethodNotAllowed');
      let items: Obj[];
      try {
        items = [...this.objects[kind].values()]
          .filter((o) => !ns || o.metadata.namespace === ns)
          .filter((o) => matchLabels(url.searchParams.get('labelSelector'), o.metadata.labels as Record<string, unknown>))
          .filter((o) => matchFields(url.searchParams.get('fieldSelector'), o))
          .sort((a, b) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`));
      } catch (err) {
        return status(res, 400, `bad selector: ${(err as Error).message}`, 'BadRequest');
      }
      const limit = Number(url.searchParams.get('limit') ?? '0');
      const from = Number(Buffer.from(url.searchParams.get('continue') ?? '', 'base64url').toString() || '0');
      const page = limit > 0 ? items.slice(from, from + limit) : items;
      const next = limit > 0 && from + limit < items.length ? Buffer.from(String(from + limit)).toString('base64url') : undefined;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: `${kind === 'namespaces' ? 'Namespace' : kind === 'pods' ? 'Pod' : 'Event'}List`, apiVersion: 'v1', metadata: { resourceVersion: String(this.rv), ...(next ? { continue: next } : {}) }, items: page }));
    });
    return true;
  }

  /** PATCH …/pods/NAME/status: merge-patch or strategic-merge-patch (conditions merged by type). */
  private patchStatus(res: ServerResponse, ns: string, name: string, record: RequestRecord): void {
    if (record.method !== 'PATCH') return status(res, 405, 'method not allowed', 'MethodNotAllowed');
    const pod = this.objects.pods.get(`${ns}/${name}`);
    if (!pod) return status(res, 404, `pods "${name}" not found`, 'NotFound');
    const type = (record.contentType ?? '').split(';')[0]!.trim();
    if (type !== 'application/merge-patch+json' && type !== 'application/strategic-merge-patch+json') return status(res, 415, `content type ${type} not supported here`, 'UnsupportedMediaType');
    const patch = record.body as { status?: { conditions?: { type: string }[] } } | undefined;
    const conditions = patch?.status?.conditions;
    if (!Array.isArray(conditions)) return status(res, 422, 'the patch has no status.conditions', 'Invalid');
    const podStatus = ((pod as any).status ??= {});
    if (type === 'application/merge-patch+json') podStatus.conditions = conditions;
    else {
      const current: { type: string }[] = (podStatus.conditions ??= []);
      for (const c of conditions) {
        const i = current.findIndex((x) => x.type === c.type);
        if (i >= 0) current[i] = { ...current[i], ...c };
        else current.push(c);
      }
    }
    pod.metadata.resourceVersion = String(++this.rv);
    this.onStatusPatch?.(pod, record);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(pod));
  }

  private emit(r: Resource, type: string, object: Obj): void {
    r.history.push({ rv: this.rv, type, object });
    const line = JSON.stringify({ type, object }) + '\n';
    for (const w of r.watchers) w.write(line);
  }

  private sendGone(res: ServerResponse, why: string): void {
    res.end(JSON.stringify({
      type: 'ERROR',
      object: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `too old resource version (${why})`, reason: 'Expired', code: 410 },
    }) + '\n');
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const watch = url.searchParams.get('watch') === 'true';
    const record: RequestRecord = { method: req.method ?? '', path: url.pathname, watch, resourceVersion: url.searchParams.get('resourceVersion'), authorization: req.headers.authorization, query: url.searchParams, contentType: req.headers['content-type'], at: performance.now() };
    this.requests.push(record);
    const fault = this.faults.find((f) => f.count > 0 && f.match.test(`${record.method} ${record.path}`));
    if (fault) {
      fault.count--;
      req.resume();
      if (fault.reset) {
        req.socket.destroy();
        return;
      }
      return status(res, fault.status, 'scripted failure', 'InternalError');
    }
    if (this.handleObjects(req, res, url, record)) return;
    const m = /^\/(?:api\/v1|apis\/discovery\.k8s\.io\/v1)(?:\/namespaces\/([^/]+))?\/(services|endpointslices)$/.exec(url.pathname);
    if (!m || req.method !== 'GET') return status(res, 404, 'the server could not find the requested resource', 'NotFound');
    const ns = m[1];
    const r = this.resources[m[2] as 'services' | 'endpointslices'];
    const inNs = (o: Obj) => !ns || o.metadata.namespace === ns;
    if (!watch) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: r.listKind, apiVersion: r.apiVersion, metadata: { resourceVersion: String(this.rv) }, items: [...r.items.values()].filter(inNs) }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const from = Number(url.searchParams.get('resourceVersion') ?? '0');
    if (from < r.compactedBelow) {
      this.sendGone(res, `${from} < ${r.compactedBelow}`);
      return;
    }
    for (const e of r.history) if (e.rv > from && inNs(e.object)) res.write(JSON.stringify({ type: e.type, object: e.object }) + '\n');
    r.watchers.add(res);
    res.on('close', () => r.watchers.delete(res));
  }
}

function status(res: ServerResponse, code: number, message: string, reason: string): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code }));
}

/** Label selector terms as the API accepts them: k, !k, k=v, k==v, k!=v, k in (a,b), k notin (a,b). */
export function matchLabels(selector: string | null, labels: Record<string, unknown> | undefined): boolean {
  if (!selector) return true;
  const l = labels ?? {};
  const terms = selector.match(/[^,(]+(\([^)]*\))?/g) ?? [];
  return terms.every((raw) => {
    const term = raw.trim();
    let m: RegExpExecArray | null;
    if ((m = /^(\S+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term))) {
      const values = m[3]!.split(',').map((v) => v.trim());
      const has = Object.hasOwn(l, m[1]!) && values.includes(String(l[m[1]!]));
      return m[2] === 'in' ? has : !has;
    }
    if ((m = /^(\S+?)\s*!=\s*(\S*)$/.exec(term))) return l[m[1]!] !== m[2];
    if ((m = /^(\S+?)\s*==?\s*(\S*)$/.exec(term))) return l[m[1]!] === m[2];
    if (term.startsWith('!')) return !Object.hasOwn(l, term.slice(1));
    return Object.hasOwn(l, term);
  });
}

/** Field selector terms on status.phase, metadata.name and metadata.namespace (=, ==, !=). */
function matchFields(selector: string | null, obj: Obj): boolean {
  if (!selector) return true;
  const field = (path: string): unknown => path.split('.').reduce<any>((o, k) => o?.[k], obj);
  return selector.split(',').every((term) => {
    const m = /^([a-zA-Z.]+)\s*(!=|==|=)\s*(.*)$/.exec(term.trim());
    if (!m) throw new Error(`field selector term ${term}`);
    const v = String(field(m[1]!) ?? '');
    return m[2] === '!=' ? v !== m[3] : v === m[3];
  });
}

export function service(namespace: string, name: string, ports: { name?: string; port: number; protocol?: string }[], extra: Record<string, unknown> = {}): Obj {
  return {
    kind: 'Service',
    apiVersion: 'v1',
    metadata: { name, namespace, uid: `uid-${namespace}-${name}`, creationTimestamp: '2026-11-20T10:00:00Z', labels: { app: name } },
    spec: {
      type: 'ClusterIP',
      clusterIP: '10.96.0.10',
      clusterIPs: ['10.96.0.10'],
      ipFamilies: ['IPv4'],
      ipFamilyPolicy: 'SingleStack',
      sessionAffinity: 'None',
      internalTrafficPolicy: 'Cluster',
      selector: { app: name },
      ports: ports.map((p) => ({ protocol: 'TCP', targetPort: p.port, ...p })),
    },
    status: { loadBalancer: {} },
    ...extra,
  };
}

export interface EpIn { ip: string; ready?: boolean | null; serving?: boolean; terminating?: boolean; zone?: string; node?: string; pod?: string }

export function endpointSlice(namespace: string, svc: string, suffix: string, ports: { name?: string; port: number }[], endpoints: EpIn[], addressType = 'IPv4', labels: Record<string, string> = {}): Obj {
  return {
    kind: 'EndpointSlice',
    apiVersion: 'discovery.k8s.io/v1',
    metadata: {
      name: `${svc}-${suffix}`,
      namespace,
      generateName: `${svc}-`,
      uid: `uid-${svc}-${suffix}`,
      creationTimestamp: '2026-11-20T10:00:00Z',
      labels: { 'kubernetes.io/service-name': svc, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io', ...labels },
      ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: svc, uid: `uid-${namespace}-${svc}`, controller: true, blockOwnerDeletion: true }],
    },
    addressType,
    endpoints: endpoints.map((e) => ({
      addresses: [e.ip],
      conditions: { ...(e.ready === null ? {} : { ready: e.ready ?? true }), serving: e.serving ?? e.ready ?? true, terminating: e.terminating ?? false },
      ...(e.pod ? { targetRef: { kind: 'Pod', namespace, name: e.pod, uid: `uid-${e.pod}` } } : {}),
      ...(e.node ? { nodeName: e.node } : {}),
      ...(e.zone ? { zone: e.zone } : {}),
    })),
    ports: ports.map((p) => ({ name: p.name ?? '', protocol: 'TCP', port: p.port })),
  };
}
