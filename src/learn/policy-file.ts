// The learned policy file: a versioned, checksummed JSON document holding the Q table, its visit counts,
// the state layout it was trained for and how it was trained. Parsing validates everything and names
// what is wrong; nothing here reads or writes files (./policy-io.ts does).
import type { Validated } from '../core/errors.js';
import { QTable } from './q-table.js';
import { ACTIONS, ACTION_COUNT, FEATURES, STATE_COUNT, type RewardWeights } from './recovery-state.js';
import type { LearnedModel } from './learned-policy.js';

export const POLICY_FORMAT = 'meshmedic-learned-policy';
export const POLICY_VERSION = 1;
/** Live, an action tried fewer times than this in a state is not taken there. */
export const DEFAULT_MIN_VISITS = 20;
/** Live, an action other than none must be worth this much more than none (reward units: failed requests). */
export const DEFAULT_MIN_ADVANTAGE = 1;

export interface TrainingInfo {
  readonly seed: number;
  readonly episodes: number;
  readonly scenarios: readonly string[];
  readonly gamma: number;
  readonly alphaMin: number;
  readonly epsilon: readonly [number, number];
  readonly reward: RewardWeights;
  readonly meshmedicVersion: string;
}

export interface PolicyDocument {
  readonly format: typeof POLICY_FORMAT;
  readonly version: typeof POLICY_VERSION;
  readonly features: readonly { readonly name: string; readonly bins: number }[];
  readonly actions: readonly string[];
  readonly minVisits: number;
  readonly minAdvantage: number;
  readonly training: TrainingInfo;
  /** One row of ACTION_COUNT values per state. */
  readonly q: readonly (readonly number[])[];
  readonly visits: readonly (readonly number[])[];
  /** `sha256:<hex>` of the canonical JSON of every other field. */
  readonly checksum: string;
}

/** JSON with object keys sorted at every level: the checksum does not depend on key order or layout. */
export function canonicalJson(x: unknown): string {
  if (Array.isArray(x)) return `[${x.map(canonicalJson).join(',')}]`;
  if (x !== null && typeof x === 'object') {
    const o = x as Record<string, unknown>;
    return `{${Object.keys(o).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(x);
}

export function checksumOf(doc: Omit<PolicyDocument, 'checksum'> | Record<string, unknown>): string {
  const { checksum: _ignored, ...rest } = doc as Record<string, unknown>;
  // node:crypto is taken when a policy file is checked, not imported: every sidecar imports this module, few
  // use a learned policy, and loading node:crypto costs ~1 MB of RSS (docs/kubernetes.md, "Memory budget").
  const { createHash } = process.getBuiltinModule('node:crypto');
  return `sha256:${createHash('sha256').update(canonicalJson(rest)).digest('hex')}`;
}

const round = (x: number): number => Math.round(x * 1e6) / 1e6;

/** The document for a trained table (values rounded to 6 decimals, so the file is stable and compact). */
export function policyDocument(table: QTable, training: TrainingInfo, minVisits = DEFAULT_MIN_VISITS, minAdvantage = DEFAULT_MIN_ADVANTAGE): PolicyDocument {
  const q: number[][] = [];
  const visits: number[][] = [];
  for (let s = 0; s < STATE_COUNT; s++) {
    q.push(Array.from({ length: ACTION_COUNT }, (_, a) => round(table.q(s, a))));
    visits.push(Array.from({ length: ACTION_COUNT }, (_, a) => table.visitsOf(s, a)));
  }
  const body = {
    format: POLICY_FORMAT,
    version: POLICY_VERSION,
    features: FEATURES.map((f) => ({ name: f.name, bins: f.bins })),
    actions: [...ACTIONS],
    minVisits,
    minAdvantage,
    training,
    q,
    visits,
  } as const;
  return { ...body, checksum: checksumOf(body) };
}

/** One line per state, so that a diff of two policy files shows which states changed. */
export function serializePolicy(doc: PolicyDocument): string {
  const rows = (xs: readonly (readonly number[])[]) => `[\n${xs.map((r) => `    ${JSON.stringify(r)}`).join(',\n')}\n  ]`;
  const head = { format: doc.format, version: doc.version, checksum: doc.checksum, features: doc.features, actions: doc.actions, minVisits: doc.minVisits, minAdvantage: doc.minAdvantage, training: doc.training };
  const lines = Object.entries(head).map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)}`);
  return `{\n${lines.join(',\n')},\n  "q": ${rows(doc.q)},\n  "visits": ${rows(doc.visits)}\n}\n`;
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

function checkMatrix(name: string, x: unknown, ok: (v: unknown) => boolean, what: string, errors: string[]): void {
  if (!Array.isArray(x)) {
    errors.push(`${name}: expected an array of ${STATE_COUNT} rows, got ${x === undefined ? 'nothing' : typeof x}`);
    return;
  }
  if (x.length !== STATE_COUNT) errors.push(`${name}: expected ${STATE_COUNT} rows (one per state), got ${x.length}`);
  for (let i = 0; i < x.length; i++) {
    const row: unknown = x[i];
    if (!Array.isArray(row) || row.length !== ACTION_COUNT) {
      errors.push(`${name}[${i}]: expected ${ACTION_COUNT} ${what} (one per action), got ${Array.isArray(row) ? `${row.length}` : JSON.stringify(row)}`);
      return;
    }
    const bad = row.findIndex((v) => !ok(v));
    if (bad >= 0) {
      errors.push(`${name}[${i}][${bad}]: expected ${what}, got ${JSON.stringify(row[bad])}`);
      return;
    }
  }
}

/**
 * Parse and verify a policy file's text: JSON, format and version, checksum, then the shape (features,
 * actions, table sizes and values). Collects every problem of a step before giving up.
 */
export function parsePolicy(text: string): Validated<PolicyDocument> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { valid: false, errors: [`not valid JSON (truncated or corrupted?): ${(err as Error).message}`] };
  }
  if (!isObject(raw)) return { valid: false, errors: [`expected a JSON object, got ${Array.isArray(raw) ? 'an array' : typeof raw}`] };
  if (raw.format !== POLICY_FORMAT) return { valid: false, errors: [`format: expected "${POLICY_FORMAT}", got ${JSON.stringify(raw.format)} (not a learned policy file)`] };
  if (raw.version !== POLICY_VERSION) {
    return { valid: false, errors: [`version: this meshmedic reads version ${POLICY_VERSION}, the file is version ${JSON.stringify(raw.version)} (train the policy again with this version)`] };
  }
  if (typeof raw.checksum !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(raw.checksum)) return { valid: false, errors: [`checksum: expected "sha256:<64 hex digits>", got ${JSON.stringify(raw.checksum)}`] };
  const actual = checksumOf(raw);
  if (actual !== raw.checksum) return { valid: false, errors: [`checksum mismatch: the file says ${raw.checksum}, its content hashes to ${actual} (edited or corrupted)`] };
  const errors: string[] = [];
  const expected = FEATURES.map((f) => `${f.name}:${f.bins}`).join(',');
  const got = Array.isArray(raw.features) ? raw.features.map((f) => (isObject(f) ? `${String(f.name)}:${String(f.bins)}` : JSON.stringify(f))).join(',') : JSON.stringify(raw.features);
  if (got !== expected) errors.push(`features: the table was trained for state features ${got}, this meshmedic uses ${expected}`);
  if (!Array.isArray(raw.actions) || raw.actions.join(',') !== ACTIONS.join(',')) errors.push(`actions: expected ${JSON.stringify(ACTIONS)}, got ${JSON.stringify(raw.actions)}`);
  if (typeof raw.minVisits !== 'number' || !Number.isInteger(raw.minVisits) || raw.minVisits < 1) errors.push(`minVisits: expected a positive integer, got ${JSON.stringify(raw.minVisits)}`);
  if (typeof raw.minAdvantage !== 'number' || !(raw.minAdvantage >= 0) || !Number.isFinite(raw.minAdvantage)) errors.push(`minAdvantage: expected a number ≥ 0, got ${JSON.stringify(raw.minAdvantage)}`);
  if (!isObject(raw.training)) errors.push(`training: expected an object, got ${JSON.stringify(raw.training)}`);
  else {
    const r = raw.training.reward;
    if (!isObject(r) || typeof r.lambda !== 'number' || typeof r.mu !== 'number') errors.push(`training.reward: expected {"lambda": number, "mu": number}, got ${JSON.stringify(r)}`);
    if (typeof raw.training.gamma !== 'number' || !(raw.training.gamma >= 0 && raw.training.gamma < 1)) errors.push(`training.gamma: expected a number in [0, 1), got ${JSON.stringify(raw.training.gamma)}`);
  }
  checkMatrix('q', raw.q, (v) => typeof v === 'number' && Number.isFinite(v), 'finite numbers', errors);
  checkMatrix('visits', raw.visits, (v) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff, 'visit counts (integers ≥ 0)', errors);
  if (errors.length > 0) return { valid: false, errors };
  return { valid: true, result: raw as unknown as PolicyDocument };
}

/** The runnable model of a verified document. */
export function modelOf(doc: PolicyDocument): LearnedModel {
  const table = new QTable();
  for (let s = 0; s < STATE_COUNT; s++) {
    for (let a = 0; a < ACTION_COUNT; a++) {
      table.values[s * ACTION_COUNT + a] = doc.q[s]![a]!;
      table.visits[s * ACTION_COUNT + a] = doc.visits[s]![a]!;
    }
  }
  return { table, reward: doc.training.reward, gamma: doc.training.gamma, minVisits: doc.minVisits, minAdvantage: doc.minAdvantage, checksum: doc.checksum };
}
