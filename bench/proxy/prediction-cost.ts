// What failure prediction costs per request at saturation (issue 10: ≤ +3 %): the same sidecar with prediction
// on and off, both started once and warmed, then measured in alternating bursts (on, off, off, on, on, off …)
// so that a change in the machine's load, a warm-up or the order of the lanes falls on both alike. Each pair
// of neighbouring bursts gives one difference; the benchmark reports their median and range, not one run.
import os from 'node:os';
import { groupCpuSeconds } from '../lib/proc-cpu.js';
import type { RunningSut, SutContext, SystemUnderTest } from '../lib/systems.js';
import { runWrk } from '../lib/wrk.js';
import { median } from '../lib/stats.js';

export interface PredictionCostRun {
  /** CPU µs per request of each burst, in the order measured within its lane. */
  readonly on: readonly number[];
  readonly off: readonly number[];
  /** 1-minute load average at each pair's end (the machine is shared). */
  readonly load: readonly number[];
}

export interface PredictionCost {
  readonly pairs: number;
  readonly burstS: number;
  readonly onMedianUs: number;
  readonly offMedianUs: number;
  /** Per pair: 100 · (on − off) / off. */
  readonly diffsPct: readonly number[];
  readonly medianPct: number;
  readonly minPct: number;
  readonly maxPct: number;
  readonly loadMin: number;
  readonly loadMax: number;
}

/** Paired differences of neighbouring bursts; pairs with a missing figure on either side are left out. */
export function summarizeCost(run: PredictionCostRun, burstS: number): PredictionCost {
  const n = Math.min(run.on.length, run.off.length);
  const diffsPct: number[] = [];
  for (let i = 0; i < n; i++) {
    const a = run.on[i]!;
    const b = run.off[i]!;
    if (Number.isFinite(a) && Number.isFinite(b) && b > 0) diffsPct.push((100 * (a - b)) / b);
  }
  return {
    pairs: diffsPct.length,
    burstS,
    onMedianUs: median(run.on),
    offMedianUs: median(run.off),
    diffsPct,
    medianPct: median(diffsPct),
    minPct: diffsPct.length ? Math.min(...diffsPct) : NaN,
    maxPct: diffsPct.length ? Math.max(...diffsPct) : NaN,
    loadMin: run.load.length ? Math.min(...run.load) : NaN,
    loadMax: run.load.length ? Math.max(...run.load) : NaN,
  };
}

const sign = (x: number): string => `${x >= 0 ? '+' : ''}${x.toFixed(1)}`;

/** The verdict line: lanes named exactly, the median of the paired differences, their range and the load. */
export function costVerdict(c: PredictionCost, onName: string, offName: string): string {
  if (c.pairs === 0) return `prediction on vs off: not measured (no complete pair of bursts)`;
  return `prediction on vs off ('${onName}' vs '${offName}'): ${sign(c.medianPct)} % CPU per request, median of ${c.pairs} interleaved pairs of ${c.burstS}-s bursts `
    + `(pairs ${sign(c.minPct)} … ${sign(c.maxPct)} %; ${c.onMedianUs.toFixed(1)} vs ${c.offMedianUs.toFixed(1)} µs; load ${c.loadMin.toFixed(1)}–${c.loadMax.toFixed(1)}) (target ≤ +3 %)`;
}

/** CPU µs per request of one saturation burst against a running sidecar (its whole process group). */
async function burst(sut: RunningSut, connections: number, durationS: number): Promise<number> {
  const pgid = sut.proc?.child.pid;
  if (pgid === undefined) return NaN;
  const c0 = groupCpuSeconds(pgid);
  const sat = await runWrk(`${sut.url}/`, { threads: 2, connections, durationS });
  const c1 = groupCpuSeconds(pgid);
  const errors = sat.non2xx + sat.socketErrors;
  if (c0 === undefined || c1 === undefined || !(sat.requests > 0) || errors > 0.01 * sat.requests) return NaN;
  return ((c1 - c0) * 1e6) / sat.requests;
}

export async function measurePredictionCost(o: {
  on: SystemUnderTest;
  off: SystemUnderTest;
  ctx: SutContext;
  pairs: number;
  burstS: number;
  warmS: number;
  connections: number;
  log: (line: string) => void;
}): Promise<PredictionCost> {
  const run = { on: [] as number[], off: [] as number[], load: [] as number[] };
  const suts: { on?: RunningSut; off?: RunningSut } = {};
  try {
    suts.on = await o.on.start(o.ctx);
    suts.off = await o.off.start(o.ctx);
    for (const s of [suts.on, suts.off]) await runWrk(`${s.url}/`, { threads: 2, connections: o.connections, durationS: o.warmS });
    for (let i = 0; i < o.pairs; i++) {
      const order: ('on' | 'off')[] = i % 2 === 0 ? ['on', 'off'] : ['off', 'on'];
      for (const lane of order) run[lane].push(await burst(suts[lane]!, o.connections, o.burstS));
      run.load.push(os.loadavg()[0]!);
      const d = (100 * (run.on[i]! - run.off[i]!)) / run.off[i]!;
      o.log(`  prediction cost pair ${i + 1}/${o.pairs}: on ${run.on[i]!.toFixed(1)} µs, off ${run.off[i]!.toFixed(1)} µs CPU/request (${sign(d)} %), load ${run.load[i]!.toFixed(1)}\n`);
    }
  } finally {
    await suts.on?.stop();
    await suts.off?.stop();
  }
  return summarizeCost(run, o.burstS);
}
