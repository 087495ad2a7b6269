// A small, fast HTTP/1.1 backend that realizes the scenario catalogue's faults (src/sim/faults.ts: crash,
// black hole, errors, latency, flapping; timed or from now on) and its endpoint model (lognormal latency
// with a tail, background errors, a capacity), for the benchmarks, the live tests and the demo.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { MeshmedicError, type Validated } from '../core/errors.js';
import { seededRandom } from '../core/random.js';
import { effectAt, newEffect, nextChangeAfter, parseTimedFault, type TimedFault } from '../sim/faults.js';

export { seededRandom };

/** The faults a backend is given: the catalogue's vocabulary (src/sim/faults.ts), timed from t0. */
export interface FaultSchedule {
  /** Epoch ms the faults' startMs/endMs count from. */
  readonly t0: number;
  readonly faults: readonly TimedFault[];
}

/**
 * Validate what POST /__fault (or setFault) receives: one fault (`{"kind":"crash"}`, active from now on
 * unless it has startMs/endMs), or `{"faults":[…], "t0": EPOCH_MS}` (t0 defaults to now; `{"faults":[]}`
 * clears). Collects every problem, each naming its path.
 */
export function parseFault(input: unknown, now: number = Date.now()): Validated<FaultSchedule> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return { valid: false, errors: ['fault: expected a JSON object such as {"kind":"crash"} or {"faults":[…],"t0":…}'] };
  }
  const src = input as Record<string, unknown>;
  if (!('faults' in src)) {
    const one = parseTimedFault(src);
    return one.valid ? { valid: true, result: Object.freeze({ t0: now, faults: Object.freeze([one.result]) }) } : one;
  }
  const errors: string[] = [];
  for (const k of Object.keys(src)) if (k !== 'faults' && k !== 't0') errors.push(`fault.${k}: unknown key (expected faults and t0)`);
  let t0 = now;
  if ('t0' in src) {
    if (typeof src.t0 !== 'number' || !Number.isFinite(src.t0) || src.t0 < 0) errors.push(`fault.t0: got ${JSON.stringify(src.t0)}, expected epoch ms`);
    else t0 = src.t0;
  }
  const faults: TimedFault[] = [];
  if (!Array.isArray(src.faults)) errors.push('fault.faults: expected an array');
  else if (src.faults.length > 64) errors.push(`fault.faults: ${src.faults.length} faults, at most 64`);
  else src.faults.forEach((f, i) => {
    const v = parseTimedFault(f, `fault.faults[${i}]`);
    if (v.valid) faults.push(v.result); else errors.push(...v.errors);
  });
  if (errors.length > 0) return { valid: false, errors };
  return { valid: true, result: Object.freeze({ t0, faults: Object.freeze(faults) }) };
}

const NO_FAULT: FaultSchedule = Object.freeze({ t0: 0, faults: Object.freeze([]) });

export interface BackendOptions {
  host?: string;
  /** Data port (0 = any free port). */
  port?: number;
  /** Control server port (0 = any free port, null = no control server: use setFault()). */
  controlPort?: number | null;
  /** Sent in the `x-backend` header of every answer; default `HOST:PORT`. */
  id?: string;
  seed?: number;
  /** Baseline latency: lognormal with this median (0 = answer at once) and shape sigma. */
  medianMs?: number;
  sigma?: number;
  /**
   * Common random numbers for a benchmark that drives several copies of one cluster with the same
   * schedule: when set, a request carrying `x-load-seq: K` (LOAD_SEQ_HEADER) takes its baseline latency's
   * normal draw from a hash of (latencySeed, K) instead of this backend's own random sequence, so request K
   * of every copy draws the same value whichever endpoint its balancer chose, and the copies' latencies
   * differ only by what the systems in front of them did. Requests without the header use the sequence.
   */
  latencySeed?: number;
  /** Background error rate (500s) when no fault is set: the noise scenario. */
  errorRate?: number;
  /** Heavy tail: this share of answers is further slowed by a Pareto(paretoAlpha) factor ≥ 1. */
  tail?: { probability: number; paretoAlpha: number };
  /** Requests per second served before queueing (0 = unlimited): latency × 1 / (1 − ρ), ρ from the
   *  arrival rate over the last second (the simulator's overload model). */
  capacityRps?: number;
  /** Size of the fixed response body. */
  bodyBytes?: number;
  /** Answer only once the whole request body has arrived, as an upload handler does (default: answer
   *  on the request head and let node:http discard the body). */
  readBody?: boolean;
  /** Requests on this path are health checks: answered per the fault, but kept out of the request log. */
  healthPath?: string;
  /** How many arrivals the request log keeps (a ring). */
  logCapacity?: number;
  fault?: unknown;
  clock?: Clock;
}

export interface BackendStats {
  id: string;
  port: number;
  listening: boolean;
  fault: FaultSchedule;
  requests: number;
  errors: number;
  held: number;
  inflight: number;
  healthChecks: number;
  byStatus: Record<string, number>;
}

/** Arrivals of ordinary (non-health-check) requests: epoch ms and the status chosen (0 = held, never answered). */
export interface RequestLog {
  id: string;
  now: number;
  /** Arrivals older than the ring's capacity that were overwritten. */
  dropped: number;
  t: number[];
  s: number[];
}

export interface Backend {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  /** Control server port, or 0 when there is none. */
  readonly controlPort: number;
  readonly url: string;
  fault(): FaultSchedule;
  /** Set the faults (as for POST /__fault); throws with every problem named when it is invalid. */
  setFault(f: unknown): FaultSchedule;
  /** Remove every fault. */
  clearFault(): void;
  stats(): BackendStats;
  log(sinceMs?: number): RequestLog;
  reset(): void;
  close(): Promise<void>;
}

const TEXT = 'text/plain';

/** The request header naming a request's index in its load schedule (see BackendOptions.latencySeed). */
export const LOAD_SEQ_HEADER = 'x-load-seq';

/** A uniform draw in (0, 1) from two integers: an avalanche hash (murmur3's finalizer) of both. */
export function hashedUnit(a: number, b: number): number {
  let h = (Math.imul(a | 0, 0x9e3779b1) ^ Math.imul((b | 0) + 0x632be5ab, 0x85ebca6b)) >>> 0;
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return ((h >>> 0) + 0.5) / 4294967296;
}

/** A standard normal draw determined by (seed, k): Box-Muller over two hashed uniforms. */
export function hashedNormal(seed: number, k: number): number {
  const u = hashedUnit(seed, 2 * k), v = hashedUnit(seed, 2 * k + 1);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

export async function startBackend(opts: BackendOptions = {}): Promise<Backend> {
  const host = opts.host ?? '127.0.0.1';
  const clock = opts.clock ?? systemClock;
  const rnd = seededRandom(opts.seed ?? 1);
  const medianMs = Math.max(0, opts.medianMs ?? 0);
  const sigma = Math.max(0, opts.sigma ?? 0);
  const errorRate = Math.min(1, Math.max(0, opts.errorRate ?? 0));
  const healthPath = opts.healthPath ?? '/healthz';
  const cap = Math.max(16, opts.logCapacity ?? 1 << 16);
  const logT = new Float64Array(cap);
  const logS = new Uint16Array(cap);
  let logN = 0; // total arrivals ever logged (index = logN % cap)

  let fault: FaultSchedule = NO_FAULT;
  let faultTimer: TimerHandle | undefined;
  const effect = newEffect();
  const tail = opts.tail;
  const capacityRps = Math.max(0, opts.capacityRps ?? 0);
  let decayedArrivals = 0, lastArrivalAt = 0;
  let listening = false;
  let requests = 0, errors = 0, healthChecks = 0, inflight = 0;
  const byStatus = new Map<number, number>();
  const sockets = new Set<Socket>();
  const held = new Set<http.ServerResponse>();
  let spareNormal = NaN;

  const body = Buffer.alloc(Math.max(0, opts.bodyBytes ?? 128), 'x');
  const readBody = opts.readBody === true;
  const errBody = Buffer.from('injected error\n');
  let okHeaders: string[] = [];
  let errHeaders: string[] = [];
  let id = opts.id ?? '';

  const normal = (): number => {
    // Box-Muller, keeping the second value for the next call.
    if (!Number.isNaN(spareNormal)) { const z = spareNormal; spareNormal = NaN; return z; }
    let u = rnd();
    while (u <= 1e-12) u = rnd();
    const r = Math.sqrt(-2 * Math.log(u)), th = 2 * Math.PI * rnd();
    spareNormal = r * Math.sin(th);
    return r * Math.cos(th);
  };
  const latencySeed = opts.latencySeed;
  /** The baseline's normal draw: shared by request index when the benchmark asks for it, else our own. */
  const draw = (req: http.IncomingMessage): number => {
    if (latencySeed === undefined) return normal();
    // Read from rawHeaders: req.headers would build a headers object per request just for this.
    const raw = req.rawHeaders;
    let n = NaN;
    for (let h = 0; h < raw.length; h += 2) {
      const name = raw[h];
      if (name === LOAD_SEQ_HEADER || (name.length === LOAD_SEQ_HEADER.length && name.toLowerCase() === LOAD_SEQ_HEADER)) { n = Number(raw[h + 1]); break; }
    }
    return Number.isInteger(n) && n >= 0 ? hashedNormal(latencySeed, n) : normal();
  };
  const baseline = (req: http.IncomingMessage): number => (medianMs > 0 ? (sigma > 0 ? medianMs * Math.exp(sigma * draw(req)) : medianMs) : 0);

  const count = (status: number): void => {
    byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
    if (status >= 500) errors++;
  };
  const record = (status: number): void => {
    const i = logN % cap;
    logT[i] = clock.now();
    logS[i] = status;
    logN++;
  };

  const send = (res: http.ServerResponse, status: number): void => {
    inflight--;
    if (res.destroyed) return;
    if (status === 200) { res.writeHead(200, okHeaders); res.end(body); }
    else { res.writeHead(status, errHeaders); res.end(errBody); }
  };

  const server = http.createServer((req, res) => {
    const health = req.url === healthPath;
    if (health) healthChecks++; else requests++;
    let status = 200;
    let delay = baseline(req);
    if (tail && tail.probability > 0 && rnd() < tail.probability) delay *= Math.pow(1 - rnd(), -1 / tail.paretoAlpha);
    if (capacityRps > 0 && !health) {
      const now = clock.now();
      decayedArrivals = decayedArrivals * Math.exp(-(now - lastArrivalAt) / 1000) + 1;
      lastArrivalAt = now;
      delay /= 1 - Math.min(0.95, decayedArrivals / capacityRps);
    }
    if (fault.faults.length > 0) {
      // A refusing endpoint has its listener closed (see applyDown): what reaches here is answered.
      const e = effectAt(fault.faults, clock.now() - fault.t0, effect);
      if (e.down === 2) status = 0;
      else {
        delay = delay * e.latencyFactor + e.latencyAddMs;
        if (e.errorFraction > 0 && rnd() < e.errorFraction) status = e.status;
      }
    }
    if (status === 200 && errorRate > 0 && !health && rnd() < errorRate) status = 500;
    if (!health) record(status);
    if (status === 0) {
      // Black hole: the request was read, and nothing will ever be written back.
      held.add(res);
      res.on('close', () => held.delete(res));
      return;
    }
    count(status);
    inflight++;
    if (readBody && !req.complete) {
      req.on('end', () => { if (delay < 0.5) send(res, status); else setTimeout(send, delay, res, status); });
      req.on('error', () => res.destroy());
      req.resume();
    } else if (delay < 0.5) send(res, status);
    else setTimeout(send, delay, res, status);
  });
  // Long keep-alive so that a pooled connection is never closed under a proxy's feet (that race would
  // show up as spurious 502s charged to the proxy); black-holed requests must not time out server-side.
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 130_000;
  server.requestTimeout = 0;
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.setNoDelay(true);
    s.on('close', () => sockets.delete(s));
  });
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy();
  });

  const listen = (port: number): Promise<number> => new Promise((resolve, reject) => {
    const onError = (e: Error): void => reject(e);
    server.once('error', onError);
    server.listen({ port, host, exclusive: true }, () => {
      server.off('error', onError);
      listening = true;
      resolve((server.address() as AddressInfo).port);
    });
  });
  const port = await listen(opts.port ?? 0);

  /** Crash: refuse connections (listener closed) and cut every open one, as a dead process would. */
  const goDown = (): void => {
    if (!listening) return;
    listening = false;
    server.close();
    for (const s of sockets) s.destroy();
    sockets.clear();
    held.clear();
  };
  let closing = false;
  const goUp = (): void => {
    if (listening || closing) return;
    listen(port).catch(() => {
      // The port is taken by someone else meanwhile: stay down and try again shortly.
      if (!closing) setTimeout(goUp, 50).unref();
    });
  };

  if (!id) id = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  okHeaders = ['content-type', TEXT, 'content-length', String(body.length), 'x-backend', id];
  errHeaders = ['content-type', TEXT, 'content-length', String(errBody.length), 'x-backend', id];

  /** Open or close the listener as the faults say now, and again at their next change. */
  const applyDown = (): void => {
    faultTimer?.cancel();
    faultTimer = undefined;
    const t = clock.now() - fault.t0;
    if (effectAt(fault.faults, t, effect).down === 1) goDown(); else goUp();
    const next = nextChangeAfter(fault.faults, t);
    if (Number.isFinite(next)) faultTimer = clock.setTimeout(applyDown, Math.max(1, next - t));
  };
  const applyFault = (f: FaultSchedule): void => {
    fault = f;
    applyDown();
  };

  const setFault = (input: unknown): FaultSchedule => {
    const v = parseFault(input, clock.now());
    if (!v.valid) throw new MeshmedicError('MM_ERR_BAD_REQUEST', `invalid fault: ${v.errors.join('; ')}`, v.errors);
    applyFault(v.result);
    return v.result;
  };
  if (opts.fault !== undefined) setFault(opts.fault);

  const stats = (): BackendStats => ({
    id, port, listening, fault, requests, errors, held: held.size, inflight, healthChecks,
    byStatus: Object.fromEntries([...byStatus].map(([k, v]) => [String(k), v])),
  });

  const log = (sinceMs = 0): RequestLog => {
    const first = Math.max(0, logN - cap);
    const t: number[] = [], s: number[] = [];
    for (let n = first; n < logN; n++) {
      const i = n % cap;
      if (logT[i] >= sinceMs) { t.push(logT[i]); s.push(logS[i]); }
    }
    return { id, now: clock.now(), dropped: first, t, s };
  };

  const reset = (): void => {
    logN = 0; requests = 0; errors = 0; healthChecks = 0;
    byStatus.clear();
  };

  let control: http.Server | undefined;
  let controlPort = 0;
  if (opts.controlPort !== null) {
    control = http.createServer((req, res) => { handleControl(req, res); });
    control.keepAliveTimeout = 120_000;
    await new Promise<void>((resolve, reject) => {
      control!.once('error', reject);
      control!.listen({ port: opts.controlPort ?? 0, host }, () => resolve());
    });
    controlPort = (control.address() as AddressInfo).port;
  }

  function reply(res: http.ServerResponse, status: number, value: unknown): void {
    const text = JSON.stringify(value);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  function handleControl(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > 65_536) { reply(res, 413, { error: 'MM_ERR_BAD_REQUEST', errors: ['body larger than 64 KiB'] }); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('error', () => res.destroy());
    req.on('end', () => {
      if (res.headersSent) return;
      const url = new URL(req.url ?? '/', 'http://control');
      const route = `${req.method} ${url.pathname}`;
      switch (route) {
        case 'GET /__health': return reply(res, 200, { ok: true, id });
        case 'GET /__fault': return reply(res, 200, fault);
        case 'GET /__stats': return reply(res, 200, stats());
        case 'GET /__log': {
          const since = Number(url.searchParams.get('since') ?? 0);
          return reply(res, 200, log(Number.isFinite(since) ? since : 0));
        }
        case 'POST /__reset': reset(); return reply(res, 200, { ok: true });
        case 'POST /__fault': {
          let parsed: unknown;
          try { parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch (e) {
            return reply(res, 400, { error: 'MM_ERR_BAD_REQUEST', errors: [`body is not JSON: ${(e as Error).message}`] });
          }
          const v = parseFault(parsed, clock.now());
          if (!v.valid) return reply(res, 400, { error: 'MM_ERR_BAD_REQUEST', errors: v.errors });
          applyFault(v.result);
          return reply(res, 200, v.result);
        }
        default:
          return reply(res, 404, { error: 'MM_ERR_NOT_FOUND', errors: [`no route ${route}; try GET /__stats, GET|POST /__fault, GET /__log?since=, POST /__reset`] });
      }
    });
  }

  const close = async (): Promise<void> => {
    closing = true;
    faultTimer?.cancel();
    goDown();
    if (control) {
      control.closeAllConnections();
      await new Promise<void>((resolve) => control!.close(() => resolve()));
    }
  };

  return {
    id, host, port, controlPort,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    fault: () => fault,
    setFault, clearFault: () => applyFault(NO_FAULT), stats, log, reset, close,
  };
}
