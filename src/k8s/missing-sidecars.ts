// The alert path for pods that started without the sidecar (the webhook fails open, so a pod created
// while it was down or unreachable starts bare): a periodic, paginated scan of the opted-in pods that
// reports each bare one once — a warning log line, a Kubernetes Event on the pod, and a gauge.
import { Counter, Gauge, type Registry } from '../admin/metrics-registry.js';
import type { Logger } from '../core/log.js';
import { silentLogger } from '../core/log.js';
import { INJECTION_ANNOTATIONS } from './annotations.js';
import { describeFailure, listAll, type KubeApi } from './api.js';
import { checkPodSidecar, namespaceOptIn, POD_OPT_IN_SELECTOR, type NamespaceOptIn, type PodRef, type SidecarCheckSettings } from './sidecar-check.js';

export const EVENT_REASON = 'MeshmedicSidecarMissing';
export const DEFAULT_SCAN_INTERVAL_MS = 60_000;
/** Finished pods can never get a sidecar: the API server leaves them out of the list. */
const LIVE_PODS = 'status.phase!=Succeeded,status.phase!=Failed';

export interface MissingSidecarOptions {
  readonly api: KubeApi;
  readonly settings: SidecarCheckSettings;
  /** Between the end of one scan and the start of the next (default 60 s). */
  readonly intervalMs?: number;
  /** Before the first scan (default: the interval, at most 10 s). */
  readonly initialDelayMs?: number;
  /** Items per list page (default 500). */
  readonly pageSize?: number;
  /** Events posted per scan at most; the rest follow in later scans (default 50). */
  readonly maxEventsPerScan?: number;
  /** At most one API-error log line per this many ms; the others are counted into it (default 60 s). */
  readonly errorLogIntervalMs?: number;
  /** The webhook's metrics registry: the gauge and counters are added to it. */
  readonly registry?: Registry;
  readonly log?: Logger;
  /** Events name who reported them (the pod name of this webhook replica). */
  readonly reportingInstance?: string;
  readonly now?: () => number;
}

export interface ScanResult {
  readonly ok: boolean;
  /** Pods found without the sidecar in this scan (complete only when ok). */
  readonly missing: readonly PodRef[];
  /** Pods seen bare for the first time in this scan (logged now). */
  readonly newlyFound: number;
  readonly eventsPosted: number;
  readonly error?: string;
}

export interface MissingSidecarWatch {
  /** Run one scan now (waits for a scan in progress first). */
  scan(): Promise<ScanResult>;
  close(): Promise<void>;
}

interface Known {
  readonly pod: PodRef;
  evented: boolean;
}

export function startMissingSidecarWatch(opts: MissingSidecarOptions): MissingSidecarWatch {
  const log = opts.log ?? silentLogger;
  const intervalMs = Math.max(1000, opts.intervalMs ?? DEFAULT_SCAN_INTERVAL_MS);
  const pageSize = opts.pageSize ?? 500;
  const maxEvents = opts.maxEventsPerScan ?? 50;
  const now = opts.now ?? Date.now;
  const registers = opts.registry ? [opts.registry] : [];
  const gauge = new Gauge({ name: 'meshmedic_webhook_pods_missing_sidecar', help: 'Opted-in pods running without the meshmedic sidecar, as of the last complete scan (started while the webhook was down, or before their namespace opted in)', registers });
  const scans = new Counter({ name: 'meshmedic_webhook_missing_sidecar_scans_total', help: 'Scans for pods missing the sidecar, by result (ok, error)', labelNames: ['result'], registers });
  const events = new Counter({ name: 'meshmedic_webhook_missing_sidecar_events_total', help: 'Kubernetes Events about pods missing the sidecar, by result (created, exists, failed)', labelNames: ['result'], registers });
  const known = new Map<string, Known>();
  const errors = rateLimitedLog(log, opts.errorLogIntervalMs ?? 60_000, now);

  let running: Promise<ScanResult> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  async function scanOnce(): Promise<ScanResult> {
    const missing: PodRef[] = [];
    let newlyFound = 0;
    try {
      const namespaces = new Map<string, NamespaceOptIn>();
      for await (const page of listAll(opts.api, '/api/v1/namespaces', { labelSelector: INJECTION_ANNOTATIONS.inject }, pageSize)) {
        for (const ns of page) {
          const meta = (ns as { metadata?: { name?: unknown; labels?: Record<string, unknown> } })?.metadata;
          if (typeof meta?.name === 'string') namespaces.set(meta.name, namespaceOptIn(meta.labels));
        }
      }
      const seen = new Set<string>();
      const consider = (pods: unknown[]) => {
        for (const pod of pods) {
          const ns = (pod as { metadata?: { namespace?: unknown } })?.metadata?.namespace;
          const verdict = checkPodSidecar(pod, namespaces.get(String(ns)) ?? 'unlabelled', opts.settings);
          if (!verdict.missing || seen.has(verdict.pod.uid)) continue;
          seen.add(verdict.pod.uid);
          missing.push(verdict.pod);
        }
      };
      for (const [ns, optIn] of namespaces) {
        if (optIn !== 'in' || opts.settings.excludeNamespaces.includes(ns)) continue;
        for await (const page of listAll(opts.api, `/api/v1/namespaces/${encodeURIComponent(ns)}/pods`, { fieldSelector: LIVE_PODS }, pageSize)) consider(page);
      }
      for await (const page of listAll(opts.api, '/api/v1/pods', { labelSelector: POD_OPT_IN_SELECTOR, fieldSelector: LIVE_PODS }, pageSize)) consider(page);
    } catch (err) {
      scans.inc({ result: 'error' });
      errors('scan for pods missing the sidecar failed; retrying at the next interval', err);
      return { ok: false, missing, newlyFound: 0, eventsPosted: 0, error: (err as Error).message };
    }
    // The scan is complete: forget pods that are gone or fixed, report new ones.
    const current = new Set(missing.map((p) => p.uid));
    for (const uid of known.keys()) if (!current.has(uid)) known.delete(uid);
    for (const pod of missing) {
      if (known.has(pod.uid)) continue;
      known.set(pod.uid, { pod, evented: false });
      newlyFound++;
      log.warn('pod runs without the meshmedic sidecar (created while the webhook was unreachable, or before its namespace opted in); restart it to inject', { namespace: pod.namespace, pod: pod.name });
    }
    gauge.set(missing.length);
    scans.inc({ result: 'ok' });
    let eventsPosted = 0;
    for (const entry of known.values()) {
      if (entry.evented) continue;
      if (eventsPosted >= maxEvents || closed) break;
      eventsPosted++;
      await postEvent(entry);
    }
    return { ok: true, missing, newlyFound, eventsPosted };
  }

  async function postEvent(entry: Known): Promise<void> {
    const { pod } = entry;
    try {
      const answer = await opts.api.request('POST', `/api/v1/namespaces/${encodeURIComponent(pod.namespace)}/events`, sidecarMissingEvent(pod, opts.reportingInstance ?? 'meshmedic-webhook', now()));
      if (answer.status === 201 || answer.status === 200) {
        entry.evented = true;
        events.inc({ result: 'created' });
      } else if (answer.status === 409) {
        // Another webhook replica reported it already (the Event's name is derived from the pod).
        entry.evented = true;
        events.inc({ result: 'exists' });
      } else {
        events.inc({ result: 'failed' });
        errors('cannot create the Event about a pod missing the sidecar; retrying at the next scan', new Error(describeFailure(answer)), { namespace: pod.namespace, pod: pod.name });
      }
    } catch (err) {
      events.inc({ result: 'failed' });
      errors('cannot create the Event about a pod missing the sidecar; retrying at the next scan', err, { namespace: pod.namespace, pod: pod.name });
    }
  }

  function scan(): Promise<ScanResult> {
    const previous = running ?? Promise.resolve();
    const next = previous.then(() => scanOnce()).catch((err) => {
      // scanOnce handles its own errors; anything here is a bug, and must not end the process.
      errors('scan for pods missing the sidecar failed unexpectedly', err);
      return { ok: false, missing: [], newlyFound: 0, eventsPosted: 0, error: String(err) } satisfies ScanResult;
    });
    running = next;
    void next.finally(() => {
      if (running === next) running = undefined;
    });
    return next;
  }

  const schedule = (delay: number) => {
    if (closed) return;
    timer = setTimeout(() => {
      void scan().finally(() => schedule(intervalMs));
    }, delay);
    timer.unref();
  };
  schedule(opts.initialDelayMs ?? Math.min(intervalMs, 10_000));
  log.info('watching for pods missing the sidecar', { intervalMs, pageSize });

  return {
    scan,
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}

/** A core/v1 Event on the pod. Its name derives from the pod's, so replicas and rescans do not repeat it. */
export function sidecarMissingEvent(pod: PodRef, reportingInstance: string, at: number): Record<string, unknown> {
  const stamp = new Date(at).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const uid = pod.uid.toLowerCase().replace(/[^a-z0-9]/g, '').slice(0, 12) || 'x';
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: `${pod.name.slice(0, 200)}.meshmedic-${uid}`, namespace: pod.namespace },
    involvedObject: { apiVersion: 'v1', kind: 'Pod', namespace: pod.namespace, name: pod.name, uid: pod.uid },
    reason: EVENT_REASON,
    message: 'The pod is opted in to meshmedic but runs without its sidecar: it was created while the injection webhook was unreachable (failurePolicy: Ignore) or before its namespace opted in. Delete the pod (its controller recreates it) to inject the sidecar.',
    type: 'Warning',
    source: { component: 'meshmedic-webhook' },
    reportingComponent: 'meshmedic.io/webhook',
    reportingInstance: reportingInstance.slice(0, 128),
    firstTimestamp: stamp,
    lastTimestamp: stamp,
    count: 1,
  };
}

/** An error logger that writes at most one line per interval, carrying how many it held back. */
function rateLimitedLog(log: Logger, intervalMs: number, now: () => number): (msg: string, err: unknown, fields?: Record<string, unknown>) => void {
  let last = -Infinity;
  let suppressed = 0;
  return (msg, err, fields) => {
    const t = now();
    if (t - last < intervalMs) {
      suppressed++;
      return;
    }
    last = t;
    log.warn(msg, { ...fields, err, ...(suppressed ? { suppressedSinceLast: suppressed } : {}) });
    suppressed = 0;
  };
}
