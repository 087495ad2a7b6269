// Open-loop traffic for the demo: a fixed request rate per target, independent of answers (a slow
// endpoint does not slow the generator down), with per-request deadlines and bounded concurrency.
import { Pool } from 'undici';

export interface TrafficTarget {
  /** Where to send (a sidecar's outbound listener). */
  readonly url: string;
  /** The Host header naming the mesh service. */
  readonly service: string;
  readonly rps: number;
}

export interface TrafficCounters {
  sent: number;
  ok: number;
  failed: number;
  /** Failures by status (0 = no answer / timeout). */
  byStatus: Map<number, number>;
  /** Completion times of failed requests (epoch ms), for attributing losses to faults. */
  failures: number[];
}

export class TrafficGenerator {
  private readonly pools = new Map<string, Pool>();
  private readonly timers: NodeJS.Timeout[] = [];
  private inflight = 0;
  readonly counters = new Map<string, TrafficCounters>();

  constructor(private readonly targets: readonly TrafficTarget[], private readonly opts: { timeoutMs: number; maxInflight: number }) {}

  start(): void {
    for (const tg of this.targets) {
      if (!this.pools.has(tg.url)) this.pools.set(tg.url, new Pool(tg.url, { connections: 64, pipelining: 1, keepAliveTimeout: 10_000 }));
      if (!this.counters.has(tg.service)) this.counters.set(tg.service, { sent: 0, ok: 0, failed: 0, byStatus: new Map(), failures: [] });
      // Ticks of 10 ms carry rps/100 requests each, with the fraction accumulated.
      let carry = 0;
      const timer = setInterval(() => {
        carry += tg.rps / 100;
        while (carry >= 1) {
          carry -= 1;
          this.fire(tg);
        }
      }, 10);
      timer.unref();
      this.timers.push(timer);
    }
  }

  private fire(tg: TrafficTarget): void {
    const c = this.counters.get(tg.service)!;
    c.sent++;
    if (this.inflight >= this.opts.maxInflight) {
      this.fail(c, 0);
      return;
    }
    this.inflight++;
    const pool = this.pools.get(tg.url)!;
    pool
      .request({ path: '/demo', method: 'GET', headers: { host: tg.service }, headersTimeout: this.opts.timeoutMs, bodyTimeout: this.opts.timeoutMs })
      .then(
        async (r) => {
          await r.body.dump();
          if (r.statusCode >= 500) this.fail(c, r.statusCode);
          else c.ok++;
        },
        () => this.fail(c, 0),
      )
      .finally(() => {
        this.inflight--;
      });
  }

  private fail(c: TrafficCounters, status: number): void {
    c.failed++;
    c.byStatus.set(status, (c.byStatus.get(status) ?? 0) + 1);
    c.failures.push(Date.now());
    if (c.failures.length > 100_000) c.failures.splice(0, 50_000);
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    await Promise.all([...this.pools.values()].map((p) => p.destroy()));
  }
}
