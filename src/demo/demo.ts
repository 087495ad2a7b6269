// The local demo mesh: backend instances, each behind its own sidecar (inbound), client sidecars that
// route to them (outbound, healing on), open-loop traffic, faults on a schedule, and a live view.
import { validateConfig } from '../config/load.js';
import type { Config } from '../config/types.js';
import { createLogger } from '../core/log.js';
import { startSidecar, type Sidecar } from '../runtime/sidecar.js';
import { startBackend, type Backend } from '../testing/backend.js';
import type { FaultKind } from '../sim/faults.js';
import { attributeDetection, renderSummary, renderView, type DemoFaultRecord, type Warmup } from './view.js';
import { TrafficGenerator } from './traffic.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { auditOf } from '../audit/component.js';

export interface DemoOptions {
  /** Stop after this many seconds (0 = until stopped). */
  readonly durationS: number;
  readonly faults: boolean;
  /** Print a table every few seconds instead of redrawing the screen. */
  readonly plain: boolean;
  readonly out: (s: string) => void;
  /** Resolves when the demo should stop (Ctrl-C). */
  readonly stopSignal: Promise<void>;
}

export interface DemoInstance {
  readonly service: string;
  readonly name: string;
  readonly zone: string;
  readonly priority: number;
  readonly backend: Backend;
  readonly sidecar: Sidecar;
  /** The instance sidecar's inbound address: what clients route to. */
  readonly address: string;
}

interface ScheduledFault {
  readonly atS: number;
  readonly forS: number;
  readonly label: string;
  readonly targets: readonly string[]; // instance names
  /** In the scenario catalogue's vocabulary (src/sim/faults.ts), active until the fault ends. */
  readonly fault: FaultKind;
}

/**
 * The gray failure's added latency. Every instance, sidecar and the traffic generator share one process,
 * so on a loaded machine every answer also waits for the event loop: 10–50 ms at the median under
 * `stress-ng --cpu 2` on 2 cores. 5x a 3 ms median (+12 ms) drowns in that; +100 ms stands out, as a
 * slow-but-answering instance does in production. (Much slower would not help: the balancer sends a
 * slower instance still less, and the detector needs its requests; see DEMO_HEALING.)
 */
const GRAY_ADDED_MS = 100;

/**
 * The fault schedule, repeated every CYCLE_S: each fault from the scenario catalogue, then recovery.
 * Faults do not overlap, so a decision during a fault's window is about that fault.
 */
export const FAULT_SCHEDULE: readonly ScheduledFault[] = [
  { atS: 5, forS: 8, label: 'crash (connection refused)', targets: ['payments-2'], fault: { kind: 'crash' } },
  // A gray failure lasts (in production, minutes): the balancer moves most traffic off the slow instance
  // within a request or two, so each client's latency detectors gather their few slow samples (the
  // balancer's trickle, judged by starved_latency, on a quiet machine) over seconds; 20 s leaves room.
  { atS: 16, forS: 20, label: `gray failure: +${GRAY_ADDED_MS} ms per answer, still 200 OK`, targets: ['catalog-1'], fault: { kind: 'latency', factor: 1, addMs: GRAY_ADDED_MS } },
  { atS: 39, forS: 8, label: 'partial failure: 30 % 503', targets: ['payments-3'], fault: { kind: 'errors', fraction: 0.3, status: 503 } },
  { atS: 50, forS: 8, label: 'black-hole (accepts, never answers)', targets: ['payments-1'], fault: { kind: 'blackhole' } },
  { atS: 61, forS: 8, label: 'zone outage: every payments instance in zone b', targets: ['payments-3', 'payments-4'], fault: { kind: 'crash' } },
];
export const CYCLE_S = 72;

/** The mesh must be healthy this long without a break before the first cycle starts, waiting at most SETTLE_MAX_MS. */
export const SETTLE_MS = 3000;
export const SETTLE_MAX_MS = 60_000;

/**
 * Timeouts, aligned so that a black-hole is seen: a client sidecar gives an endpoint 1 s to answer
 * (proxy.headersTimeoutMs; a timeout is a local-origin failure the detectors count, and a GET is retried
 * on another endpoint), well inside the traffic generator's own 3 s, and far inside a fault's 8 s.
 */
export const CLIENT_HEADERS_TIMEOUT_MS = 1000;
export const APP_TIMEOUT_MS = 3000;

/**
 * Requests/s each frontend sends each service ("reports" sends a quarter): about 40/s per endpoint from
 * each client, far less than a production sidecar sees, so two detector thresholds that count requests
 * are scaled down for the demo (the defaults stay as they are):
 * - the success-rate peer detector's 100 requests over 5 windows would judge an endpoint the balancer
 *   starved only late: 50 (still a binomial test at p ≤ 1e-9);
 * - the latency peer detector judges a starved endpoint on pooled windows anchored at one window with
 *   minRequests (10) requests. Once an instance turns slow, Peak-EWMA sends it a tenth of its usual share
 *   or less (whenever its decaying cost dips under a busy peer's), about 4 requests/s from each client
 *   (7–17 % of usual seen on screen): a window of 10 slow
 *   answers never comes, and a pool anchored on the fault's first window (fast answers from before the
 *   fault) stays fast. With 4, the slow answers anchor their own pool within a few windows.
 *   On a quiet machine the balancer sends it nothing but its trickle (one request per 500 ms at most);
 *   starved_latency (its defaults) judges it on the answers it got since it was starved.
 */
const CLIENT_RPS = 150;
const DEMO_HEALING = { policy: 'meshmedic', peerSuccess: { minRequests: 50 }, peerLatency: { minRequests: 4 } } as const;

/** The client sidecars: two frontends, and "reports", which sends payments no traffic at all. */
const CLIENT_NAMES = ['frontend-1', 'frontend-2', 'reports'];

const TOPOLOGY = [
  { service: 'payments', zones: ['a', 'a', 'b', 'b'], medianMs: 4 },
  { service: 'catalog', zones: ['a', 'b', 'b'], medianMs: 3 },
];

function mustConfig(doc: unknown): Config {
  const v = validateConfig(doc);
  if (!v.valid) throw new Error(`demo config invalid: ${v.errors.join('; ')}`);
  return v.result;
}

export async function runDemo(opts: DemoOptions): Promise<number> {
  const log = createLogger('error');
  const instances: DemoInstance[] = [];
  const clients: Sidecar[] = [];
  let traffic: TrafficGenerator | undefined;
  let auditBase: string | undefined;
  const timers: NodeJS.Timeout[] = [];
  const records: DemoFaultRecord[] = [];
  const started = Date.now();
  const warmup: Warmup = { settleMs: SETTLE_MS, maxMs: SETTLE_MAX_MS, settled: false, doneAt: undefined };
  try {
    let seed = 1;
    for (const t of TOPOLOGY) {
      for (let i = 0; i < t.zones.length; i++) {
        const name = `${t.service}-${i + 1}`;
        const backend = await startBackend({ port: 0, controlPort: null, id: name, seed: seed++, medianMs: t.medianMs, sigma: 0.35, errorRate: 0.001, bodyBytes: 256 });
        const sidecar = await startSidecar(
          mustConfig({ admin: { listen: '127.0.0.1:0' }, outbound: { enabled: false }, inbound: { enabled: true, listen: '127.0.0.1:0', app: backend.url }, log: { level: 'error' } }),
          { log },
        );
        instances.push({ service: t.service, name, zone: t.zones[i]!, priority: 0, backend, sidecar, address: sidecar.addresses.inbound! });
      }
    }
    const services = TOPOLOGY.map((t) => ({
      name: t.service,
      endpoints: instances.filter((x) => x.service === t.service).map((x) => ({ address: x.address, locality: { region: 'local', zone: `zone-${x.zone}`, subzone: '' }, labels: { instance: x.name } })),
    }));
    // Client sidecars gossip with each other. The third one, "reports", sends no traffic to payments at
    // all: it learns of payments failures only from its peers' signed observations (quorum of 2).
    // Each client sidecar keeps a tamper-evident log of its decisions; the others witness its checkpoints.
    auditBase = mkdtempSync(join(tmpdir(), 'meshmedic-demo-audit-'));
    for (let c = 0; c < 3; c++) {
      const gossip = { enabled: true, listen: '127.0.0.1:0', join: clients.length ? [clients[0]!.addresses.gossip!] : [], health: { minQuorum: 2 } };
      const audit = { enabled: true, dir: join(auditBase, `client-${c + 1}`) };
      clients.push(
        await startSidecar(
          mustConfig({ node: { id: CLIENT_NAMES[c]!, workload: CLIENT_NAMES[c]! }, admin: { listen: '127.0.0.1:0' }, outbound: { listen: '127.0.0.1:0' }, proxy: { headersTimeoutMs: CLIENT_HEADERS_TIMEOUT_MS }, services, healing: DEMO_HEALING, gossip, audit, log: { level: 'error' } }),
          { log },
        ),
      );
    }
    traffic = new TrafficGenerator(
      clients.flatMap((c, i) => TOPOLOGY.filter((t) => i < 2 || t.service !== 'payments').map((t) => ({ url: `http://${c.addresses.outbound}`, service: t.service, rps: i < 2 ? CLIENT_RPS : CLIENT_RPS / 4 }))),
      { timeoutMs: APP_TIMEOUT_MS, maxInflight: 2000 },
    );
    traffic.start();
    const draw = () => {
      const now = Date.now();
      for (const r of records) {
        if (r.detectedAt === undefined) attributeDetection(r, clients.map((c, i) => ({ name: CLIENT_NAMES[i]!, events: c.context.mesh.eventsSince(0, 5000) })), now);
        if (r.endedAt === undefined || now - r.endedAt < 5000) r.lost = failedCount(traffic!) - r.failedBefore;
        // The balancer (Peak-EWMA) moves traffic away from a slow endpoint before any detector decides:
        // show the share of its usual traffic it still gets while the fault lasts.
        if (r.endedAt === undefined && r.rpsBefore > 0 && now - r.startedAt >= 2000) {
          r.sharePct = Math.round((100 * recentRps(clients, r.ids)) / r.rpsBefore);
          r.minSharePct = Math.min(r.minSharePct ?? 100, r.sharePct);
        }
      }
      opts.out(renderView({ now, started, instances, clients, clientNames: CLIENT_NAMES, traffic: traffic!, records, plain: opts.plain, dashboard: `http://${clients[0]!.addresses.admin}/ui/`, firstFaultS: opts.faults ? FAULT_SCHEDULE[0]!.atS : 0, warmup }) + auditView(clients[0]!, auditBase!));
    };
    const view = setInterval(draw, opts.plain ? 5000 : 1000);
    timers.push(view as unknown as NodeJS.Timeout);

    // The fault schedule's clock starts once the mesh has settled: a start-up on a loaded machine (every
    // module compiling, ten listeners opening) can slow answers enough to eject endpoints, and a fault
    // injected into an endpoint that is already out cannot show a detection.
    let faultClock = started;
    if (opts.faults) {
      const settled = await waitSettled(clients, warmup, opts.stopSignal);
      if (settled === 'stopped') return finish();
      faultClock = Date.now();
    }
    warmup.doneAt = faultClock;

    const byName = new Map(instances.map((x) => [x.name, x]));
    if (opts.faults) {
      const schedule = (cycle: number) => {
        for (const f of FAULT_SCHEDULE) {
          const at = (cycle * CYCLE_S + f.atS) * 1000;
          timers.push(setTimeout(() => {
            const rec: DemoFaultRecord = { label: f.label, targets: f.targets, ids: [], cycle, forS: f.forS, startedAt: Date.now(), endedAt: undefined, detectedAt: undefined, detectedBy: undefined, failedBefore: failedCount(traffic!), lost: 0, rpsBefore: 0, sharePct: undefined, minSharePct: undefined, outAtStart: [] };
            for (const n of f.targets) {
              const inst = byName.get(n)!;
              inst.backend.setFault(f.fault);
              rec.ids.push(`${inst.service}/${inst.address}`);
              // A target an earlier decision already took out cannot be detected again: say so if it stays undetected.
              for (const [i, c] of clients.entries()) {
                const state = c.context.mesh.snapshot().endpoints.get(`${inst.service}/${inst.address}`)?.health.state;
                if (state === 'ejected' || state === 'draining') rec.outAtStart.push(`${CLIENT_NAMES[i]}: ${n} ${state}`);
              }
            }
            rec.rpsBefore = recentRps(clients, rec.ids);
            records.push(rec);
            timers.push(setTimeout(() => {
              for (const n of f.targets) byName.get(n)!.backend.clearFault();
              rec.endedAt = Date.now();
            }, f.forS * 1000));
          }, at - (Date.now() - faultClock)));
        }
        timers.push(setTimeout(() => schedule(cycle + 1), ((cycle + 1) * CYCLE_S * 1000) - (Date.now() - faultClock)));
      };
      schedule(0);
    }

    // --duration counts from the fault schedule's start, so that --duration CYCLE_S is one whole cycle.
    const until = opts.durationS > 0 ? new Promise<void>((r) => timers.push(setTimeout(r, opts.durationS * 1000 - (Date.now() - faultClock)))) : new Promise<void>(() => {});
    await Promise.race([until, opts.stopSignal]);
    return finish();
    function finish(): number {
      draw();
      opts.out(renderSummary(records, started, Date.now(), new Map(instances.map((x) => [`${x.service}/${x.address}`, x.name])), warmup));
      return 0;
    }
  } finally {
    for (const t of timers) clearTimeout(t);
    await traffic?.stop();
    await Promise.all(clients.map((c) => c.close(500)));
    await Promise.all(instances.map((i) => i.sidecar.close(500)));
    await Promise.all(instances.map((i) => i.backend.close()));
    if (auditBase) rmSync(auditBase, { recursive: true, force: true });
  }
}

/** Every endpoint healthy at full weight on every client sidecar. */
function meshHealthy(clients: readonly Sidecar[]): boolean {
  for (const c of clients) {
    for (const ev of c.context.mesh.snapshot().endpoints.values()) {
      if (ev.health.state !== 'healthy' || ev.health.weightFactor < 1) return false;
    }
  }
  return true;
}

/**
 * Waits until the mesh has been healthy for SETTLE_MS without a break, or SETTLE_MAX_MS have passed
 * (then the faults start anyway and the screen says the mesh never settled), or the demo is stopped.
 */
async function waitSettled(clients: readonly Sidecar[], warmup: Warmup, stop: Promise<void>): Promise<'settled' | 'timeout' | 'stopped'> {
  const from = Date.now();
  let healthySince: number | undefined;
  let stopped = false;
  void stop.then(() => (stopped = true));
  for (;;) {
    await new Promise((r) => setTimeout(r, 100));
    if (stopped) return 'stopped';
    const now = Date.now();
    if (!meshHealthy(clients)) healthySince = undefined;
    else if ((healthySince ??= now) <= now - warmup.settleMs) {
      warmup.settled = true;
      return 'settled';
    }
    if (now - from >= warmup.maxMs) return 'timeout';
  }
}

/** The first client's latest signed checkpoint, as the admin API serves it (with the witnesses' cosignatures). */
function auditView(client: Sidecar, base: string): string {
  const text = auditOf(client.components)?.checkpointText();
  if (!text) return '\naudit log: no checkpoint yet\n';
  const [origin, size, root] = text.split('\n');
  const signers = text.split('\n').filter((l) => l.startsWith('\u2014 ')).map((l) => l.split(' ')[1]);
  return `\naudit checkpoint ${origin}  size ${size}  root ${root}\n  signed by ${signers.join(', ')}  (while it runs: meshmedic audit verify ${join(base, 'client-1')})\n`;
}

/** Requests per second the client sidecars sent to these endpoints over the last 2 s. */
function recentRps(clients: readonly Sidecar[], ids: readonly string[]): number {
  const now = Date.now();
  let n = 0;
  for (const c of clients) {
    for (const id of ids) {
      const ev = c.context.mesh.snapshot().endpoints.get(id);
      const w = ev ? c.context.stats.get(ev.slot) : undefined;
      if (!w) continue;
      const e = w.epochOf(now);
      for (const k of [e - 1, e - 2]) {
        if (w.windowCounts(k, counts)) for (const v of counts) n += v;
      }
    }
  }
  return n / 2;
}
const counts = [0, 0, 0, 0, 0];

function failedCount(t: TrafficGenerator): number {
  let n = 0;
  for (const c of t.counters.values()) n += c.failed;
  return n;
}
