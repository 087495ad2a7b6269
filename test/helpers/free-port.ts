// Ports for a child process that must be told which port to listen on (when it can bind port 0 and
// report its port, let it: that is always better).
import { readFileSync } from 'node:fs';
import net from 'node:net';

/** Lowest port the kernel hands out on its own (bind to port 0, outgoing connections). */
function ephemeralStart(): number {
  try {
    const lo = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(lo) && lo > 12_000) return lo;
  } catch {
    // not Linux: the IANA dynamic range
  }
  return 49_152;
}

function bindable(port: number): Promise<boolean> {
  const s = net.createServer();
  return new Promise((resolve) => {
    s.once('error', () => resolve(false));
    s.listen({ port, host: '127.0.0.1', exclusive: true }, () => s.close(() => resolve(true)));
  });
}

const FIRST = 10_000;
const BLOCK = 8;

/**
 * `n` (at most 8) ports on 127.0.0.1 for child processes to listen on. A port freed after binding port 0
 * can be taken by any other process's port-0 listener or outgoing connection before the child binds it;
 * these lie below the kernel's ephemeral range, which it never hands out, in a block chosen by this
 * process's pid (test files running alongside have other pids, so other blocks), each checked free.
 */
export async function childPorts(n: number): Promise<number[]> {
  if (n > BLOCK) throw new RangeError(`childPorts: at most ${BLOCK} ports`);
  const blocks = Math.floor((ephemeralStart() - FIRST) / BLOCK);
  for (let i = 0; i < blocks; i++) {
    const base = FIRST + ((process.pid + i) % blocks) * BLOCK;
    const ports = Array.from({ length: n }, (_, k) => base + k);
    if ((await Promise.all(ports.map(bindable))).every(Boolean)) return ports;
  }
  throw new Error('childPorts: no free block of ports below the ephemeral range');
}
