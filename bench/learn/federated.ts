// The federated-baseline lanes of `npm run bench:learn`, in virtual time: a sidecar that just started
// meets a gray 3× endpoint 2 s later, with and without the mesh's aggregate baseline; and how far one
// poisoned sidecar out of five moves that aggregate.
import { DEFAULT_POLICY_SETTINGS } from '../../src/config/sections/healing.js';
import { adoptAggregate, aggregate, DEFAULT_FEDERATED_SETTINGS, localParams, presenceChanges, relativeShift, type Contribution, type FederatedSettings, type ServiceParams } from '../../src/learn/federated.js';
import type { ScenarioSpec } from '../../src/sim/scenarios.js';
import { runScenario } from '../../src/sim/simulator.js';
import type { Table } from '../lib/report.js';

const MEDIANS = [10, 9, 11, 10, 12];
const FAULT_AT_MS = 2000;
/** The target: detected within 3 s of the fault's start. */
const DETECT_WITHIN_MS = 3000;
const MESH_SIDECARS = 5;

function cluster(n: number): ScenarioSpec['endpoints'] {
  return Array.from({ length: n }, (_, i) => ({ medianMs: MEDIANS[i % MEDIANS.length]!, zone: 'a', priority: 0, errorRate: 0.001, capacityRps: 0 }));
}

/** A sidecar's life from its start: fault-free, or one endpoint turning 3× slower 2 s in. */
function freshStart(n: number, gray: boolean): ScenarioSpec {
  const durationMs = 20_000;
  return {
    name: `fresh-${gray ? 'gray-3x' : 'calm'}-${n}`, family: 'federated', set: 'tuning',
    title: gray ? 'gray 3× two seconds after the sidecar starts' : 'fault-free, from the sidecar\'s start',
    description: `${n} endpoints, 200 requests/s`, rps: 200, durationMs,
    timing: { warmMs: FAULT_AT_MS, faultMs: durationMs - FAULT_AT_MS, afterMs: 0 },
    endpoints: cluster(n), latencySigma: 0.5, latencyTail: { probability: 0.01, paretoAlpha: 1.5 }, requestTimeoutMs: 1000,
    faults: gray ? [{ kind: 'latency', factor: 3, endpoints: [0], startMs: FAULT_AT_MS, endMs: durationMs }] : [],
    hard: false, targets: { decideWithinMs: DETECT_WITHIN_MS, falseEjections: 0 },
  };
}

/** What a long-running sidecar of the mesh shares for the service after a minute of fault-free traffic. */
function meshContribution(n: number, seed: number, k: number): Contribution {
  const spec: ScenarioSpec = { ...freshStart(n, false), name: `mesh-${n}`, durationMs: 60_000 };
  let params: ServiceParams | undefined;
  runScenario(spec, { policy: 'meshmedic', seed: 1000 * seed + k, atEnd: (engine) => (params = localParams(engine.signalsOf('sim'), DEFAULT_POLICY_SETTINGS)) });
  if (!params) throw new Error(`mesh sidecar ${k} learned no baseline in a minute`);
  return { node: `mesh-${k}`, receivedAt: 0, issuedAt: 0, services: new Map([['sim', params]]) };
}

/** Ways a sidecar can lie or break: each replaces one of the five contributions. */
const POISONS: readonly { name: string; p: ServiceParams }[] = [
  { name: 'latency ×e^25, claims 10^9 samples', p: { samples: 1e9, p50Loc: 25, p50Scale: 0, p90Loc: 25, p90Scale: 0, errorRate: 0 } },
  { name: 'latency 1 µs, huge scale', p: { samples: 1e9, p50Loc: 0, p50Scale: 5, p90Loc: 0, p90Scale: 5, errorRate: 1 } },
  { name: 'latency ×2 (subtle)', p: { samples: 1e9, p50Loc: 9.9, p50Scale: 0.3, p90Loc: 10.6, p90Scale: 0.3, errorRate: 0.05 } },
  { name: 'latency +15 %, scales ×1.5 (near the honest range)', p: { samples: 1e9, p50Loc: 9.35, p50Scale: 0.15, p90Loc: 9.95, p90Scale: 0.15, errorRate: 0.002 } },
];

export interface FederatedRow { n: number; seed: number; lane: string; detectMs: number; falseDecisions: number }

export interface FederatedResult {
  rows: FederatedRow[];
  /** shift: the largest relative change of any latency baseline or scale; latency: of the baselines (exp of the locations) only. */
  poisonShifts: { seed: number; poison: string; shift: number; latency: number; presence: boolean }[];
  tables: { detect: Table; poison: Table; targets: Table };
}

export function runFederatedLanes(seeds: number, cfg: FederatedSettings = DEFAULT_FEDERATED_SETTINGS): FederatedResult {
  const rows: FederatedRow[] = [];
  const poisonShifts: FederatedResult['poisonShifts'] = [];
  for (const n of [2, 5]) {
    for (let seed = 1; seed <= seeds; seed++) {
      const mesh = Array.from({ length: MESH_SIDECARS }, (_, k) => meshContribution(n, seed, k));
      const agg = aggregate(mesh, 0, cfg).get('sim')!;
      if (n === 5) {
        // The liar takes each honest sidecar's place in turn: the worst of the five is reported.
        for (const poison of POISONS) {
          for (let liar = 0; liar < MESH_SIDECARS; liar++) {
            const poisoned = mesh.map((c, k) => (k === liar ? { node: 'poisoned', receivedAt: 0, issuedAt: 0, services: new Map([['sim', poison.p]]) } : c));
            const bad = aggregate(poisoned, 0, cfg).get('sim')!.params;
            const latency = Math.max(Math.abs(Math.expm1(bad.p50Loc - agg.params.p50Loc)), Number.isNaN(bad.p90Loc) || Number.isNaN(agg.params.p90Loc) ? 0 : Math.abs(Math.expm1(bad.p90Loc - agg.params.p90Loc)));
            poisonShifts.push({ seed, poison: poison.name, shift: relativeShift(agg.params, bad), latency, presence: presenceChanges(agg.params, bad).length > 0 });
          }
        }
      }
      for (const federated of [false, true]) {
        const lane = federated ? 'with federation' : 'without federation';
        const adopt = federated ? (_s: string, signals: Parameters<typeof adoptAggregate>[0], settings: Parameters<typeof adoptAggregate>[2]) => void adoptAggregate(signals, agg.params, settings) : undefined;
        const gray = runScenario(freshStart(n, true), { policy: 'meshmedic', seed, adoptBaselines: adopt });
        const calm = runScenario(freshStart(n, false), { policy: 'meshmedic', seed, adoptBaselines: adopt });
        rows.push({ n, seed, lane, detectMs: gray.detectMs, falseDecisions: calm.falseEjections + calm.falseDeweights + gray.falseEjections + gray.falseDeweights });
      }
    }
  }
  return { rows, poisonShifts, tables: tables(rows, poisonShifts, seeds) };
}

const fmt = (ms: number): string => (Number.isNaN(ms) ? 'never' : `${(ms / 1000).toFixed(1)} s`);

function tables(rows: FederatedRow[], shifts: FederatedResult['poisonShifts'], seeds: number): FederatedResult['tables'] {
  const lanes = ['without federation', 'with federation'];
  const sel = (n: number, lane: string) => rows.filter((r) => r.n === n && r.lane === lane);
  const within = (rs: FederatedRow[]) => rs.filter((r) => r.detectMs <= DETECT_WITHIN_MS).length;
  const detect: Table = {
    columns: ['endpoints', 'lane', 'detected (s after the fault), per seed', `within ${DETECT_WITHIN_MS / 1000} s`, 'false ejections or de-weights (gray and fault-free runs)'],
    rows: [2, 5].flatMap((n) => lanes.map((lane) => {
      const rs = sel(n, lane);
      return [n, lane, rs.map((r) => fmt(r.detectMs)).join(', '), `${within(rs)}/${rs.length}`, rs.reduce((x, r) => x + r.falseDecisions, 0)];
    })),
    alignRight: [true, false, false, true, true],
  };
  const maxOf = (name: string, k: 'shift' | 'latency') => Math.max(...shifts.filter((s) => s.poison === name).map((s) => s[k]));
  const poison: Table = {
    columns: ['one of five sidecars', 'largest shift of the p50/p90 latency baselines', 'largest shift of any coordinate (baselines and scales)', 'p90 baseline appeared or vanished (runs)'],
    rows: POISONS.map((p) => [p.name, `${(maxOf(p.name, 'latency') * 100).toFixed(2)} %`, `${(maxOf(p.name, 'shift') * 100).toFixed(2)} %`, `${shifts.filter((s) => s.poison === p.name && s.presence).length}/${shifts.filter((s) => s.poison === p.name).length}`]),
    alignRight: [false, true, true, true],
  };
  const worst = Math.max(...shifts.map((s) => s.shift));
  const worstLatency = Math.max(...shifts.map((s) => s.latency));
  const two = sel(2, lanes[1]!);
  const twoWithout = sel(2, lanes[0]!);
  const five = sel(5, lanes[1]!);
  const fiveWithout = sel(5, lanes[0]!);
  const targets: Table = {
    columns: ['target', 'measured', 'verdict'],
    rows: [
      [`federated: a sidecar 2 s after start detects a gray 3× endpoint within 3 s (2 endpoints: the peer detectors need 3; a seeded CUSUM with a head start of h/2)`, `with: ${within(two)}/${two.length}; without: ${within(twoWithout)}/${twoWithout.length}`, within(two) === two.length ? 'met' : 'missed'],
      [`federated: the same with 5 endpoints`, `with: ${within(five)}/${five.length}; without: ${within(fiveWithout)}/${fiveWithout.length}`, within(five) === five.length ? 'met' : 'missed'],
      [`federated: one poisoned sidecar of 5 moves the aggregate < 5 % (${seeds} seeds × ${POISONS.length} attacks × each of the 5 in the liar's place)`, `latency baselines ${(worstLatency * 100).toFixed(2)} %; any coordinate incl. scales ${(worst * 100).toFixed(2)} %`, worst < 0.05 ? 'met' : worstLatency < 0.05 ? 'met for the baselines, missed for the scales' : 'missed'],
    ],
    alignRight: [false, true, false],
  };
  return { detect, poison, targets };
}
