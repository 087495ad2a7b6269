// The review's attacks on a proxy listener, run in their own process by bench/edge/run.ts: slowloris
// (request heads trickling in), trickling uploads (100 MB announced, one byte at a time), and a flood of
// idle connections. A cut connection is reopened (as a real attacker would), within a bounded total.
// `attacker.ts PORT SLOWLORIS TRICKLE IDLE DURATION_MS`; prints {"ready":true} once every connection is open.
import net from 'node:net';

const [port, slowloris, trickle, idle, durationMs] = process.argv.slice(2).map(Number) as [number, number, number, number, number];
const MAX_CONNECTIONS = 200_000; // bound on every (re)connection of the run
const TICK_MS = 1000;
let opened = 0;
let cut = 0;
const live = new Set<net.Socket>();
const end = Date.now() + durationMs;

function open(kind: 'slowloris' | 'trickle' | 'idle'): void {
  if (opened >= MAX_CONNECTIONS || Date.now() > end) return;
  opened++;
  const s = net.connect(port, '127.0.0.1');
  live.add(s);
  s.on('error', () => {});
  s.on('data', () => {}); // 408s and the like: read and ignore
  s.on('close', () => {
    live.delete(s);
    cut++;
    setTimeout(() => open(kind), 100); // come back
  });
  s.once('connect', () => {
    if (kind === 'slowloris') s.write('GET / HTTP/1.1\r\nHost: svc\r\n');
    else if (kind === 'trickle') s.write('POST /upload HTTP/1.1\r\nHost: svc\r\nContent-Length: 100000000\r\n\r\nx');
    (s as net.Socket & { kind?: string }).kind = kind;
  });
}

for (let i = 0; i < slowloris; i++) open('slowloris');
for (let i = 0; i < trickle; i++) open('trickle');
for (let i = 0; i < idle; i++) open('idle');

// One byte per connection per tick keeps slowloris heads and uploads alive (and idle timers reset).
let n = 0;
const timer = setInterval(() => {
  n++;
  for (const s of live) {
    const kind = (s as net.Socket & { kind?: string }).kind;
    if (kind === 'slowloris') s.write(`X-${n}: a\r\n`);
    else if (kind === 'trickle') s.write('x');
  }
}, TICK_MS);

const ready = setInterval(() => {
  if (live.size >= slowloris + trickle + idle || Date.now() > end) {
    clearInterval(ready);
    process.stdout.write(JSON.stringify({ ready: true, open: live.size }) + '\n');
  }
}, 100);

setTimeout(() => {
  clearInterval(timer);
  process.stdout.write(JSON.stringify({ done: true, opened, cut, open: live.size }) + '\n');
  for (const s of live) s.destroy();
  process.exit(0);
}, durationMs).unref();
process.on('SIGTERM', () => process.exit(0));
