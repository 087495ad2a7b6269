// How many proxy workers run, and how they share a listener port: SO_REUSEPORT where this Node offers
// it (each worker owns a socket, the kernel spreads connections), else the primary accepts and hands them
// out round-robin (node:cluster's default).
import net from 'node:net';
import { availableParallelism } from 'node:os';
import { formatHostPort, parseHostPort } from '../core/address.js';
import { MeshmedicError } from '../core/errors.js';
import type { SharingMode } from './messages.js';

/** proxy.workers as a number: `auto` is the cores this process may use. */
export function workerCount(setting: number | 'auto'): number {
  return setting === 'auto' ? Math.max(1, availableParallelism()) : setting;
}

function listenOn(host: string, port: number, reusePort: boolean): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    // `reusePort` is not in Node 20's types (and Node 20 ignores it).
    s.listen({ host, port, ...(reusePort ? { reusePort: true } : {}) } as net.ListenOptions, () => {
      s.off('error', reject);
      resolve(s);
    });
  });
}

const closeServer = (s: net.Server): Promise<void> => new Promise((resolve) => s.close(() => resolve()));

let probed: Promise<boolean> | undefined;

/**
 * Whether this Node binds with SO_REUSEPORT: two sockets on one loopback port must both bind (a Node
 * without the option ignores it, and the second bind fails with EADDRINUSE).
 */
export function reusePortAvailable(): Promise<boolean> {
  probed ??= (async () => {
    const first = await listenOn('127.0.0.1', 0, true);
    try {
      const second = await listenOn('127.0.0.1', (first.address() as net.AddressInfo).port, true);
      await closeServer(second);
      return true;
    } catch {
      return false;
    } finally {
      await closeServer(first);
    }
  })();
  return probed;
}

/** proxy.workerSharing resolved on this Node; `reuseport` asked of a Node without it is an error. */
export async function chooseSharing(setting: 'auto' | SharingMode): Promise<SharingMode> {
  if (setting === 'primary-distributes') return setting;
  const available = await reusePortAvailable();
  if (setting === 'reuseport' && !available) {
    throw new MeshmedicError('MM_ERR_WORKER_SHARING', `proxy.workerSharing: "reuseport" is not available on Node ${process.version} (it needs Node 22.12+ or 23.1+ on Linux); use "auto" or "primary-distributes"`);
  }
  return available ? 'reuseport' : 'primary-distributes';
}

/**
 * A listen address with port 0 resolved to a free port, so that every reuseport worker binds the same one
 * (in primary-distributes mode node:cluster shares the primary's port 0 by itself).
 */
export async function resolveListen(listen: string, what: string): Promise<string> {
  const hp = parseHostPort(listen, { allowPortZero: true });
  if (typeof hp === 'string') throw new MeshmedicError('MM_ERR_ADDRESS', `${what}: ${hp}`);
  if (hp.port !== 0) return listen;
  const s = await listenOn(hp.host, 0, true);
  const port = (s.address() as net.AddressInfo).port;
  await closeServer(s);
  return formatHostPort(hp.host, port);
}
