// The Pod readiness gate `meshmedic.io/healthy`: when the healing engine's ejection of an endpoint that
// is a pod is applied (its guards passed), set the pod's condition to False through the API, and back
// to True on restore, so the pod leaves every EndpointSlice and every client follows. An adapter on the
// mesh's decision stream: the decision core stays pure; only this module talks to the API.
import type { Logger } from '../core/log.js';
import { silentLogger } from '../core/log.js';
import type { EndpointSpec } from '../core/types.js';
import type { MeshState, RecordedDecision } from '../mesh/state.js';
import { describeFailure, type KubeApi } from './api.js';

export const READINESS_CONDITION = 'meshmedic.io/healthy';
export { ENV_READINESS_GATE } from './component.js';

export interface ConditionChange {
  readonly namespace: string;
  readonly pod: string;
  readonly status: 'True' | 'False';
  readonly reason: string;
  readonly message: string;
}

/**
 * What an applied decision means for a pod's condition (pure). Only ejections and restores of
 * endpoints discovery tied to a pod (labels k8s.namespace and k8s.pod) count; refused decisions
 * (a guard said no) never do.
 */
export function conditionChange(d: RecordedDecision, endpoint: EndpointSpec | undefined): ConditionChange | undefined {
  if (!d.applied || (d.action !== 'eject' && d.action !== 'restore')) return undefined;
  const namespace = endpoint?.labels?.['k8s.namespace'];
  const pod = endpoint?.labels?.['k8s.pod'];
  if (!namespace || !pod) return undefined;
  return d.action === 'eject'
    ? { namespace, pod, status: 'False', reason: 'MeshmedicEjected', message: `meshmedic ejected ${d.target}: ${d.reason} (${d.source})`.slice(0, 256) }
    : { namespace, pod, status: 'True', reason: 'MeshmedicRestored', message: `meshmedic restored ${d.target}: ${d.reason} (${d.source})`.slice(0, 256) };
}

export interface ReadinessGateOptions {
  readonly mesh: MeshState;
  readonly api: KubeApi;
  readonly log?: Logger;
  /** Retries of a failed patch (after 0.5 s, 1 s, 2 s …); default 4. */
  readonly retries?: number;
  /** At most one API-error log line per this many ms (default 60 s). */
  readonly errorLogIntervalMs?: number;
  readonly now?: () => number;
  /** This sidecar's own pod: its condition is set True at start. */
  readonly self?: { readonly namespace: string; readonly pod: string };
  /**
   * Quorum-gated: act on an ejection only once the mesh's quorum (the gossip health plane's verdict)
   * also holds the endpoint failing; until then, re-checked every `recheckMs` while it stays ejected.
   * Restores set True only on pods this gate set False. Without it, every applied ejection acts.
   */
  readonly quorum?: QuorumVerdicts;
  /** How often ejections awaiting the quorum are re-checked (ms, default 1000). */
  readonly recheckMs?: number;
}

/** The mesh quorum's view of an endpoint (the gossip health plane's verdicts). */
export interface QuorumVerdicts {
  failing(endpoint: string): boolean;
}

export interface ReadinessGate {
  /** Patches waiting or in flight (tests and shutdown). */
  pending(): number;
  close(): Promise<void>;
}

interface Slot {
  want: ConditionChange;
  /** The patch on the wire, if any: a newer wish waits for it, then goes. */
  inFlight: Promise<void> | undefined;
  attempts: number;
}

/** Follow the mesh's decisions and patch pod conditions; one request at a time per pod, the latest wish wins. */
export function startReadinessGate(opts: ReadinessGateOptions): ReadinessGate {
  const log = opts.log ?? silentLogger;
  const retries = opts.retries ?? 4;
  const now = opts.now ?? Date.now;
  const slots = new Map<string, Slot>();
  /** Retry pauses in progress, each with its wake-up (close ends them at once). */
  const sleepers = new Map<NodeJS.Timeout, () => void>();
  let lastErrorLog = -Infinity;
  let suppressed = 0;
  let closed = false;

  const logError = (msg: string, fields: Record<string, unknown>) => {
    const t = now();
    if (t - lastErrorLog < (opts.errorLogIntervalMs ?? 60_000)) {
      suppressed++;
      return;
    }
    lastErrorLog = t;
    log.warn(msg, { ...fields, ...(suppressed ? { suppressedSinceLast: suppressed } : {}) });
    suppressed = 0;
  };

  const send = async (key: string, slot: Slot): Promise<void> => {
    const want = slot.want;
    const body = {
      status: { conditions: [{ type: READINESS_CONDITION, status: want.status, reason: want.reason, message: want.message, lastTransitionTime: new Date(now()).toISOString().replace(/\.\d{3}Z$/, 'Z') }] },
    };
    let failure: string | undefined;
    let permanent = false;
    try {
      const answer = await opts.api.request('PATCH', `/api/v1/namespaces/${encodeURIComponent(want.namespace)}/pods/${encodeURIComponent(want.pod)}/status`, body, 'application/strategic-merge-patch+json');
      if (answer.status !== 200) {
        failure = describeFailure(answer);
        // Gone, or not allowed, or refused as invalid: retrying cannot help.
        permanent = answer.status === 404 || answer.status === 403 || answer.status === 422 || answer.status === 415;
      }
    } catch (err) {
      failure = (err as Error).message;
    }
    if (failure === undefined) {
      log.debug('pod readiness condition set', { namespace: want.namespace, pod: want.pod, status: want.status });
      slot.attempts = 0;
      if (slot.want === want) slots.delete(key);
      else slot.inFlight = send(key, slot); // a newer wish arrived meanwhile
      return;
    }
    logError('cannot set the pod readiness condition', { namespace: want.namespace, pod: want.pod, status: want.status, error: failure });
    if (slot.want !== want) {
      slot.attempts = 0;
      slot.inFlight = send(key, slot);
      return;
    }
    if (permanent || closed || ++slot.attempts > retries) {
      slots.delete(key);
      return;
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        sleepers.delete(t);
        resolve();
      }, 500 * 2 ** (slot.attempts - 1));
      t.unref();
      sleepers.set(t, resolve);
    });
    if (closed) {
      slots.delete(key);
      return;
    }
    slot.inFlight = send(key, slot);
  };

  /** Quorum-gated only: ejected endpoints whose quorum has not confirmed yet, and pods this gate set False. */
  const awaiting = new Map<string, ConditionChange>();
  const signalled = new Set<string>();
  const quorum = opts.quorum;
  const confirmEject = (endpoint: string, change: ConditionChange) => {
    awaiting.delete(endpoint);
    signalled.add(endpoint);
    enqueue({ ...change, message: `${change.message}; confirmed by the mesh quorum`.slice(0, 256) });
  };
  const unsubscribe = opts.mesh.subscribe((snapshot, changes) => {
    if (closed) return;
    for (const d of changes) {
      const change = conditionChange(d, snapshot.endpoints.get(d.target)?.spec);
      if (!change) continue;
      if (!quorum) enqueue(change);
      else if (change.status === 'False') {
        if (quorum.failing(d.target)) confirmEject(d.target, change);
        else awaiting.set(d.target, change);
      } else {
        awaiting.delete(d.target);
        if (signalled.delete(d.target)) enqueue(change);
      }
    }
  });
  const recheck = quorum
    ? setInterval(() => {
      const snap = opts.mesh.snapshot();
      for (const [endpoint, change] of awaiting) {
        if (snap.endpoints.get(endpoint)?.health.state !== 'ejected') awaiting.delete(endpoint); // restored or gone meanwhile
        else if (quorum.failing(endpoint)) confirmEject(endpoint, change);
      }
    }, opts.recheckMs ?? 1000)
    : undefined;
  recheck?.unref();

  const enqueue = (change: ConditionChange) => {
    const key = `${change.namespace}/${change.pod}`;
    const slot = slots.get(key);
    if (slot) {
      slot.want = change; // sent when the request on the wire is done
      return;
    }
    const fresh: Slot = { want: change, inFlight: undefined, attempts: 0 };
    slots.set(key, fresh);
    // Sent at once, not batched: the target is decision → condition in well under a second.
    fresh.inFlight = send(key, fresh);
  };
  // The pod's own gate: True from the start, so the gate never holds a healthy pod back.
  if (opts.self) enqueue({ ...opts.self, status: 'True', reason: 'MeshmedicSidecarStarted', message: 'the meshmedic sidecar started' });

  return {
    pending: () => slots.size,
    async close() {
      closed = true;
      unsubscribe();
      if (recheck) clearInterval(recheck);
      for (const [t, wake] of sleepers) {
        clearTimeout(t);
        wake();
      }
      sleepers.clear();
      // A wish that arrived during a request is sent after it: wait for those too, boundedly.
      for (let i = 0; i < 8 && slots.size; i++) await Promise.allSettled([...slots.values()].map((s) => s.inFlight));
    },
  };
}
