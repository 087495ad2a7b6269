// Chaos scenarios on the lab mesh, each returning its figures (targets of issue 14 alongside).
import { REGIONS, sleep, successRate, until, type Mesh, type Sample } from './mesh.js';

/** First sample from which `n` consecutive samples satisfy `ok`; undefined if none. */
function firstSustained(xs: Sample[], n: number, ok: (s: Sample) => boolean): Sample | undefined {
  for (let i = 0; i + n <= xs.length; i++) if (xs.slice(i, i + n).every(ok)) return xs[i];
  return undefined;
}

export async function warmUp(mesh: Mesh): Promise<void> {
  const since = Date.now();
  await until(() => REGIONS.every((r) => {
    const s = mesh.samples(r, since);
    return s.length >= 4 && s.slice(-4).every((x) => x.ok > 0 && successRate(x) >= 0.99 && (x.by[r] ?? 0) >= 0.95 * x.ok);
  }), 60_000, 'every client served by its own region');
}

export interface OutageResult {
  failoverMs: number | null;
  failbackMs: number | null;
  homeShareAfter: number;
  otherRegionsMinSuccess: number;
  failedRequestsRegionA: number;
}

/** Every backend of region a killed with -9; later restarted. */
export async function regionOutage(mesh: Mesh, holdMs: number, afterMs: number): Promise<OutageResult> {
  const victims = mesh.hosts.filter((h) => h.region === 'a');
  const t0 = Date.now();
  for (const h of victims) await mesh.lab.kill(mesh.backends.get(h.name)!);
  const tDown = Date.now();
  await sleep(holdMs);
  const during = mesh.samples('a', tDown);
  const settled = firstSustained(during, 4, (s) => successRate(s) >= 0.99);
  const others = REGIONS.filter((r) => r !== 'a').flatMap((r) => mesh.samples(r, t0));
  for (const h of victims) await mesh.startBackend(h);
  const tUp = Date.now();
  await sleep(afterMs);
  const after = mesh.samples('a', tUp);
  const home = firstSustained(after, 4, (s) => s.ok > 0 && (s.by.a ?? 0) >= 0.95 * s.ok);
  const tail = after.slice(-4);
  const tailOk = tail.reduce((a, s) => a + s.ok, 0);
  return {
    failoverMs: settled ? settled.t - 250 - tDown : null,
    failbackMs: home ? home.t - 250 - tUp : null,
    homeShareAfter: tailOk ? tail.reduce((a, s) => a + (s.by.a ?? 0), 0) / tailOk : 0,
    otherRegionsMinSuccess: Math.min(...others.map(successRate)),
    failedRequestsRegionA: mesh.samples('a', t0).reduce((a, s) => a + s.fail, 0),
  };
}

export interface PartitionResult {
  falseEjections: number;
  everythingEjected: boolean;
  minSuccess: number;
  convergenceMs: number | null;
}

/**
 * Regions a and c cut off from each other (both alive), then healed. Nobody may eject an endpoint for
 * being unreachable by gossip; membership must converge after the heal.
 */
export async function partition(mesh: Mesh, holdMs: number, a = 'a', c = 'c'): Promise<PartitionResult> {
  const A = mesh.hosts.filter((h) => h.region === a);
  const C = mesh.hosts.filter((h) => h.region === c);
  const t0 = Date.now();
  mesh.lab.partition(A, C);
  await sleep(holdMs);
  const views = REGIONS.flatMap((r) => mesh.views(r, t0));
  const falseEjections = new Set(views.flatMap((v) => v.endpoints.filter((e) => e.state !== 'healthy').map((e) => e.id))).size;
  const everythingEjected = views.some((v) => v.endpoints.every((e) => e.state !== 'healthy'));
  const minSuccess = Math.min(...REGIONS.flatMap((r) => mesh.samples(r, t0)).map(successRate));
  mesh.lab.heal();
  const tHeal = Date.now();
  let convergenceMs: number | null = null;
  try {
    convergenceMs = await until(() => REGIONS.every((r) => {
      const v = mesh.views(r, tHeal);
      return v.length > 0 && v[v.length - 1]!.alive === mesh.hosts.length;
    }), 15_000, 'membership to converge');
  } catch {
    convergenceMs = null;
  }
  return { falseEjections, everythingEjected, minSuccess, convergenceMs };
}
