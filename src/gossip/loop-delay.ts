// Event-loop starvation as a local-health signal for Lifeguard: a sidecar whose event loop runs late
// handles acks late too, so it should slow its probing down rather than accuse healthy peers.
// Measured with a plain timer's lateness (the worst lag since the last check): perf_hooks'
// monitorEventLoopDelay does not reliably record a single long block on Node 20.

export class LoopStarvationWatch {
  private readonly timer: NodeJS.Timeout;
  private last = performance.now();
  private worst = 0;
  /** Checks that found the loop starved, since start. */
  starvedChecks = 0;

  constructor(private readonly thresholdMs: number, private readonly resolutionMs = 20) {
    this.timer = setInterval(() => {
      const now = performance.now();
      const lag = now - this.last - this.resolutionMs;
      if (lag > this.worst) this.worst = lag;
      this.last = now;
    }, resolutionMs);
    this.timer.unref();
  }

  /** Worst event-loop lag (ms) since the last check; starved if above the threshold. Resets the sample. */
  check(): { starved: boolean; worstLagMs: number } {
    // A block still in progress shows up as the time since the last timer run.
    const pending = performance.now() - this.last - this.resolutionMs;
    const worstLagMs = Math.max(this.worst, pending, 0);
    this.worst = 0;
    const starved = worstLagMs > this.thresholdMs;
    if (starved) this.starvedChecks++;
    return { starved, worstLagMs };
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
