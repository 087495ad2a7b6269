// Subcommands implemented by their own modules (simulator, webhook, Istio render), loaded on demand so
// that the sidecar's start-up does not pay for them.
import { request } from 'undici';
import { loadConfigFile } from '../config/load.js';
import { MeshState } from '../mesh/state.js';
import { servicesFromConfig } from '../runtime/sidecar.js';
import { systemClock } from '../core/clock.js';
import type { Decision, HealthState } from '../core/types.js';
import { parseFlags, type CliIo } from './main.js';

export const RENDER_HELP = `Usage: meshmedic render istio --config FILE [--from-admin HOST:PORT] [--namespace NS]

Prints Istio DestinationRule (outlierDetection mirroring the healing settings, locality failover) and
VirtualService (weighted routes) YAML for the configured services. With --from-admin, the current health
(ejections, de-weighting) is read from a running sidecar's admin API first.
`;

export async function runDelegated(cmd: string, argv: string[], io: CliIo): Promise<number> {
  switch (cmd) {
    case 'webhook': {
      const { runWebhookCli } = await import('../k8s/webhook-cli.js');
      return runWebhookCli(argv, io);
    }
    case 'render':
      return renderCommand(argv, io);
    case 'sim': {
      const { runSimCli } = await import('../sim/cli.js');
      return runSimCli(argv, { out: io.out, err: io.err });
    }
    default:
      io.err(`meshmedic: unknown command "${cmd}"\n`);
      return 2;
  }
}

async function renderCommand(argv: string[], io: CliIo): Promise<number> {
  const [what, ...rest] = argv;
  if (what === '--help' || what === '-h') {
    io.out(RENDER_HELP);
    return 0;
  }
  if (what !== 'istio') {
    io.err(`meshmedic render: expected "istio", got ${what === undefined ? 'nothing' : `"${what}"`}\n\n${RENDER_HELP}`);
    return 2;
  }
  const s = { type: 'string' } as const;
  const p = parseFlags('render', rest, { config: s, 'from-admin': s, namespace: s }, io);
  if (p.code !== undefined) return p.code;
  if (!p.values.config) {
    io.err(`meshmedic render istio: --config FILE is required\n\n${RENDER_HELP}`);
    return 2;
  }
  const cfg = loadConfigFile(p.values.config as string, io.env);
  if (!cfg.valid) {
    io.err(`meshmedic: invalid configuration (${p.values.config}):\n${cfg.errors.map((e) => `  - ${e}`).join('\n')}\n`);
    return 2;
  }
  const mesh = new MeshState(systemClock);
  mesh.setServices(servicesFromConfig(cfg.result));
  if (p.values['from-admin']) {
    const url = `http://${p.values['from-admin']}/v1/endpoints`;
    const r = await request(url, { headersTimeout: 5000, bodyTimeout: 5000 });
    if (r.statusCode !== 200) throw new Error(`${url} answered ${r.statusCode}`);
    const body = (await r.body.json()) as { endpoints: { id: string; state: HealthState; weightFactor: number; reason: string }[] };
    const now = Date.now();
    const decisions: Decision[] = body.endpoints.map((e) => {
      const base = { target: e.id, reason: e.reason || 'observed', source: 'operator' as const, at: now, evidence: { via: 'render' } };
      if (e.state === 'ejected') return { ...base, action: 'eject' };
      if (e.state === 'draining') return { ...base, action: 'drain' };
      if (e.state === 'probation') return { ...base, action: 'probation', weight: e.weightFactor };
      return { ...base, action: 'weight', weight: e.weightFactor };
    });
    mesh.applyAll(decisions);
  }
  const { renderIstio, istioOptionsFrom } = await import('../xds/istio.js');
  const opts = istioOptionsFrom(cfg.result);
  const ns = p.values.namespace as string | undefined;
  io.out(renderIstio(mesh.snapshot(), ns ? { ...opts, namespace: ns } : opts));
  return 0;
}
