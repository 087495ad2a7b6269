// Which running pods should carry the sidecar but do not: the same opt-in rules as the webhook's
// registration and planner, applied to pods read back from the API. Pure: no I/O, no clock.
import { INJECTION_ANNOTATIONS, parseBool } from './annotations.js';
import { INJECT_LABEL_ON, podInjectLabel } from './inject.js';

/** A namespace's `meshmedic.io/inject` label: opted in, opted out, or not labelled (pods decide). */
export type NamespaceOptIn = 'in' | 'out' | 'unlabelled';

export function namespaceOptIn(labels: Readonly<Record<string, unknown>> | undefined | null): NamespaceOptIn {
  const v = labels?.[INJECTION_ANNOTATIONS.inject];
  if (v === undefined) return 'unlabelled';
  // The registration's selectors: In [true, enabled] selects; any other value keeps the namespace out.
  return typeof v === 'string' && INJECT_LABEL_ON.includes(v) ? 'in' : 'out';
}

export interface SidecarCheckSettings {
  readonly containerName: string;
  /** Never injected: the injector's excluded namespaces plus the webhook's own. */
  readonly excludeNamespaces: readonly string[];
}

export interface PodRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

export type SidecarVerdict =
  | { readonly missing: true; readonly pod: PodRef; readonly optedInBy: 'namespace label' | 'pod label' }
  | { readonly missing: false; readonly reason: string };

/**
 * Should this pod have the sidecar, and does it lack it? `ns` is its namespace's opt-in, read from the
 * namespace's labels. Pods that finished, are being deleted, use hostNetwork, or opted out never count.
 */
export function checkPodSidecar(pod: unknown, ns: NamespaceOptIn, settings: SidecarCheckSettings): SidecarVerdict {
  const p = asObject(pod);
  const meta = asObject(p?.metadata);
  const spec = asObject(p?.spec);
  const name = meta?.name;
  const namespace = meta?.namespace;
  const uid = meta?.uid;
  if (typeof name !== 'string' || typeof namespace !== 'string' || typeof uid !== 'string' || !spec) return { missing: false, reason: 'not a pod with name, namespace and uid' };
  if (settings.excludeNamespaces.includes(namespace)) return { missing: false, reason: 'excluded namespace' };
  if (meta?.deletionTimestamp) return { missing: false, reason: 'being deleted' };
  const phase = asObject(p?.status)?.phase;
  if (phase === 'Succeeded' || phase === 'Failed') return { missing: false, reason: `finished (${phase})` };
  if (spec.hostNetwork === true) return { missing: false, reason: 'hostNetwork' };
  const label = podInjectLabel(asObject(meta?.labels));
  const annotation = asObject(meta?.annotations)?.[INJECTION_ANNOTATIONS.inject];
  if (label === false || (typeof annotation === 'string' && parseBool(annotation) === false)) return { missing: false, reason: 'opted out' };
  let optedInBy: 'namespace label' | 'pod label';
  if (ns === 'in') optedInBy = 'namespace label';
  else if (ns === 'unlabelled' && label === true) optedInBy = 'pod label';
  else return { missing: false, reason: 'not opted in' };
  const names = [...asArray(spec.initContainers), ...asArray(spec.containers)].map((c) => asObject(c)?.name);
  if (names.includes(settings.containerName)) return { missing: false, reason: 'has the sidecar' };
  return { missing: true, pod: { namespace, name, uid }, optedInBy };
}

/** The label selector (for a list) that finds pods opted in by their own label. */
export const POD_OPT_IN_SELECTOR = `${INJECTION_ANNOTATIONS.inject} in (${INJECT_LABEL_ON.join(',')})`;

function asObject(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function asArray(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
