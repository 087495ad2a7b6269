// The one fault vocabulary: what a fault does to an endpoint, as plain data, and the pure function that
// turns the faults active on an endpoint into its behaviour at a time. The simulator and the test backend
// (src/testing/backend.ts) both realize faults through effectAt, so a scenario means the same in both.
import type { Validated } from '../core/errors.js';

/**
 * What a fault does (a discriminated union on `kind`; add a kind here, in effectAt and in FAULT_FIELDS,
 * and every driver realizes it).
 */
export type FaultKind =
  /** Connection refused: fails at once (local-origin). */
  | { readonly kind: 'crash' }
  /** Accepts, reads the request, never answers: fails at the client's timeout (local-origin). */
  | { readonly kind: 'blackhole' }
  /** Answers `status` to this fraction of requests; with rampMs the fraction grows linearly from 0 over rampMs. */
  | { readonly kind: 'errors'; readonly status: number; readonly fraction: number; readonly rampMs?: number }
  /** Answers 200, `factor` times slower plus addMs; with rampMs both grow linearly from nothing over rampMs (drift). */
  | { readonly kind: 'latency'; readonly factor: number; readonly addMs?: number; readonly rampMs?: number }
  /** Alternates down (refusing connections) for downMs and up for upMs, starting down. */
  | { readonly kind: 'flap'; readonly downMs: number; readonly upMs: number };

export type FaultKindName = FaultKind['kind'];

/** A fault with its active period, ms relative to a start (the run's start; the backend's t0). */
export type TimedFault = FaultKind & { readonly startMs: number; readonly endMs: number };

/** How an endpoint behaves at one moment, given the faults active on it. */
export interface FaultEffect {
  /** 0 up, 1 refuses connections, 2 black hole. */
  down: 0 | 1 | 2;
  latencyFactor: number;
  /** Added to every answer's latency, ms. */
  latencyAddMs: number;
  /** Share of requests answered with `status`. */
  errorFraction: number;
  status: number;
  /** Some fault is active and changes the endpoint's behaviour now. */
  faulty: boolean;
}

export const newEffect = (): FaultEffect => ({ down: 0, latencyFactor: 1, latencyAddMs: 0, errorFraction: 0, status: 500, faulty: false });

const ramp = (rampMs: number | undefined, sinceMs: number): number =>
  rampMs === undefined || rampMs <= 0 ? 1 : Math.min(1, sinceMs / rampMs);

/**
 * The combined effect at time t of the faults active then (faults compose: refusing beats a black
 * hole beats slowness; latency factors multiply; the largest error fraction wins). Writes into `out`.
 */
export function effectAt(faults: readonly TimedFault[], t: number, out: FaultEffect): FaultEffect {
  out.down = 0;
  out.latencyFactor = 1;
  out.latencyAddMs = 0;
  out.errorFraction = 0;
  out.status = 500;
  out.faulty = false;
  for (let k = 0; k < faults.length; k++) {
    const f = faults[k]!;
    if (t < f.startMs || t >= f.endMs) continue;
    const since = t - f.startMs;
    switch (f.kind) {
      case 'crash':
        out.down = 1;
        out.faulty = true;
        break;
      case 'blackhole':
        if (out.down === 0) out.down = 2;
        out.faulty = true;
        break;
      case 'errors': {
        const fr = f.fraction * ramp(f.rampMs, since);
        if (fr > out.errorFraction) {
          out.errorFraction = fr;
          out.status = f.status;
        }
        if (fr > 0) out.faulty = true;
        break;
      }
      case 'latency': {
        const r = ramp(f.rampMs, since);
        const factor = 1 + (f.factor - 1) * r;
        out.latencyFactor *= factor;
        out.latencyAddMs += (f.addMs ?? 0) * r;
        // A creeping slowdown is not yet a fault while it is within the ordinary spread.
        if (factor >= 1.25 || f.rampMs === undefined) out.faulty = true;
        break;
      }
      case 'flap':
        if (since % (f.downMs + f.upMs) < f.downMs) {
          out.down = 1;
          out.faulty = true;
        }
        break;
    }
  }
  return out;
}

/** The next time after t at which effectAt's `down` may change (fault boundaries, flap phases); Infinity if none. */
export function nextChangeAfter(faults: readonly TimedFault[], t: number): number {
  let next = Infinity;
  for (const f of faults) {
    if (f.startMs > t) next = Math.min(next, f.startMs);
    if (f.endMs > t) next = Math.min(next, f.endMs);
    if (f.kind === 'flap' && t >= f.startMs && t < f.endMs) {
      const period = f.downMs + f.upMs;
      const phase = (t - f.startMs) % period;
      next = Math.min(next, t + (phase < f.downMs ? f.downMs - phase : period - phase));
    }
  }
  return next;
}

type Field = { readonly type: 'number'; readonly min: number; readonly max: number; readonly optional?: boolean };

/** The parameters of each kind, with their ranges: validation of fault data from outside (JSON). */
export const FAULT_FIELDS: { readonly [K in FaultKindName]: Readonly<Record<string, Field>> } = {
  crash: {},
  blackhole: {},
  errors: { status: { type: 'number', min: 500, max: 599 }, fraction: { type: 'number', min: 0, max: 1 }, rampMs: { type: 'number', min: 0, max: 86_400_000, optional: true } },
  latency: { factor: { type: 'number', min: 1, max: 10_000 }, addMs: { type: 'number', min: 0, max: 600_000, optional: true }, rampMs: { type: 'number', min: 0, max: 86_400_000, optional: true } },
  flap: { downMs: { type: 'number', min: 1, max: 3_600_000 }, upMs: { type: 'number', min: 1, max: 3_600_000 } },
};

export const FAULT_KINDS = Object.keys(FAULT_FIELDS) as FaultKindName[];

const TIMES: Readonly<Record<string, Field>> = {
  startMs: { type: 'number', min: 0, max: 86_400_000, optional: true },
  endMs: { type: 'number', min: 0, max: Number.MAX_SAFE_INTEGER, optional: true },
};

/**
 * Validate one fault from outside (`{"kind":"errors","status":500,"fraction":0.3}`, optionally with
 * startMs/endMs; missing times mean "from now on"). Collects every problem, each naming its path.
 */
export function parseTimedFault(input: unknown, path = 'fault'): Validated<TimedFault> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return { valid: false, errors: [`${path}: expected an object such as {"kind":"crash"}`] };
  }
  const src = input as Record<string, unknown>;
  const errors: string[] = [];
  const kind = src.kind;
  if ('mode' in src) errors.push(`${path}.mode: unknown key (faults are named by "kind": ${FAULT_KINDS.join(', ')})`);
  if (typeof kind !== 'string' || !(kind in FAULT_FIELDS)) {
    errors.push(`${path}.kind: got ${JSON.stringify(kind)}, expected one of ${FAULT_KINDS.join(', ')}`);
    return { valid: false, errors };
  }
  const fields = { ...FAULT_FIELDS[kind as FaultKindName], ...TIMES };
  const out: Record<string, unknown> = { kind, startMs: 0, endMs: Infinity };
  for (const [key, value] of Object.entries(src)) {
    if (key === 'kind' || key === 'mode') continue;
    const f = fields[key];
    if (!f) { errors.push(`${path}.${key}: unknown key for kind ${kind} (known: ${Object.keys(fields).join(', ')})`); continue; }
    if (typeof value !== 'number' || !Number.isFinite(value) || value < f.min || value > f.max) {
      errors.push(`${path}.${key}: got ${JSON.stringify(value)}, expected a number in [${f.min}, ${f.max}]`);
    } else out[key] = value;
  }
  for (const [key, f] of Object.entries(fields)) if (!f.optional && !(key in src)) errors.push(`${path}.${key}: missing (kind ${kind})`);
  if (errors.length === 0 && (out.endMs as number) <= (out.startMs as number)) errors.push(`${path}: endMs ${String(out.endMs)} must be after startMs ${String(out.startMs)}`);
  if (errors.length > 0) return { valid: false, errors };
  return { valid: true, result: Object.freeze(out) as unknown as TimedFault };
}
