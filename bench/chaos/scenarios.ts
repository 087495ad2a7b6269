// Chaos scenarios on the lab mesh, each returning its figures (the targets of issue 14 are in run.ts).
// Every view of every sidecar's admin API during a scenario is checked: an endpoint ejected by a sidecar
// that could reach it (its backend alive) is a false ejection, whatever the reason the sidecar gives.
import { randomBytes } from 'node:crypto';
import type { Host } from './netlab.js';
import { KEYS_RELOAD_MS, REGIONS, sleep, successRate, until, type EndpointView, type Mesh, type Sample } from './mesh.js';

/** First sample from which `n` consecutive samples satisfy `ok`; undefined if none. */
function firstSustained(xs: Sample[], n: number, ok: (s: Sample) => boolean): Sample | undefined {
  for (let i = 0; i + n <= xs.length; i++) if (xs.slice(i, i + n).every(ok)) return xs[i];
  return undefined;
}

const SAMPLE_MS = 250;
/** How long a scenario waits for membership to converge before reporting "not converged" (null). */
export const CONVERGE_WITHIN_MS = 15_000;
const hostsOf = (mesh: Mesh, region: string) => mesh.hosts.filter((h) => h.region === region);

/** Every client served by its own region with ≥ 99 % success for 4 samples in a row, and no endpoint ejected anywhere. */
export async function warmUp(mesh: Mesh, timeoutMs = 90_000): Promise<number> {
  const since = Date.now();
  try {
    return await warmed(mesh, since, timeoutMs);
  } catch (err) {
    // Say what was still wrong: the latest view of each sidecar that was not clean, and each client's last sample.
    const dirty = [...latestViews(mesh, since).values()].filter((v) => v.alive !== mesh.hosts.length || v.endpoints.some((e) => e.state !== 'healthy'));
    const last = REGIONS.map((r) => JSON.stringify(mesh.samples(r, since).slice(-1)[0] ?? null));
    throw new Error(`${(err as Error).message}; still: ${dirty.map((v) => `${v.host.name} alive=${v.alive} ${JSON.stringify(v.endpoints.filter((e) => e.state !== 'healthy'))}`).join('; ')}; clients: ${last.join(' ')}`);
  }
}

function warmed(mesh: Mesh, since: number, timeoutMs: number): Promise<number> {
  return until(() => {
    const clientsHome = REGIONS.every((r) => {
      const s = mesh.samples(r, since);
      return s.length >= 4 && s.slice(-4).every((x) => x.ok > 0 && successRate(x) >= 0.99 && (x.by[r] ?? 0) >= 0.95 * x.ok);
    });
    if (!clientsHome) return false;
    const latest = latestViews(mesh, since);
    return latest.size === mesh.hosts.length && [...latest.values()].every((v) => v.alive === mesh.hosts.length && v.endpoints.every((e) => e.state === 'healthy'));
  }, timeoutMs, 'every client served by its own region, every sidecar seeing 9 members and no ejection');
}

function latestViews(mesh: Mesh, since: number) {
  const latest = new Map<string, ReturnType<Mesh['views']>[number]>();
  for (const v of mesh.views(since)) latest.set(v.host.name, v);
  return latest;
}

/** Wait until every sidecar reported after `since` and its latest view counts all members alive. */
async function converged(mesh: Mesh, since: number, timeoutMs: number): Promise<number | null> {
  try {
    await until(() => {
      const latest = latestViews(mesh, since);
      return latest.size === mesh.hosts.length && [...latest.values()].every((v) => v.alive === mesh.hosts.length);
    }, timeoutMs, 'membership to converge');
  } catch {
    return null;
  }
  // The instant is the first poll round after `since` in which every sidecar saw all members (1 s polls).
  const rounds = mesh.views(since);
  const ok = new Map<string, number>();
  for (const v of rounds) {
    if (v.alive === mesh.hosts.length) { if (!ok.has(v.host.name)) ok.set(v.host.name, v.t); } else ok.delete(v.host.name);
  }
  return Math.max(...ok.values()) - since;
}

export interface Ejection { observer: string; endpoint: string; state: string; reason?: string; source?: string }

export interface FaultFigures {
  /** Distinct (observer, endpoint, since) ejections of endpoints the observer could reach, alive (not for latency). */
  falseEjections: Ejection[];
  /** The same, with a latency reason: the backend was measured slower than its peers (CPU contention in the lab). */
  latencyEjections: Ejection[];
  /** Ejections of endpoints the observer could not reach (allowed: traffic or probes said so). */
  justifiedEjections: number;
  /** De-weighted (state degraded) reachable endpoints: not ejections, reported apart. */
  falseDegraded: number;
  everythingEjected: boolean;
  /** Lowest client success per 250 ms sample during the fault. */
  minSuccess: number;
  /** Requests failed at all clients during the fault and the settle after it. */
  failedRequests: number;
  convergenceMs: number | null;
}

/**
 * Judge the views from `t0` to `tEnd`: `blocked(observer, endpointHost)` says whether the fault
 * stopped the observer reaching that backend at time t (TCP needs both directions, so a one-way drop
 * blocks the pair); `dead(host)` marks backends that were down on purpose.
 */
function judge(mesh: Mesh, t0: number, tEnd: number, blocked: (o: Host, e: Host) => boolean, dead: (e: Host) => boolean = () => false) {
  const seen = new Map<string, Ejection>();
  let justified = 0;
  const degraded = new Set<string>();
  let everythingEjected = false;
  for (const v of mesh.views(t0)) {
    if (v.t > tEnd) break;
    if (v.endpoints.length > 0 && v.endpoints.every((e) => e.state === 'ejected' || e.state === 'draining')) everythingEjected = true;
    for (const e of v.endpoints as EndpointView[]) {
      if (e.state === 'healthy' || e.state === 'probation') continue;
      const eh = mesh.hostOfEndpoint(e.id);
      if (!eh || dead(eh)) continue;
      const key = `${v.host.name}|${e.id}|${e.since ?? ''}`;
      if (blocked(v.host, eh)) {
        if (!seen.has(key)) justified++;
        seen.set(key, { observer: v.host.name, endpoint: eh.name, state: 'justified' });
        continue;
      }
      if (seen.has(key)) continue;
      if (e.state === 'degraded') { degraded.add(key); continue; }
      seen.set(key, { observer: v.host.name, endpoint: eh.name, state: e.state, reason: e.reason, source: e.source });
    }
  }
  const unjustified = [...seen.values()].filter((x) => x.state !== 'justified');
  // A latency ejection says the backend answered slower than its peers for windows on end: on a shared
  // lab machine that is CPU contention, not the network fault. Kept apart, never dropped.
  const isLatency = (x: Ejection) => /latency/.test(x.reason ?? '');
  return { falseEjections: unjustified.filter((x) => !isLatency(x)), latencyEjections: unjustified.filter(isLatency), justifiedEjections: justified, falseDegraded: degraded.size, everythingEjected };
}

/**
 * A network fault applied at t0, held, then healed; `blocked` tells which observer → backend pairs the
 * fault cut. After the heal the mesh gets `settleMs` to converge; ejections are judged until then.
 */
async function networkFault(mesh: Mesh, o: { apply: () => void | Promise<void>; holdMs: number; blocked: (o: Host, e: Host) => boolean; settleMs?: number; convergeWithinMs?: number }): Promise<FaultFigures> {
  const t0 = Date.now();
  await o.apply();
  // `apply` may itself take the hold time (flapping): sleep only what is left.
  const left = o.holdMs - (Date.now() - t0);
  if (left > 0) await sleep(left);
  const faultSamples = REGIONS.flatMap((r) => mesh.samples(r, t0));
  mesh.lab.heal();
  const tHeal = Date.now();
  const convergenceMs = await converged(mesh, tHeal, o.convergeWithinMs ?? CONVERGE_WITHIN_MS);
  await sleep(Math.max(0, (o.settleMs ?? 3000) - (Date.now() - tHeal)));
  const tEnd = Date.now();
  // A pair cut during the fault may keep its ejection past the heal (until re-admission): still justified.
  const j = judge(mesh, t0, tEnd, o.blocked);
  const after = REGIONS.flatMap((r) => mesh.samples(r, t0));
  return {
    ...j,
    minSuccess: Math.min(...faultSamples.map(successRate)),
    failedRequests: after.filter((s) => s.t <= tEnd).reduce((a, s) => a + s.fail, 0),
    convergenceMs,
  };
}

const inRegion = (r: string) => (h: Host) => h.region === r;
const crosses = (x: (h: Host) => boolean, y: (h: Host) => boolean) => (o: Host, e: Host) => (x(o) && y(e)) || (y(o) && x(e));

/** Regions a and c cut off from each other (both alive), then healed. */
export function partition(mesh: Mesh, holdMs: number, convergeWithinMs?: number): Promise<FaultFigures> {
  return networkFault(mesh, { apply: () => mesh.lab.partition(hostsOf(mesh, 'a'), hostsOf(mesh, 'c')), holdMs, blocked: crosses(inRegion('a'), inRegion('c')), convergeWithinMs });
}

/** One host (b2: a backend some client uses, not a seed) cut off from every other host. */
export function minority(mesh: Mesh, holdMs: number): Promise<FaultFigures> {
  const lone = mesh.lab.host('b2');
  const rest = mesh.hosts.filter((h) => h !== lone);
  return networkFault(mesh, { apply: () => mesh.lab.partition([lone], rest), holdMs, blocked: (o, e) => (o === lone) !== (e === lone) });
}

/** Asymmetric link: region a → b works, b → a is dropped (gossip sees one-way reachability; TCP between them fails). */
export function asymmetric(mesh: Mesh, holdMs: number): Promise<FaultFigures> {
  return networkFault(mesh, { apply: () => mesh.lab.partition(hostsOf(mesh, 'b'), hostsOf(mesh, 'a'), true), holdMs, blocked: crosses(inRegion('a'), inRegion('b')) });
}

/** `pct` % random loss on every packet every host puts on the bridge. Nothing is unreachable. */
export function loss(mesh: Mesh, pct: number, holdMs: number): Promise<FaultFigures> {
  return networkFault(mesh, { apply: () => mesh.lab.loss(mesh.hosts, pct), holdMs, blocked: () => false });
}

/** The a ↔ c link flaps: down 2 s, up 3 s, `cycles` times. */
export function flapping(mesh: Mesh, cycles: number): Promise<FaultFigures> {
  const A = hostsOf(mesh, 'a');
  const C = hostsOf(mesh, 'c');
  return networkFault(mesh, {
    apply: async () => {
      for (let i = 0; i < cycles; i++) {
        mesh.lab.partition(A, C);
        await sleep(2000);
        mesh.lab.heal([...A, ...C]);
        await sleep(3000);
      }
    },
    holdMs: cycles * 5000,
    blocked: crosses(inRegion('a'), inRegion('c')),
  });
}

export interface OutageResult {
  failoverMs: number | null;
  failbackMs: number | null;
  homeShareAfter: number;
  otherRegionsMinSuccess: number;
  failedRequestsRegionA: number;
  falseEjections: Ejection[];
  latencyEjections: Ejection[];
}

/**
 * Every backend of region a killed with -9, held down `holdMs`, then restarted; the fail-back is waited
 * for (a's client served at home for 4 samples in a row) up to `afterMs`, then 2 s more are watched.
 */
export async function regionOutage(mesh: Mesh, holdMs: number, afterMs: number): Promise<OutageResult> {
  const victims = hostsOf(mesh, 'a');
  const t0 = Date.now();
  for (const h of victims) await mesh.lab.kill(mesh.backends.get(h.name)!);
  const tDown = Date.now();
  await sleep(holdMs);
  const during = mesh.samples('a', tDown);
  const settled = firstSustained(during, 4, (s) => successRate(s) >= 0.99);
  const others = REGIONS.filter((r) => r !== 'a').flatMap((r) => mesh.samples(r, t0));
  await Promise.all(victims.map((h) => mesh.startBackend(h)));
  const tUp = Date.now();
  const atHome = (s: Sample) => s.ok > 0 && (s.by.a ?? 0) >= 0.95 * s.ok;
  await until(() => firstSustained(mesh.samples('a', tUp), 4, atHome) !== undefined, afterMs, 'fail-back').catch(() => {});
  // Watch 8 more samples: a client that went home must stay there.
  const tWatch = Date.now();
  await until(() => mesh.samples('a', tWatch).length >= 8, 10_000, '8 more samples of a\'s client').catch(() => {});
  const after = mesh.samples('a', tUp);
  const home = firstSustained(after, 4, atHome);
  const tail = after.slice(-4);
  const tailOk = tail.reduce((a, s) => a + s.ok, 0);
  // Ejections of a's backends while they were down are right; anything else ejected is not.
  const j = judge(mesh, t0, Date.now(), () => false, (e) => e.region === 'a');
  return {
    // A sample covers the 250 ms before its timestamp: the sustained stretch began at its start.
    failoverMs: settled ? Math.max(0, settled.t - SAMPLE_MS - tDown) : null,
    failbackMs: home ? Math.max(0, home.t - SAMPLE_MS - tUp) : null,
    homeShareAfter: tailOk ? tail.reduce((a, s) => a + (s.by.a ?? 0), 0) / tailOk : 0,
    otherRegionsMinSuccess: Math.min(...others.map(successRate)),
    failedRequestsRegionA: mesh.samples('a', t0).reduce((a, s) => a + s.fail, 0),
    falseEjections: j.falseEjections,
    latencyEjections: j.latencyEjections,
  };
}

export interface RestartResult {
  /** From spawning the sidecar to the end of the first 250 ms sample in which its client was served. */
  servingMs: number | null;
  /** From spawning to "meshmedic ready" on stdout. */
  readyMs: number;
  /** From spawning until every sidecar counts all 9 members alive. */
  convergenceMs: number | null;
  /** Ejections seen anywhere after the restart (every backend is alive and reachable). */
  staleEjections: Ejection[];
  latencyEjections: Ejection[];
}

/** The sidecar of a1 (its region's client sends through it) killed with -9, left dead `downMs`, restarted. */
export async function sidecarRestart(mesh: Mesh, downMs: number, settleMs: number, waitMs = CONVERGE_WITHIN_MS): Promise<RestartResult> {
  const h = mesh.lab.host('a1');
  await mesh.lab.kill(mesh.sidecars.get(h.name)!);
  await sleep(downMs);
  const { spawnedAt, readyAt } = await mesh.startSidecar(h);
  let servingMs: number | null = null;
  try {
    await until(() => mesh.samples('a', spawnedAt).some((s) => s.ok > 0), waitMs, 'the client to be served again');
    servingMs = mesh.samples('a', spawnedAt).find((s) => s.ok > 0)!.t - spawnedAt;
  } catch {
    servingMs = null;
  }
  const convergenceMs = await converged(mesh, spawnedAt, waitMs);
  await sleep(Math.max(0, settleMs - (Date.now() - spawnedAt)));
  const j = judge(mesh, spawnedAt, Date.now(), () => false);
  return { servingMs, readyMs: readyAt - spawnedAt, convergenceMs, staleEjections: j.falseEjections, latencyEjections: j.latencyEjections };
}

export interface RotationResult {
  minSuccess: number;
  failedRequests: number;
  /** Fewest members any sidecar counted alive during the rotation. */
  minAlive: number;
  falseEjections: Ejection[];
  latencyEjections: Ejection[];
  durationMs: number;
}

/**
 * Gossip key rotation under traffic, the documented three steps: add the new key as secondary
 * everywhere, make it primary, drop the old one; each step waits for every sidecar to re-read its file.
 */
export async function keyRotation(mesh: Mesh): Promise<RotationResult> {
  const t0 = Date.now();
  const old = mesh.keys[0]!;
  const fresh = randomBytes(32).toString('base64');
  const step = KEYS_RELOAD_MS * 3;
  mesh.writeKeys([old, fresh]);
  await sleep(step);
  mesh.writeKeys([fresh, old]);
  await sleep(step);
  mesh.writeKeys([fresh]);
  await sleep(step * 2);
  const tEnd = Date.now();
  const samples = REGIONS.flatMap((r) => mesh.samples(r, t0));
  const views = mesh.views(t0);
  return {
    minSuccess: Math.min(...samples.map(successRate)),
    failedRequests: samples.reduce((a, s) => a + s.fail, 0),
    minAlive: Math.min(...views.map((v) => v.alive)),
    ...pick(judge(mesh, t0, tEnd, () => false)),
    durationMs: tEnd - t0,
  };
}

const pick = (j: ReturnType<typeof judge>) => ({ falseEjections: j.falseEjections, latencyEjections: j.latencyEjections });

/** Gossip UDP bytes sent per host per second over the last `windowMs` (from every sidecar's /v1/members). */
export function gossipBytesPerHost(mesh: Mesh, windowMs: number): { mean: number; max: number } {
  const since = Date.now() - windowMs;
  const per = new Map<string, { t: number; b: number }[]>();
  for (const v of mesh.views(since)) {
    if (v.gossipBytesSent === null) continue;
    const xs = per.get(v.host.name) ?? [];
    xs.push({ t: v.t, b: v.gossipBytesSent });
    per.set(v.host.name, xs);
  }
  const rates = [...per.values()].filter((xs) => xs.length >= 2 && xs[xs.length - 1]!.b >= xs[0]!.b).map((xs) => ((xs[xs.length - 1]!.b - xs[0]!.b) * 1000) / (xs[xs.length - 1]!.t - xs[0]!.t));
  return { mean: rates.length ? rates.reduce((a, b) => a + b, 0) / rates.length : NaN, max: rates.length ? Math.max(...rates) : NaN };
}

export interface WanFigures extends FaultFigures {
  oneWayMs: number;
  /** Median of 5 HTTP requests from a1 to a backend in its own region and in region c (through the relay), ms. */
  httpSameRegionMs: number;
  httpCrossRegionMs: number;
}

/** Median wall time of `n` HTTP GETs from `from`'s namespace to `to`'s backend (curl, one connection each). */
function httpMs(mesh: Mesh, from: Host, to: Host, n = 5): number {
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    const out = mesh.lab.nsExec(from.ns, ['curl', '-s', '-o', '/dev/null', '--max-time', '5', '-w', '%{time_total}', `http://${to.ip}:8080/`]);
    xs.push(Number(out) * 1000);
  }
  return xs.sort((a, b) => a - b)[Math.floor(n / 2)]!;
}

/**
 * A mesh started with the WAN between regions (MeshOptions.wanDelayMs) held for `holdMs` with nothing
 * failing: the delay is checked on real requests, and every view judged as for a fault (nothing may be
 * ejected: the delay is not a failure).
 */
export async function wanSteady(mesh: Mesh, oneWayMs: number, holdMs: number): Promise<WanFigures> {
  const a1 = mesh.lab.host('a1');
  const httpSameRegionMs = httpMs(mesh, a1, mesh.lab.host('a2'));
  const httpCrossRegionMs = httpMs(mesh, a1, mesh.lab.host('c1'));
  const f = await networkFault(mesh, { apply: () => {}, holdMs, blocked: () => false });
  return { ...f, oneWayMs, httpSameRegionMs, httpCrossRegionMs };
}

/** Sum over `hosts` of meshmedic_gossip_observations_total by result. */
function observationResults(mesh: Mesh, hosts: readonly Host[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const h of hosts) {
    for (const m of mesh.metrics(h).matchAll(/^meshmedic_gossip_observations_total\{result="([a-z_]+)"\} (\d+)/gm)) out[m[1]!] = (out[m[1]!] ?? 0) + Number(m[2]);
  }
  return out;
}

const diff = (a: Record<string, number>, b: Record<string, number>) => Object.fromEntries(Object.keys(b).map((k) => [k, b[k]! - (a[k] ?? 0)]).filter(([, v]) => v !== 0));

export interface DeadBackendFigures {
  /** From killing backend c2 until every sidecar held it ejected (c1 alone sends it traffic), ms; null if not within the wait. */
  meshWideEjectionMs: number | null;
  /** meshmedic_gossip_observations_total deltas summed over every sidecar but c1, by result. */
  observationsAtPeers: Record<string, number>;
}

export interface SkewResult {
  offsetMs: number;
  /** Backend c2 killed with every clock right, then with c1's sidecar `offsetMs` off. */
  baseline: DeadBackendFigures;
  skewed: DeadBackendFigures;
  /** From the skewed sidecar's spawn until every sidecar counted 9 members alive, ms. */
  convergenceMs: number | null;
  falseEjections: Ejection[];
  latencyEjections: Ejection[];
}

/** Backend c2 killed (c's client, through c1, is its only traffic), then restarted once the mesh had its say. */
async function deadBackend(mesh: Mesh, waitMs: number): Promise<DeadBackendFigures> {
  const c1 = mesh.lab.host('c1');
  const c2 = mesh.lab.host('c2');
  const peers = mesh.hosts.filter((h) => h !== c1);
  const before = observationResults(mesh, peers);
  await mesh.lab.kill(mesh.backends.get(c2.name)!);
  const tKill = Date.now();
  let meshWideEjectionMs: number | null = null;
  const ejectedEverywhere = () => {
    const latest = latestViews(mesh, tKill);
    return latest.size === mesh.hosts.length && [...latest.values()].every((v) => v.endpoints.some((e) => e.state === 'ejected' && mesh.hostOfEndpoint(e.id) === c2));
  };
  try {
    await until(ejectedEverywhere, waitMs, 'every sidecar to eject c2');
    meshWideEjectionMs = Date.now() - tKill;
  } catch {
    meshWideEjectionMs = null;
  }
  const observationsAtPeers = diff(before, observationResults(mesh, peers));
  await mesh.startBackend(c2);
  return { meshWideEjectionMs, observationsAtPeers };
}

/**
 * Clock skew: backend c2 dies with every clock right (baseline); then c1's sidecar (the only one sending c2
 * traffic) is restarted with its wall clock `offsetMs` off and c2 dies again. Reported: whether the mesh
 * still learns of c2 from c1, what the peers did with c1's signed observations, and membership with the
 * skewed member. c1's sidecar is restarted with the right clock at the end.
 */
export async function clockSkew(mesh: Mesh, offsetMs: number, waitMs = 15_000): Promise<SkewResult> {
  const c1 = mesh.lab.host('c1');
  const baseline = await deadBackend(mesh, waitMs);
  await warmUp(mesh);
  const t0 = Date.now();
  await mesh.lab.kill(mesh.sidecars.get(c1.name)!);
  const { spawnedAt } = await mesh.startSidecar(c1, { clockOffsetMs: offsetMs });
  const convergenceMs = await converged(mesh, spawnedAt, CONVERGE_WITHIN_MS);
  await warmUp(mesh);
  const skewed = await deadBackend(mesh, waitMs);
  await warmUp(mesh);
  const j = judge(mesh, t0, Date.now(), () => false, (e) => e === mesh.lab.host('c2'));
  await mesh.lab.kill(mesh.sidecars.get(c1.name)!);
  await mesh.startSidecar(c1);
  return { offsetMs, baseline, skewed, convergenceMs, ...pick(j) };
}
