// The multi-region mesh of the lab: 3 regions × 3 hosts, each host with an app backend and a meshmedic
// sidecar (outbound listener, admin API, gossip with a key); clients in the first host of each region send
// through their local sidecar. Each sidecar prefers its own region, then the next (priorities 0, 1, 2).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetLab, type Host, type LabProcess } from './netlab.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const REGIONS = ['a', 'b', 'c'] as const;
const ADMIN_TOKEN = 'chaos-lab-admin-token-0123456789';

export interface Sample { t: number; ok: number; fail: number; by: Record<string, number> }
export interface View { t: number; endpoints: { id: string; state: string }[]; alive: number }

export interface Mesh {
  readonly lab: NetLab;
  readonly hosts: Host[];
  readonly backends: Map<string, LabProcess>;
  readonly sidecars: Map<string, LabProcess>;
  readonly clients: Map<string, LabProcess>;
  startBackend(h: Host): Promise<void>;
  startSidecar(h: Host): Promise<void>;
  samples(region: string, since: number): Sample[];
  views(region: string, since: number): View[];
  close(): void;
}

export async function startMesh(opts: { rps?: number } = {}): Promise<Mesh> {
  const lab = new NetLab();
  const hosts = lab.up(REGIONS.flatMap((r) => [1, 2, 3].map((i) => ({ name: `${r}${i}`, region: r }))));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mm-chaos-'));
  const key = randomBytes(32).toString('base64');
  const seeds = REGIONS.map((r) => `${lab.host(`${r}1`).ip}:17946`);
  const backends = new Map<string, LabProcess>();
  const sidecars = new Map<string, LabProcess>();
  const clients = new Map<string, LabProcess>();
  const node = process.execPath;

  const configFor = (h: Host) => {
    const self = REGIONS.indexOf(h.region as (typeof REGIONS)[number]);
    return {
      node: { id: h.name, locality: { region: h.region, zone: `${h.region}-${h.name}` } },
      admin: { listen: `${h.ip}:17000`, token: ADMIN_TOKEN },
      outbound: { listen: `${h.ip}:17001` },
      services: [{
        name: 'app',
        endpoints: hosts.map((e) => ({
          address: `${e.ip}:8080`,
          locality: { region: e.region, zone: `${e.region}-${e.name}` },
          priority: (REGIONS.indexOf(e.region as (typeof REGIONS)[number]) - self + REGIONS.length) % REGIONS.length,
        })),
      }],
      gossip: { enabled: true, listen: `${h.ip}:17946`, join: seeds.filter((s) => !s.startsWith(`${h.ip}:`)), keys: [key] },
      log: { level: 'warn' },
    };
  };

  const mesh: Mesh = {
    lab, hosts, backends, sidecars, clients,
    async startBackend(h) {
      const p = lab.start(h, 'backend', [node, path.join(root, 'dist', 'testing', 'backend-main.js'), '--host', h.ip, '--port', '8080', '--id', h.name, '--median-ms', '2', '--control-port', '0']);
      await lab.waitLine(p, /"ready"/);
      backends.set(h.name, p);
    },
    async startSidecar(h) {
      const file = path.join(dir, `${h.name}.json`);
      writeFileSync(file, JSON.stringify(configFor(h)));
      const p = lab.start(h, 'sidecar', [node, path.join(root, 'bin', 'meshmedic.js'), 'run', '--config', file]);
      await lab.waitLine(p, /meshmedic ready/, 30_000);
      sidecars.set(h.name, p);
    },
    samples(region, since) {
      return (clients.get(region)?.lines ?? []).map((l) => JSON.parse(l) as Sample & Partial<View>).filter((x) => x.t >= since && x.ok !== undefined) as Sample[];
    },
    views(region, since) {
      return (clients.get(region)?.lines ?? []).map((l) => JSON.parse(l) as Partial<Sample> & View).filter((x) => x.t >= since && x.endpoints !== undefined) as View[];
    },
    close() {
      lab.teardown();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await Promise.all(hosts.map((h) => mesh.startBackend(h)));
    for (const h of hosts) await mesh.startSidecar(h);
    for (const r of REGIONS) {
      const h = lab.host(`${r}1`);
      const p = lab.start(h, 'client', [node, path.join(root, 'dist', 'testing', 'chaos-client.js'), '--target', `${h.ip}:17001`, '--admin', `${h.ip}:17000`, '--rps', String(opts.rps ?? 100)]);
      clients.set(r, p);
    }
    return mesh;
  } catch (err) {
    mesh.close();
    throw err;
  }
}

/** Wait until `fn` is true (polled every 100 ms) or throw after `ms`. */
export async function until(fn: () => boolean, ms: number, what: string): Promise<number> {
  const start = Date.now();
  while (!fn()) {
    if (Date.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return Date.now() - start;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const successRate = (s: Sample) => (s.ok + s.fail === 0 ? 1 : s.ok / (s.ok + s.fail));
