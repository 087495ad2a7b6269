// Commands against a running sidecar's admin API: status, endpoints, events [--follow], eject / drain /
// restore, top (live table) and config-dump. The sidecar is chosen with --admin HOST:PORT or
// MESHMEDIC_ADMIN; mutating calls send MESHMEDIC_ADMIN_TOKEN (or --token) as the bearer token.
import { parseFlags, type CliIo } from './main.js';

export const ADMIN_COMMANDS = ['status', 'endpoints', 'events', 'eject', 'drain', 'restore', 'top', 'config-dump'] as const;
export type AdminCommand = (typeof ADMIN_COMMANDS)[number];

const DEFAULT_ADMIN = '127.0.0.1:17000';
const COMMON = `  --admin HOST:PORT   the sidecar's admin API (default: $MESHMEDIC_ADMIN, else ${DEFAULT_ADMIN})`;

export const ADMIN_HELP: Record<AdminCommand, string> = {
  status: `Usage: meshmedic status [--admin HOST:PORT]\n\nThe sidecar's node, version, uptime, components and endpoints per health state.\n${COMMON}\n`,
  endpoints: `Usage: meshmedic endpoints [--service S] [-o wide|json] [--admin HOST:PORT]\n\nEach endpoint's id, state, weight, requests/s, error rate and p50/p99 over the stats windows.\n  --service S   only this service\n  -o wide       also reason, source, since and locality;  -o json  the API's JSON\n${COMMON}\n`,
  events: `Usage: meshmedic events [--follow] [--since SEQ] [--limit N] [-o json] [--admin HOST:PORT]\n\nHealing decisions (applied or refused) with their evidence, oldest first.\n  --follow      keep printing decisions as they happen (Ctrl-C stops)\n${COMMON}\n`,
  eject: `Usage: meshmedic eject ID [--for DURATION] [--reason TEXT] [--force] [--admin HOST:PORT] [--token T]\n\nTakes the endpoint out of rotation through the same decision path as automatic healing.\n  ID               service/host:port (as \`meshmedic endpoints\` prints it)\n  --for DURATION   e.g. 30s, 5m, 1h (default: until restored)\n  --reason TEXT    recorded with the decision (default "operator")\n  --force          override the healing guards (e.g. the last healthy endpoint of a service)\n  --token T        bearer token (default: $MESHMEDIC_ADMIN_TOKEN), needed off loopback\n${COMMON}\n`,
  drain: `Usage: meshmedic drain ID [--for DURATION] [--reason TEXT] [--force] [--admin HOST:PORT] [--token T]\n\nNo new requests to the endpoint; in-flight ones finish. Flags as for eject.\n${COMMON}\n`,
  restore: `Usage: meshmedic restore ID [--reason TEXT] [--admin HOST:PORT] [--token T]\n\nPuts an ejected or drained endpoint back in rotation.\n${COMMON}\n`,
  top: `Usage: meshmedic top [--service S] [--once] [--admin HOST:PORT]\n\nA live table of endpoints by requests/s, redrawn every second from the sidecar's event stream.\n  --once   print one table and exit\n${COMMON}\n`,
  'config-dump': `Usage: meshmedic config-dump [--admin HOST:PORT]\n\nThe sidecar's effective configuration (defaults filled in, overrides applied), secrets redacted.\n${COMMON}\n`,
};

interface EndpointRow {
  id: string;
  service: string;
  state: string;
  weight: number;
  weightFactor: number;
  reason: string;
  source: string;
  since: string | null;
  locality: { region: string; zone: string };
  window: { rps: number; errorRate: number; p50Ms: number | null; p99Ms: number | null; requests: number };
}

interface DecisionRow {
  seq: number;
  time: string;
  action: string;
  target: string;
  reason: string;
  source: string;
  applied: boolean;
  refused?: string;
  durationMs?: number;
  evidence: Record<string, unknown>;
}

/** An error already worded for the user (exit 1). */
class AdminError extends Error {}

export async function adminCommand(cmd: AdminCommand, argv: string[], io: CliIo): Promise<number> {
  const s = { type: 'string' } as const;
  const b = { type: 'boolean' } as const;
  const options = { admin: s, token: s, service: s, output: { type: 'string', short: 'o' }, follow: { ...b, short: 'f' }, since: s, limit: s, for: s, reason: s, once: b, force: b } as const;
  const positional = cmd === 'eject' || cmd === 'drain' || cmd === 'restore';
  const p = parseFlags(cmd, argv, options, io, { positionals: positional ? 1 : 0, help: ADMIN_HELP[cmd] });
  if (p.code !== undefined) return p.code;
  const v = p.values;
  const admin = (v.admin as string | undefined) ?? io.env.MESHMEDIC_ADMIN ?? DEFAULT_ADMIN;
  const api = new AdminClient(admin, (v.token as string | undefined) ?? io.env.MESHMEDIC_ADMIN_TOKEN ?? '');
  const output = (v.output as string | undefined) ?? '';
  if (output && !['wide', 'json'].includes(output)) return usage(io, cmd, `-o must be wide or json, got "${output}"`);
  try {
    switch (cmd) {
      case 'status':
        return printStatus(io, await api.get('/v1/status'), output);
      case 'endpoints': {
        const body = (await api.get(`/v1/endpoints${v.service ? `?service=${encodeURIComponent(v.service as string)}` : ''}`)) as { endpoints: EndpointRow[] };
        if (output === 'json') io.out(`${JSON.stringify(body, null, 2)}\n`);
        else if (body.endpoints.length === 0) io.out(v.service ? `no endpoints in service "${v.service}"\n` : 'no endpoints\n');
        else io.out(endpointTable(body.endpoints, output === 'wide'));
        return 0;
      }
      case 'events':
        return await events(io, api, v, output);
      case 'eject':
      case 'drain':
      case 'restore':
        return await decide(io, api, cmd, p.positionals[0], v);
      case 'top':
        return await top(io, api, v);
      case 'config-dump':
        io.out(`${JSON.stringify(await api.get('/v1/config'), null, 2)}\n`);
        return 0;
    }
  } catch (err) {
    if (err instanceof AdminError) {
      io.err(`meshmedic ${cmd}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

function usage(io: CliIo, cmd: AdminCommand, msg: string): number {
  io.err(`meshmedic ${cmd}: ${msg}\n\n${ADMIN_HELP[cmd]}`);
  return 2;
}

/** The admin API over HTTP, with errors worded for the command line. */
export class AdminClient {
  readonly base: string;
  constructor(admin: string, private readonly token: string) {
    this.base = /^https?:\/\//.test(admin) ? admin.replace(/\/$/, '') : `http://${admin}`;
  }

  async get(path: string): Promise<unknown> {
    return this.call('GET', path);
  }

  async call(method: string, path: string, body?: unknown): Promise<unknown> {
    let res: Response;
    try {
      res = await fetch(this.base + path, {
        method,
        headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(this.token ? { authorization: `Bearer ${this.token}` } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (err) {
      throw new AdminError(this.unreachable(err));
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new AdminError(`${this.base}${path} answered ${res.status} with something that is not JSON: is ${this.base} a meshmedic admin port?`);
    }
    if (!res.ok) {
      const e = json as { error?: string; message?: string };
      const hint = res.status === 401 ? ' (set MESHMEDIC_ADMIN_TOKEN or --token)' : /"force": true/.test(e.message ?? '') ? ' (add --force)' : '';
      throw new AdminError(`${e.error ?? `HTTP ${res.status}`}: ${e.message ?? text}${hint}`);
    }
    return json;
  }

  /** Follow /v1/stream, calling `on` for each event until the stream ends or `signal` aborts. */
  async stream(on: (event: string, data: unknown) => void, signal?: AbortSignal): Promise<void> {
    let res: Response;
    try {
      res = await fetch(`${this.base}/v1/stream`, { signal, headers: this.token ? { authorization: `Bearer ${this.token}` } : {} });
    } catch (err) {
      if (signal?.aborted) return;
      throw new AdminError(this.unreachable(err));
    }
    if (!res.ok || !res.body) throw new AdminError(`${this.base}/v1/stream answered ${res.status}`);
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) on(event, JSON.parse(data));
        }
      }
    } catch (err) {
      if (!signal?.aborted) throw new AdminError(`the event stream from ${this.base} broke: ${(err as Error).message}`);
    }
  }

  private unreachable(err: unknown): string {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (err as Error).message;
    return `cannot reach the admin API at ${this.base} (${why}): is the sidecar running? Choose it with --admin HOST:PORT or MESHMEDIC_ADMIN`;
  }
}

function printStatus(io: CliIo, body: unknown, output: string): number {
  if (output === 'json') {
    io.out(`${JSON.stringify(body, null, 2)}\n`);
    return 0;
  }
  const s = body as { node: string; workload: string | null; version: string; ready: boolean; uptimeS: number; policy: string; logLevel: string; components: string[]; addresses: Record<string, string>; services: number; endpoints: number; endpointsByState: Record<string, number>; panicServices: string[] };
  const states = Object.entries(s.endpointsByState).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${k}`).join(', ') || 'none';
  io.out(
    [
      `node:        ${s.node}${s.workload ? ` (workload ${s.workload})` : ''}`,
      `version:     ${s.version}`,
      `ready:       ${s.ready ? 'yes' : 'NO'}`,
      `uptime:      ${formatDuration(s.uptimeS * 1000)}`,
      `policy:      ${s.policy}`,
      `log level:   ${s.logLevel}`,
      `components:  ${s.components.join(', ') || 'none'}`,
      `addresses:   ${Object.entries(s.addresses).map(([k, a]) => `${k} ${a}`).join(', ')}`,
      `services:    ${s.services}${s.panicServices.length ? ` (PANIC: ${s.panicServices.join(', ')})` : ''}`,
      `endpoints:   ${s.endpoints} (${states})`,
      '',
    ].join('\n'),
  );
  return 0;
}

export function endpointTable(rows: readonly EndpointRow[], wide: boolean): string {
  const head = ['ENDPOINT', 'STATE', 'WEIGHT', 'RPS', 'ERRORS', 'P50', 'P99'];
  if (wide) head.push('REASON', 'SOURCE', 'SINCE', 'LOCALITY');
  const body = rows.map((e) => {
    const w = e.window;
    const r = [e.id, e.state, e.weightFactor < 1 ? `${e.weight}×${e.weightFactor.toFixed(2)}` : String(e.weight), String(w.rps), `${(w.errorRate * 100).toFixed(1)}%`, ms(w.p50Ms), ms(w.p99Ms)];
    if (wide) r.push(e.reason || '-', e.source, e.since ?? '-', [e.locality.region, e.locality.zone].filter(Boolean).join('/') || '-');
    return r;
  });
  return table(head, body);
}

function ms(v: number | null): string {
  return v === null ? '-' : `${v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : Math.round(v)}ms`;
}

/** Left-aligned columns separated by two spaces, like kubectl. */
export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n') + '\n';
}

function decisionLine(d: DecisionRow): string {
  const evidence = Object.entries(d.evidence ?? {}).map(([k, v]) => `${k}=${typeof v === 'number' ? +v.toFixed(4) : v}`).join(' ');
  const result = d.applied ? 'applied' : `refused (${d.refused})`;
  return [d.time, d.action, d.target, d.reason, d.source, result, evidence].join('  ').trimEnd() + '\n';
}

async function events(io: CliIo, api: AdminClient, v: Record<string, string | boolean | undefined>, output: string): Promise<number> {
  const since = v.since === undefined ? 0 : Number(v.since);
  const limit = v.limit === undefined ? 100 : Number(v.limit);
  if (!Number.isInteger(since) || since < 0) return usage(io, 'events', `--since must be a non-negative integer, got "${v.since}"`);
  if (!Number.isInteger(limit) || limit < 1 || limit > 5000) return usage(io, 'events', `--limit must be an integer from 1 to 5000, got "${v.limit}"`);
  const print = (d: DecisionRow) => io.out(output === 'json' ? `${JSON.stringify(d)}\n` : decisionLine(d));
  if (!v.follow) {
    const body = (await api.get(`/v1/events?since=${since}&limit=${limit}`)) as { events: DecisionRow[] };
    if (body.events.length === 0 && output !== 'json') io.out('no decisions yet\n');
    for (const d of body.events) print(d);
    return 0;
  }
  // The stream replays recent decisions first, then follows; --since skips what was already seen.
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await api.stream((event, data) => {
      if (event === 'decision' && (data as DecisionRow).seq > since) print(data as DecisionRow);
    }, ac.signal);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
  return 0;
}

async function decide(io: CliIo, api: AdminClient, action: 'eject' | 'drain' | 'restore', id: string | undefined, v: Record<string, string | boolean | undefined>): Promise<number> {
  if (!id) return usage(io, action, 'the endpoint ID is required (service/host:port, as `meshmedic endpoints` prints it)');
  const body: Record<string, unknown> = {};
  if (v.reason !== undefined) body.reason = v.reason;
  if (v.force) {
    if (action === 'restore') return usage(io, action, '--force applies to eject and drain only');
    body.force = true;
  }
  if (v.for !== undefined) {
    if (action === 'restore') return usage(io, action, '--for applies to eject and drain only');
    const d = parseDuration(v.for as string);
    if (typeof d === 'string') return usage(io, action, d);
    body.durationMs = d;
  }
  const r = (await api.call('POST', `/v1/endpoints/${encodeURIComponent(id)}/${action}`, body)) as { applied: boolean; refused?: string; event: number; endpoint: { state: string; until: string | null } };
  if (r.applied) io.out(`${id}: ${r.endpoint.state}${r.endpoint.until ? ` until ${r.endpoint.until}` : ''} (decision ${r.event})\n`);
  else io.out(`${id}: not changed (${r.refused ?? 'refused'}); state ${r.endpoint.state} (decision ${r.event})\n`);
  return 0;
}

/** `30s`, `5m`, `1h`, `500ms` or a plain number of milliseconds. */
export function parseDuration(s: string): number | string {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s.trim());
  if (!m) return `--for must be a duration such as 30s, 5m or 1h, got "${s}"`;
  const n = Number(m[1]) * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const)[(m[2] ?? 'ms') as 'ms'];
  if (!Number.isFinite(n) || n < 1 || n > 7 * 86_400_000) return `--for must be from 1ms to 7 days, got "${s}"`;
  return Math.round(n);
}

function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}

async function top(io: CliIo, api: AdminClient, v: Record<string, string | boolean | undefined>): Promise<number> {
  const service = v.service as string | undefined;
  const render = (view: { endpoints: EndpointRow[] }) => {
    const rows = view.endpoints.filter((e) => !service || e.service === service).sort((a, b) => b.window.rps - a.window.rps || a.id.localeCompare(b.id));
    return `meshmedic top — ${api.base} — ${new Date().toISOString()}  (Ctrl-C quits)\n\n${endpointTable(rows, false)}`;
  };
  if (v.once) {
    io.out(render((await api.get('/v1/endpoints')) as { endpoints: EndpointRow[] }).replace('  (Ctrl-C quits)', ''));
    return 0;
  }
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await api.stream((event, data) => {
      if (event === 'view') io.out(`\x1b[H\x1b[2J${render(data as { endpoints: EndpointRow[] })}`);
    }, ac.signal);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
  return 0;
}
