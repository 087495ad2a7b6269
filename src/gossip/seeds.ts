// Gossip seeds: IP literals (HOST:PORT), DNS names (dns://name:port, A and AAAA records) and SRV records
// (dns+srv://_service._proto.name, e.g. a Kubernetes headless Service), re-resolved periodically so that
// a sidecar finds its peers after they move. The resolver is injected: tests answer without DNS traffic.
import { promises as dns } from 'node:dns';
import { parseHostPort } from '../core/address.js';
import type { Address } from './transport.js';

export type SeedSpec =
  | { readonly kind: 'ip'; readonly address: Address; readonly text: string }
  | { readonly kind: 'dns'; readonly name: string; readonly port: number; readonly text: string }
  | { readonly kind: 'srv'; readonly name: string; readonly text: string };

/** The DNS operations seeds need (node:dns by default). */
export interface SeedResolver {
  /** Every A and AAAA address of a name. */
  addresses(name: string): Promise<string[]>;
  /** SRV records of a name: target host and port. */
  srv(name: string): Promise<{ name: string; port: number }[]>;
}

export const systemSeedResolver: SeedResolver = {
  async addresses(name) {
    // getaddrinfo: honours /etc/hosts and the resolver's search domains, as the rest of the pod does.
    const all = await dns.lookup(name, { all: true, verbatim: true });
    return all.map((a) => a.address);
  },
  async srv(name) {
    return (await dns.resolveSrv(name)).map((r) => ({ name: r.name, port: r.port }));
  },
};

const DNS_NAME = /^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** Parse one `gossip.join` entry; a string explains what is wrong. */
export function parseSeed(s: string): SeedSpec | string {
  if (s.startsWith('dns+srv://')) {
    const name = s.slice('dns+srv://'.length);
    if (!DNS_NAME.test(name) || !name.startsWith('_')) return `"${s}": expected dns+srv://_service._proto.name (an SRV record name)`;
    return { kind: 'srv', name, text: s };
  }
  if (s.startsWith('dns://')) {
    const rest = s.slice('dns://'.length);
    const at = rest.lastIndexOf(':');
    const name = at > 0 ? rest.slice(0, at) : '';
    const port = Number(rest.slice(at + 1));
    if (!name || !DNS_NAME.test(name) || !Number.isInteger(port) || port < 1 || port > 65535) return `"${s}": expected dns://name:port (a DNS name and a port 1-65535)`;
    return { kind: 'dns', name, port, text: s };
  }
  const hp = parseHostPort(s);
  if (typeof hp === 'string') return `${hp} (or use dns://name:port or dns+srv://_service._proto.name)`;
  return { kind: 'ip', address: hp, text: s };
}

/**
 * The current seed addresses. `refresh()` re-resolves the DNS seeds; a name that fails to resolve keeps
 * its last answer (a DNS hiccup must not make a sidecar forget its seeds) and the failure is reported.
 */
export class Seeds {
  private readonly last = new Map<string, Address[]>();
  private refreshing: Promise<void> | undefined;

  constructor(
    readonly specs: readonly SeedSpec[],
    private readonly resolver: SeedResolver,
    private readonly onError: (seed: string, err: Error) => void = () => {},
  ) {}

  get usesDns(): boolean {
    return this.specs.some((s) => s.kind !== 'ip');
  }

  /** Seed addresses as last resolved (IP seeds always), deduplicated. */
  current(): Address[] {
    const out: Address[] = [];
    const seen = new Set<string>();
    const add = (a: Address) => {
      const k = `${a.host}|${a.port}`;
      if (!seen.has(k)) { seen.add(k); out.push(a); }
    };
    for (const s of this.specs) {
      if (s.kind === 'ip') add(s.address);
      else for (const a of this.last.get(s.text) ?? []) add(a);
    }
    return out;
  }

  /** Re-resolve every DNS seed (one refresh at a time). */
  refresh(): Promise<void> {
    this.refreshing ??= this.resolveAll().finally(() => { this.refreshing = undefined; });
    return this.refreshing;
  }

  private async resolveAll(): Promise<void> {
    await Promise.all(this.specs.map(async (s) => {
      if (s.kind === 'ip') return;
      try {
        if (s.kind === 'dns') {
          this.last.set(s.text, (await this.resolver.addresses(s.name)).map((host) => ({ host, port: s.port })));
        } else {
          const out: Address[] = [];
          for (const r of await this.resolver.srv(s.name)) {
            for (const host of await this.resolver.addresses(r.name)) out.push({ host, port: r.port });
          }
          this.last.set(s.text, out);
        }
      } catch (err) {
        this.onError(s.text, err as Error);
      }
    }));
  }
}
