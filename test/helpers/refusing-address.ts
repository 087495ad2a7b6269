// A loopback address that refuses connections on a port no other process can take meanwhile, for tests
// that need a dead endpoint. A closed listener's port is not enough: the kernel may hand it to a listener
// of a test running alongside, which then answers.
import net, { type AddressInfo } from 'node:net';

/**
 * Hold 127.0.0.1:P with a listener (so that nobody else can bind P, wildcard included) and return
 * 127.0.0.2:P, where nothing listens: every connection there is refused. Released in teardown.
 */
export async function refusingAddress(t: { teardown(fn: () => unknown): void }): Promise<{ host: string; port: number }> {
  const holder = net.createServer((s) => s.destroy());
  await new Promise<void>((resolve, reject) => {
    holder.once('error', reject);
    holder.listen({ port: 0, host: '127.0.0.1', exclusive: true }, resolve);
  });
  t.teardown(() => new Promise<void>((r) => holder.close(() => r())));
  return { host: '127.0.0.2', port: (holder.address() as AddressInfo).port };
}
