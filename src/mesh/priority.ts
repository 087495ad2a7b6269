// Priority spill-over and panic, computed from health counts (Envoy's model, pure):
// a priority's availability is healthy/total × overprovisioning (1.4 by default); traffic fills P0 up to
// its availability and spills the rest to P1, P2, ...; if the mesh as a whole is below the panic
// threshold, health is ignored and traffic spreads over every endpoint rather than crushing survivors.

export interface PriorityCounts {
  /** Endpoints able to take ordinary traffic (healthy or degraded). */
  readonly healthy: number;
  readonly total: number;
}

export interface PriorityPlan {
  /** Share of traffic per priority, in [0, 1], summing to 1 when any endpoint exists. */
  readonly load: readonly number[];
  /** True when health is ignored (too few healthy endpoints). */
  readonly panic: boolean;
}

export function planPriorities(counts: readonly PriorityCounts[], overprovisioningFactor = 1.4, panicThresholdPct = 50): PriorityPlan {
  const n = counts.length;
  const avail = new Array<number>(n).fill(0);
  let totalAvail = 0;
  for (let p = 0; p < n; p++) {
    const c = counts[p]!;
    avail[p] = c.total === 0 ? 0 : Math.min(100, Math.round((100 * overprovisioningFactor * c.healthy) / c.total));
    totalAvail += avail[p]!;
  }
  const load = new Array<number>(n).fill(0);
  if (n === 0) return { load, panic: false };
  const normalized = Math.min(100, totalAvail);
  if (normalized < panicThresholdPct || totalAvail === 0) {
    // Panic: spread over the first priority that has endpoints, health ignored (as Envoy does in P0).
    const first = counts.findIndex((c) => c.total > 0);
    if (first >= 0) load[first] = 1;
    return { load, panic: true };
  }
  let remaining = 100;
  for (let p = 0; p < n && remaining > 0; p++) {
    const take = Math.min(remaining, avail[p]!);
    load[p] = take;
    remaining -= take;
  }
  // Availability below 100 in total: scale so that shares still sum to 1.
  const sum = load.reduce((a, b) => a + b, 0);
  for (let p = 0; p < n; p++) load[p] = sum > 0 ? load[p]! / sum : 0;
  return { load, panic: false };
}
