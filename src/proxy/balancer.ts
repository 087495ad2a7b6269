// Endpoint choice: power of two choices over Peak-EWMA cost (Linkerd's balancer; the default), or
// Envoy's ROUND_ROBIN / LEAST_REQUEST for faithful comparisons, restricted to what the current health
// snapshot allows. The per-snapshot candidate tables are built once per ServiceView object
// (cached in a WeakMap) so that a pick allocates nothing; health changes arrive as new ServiceView objects.
import type { Clock } from '../core/clock.js';
import { isRoutable, type EndpointView, type ServiceView } from '../mesh/state.js';

/** How the ordinary members of a priority are chosen (config `proxy.balancer`). */
export const BALANCER_ALGORITHMS = ['p2c-peak-ewma', 'round-robin', 'least-request'] as const;
export type BalancerAlgorithm = (typeof BALANCER_ALGORITHMS)[number];

export interface BalancerOptions {
  /**
   * p2c-peak-ewma: two weighted draws, the lower Peak-EWMA cost wins (Linkerd). round-robin: members in
   * turn, spaced by weight (Envoy's ROUND_ROBIN). least-request: two weighted draws, fewer requests in
   * flight wins (Envoy's LEAST_REQUEST with choice_count 2).
   */
  readonly algorithm: BalancerAlgorithm;
  /** Peak-EWMA decay time constant, ms (Linkerd: 10 s). */
  readonly decayMs: number;
  /** RTT assumed for an endpoint never measured, ms (Linkerd: 30 ms). */
  readonly defaultRttMs: number;
  /** Random source in [0, 1); injectable for deterministic tests. */
  readonly random: () => number;
  /**
   * p2c-peak-ewma trickle: an endpoint that has lost this many cost comparisons at twice the winner's
   * cost or more since it last won one, and has not been chosen for trickleMs, wins the next comparison
   * it is part of (0 = never). Without it, one slow
   * answer starves an endpoint until its cost has decayed (~35 s for a 30× peak): nobody measures it,
   * so neither the balancer nor the detectors can tell a gray failure from one slow outlier, or see that
   * it has recovered. The trickle is at most 1/(trickleLosses + 1) of the comparisons it takes part in,
   * and at most one request per trickleMs.
   */
  readonly trickleLosses: number;
  readonly trickleMs: number;
}

/** Cost difference under which two choices count as equal: 10 %, or 0.5 ms (loopback noise), whichever is larger. */
const TIE_TOLERANCE = 0.1;
const TIE_ABS_MS = 0.5;
/** The same when neither candidate has a request in flight: b must cost under half of a, and 5 ms less. */
const IDLE_TIE_TOLERANCE = 0.5;
const IDLE_TIE_ABS_MS = 5;
/** A comparison lost at this many times the winner's cost or more counts toward the trickle. */
const TRICKLE_GAP = 2;
/** Cost of an idle endpoint never measured: below any real estimate (1 µs). */
const UNMEASURED_IDLE_COST = 0.001;

export const DEFAULT_BALANCER: BalancerOptions = Object.freeze({ algorithm: 'p2c-peak-ewma', decayMs: 10_000, defaultRttMs: 30, random: Math.random, trickleLosses: 20, trickleMs: 500 });

/** `to` (larger, already filled with the default) holding `from`'s values at the start. */
function grown<T extends Int32Array | Float64Array>(from: T, to: T): T {
  to.set(from);
  return to;
}

/** Candidates of one priority: ordinary endpoints with cumulative weights, and probation canaries. */
interface PriorityTable {
  /** Endpoints taking ordinary traffic (or every endpoint in panic). */
  readonly members: readonly EndpointView[];
  /** Cumulative effective weight (static weight × health.weightFactor), same order as members. */
  readonly cumulative: Float64Array;
  readonly totalWeight: number;
  /** Probation endpoints and the cumulative probability that a request of this priority goes to each. */
  readonly canaries: readonly EndpointView[];
  readonly canaryCumulative: Float64Array;
  /** Sum of the canary probabilities (0 when there is none). */
  readonly canaryShare: number;
}

interface PickTable {
  /** Cumulative traffic share per priority (plan.load), same length as priorities. */
  readonly loadCumulative: Float64Array;
  readonly priorities: readonly PriorityTable[];
  /** Every endpoint that may take any traffic at all, for the fallback scan. */
  readonly usable: readonly EndpointView[];
}

/**
 * Load of each endpoint slot: in-flight requests and the Peak-EWMA RTT estimate. Typed arrays indexed by
 * the mesh's endpoint slot, grown when new slots appear (never on the request path once ensured).
 */
export class EndpointLoad {
  pending: Int32Array = new Int32Array(16);
  /** RTT estimate, ms; NaN = never measured (cost uses the default RTT). */
  rttMs: Float64Array = new Float64Array(16).fill(NaN);
  /** When the estimate was last updated (clock ms). */
  stampMs: Float64Array = new Float64Array(16);
  /** p2c comparisons lost by 2× or more since the slot last won one, and when that was (clock ms): the trickle. */
  losses: Int32Array = new Int32Array(16);
  chosenMs: Float64Array = new Float64Array(16);

  ensure(slot: number): void {
    if (slot < this.pending.length) return;
    let n = this.pending.length;
    while (n <= slot) n *= 2;
    this.pending = grown(this.pending, new Int32Array(n));
    this.rttMs = grown(this.rttMs, new Float64Array(n).fill(NaN));
    this.stampMs = grown(this.stampMs, new Float64Array(n));
    this.losses = grown(this.losses, new Int32Array(n));
    this.chosenMs = grown(this.chosenMs, new Float64Array(n));
  }

  /** Forget a slot's history (endpoint removed; the slot may be reused by another endpoint). */
  reset(slot: number): void {
    if (slot >= this.pending.length) return;
    this.pending[slot] = 0;
    this.rttMs[slot] = NaN;
    this.stampMs[slot] = 0;
    this.losses[slot] = 0;
    this.chosenMs[slot] = 0;
  }
}

export class Balancer {
  readonly load = new EndpointLoad();
  private readonly clock: Clock;
  private readonly opts: BalancerOptions;
  private readonly tables = new WeakMap<ServiceView, PickTable>();
  /** Round-robin position (one counter for every table: a new snapshot does not restart the turn). */
  private turn = 0;

  constructor(clock: Clock, opts: Partial<BalancerOptions> = {}) {
    this.clock = clock;
    this.opts = { ...DEFAULT_BALANCER, ...opts };
  }

  /**
   * Choose an endpoint of `view`, or undefined when none may take traffic. `avoid` (a slot, or -1) is an
   * endpoint that just failed to connect: it is skipped whenever another choice exists.
   */
  pick(view: ServiceView, avoid = -1, avoid2 = -1): EndpointView | undefined {
    let t = this.tables.get(view);
    if (t === undefined) {
      t = buildTable(view);
      this.tables.set(view, t);
    }
    const rnd = this.opts.random;
    const prio = t.priorities;
    if (prio.length === 0) return undefined;
    // 1. The priority, by the plan's traffic shares.
    const r = rnd();
    let p = 0;
    while (p < prio.length - 1 && r >= t.loadCumulative[p]!) p++;
    const table = prio[p]!;
    // 2. A canary request for a probation endpoint, with its own small share.
    if (table.canaryShare > 0) {
      const c = rnd();
      if (c < table.canaryShare) {
        const e = table.canaries[searchCumulative(table.canaryCumulative, c)]!;
        if (e.slot !== avoid && e.slot !== avoid2) return e;
      }
    }
    // 3. Power of two choices among the ordinary members, each drawn by effective weight.
    const m = table.members;
    if (m.length > 0 && table.totalWeight > 0 && this.opts.algorithm === 'round-robin') {
      // Evenly spaced points over the cumulative weights: each member in turn, as often as its weight.
      const step = table.totalWeight / m.length;
      for (let k = 0; k < m.length; k++) {
        const e = m[searchCumulative(table.cumulative, ((this.turn++ % m.length) + 0.5) * step)]!;
        if (e.slot !== avoid && e.slot !== avoid2) return e;
      }
    } else if (m.length > 0 && table.totalWeight > 0) {
      let ia = searchCumulative(table.cumulative, rnd() * table.totalWeight);
      for (let i = 0; i < 4 && (m[ia]!.slot === avoid || m[ia]!.slot === avoid2); i++) ia = searchCumulative(table.cumulative, rnd() * table.totalWeight);
      const a = m[ia]!;
      if (m.length === 1) {
        if (a.slot !== avoid && a.slot !== avoid2) return a;
      } else {
        // The second choice is drawn by weight too; on a collision, redraw once, then take a uniform other
        // member so that the two choices always differ.
        let ib = searchCumulative(table.cumulative, rnd() * table.totalWeight);
        if (ib === ia) ib = searchCumulative(table.cumulative, rnd() * table.totalWeight);
        if (ib === ia) ib = (ia + 1 + Math.floor(rnd() * (m.length - 1))) % m.length;
        const b = m[ib]!;
        const aOk = a.slot !== avoid && a.slot !== avoid2;
        const bOk = b.slot !== avoid && b.slot !== avoid2;
        if (aOk && bOk && this.opts.algorithm === 'least-request') {
          const pa = this.load.pending[a.slot]!, pb = this.load.pending[b.slot]!;
          return pb < pa ? b : a;
        }
        if (aOk && bOk) {
          const now = this.clock.now();
          const ca = this.cost(a.slot, now);
          const cb = this.cost(b.slot, now);
          // Costs within TIE_TOLERANCE (relative) or TIE_ABS_MS are equal: the first (weighted) draw wins,
          // so weights hold and sub-millisecond noise does not pin all light traffic on one endpoint.
          // With nothing in flight on either (light, sequential traffic) the band is wider: one slow
          // sample (a cold first request, a GC pause) must not pin every request on the other endpoint
          // for the seconds the peak takes to decay; an endpoint twice as slow is still avoided.
          const l = this.load;
          const idle = l.pending[a.slot] === 0 && l.pending[b.slot] === 0 && l.rttMs[a.slot] === l.rttMs[a.slot] && l.rttMs[b.slot] === l.rttMs[b.slot]; // both measured (not NaN)
          const rel = idle ? ca * IDLE_TIE_TOLERANCE : ca * TIE_TOLERANCE;
          const abs = idle ? IDLE_TIE_ABS_MS : TIE_ABS_MS;
          let win = a;
          let lose = b;
          if (cb < ca - (rel > abs ? rel : abs)) {
            win = b;
            lose = a;
          }
          // The trickle (BalancerOptions.trickleLosses): a starved endpoint is measured again now and then.
          const o = this.opts;
          if (o.trickleLosses > 0 && l.losses[lose.slot]! >= o.trickleLosses && now - l.chosenMs[lose.slot]! >= o.trickleMs) {
            const w = win;
            win = lose;
            lose = w;
          }
          l.losses[win.slot] = 0;
          l.chosenMs[win.slot] = now;
          // Only a loss by a wide margin counts: a slightly slower endpoint is not starved (its cost
          // crosses its peers' whenever they have requests in flight) and needs no trickle.
          if (win === a ? cb >= TRICKLE_GAP * ca : ca >= TRICKLE_GAP * cb) l.losses[lose.slot]! += 1;
          return win;
        }
        if (aOk) return a;
        if (bOk) return b;
      }
    }
    // 4. Fallback (rare): anything usable that is not avoided, cheapest first.
    let best: EndpointView | undefined;
    let bestCost = Infinity;
    for (let i = 0; i < t.usable.length; i++) {
      const e = t.usable[i]!;
      if (e.slot === avoid || e.slot === avoid2) continue;
      const c = this.cost(e.slot);
      if (c < bestCost) {
        best = e;
        bestCost = c;
      }
    }
    return best;
  }

  /**
   * Peak-EWMA cost of a slot now: decayed RTT estimate × (in-flight + 1). An endpoint never measured
   * costs almost nothing while idle (it gets one probe request at once, so new and restored endpoints are
   * measured quickly) and the default RTT once that probe is in flight (no flood before the first answer).
   */
  cost(slot: number, now = this.clock.now()): number {
    const load = this.load;
    const pending = load.pending[slot]!;
    let rtt = load.rttMs[slot]!;
    if (rtt !== rtt) return pending === 0 ? UNMEASURED_IDLE_COST : this.opts.defaultRttMs * (pending + 1); // NaN: never measured
    const elapsed = now - load.stampMs[slot]!;
    if (elapsed > 0) rtt *= Math.exp(-elapsed / this.opts.decayMs);
    return rtt * (pending + 1);
  }

  /** A request starts on `slot`. */
  begin(slot: number): void {
    this.load.pending[slot]! += 1;
  }

  /** A request on `slot` has finished (whatever its outcome). */
  end(slot: number): void {
    const p = this.load.pending;
    if (p[slot]! > 0) p[slot]! -= 1;
  }

  /**
   * Feed an RTT sample (ms): a sample above the estimate replaces it at once (the "peak"); below it, the
   * estimate decays toward it with time constant decayMs, so a slow endpoint is avoided immediately and
   * forgiven gradually.
   */
  observe(slot: number, rttMs: number): void {
    const load = this.load;
    const now = this.clock.now();
    const prev = load.rttMs[slot]!;
    if (prev !== prev || rttMs > prev) load.rttMs[slot] = rttMs;
    else {
      // Time-based, as tower/Linkerd: the weight of the old estimate is exp(-elapsed / decay), however
      // many samples arrive meanwhile.
      const elapsed = now - load.stampMs[slot]!;
      const keep = elapsed > 0 ? Math.exp(-elapsed / this.opts.decayMs) : 1;
      load.rttMs[slot] = prev * keep + rttMs * (1 - keep);
    }
    load.stampMs[slot] = now;
  }
}

/** Index of the first cumulative value greater than x (binary search; x in [0, last)). */
function searchCumulative(cum: Float64Array, x: number): number {
  let lo = 0;
  let hi = cum.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cum[mid]! > x) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/**
 * Build the pick table of a service snapshot. Rules:
 * - ordinary members: healthy/degraded endpoints, effective weight = weight × health.weightFactor;
 * - probation endpoints: a canary share of their priority's traffic equal to weightFactor × the share they
 *   would have at full health (weight / sum of weights of routable + probation endpoints of the priority);
 * - ejected/draining: nothing, except in panic where every endpoint of the priority takes traffic
 *   at its static weight (health ignored, as Envoy does);
 * - priorities by plan.load (spill-over computed by the mesh state).
 */
export function buildTable(view: ServiceView): PickTable {
  const load = view.plan.load;
  const n = load.length;
  const loadCumulative = new Float64Array(n);
  let acc = 0;
  for (let p = 0; p < n; p++) {
    acc += load[p]!;
    loadCumulative[p] = acc;
  }
  if (n > 0) loadCumulative[n - 1] = Math.max(1, acc); // guard against rounding: the last bucket catches all
  const priorities: PriorityTable[] = [];
  const usable: EndpointView[] = [];
  for (let p = 0; p < n; p++) {
    const inPriority = view.endpoints.filter((e) => e.spec.priority === p);
    const members: EndpointView[] = [];
    const weights: number[] = [];
    const canaries: EndpointView[] = [];
    let canaryBase = 0;
    for (const e of inPriority) {
      if (view.plan.panic) {
        members.push(e);
        weights.push(e.spec.weight);
      } else if (isRoutable(e.health)) {
        members.push(e);
        weights.push(e.spec.weight * e.health.weightFactor);
        canaryBase += e.spec.weight;
      } else if (e.health.state === 'probation') {
        canaries.push(e);
        canaryBase += e.spec.weight;
      }
    }
    const cumulative = new Float64Array(members.length);
    let w = 0;
    for (let i = 0; i < members.length; i++) {
      w += weights[i]!;
      cumulative[i] = w;
    }
    const canaryCumulative = new Float64Array(canaries.length);
    let share = 0;
    for (let i = 0; i < canaries.length; i++) {
      const e = canaries[i]!;
      share += (e.health.weightFactor * e.spec.weight) / canaryBase;
      canaryCumulative[i] = share;
    }
    // With no ordinary member at all, the canaries take everything this priority receives.
    if (members.length === 0 && canaries.length > 0) {
      for (let i = 0; i < canaries.length; i++) canaryCumulative[i] = canaryCumulative[i]! / share;
      share = 1;
    }
    priorities.push({ members, cumulative, totalWeight: w, canaries, canaryCumulative, canaryShare: share });
    for (const e of members) usable.push(e);
    for (const e of canaries) usable.push(e);
  }
  return { loadCumulative, priorities, usable };
}
