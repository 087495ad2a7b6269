// A small, fast HTTP/1.1 backend whose faults are switched at run time (crash, black-hole, 5xx, gray
// latency, drift, flapping, overload), for the benchmarks, the live tests and the demo.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { MeshmedicError, type Validated } from '../core/errors.js';
import { seededRandom } from '../core/random.js';

export { seededRandom };

export const FAULT_MODES = ['none', 'crash', 'blackhole', '5xx', 'latency', 'drift', 'flap', 'overload'] as const;
export type FaultMode = (typeof FAULT_MODES)[number];
export type FlapDownMode = 'crash' | '5xx' | 'blackhole';

/** A fault, fully specified (parseFault fills the defaults). */
export interface Fault {
  readonly mode: FaultMode;
  /** 5xx (and flap with down=5xx): share of requests answered with `status`, 0..1. */
  readonly rate: number;
  /** 5xx: the status sent. */
  readonly status: number;
  /** latency/drift/overload: multiply the baseline latency by this. */
  readonly factor: number;
  /** latency/drift/overload: add this many ms to every answer. */
  readonly latencyMs: number;
  /** drift: the latency multiplier grows by this much per second since the fault began. */
  readonly driftPerSec: number;
  /** drift: crash this long after the fault began (0 = never): slow creep, then a crash. */
  readonly crashAfterMs: number;
  /** flap: healthy for upMs, then `down` for downMs, repeatedly (starting healthy). */
  readonly upMs: number;
  readonly downMs: number;
  readonly down: FlapDownMode;
  /** overload: extra ms of latency per request in flight, so latency rises with load. */
  readonly perInflightMs: number;
}

export const NO_FAULT: Fault = Object.freeze({
  mode: 'none', rate: 1, status: 500, factor: 1, latencyMs: 0, driftPerSec: 0.5, crashAfterMs: 0,
  upMs: 2000, downMs: 2000, down: 'crash', perInflightMs: 1,
});

const NUMERIC_LIMITS: Record<string, [number, number]> = {
  rate: [0, 1], status: [500, 599], factor: [0, 10_000], latencyMs: [0, 600_000], driftPerSec: [0, 1000],
  crashAfterMs: [0, 86_400_000], upMs: [1, 3_600_000], downMs: [1, 3_600_000], perInflightMs: [0, 60_000],
};

/** Validate a fault request (from JSON or code); collects every problem instead of throwing. */
export function parseFault(input: unknown): Validated<Fault> {
  const errors: string[] = [];
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return { valid: false, errors: ['fault: expected a JSON object such as {"mode":"crash"}'] };
  }
  const src = input as Record<string, unknown>;
  const out: Record<string, unknown> = { ...NO_FAULT };
  for (const [key, value] of Object.entries(src)) {
    if (key === 'mode') {
      if (typeof value !== 'string' || !(FAULT_MODES as readonly string[]).includes(value)) {
        errors.push(`fault.mode: got ${JSON.stringify(value)}, expected one of ${FAULT_MODES.join(', ')}`);
      } else out.mode = value;
    } else if (key === 'down') {
      if (value !== 'crash' && value !== '5xx' && value !== 'blackhole') {
        errors.push(`fault.down: got ${JSON.stringify(value)}, expected crash, 5xx or blackhole`);
      } else out.down = value;
    } else if (key in NUMERIC_LIMITS) {
      const [lo, hi] = NUMERIC_LIMITS[key];
      if (typeof value !== 'number' || !Number.isFinite(value) || value < lo || value > hi) {
        errors.push(`fault.${key}: got ${JSON.stringify(value)}, expected a number in [${lo}, ${hi}]`);
      } else out[key] = key === 'status' ? Math.round(value) : value;
    } else {
      errors.push(`fault.${key}: unknown key`);
    }
  }
  if (!('mode' in src)) errors.push('fault.mode: missing');
  if (errors.length > 0) return { valid: false, errors };
  return { valid: true, result: Object.freeze(out) as unknown as Fault };
}

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
  /** Background error rate (500s) when no fault is set: the noise scenario. */
  errorRate?: number;
  /** Size of the fixed response body. */
  bodyBytes?: number;
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
  fault: Fault;
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
  fault(): Fault;
  /** Set a fault (object as for POST /__fault); throws with every problem named when it is invalid. */
  setFault(f: unknown): Fault;
  stats(): BackendStats;
  log(sinceMs?: number): RequestLog;
  reset(): void;
  close(): Promise<void>;
}

const TEXT = 'text/plain';

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

  let fault: Fault = NO_FAULT;
  let faultSince = clock.now();
  let faultTimer: TimerHandle | undefined;
  let listening = false;
  let requests = 0, errors = 0, healthChecks = 0, inflight = 0;
  const byStatus = new Map<number, number>();
  const sockets = new Set<Socket>();
  const held = new Set<http.ServerResponse>();
  let spareNormal = NaN;

  const body = Buffer.alloc(Math.max(0, opts.bodyBytes ?? 128), 'x');
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
  const baseline = (): number => (medianMs > 0 ? (sigma > 0 ? medianMs * Math.exp(sigma * normal()) : medianMs) : 0);

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

  /** What the current fault does to a request arriving now: 'down' states are expressed by the listener. */
  const flapDown = (): boolean => {
    if (fault.mode !== 'flap') return false;
    const period = fault.upMs + fault.downMs;
    return (clock.now() - faultSince) % period >= fault.upMs;
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
    let delay = baseline();
    switch (fault.mode) {
      case 'blackhole':
        status = 0;
        break;
      case '5xx':
        if (rnd() < fault.rate) status = fault.status;
        break;
      case 'latency':
        delay = delay * fault.factor + fault.latencyMs;
        break;
      case 'drift':
        delay = delay * (fault.factor + (fault.driftPerSec * (clock.now() - faultSince)) / 1000) + fault.latencyMs;
        break;
      case 'overload':
        delay = delay * fault.factor + fault.latencyMs + fault.perInflightMs * inflight;
        break;
      case 'flap':
        if (flapDown()) {
          if (fault.down === 'blackhole') status = 0;
          else if (fault.down === '5xx' && rnd() < fault.rate) status = fault.status;
        }
        break;
      default:
        break;
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
    if (delay < 0.5) send(res, status);
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

  const applyFault = (f: Fault): void => {
    faultTimer?.cancel();
    faultTimer = undefined;
    fault = f;
    faultSince = clock.now();
    const wantDown = f.mode === 'crash' || (f.mode === 'flap' && f.down === 'crash' && flapDown());
    if (wantDown) goDown(); else goUp();
    if (f.mode === 'drift' && f.crashAfterMs > 0) {
      faultTimer = clock.setTimeout(goDown, f.crashAfterMs);
    } else if (f.mode === 'flap' && f.down === 'crash') {
      // Toggle the listener at each phase boundary; the phase itself is computed from the clock.
      const tick = (): void => {
        if (fault !== f) return;
        const period = f.upMs + f.downMs;
        const phase = (clock.now() - faultSince) % period;
        if (phase >= f.upMs) goDown(); else goUp();
        const next = phase >= f.upMs ? period - phase : f.upMs - phase;
        faultTimer = clock.setTimeout(tick, Math.max(1, next));
      };
      faultTimer = clock.setTimeout(tick, f.upMs);
    }
  };

  const setFault = (input: unknown): Fault => {
    const v = parseFault(input);
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
          const v = parseFault(parsed);
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
    setFault, stats, log, reset, close,
  };
}
