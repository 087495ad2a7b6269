// AdmissionReview v1 in, AdmissionReview v1 out: parse and check the review, run the injection
// planner, and answer with a base64 JSON Patch. Pure (no sockets): the HTTPS server lives in webhook.ts.
import type { ErrorCode } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { silentLogger } from '../core/log.js';
import type { InjectorConfig } from './injector-config.js';
import { planInjection, type InjectionPlan, type OptInRoute } from './inject.js';

export const ADMISSION_V1 = 'admission.k8s.io/v1';

/** The HTTP answer to one POST: a status code and a JSON body. */
export interface AdmissionHttpResult {
  readonly status: number;
  readonly body: Record<string, unknown>;
  /** For logs and tests: what was decided. */
  readonly outcome: 'injected' | 'skipped' | 'failed-open' | 'rejected';
  readonly reason: string;
}

export interface ReviewOptions {
  readonly config: InjectorConfig;
  /** Which opt-in the calling webhook entry selects on (the planner checks it again). */
  readonly optIn: OptInRoute;
  readonly log?: Logger;
  /** Replaces the planner (tests use it to prove that internal errors fail open). */
  readonly plan?: typeof planInjection;
}

/** Kubernetes truncates long warnings; keep each short and their number bounded. */
const MAX_WARNINGS = 16;
const MAX_WARNING_CHARS = 240;

/** Handle the raw body of a POST to the webhook. Never throws. */
export function reviewAdmission(raw: Buffer | string, opts: ReviewOptions): AdmissionHttpResult {
  const log = opts.log ?? silentLogger;
  let review: unknown;
  try {
    review = JSON.parse(typeof raw === 'string' ? raw : raw.toString('utf8'));
  } catch (err) {
    return reject(400, 'MM_ERR_ADMISSION_REVIEW', `the body is not JSON: ${(err as Error).message.slice(0, 120)}`);
  }
  const r = asObject(review);
  if (!r) return reject(400, 'MM_ERR_ADMISSION_REVIEW', 'the body is not a JSON object (expected an AdmissionReview)');
  if (r.kind !== 'AdmissionReview') return reject(400, 'MM_ERR_ADMISSION_REVIEW', `kind is ${JSON.stringify(r.kind)}, expected "AdmissionReview"`);
  if (r.apiVersion !== ADMISSION_V1) {
    return reject(400, 'MM_ERR_ADMISSION_VERSION', `apiVersion ${JSON.stringify(r.apiVersion)} is not supported: this webhook speaks ${ADMISSION_V1} only (set admissionReviewVersions: ["v1"])`);
  }
  const request = asObject(r.request);
  if (!request) return reject(400, 'MM_ERR_ADMISSION_REVIEW', 'the AdmissionReview has no request');
  const uid = request.uid;
  if (typeof uid !== 'string' || uid === '' || uid.length > 256) return reject(400, 'MM_ERR_ADMISSION_REVIEW', 'request.uid is missing or not a string');

  const answer = (extra: Record<string, unknown>, outcome: AdmissionHttpResult['outcome'], reason: string, warnings: string[] = []): AdmissionHttpResult => {
    const response: Record<string, unknown> = { uid, allowed: true, ...extra };
    const w = boundWarnings(warnings);
    if (w.length) response.warnings = w;
    return { status: 200, body: { apiVersion: ADMISSION_V1, kind: 'AdmissionReview', response }, outcome, reason };
  };

  const kind = asObject(request.kind);
  const resource = asObject(request.resource);
  const isPod = kind?.kind === 'Pod' && (kind.group ?? '') === '' && (resource === undefined || resource.resource === 'pods');
  if (!isPod) return answer({}, 'skipped', `not a pod (${String(kind?.kind)})`);
  if (request.subResource !== undefined && request.subResource !== '') return answer({}, 'skipped', `subresource ${String(request.subResource)}`);
  if (request.operation !== 'CREATE') return answer({}, 'skipped', `operation ${String(request.operation)}`);
  const namespace = typeof request.namespace === 'string' ? request.namespace : String(asObject(asObject(request.object)?.metadata)?.namespace ?? '');

  let plan: InjectionPlan;
  try {
    plan = (opts.plan ?? planInjection)({ pod: request.object, namespace, optIn: opts.optIn }, opts.config);
  } catch (err) {
    // Fail open: a bug here must never stop a pod from starting.
    log.error('injection failed; admitting the pod unchanged', { uid, namespace, err });
    return answer({}, 'failed-open', 'internal error', [`meshmedic: sidecar not injected after an internal error (${(err as Error)?.message ?? String(err)}); the pod is admitted unchanged`]);
  }
  const podName = describePod(request);
  if (!plan.inject) {
    log.debug('not injecting', { uid, namespace, pod: podName, reason: plan.reason });
    return answer({}, 'skipped', plan.reason, plan.warnings);
  }
  let patch: string;
  try {
    patch = Buffer.from(JSON.stringify(plan.patch)).toString('base64');
  } catch (err) {
    log.error('patch serialization failed; admitting the pod unchanged', { uid, err });
    return answer({}, 'failed-open', 'internal error', ['meshmedic: sidecar not injected after an internal error; the pod is admitted unchanged']);
  }
  log.info('injecting sidecar', { uid, namespace, pod: podName, mode: plan.status.mode, dryRun: request.dryRun === true });
  return answer({ patchType: 'JSONPatch', patch }, 'injected', `injected (${plan.status.mode})`, plan.warnings);
}

function reject(status: number, code: ErrorCode, message: string): AdmissionHttpResult {
  return { status, body: { code, message }, outcome: 'rejected', reason: message };
}

function boundWarnings(ws: readonly string[]): string[] {
  const out = ws.slice(0, MAX_WARNINGS).map((w) => (w.length > MAX_WARNING_CHARS ? `${w.slice(0, MAX_WARNING_CHARS - 3)}...` : w));
  if (ws.length > MAX_WARNINGS) out.push(`meshmedic: ${ws.length - MAX_WARNINGS} more warnings not shown`);
  return out;
}

/** Pods created by controllers have only generateName at admission time. */
function describePod(request: Record<string, unknown>): string {
  const meta = asObject(asObject(request.object)?.metadata);
  if (typeof request.name === 'string' && request.name) return request.name;
  if (typeof meta?.name === 'string' && meta.name) return meta.name;
  if (typeof meta?.generateName === 'string') return `${meta.generateName}<generated>`;
  return '<unnamed>';
}

function asObject(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}
