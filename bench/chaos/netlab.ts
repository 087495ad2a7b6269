// A lab network on one machine: hosts are network namespaces with their own address on one bridge (the
// bridge itself sits in a "switch" namespace, so nothing is added to the machine's own namespace), and
// fault verbs act on them: kill and restart processes, partitions and packet loss with nftables inside the
// hosts' namespaces, bandwidth with tbf. Everything it made is removed by teardown(), also on error and on
// SIGINT/SIGTERM; leftovers() lets a test check that.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';

export interface HostSpec {
  readonly name: string;
  readonly region: string;
}

export interface Host extends HostSpec {
  readonly ns: string;
  readonly ip: string;
}

export interface LabProcess {
  readonly host: Host;
  readonly name: string;
  readonly child: ChildProcess;
  /** Lines of stdout so far. */
  readonly lines: string[];
  readonly exited: Promise<number | null>;
}

function ipCmd(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * Whether the lab can run here. `skip`: this machine cannot have network namespaces for us (not root, or
 * the kernel or container refuses them): a reason to skip. `broken`: it could, but a program the lab
 * drives is missing (scripts/ensure-peers.sh installs iproute2 and nftables): a reason to fail.
 */
export function labReadiness(): { skip?: string; broken?: string } {
  if (process.getuid?.() !== 0) return { skip: 'not root: network namespaces need CAP_SYS_ADMIN' };
  for (const [bin, args, pkg] of [['ip', ['-V'], 'iproute2'], ['nft', ['--version'], 'nftables'], ['nice', ['--version'], 'coreutils']] as const) {
    try {
      execFileSync(bin, args, { stdio: 'ignore' });
    } catch {
      return { broken: `${bin} (Debian package ${pkg}) is not installed: scripts/ensure-peers.sh installs it` };
    }
  }
  const probe = `mmprobe${process.pid % 100000}`;
  try {
    ipCmd(['netns', 'add', probe]);
    ipCmd(['netns', 'del', probe]);
  } catch (err) {
    return { skip: `ip netns does not work here (root, but the kernel or container refuses namespaces): ${(err as Error).message.split('\n')[0]}` };
  }
  return {};
}

/** One reason the lab cannot run here, or undefined (for `npm run chaos`, which fails either way). */
export function netnsUnavailable(): string | undefined {
  const r = labReadiness();
  return r.skip ?? r.broken;
}

/**
 * Scheduling priority of the lab's processes. They stand for separate machines: on a shared, loaded
 * machine, unrelated work (other test files, other builds) would otherwise starve their event loops,
 * and the gossip's 500 ms probe timeouts would measure the CPU queue instead of the network faults.
 */
export const LAB_NICE = -10;

export class NetLab {
  readonly prefix: string;
  readonly hosts = new Map<string, Host>();
  private readonly sw: string;
  private readonly procs = new Set<LabProcess>();
  private readonly onSignal = () => {
    this.teardown();
    process.exit(130);
  };

  /**
   * `subnet` is the first two octets of the lab's /16 (private, never routed anywhere: the bridge has no
   * uplink). `tag` keeps concurrent labs apart.
   */
  constructor(readonly subnet = '10.213', tag = String(process.pid % 100000)) {
    this.prefix = `mm${tag}`;
    this.sw = `${this.prefix}-sw`;
  }

  /** Create the switch and the hosts. Host i gets subnet.R.H where R is the region's index + 1. */
  up(specs: readonly HostSpec[]): Host[] {
    process.once('SIGINT', this.onSignal);
    process.once('SIGTERM', this.onSignal);
    try {
      ipCmd(['netns', 'add', this.sw]);
      this.nsExec(this.sw, ['ip', 'link', 'add', 'br0', 'type', 'bridge']);
      this.nsExec(this.sw, ['ip', 'link', 'set', 'br0', 'up']);
      const regions = [...new Set(specs.map((s) => s.region))];
      const perRegion = new Map<string, number>();
      specs.forEach((s) => {
        const r = regions.indexOf(s.region) + 1;
        const h = (perRegion.get(s.region) ?? 0) + 1;
        perRegion.set(s.region, h);
        this.hosts.set(s.name, this.attach(s, `${this.subnet}.${r}.${h}`));
      });
      return [...this.hosts.values()];
    } catch (err) {
      this.teardown();
      throw err;
    }
  }

  private attached = 0;

  /** A namespace with one interface on the bridge and address `ip`. */
  private attach(s: HostSpec, ip: string): Host {
    const host: Host = { ...s, ns: `${this.prefix}-${s.name}`, ip };
    ipCmd(['netns', 'add', host.ns]);
    const i = this.attached++;
    const a = `v${i}h`;
    const b = `v${i}s`;
    // Both ends are created inside the switch namespace, then one end moves into the host.
    this.nsExec(this.sw, ['ip', 'link', 'add', a, 'type', 'veth', 'peer', 'name', b]);
    this.nsExec(this.sw, ['ip', 'link', 'set', a, 'netns', host.ns]);
    this.nsExec(this.sw, ['ip', 'link', 'set', b, 'master', 'br0']);
    this.nsExec(this.sw, ['ip', 'link', 'set', b, 'up']);
    this.nsExec(host.ns, ['ip', 'link', 'set', 'lo', 'up']);
    this.nsExec(host.ns, ['ip', 'link', 'set', a, 'name', 'eth0']);
    this.nsExec(host.ns, ['ip', 'addr', 'add', `${ip}/16`, 'dev', 'eth0']);
    this.nsExec(host.ns, ['ip', 'link', 'set', 'eth0', 'up']);
    return host;
  }

  /**
   * The WAN: a router namespace (`subnet`.0.1, not a host) where `relayArgv` (a delay relay) is started
   * with one `--route PORT=HOST:PORT` per destination; every host DNATs its traffic to `ports` of hosts in
   * other regions to that relay (nft table `ip mmwan`, apart from the fault table). Partition rules match
   * the destination after DNAT, so faults between regions are not combined with the WAN.
   */
  async wan(ports: readonly number[], relayArgv: string[]): Promise<LabProcess> {
    const router = this.attach({ name: 'wan', region: '-' }, `${this.subnet}.0.1`);
    const hosts = [...this.hosts.values()];
    const route = new Map<string, number>();
    hosts.forEach((h, i) => ports.forEach((p, k) => route.set(`${h.name}:${p}`, 20_000 + i * 10 + k)));
    const p = this.start(router, 'wan-relay', [...relayArgv, '--host', router.ip, ...[...route].flatMap(([dst, port]) => ['--route', `${port}=${this.host(dst.split(':')[0]!).ip}:${dst.split(':')[1]}`])]);
    await this.waitLine(p, /"ready"/);
    for (const x of hosts) {
      const rules = hosts.filter((y) => y.region !== x.region).flatMap((y) => ports.flatMap((port) => ['udp', 'tcp'].map((proto) => `  ip daddr ${y.ip} ${proto} dport ${port} dnat to ${router.ip}:${route.get(`${y.name}:${port}`)}`)));
      this.nsExec(x.ns, ['nft', '-f', '-'], `table ip mmwan {\n chain out {\n  type nat hook output priority -100; policy accept;\n${rules.join('\n')}\n }\n}\n`);
    }
    return p;
  }

  host(name: string): Host {
    const h = this.hosts.get(name);
    if (!h) throw new Error(`no host ${name}`);
    return h;
  }

  nsExec(ns: string, argv: string[], input?: string): string {
    return execFileSync('ip', ['netns', 'exec', ns, ...argv], { encoding: 'utf8', input, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
  }

  /** Start a process inside a host; its stdout lines are kept. Killed by teardown(). */
  start(host: Host, name: string, argv: string[], env: NodeJS.ProcessEnv = {}): LabProcess {
    const child = spawn('ip', ['netns', 'exec', host.ns, 'nice', '-n', String(LAB_NICE), ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    const lines: string[] = [];
    let buf = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
    let err = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      if (err.length < 8192) err += d;
    });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const p: LabProcess = { host, name, child, lines, exited };
    this.procs.add(p);
    void exited.then(() => this.procs.delete(p));
    Object.defineProperty(p, 'stderr', { get: () => err });
    return p;
  }

  /** Wait for a stdout line matching `re`. */
  async waitLine(p: LabProcess, re: RegExp, timeoutMs = 20_000): Promise<string> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const l = p.lines.find((x) => re.test(x));
      if (l) return l;
      if (p.child.exitCode !== null) throw new Error(`${p.name} on ${p.host.name} exited (${p.child.exitCode}) before printing ${re}: ${(p as unknown as { stderr: string }).stderr}`);
      if (Date.now() > end) throw new Error(`${p.name} on ${p.host.name}: no line ${re} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  async kill(p: LabProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill(signal);
    await p.exited;
  }

  // nftables, inside each host's namespace: one table `mmchaos` with input/output filter chains.
  private ensureTable(h: Host): void {
    this.nsExec(h.ns, ['nft', '-f', '-'], `table inet mmchaos {\n chain input { type filter hook input priority 0; policy accept; }\n chain output { type filter hook output priority 0; policy accept; }\n}\n`);
  }

  /** Drop traffic from every host of `a` to every host of `b` (and back, unless oneWay). */
  partition(a: readonly Host[], b: readonly Host[], oneWay = false): void {
    for (const x of a) {
      this.ensureTable(x);
      for (const y of b) this.nsExec(x.ns, ['nft', 'add', 'rule', 'inet', 'mmchaos', 'output', 'ip', 'daddr', y.ip, 'drop']);
    }
    if (!oneWay) this.partition(b, a, true);
  }

  /** Drop `pct` % of packets leaving each host onto the bridge, at random (nftables numgen); a host's own loopback traffic is spared. */
  loss(hosts: readonly Host[], pct: number): void {
    for (const h of hosts) {
      this.ensureTable(h);
      this.nsExec(h.ns, ['nft', 'add', 'rule', 'inet', 'mmchaos', 'output', 'oifname', 'eth0', 'ip', 'daddr', `${this.subnet}.0.0/16`, 'numgen', 'random', 'mod', '100', '<', String(pct), 'drop']);
    }
  }

  /** Remove every partition and loss rule. */
  heal(hosts: readonly Host[] = [...this.hosts.values()]): void {
    for (const h of hosts) {
      try {
        this.nsExec(h.ns, ['nft', 'delete', 'table', 'inet', 'mmchaos']);
      } catch {
        /* no table */
      }
    }
  }

  /** Kill every process, delete every namespace (their interfaces and nft tables go with them). */
  teardown(): void {
    process.removeListener('SIGINT', this.onSignal);
    process.removeListener('SIGTERM', this.onSignal);
    for (const p of this.procs) {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    }
    // Processes still inside a namespace would keep it busy: kill whatever runs in ours.
    for (const ns of this.leftovers()) {
      try {
        const pids = ipCmd(['netns', 'pids', ns]).split('\n').filter(Boolean);
        for (const pid of pids) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            /* gone */
          }
        }
      } catch {
        /* not listable */
      }
      try {
        ipCmd(['netns', 'del', ns]);
      } catch {
        /* already gone */
      }
    }
  }

  /** Processes started here that have not exited yet (teardown kills them; their exit is seen shortly after). */
  liveProcesses(): string[] {
    return [...this.procs].map((p) => `${p.name}@${p.host.name} (pid ${p.child.pid})`);
  }

  /** Namespaces of this lab that still exist. */
  leftovers(): string[] {
    return ipCmd(['netns', 'list']).split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(`${this.prefix}-`));
  }
}
