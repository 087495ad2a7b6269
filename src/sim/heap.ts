// A min-heap of pending request completions keyed by time, in parallel typed arrays (no object per
// request). Grows by doubling.
export class CompletionHeap {
  time = new Float64Array(1024);
  endpoint = new Int32Array(1024);
  outcome = new Int8Array(1024);
  latencyUs = new Float64Array(1024);
  size = 0;

  push(time: number, endpoint: number, outcome: number, latencyUs: number): void {
    if (this.size === this.time.length) this.grow();
    let i = this.size++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.time[p]! <= time) break;
      this.move(p, i);
      i = p;
    }
    this.time[i] = time;
    this.endpoint[i] = endpoint;
    this.outcome[i] = outcome;
    this.latencyUs[i] = latencyUs;
  }

  /** Time of the earliest completion (Infinity when empty). */
  peekTime(): number {
    return this.size > 0 ? this.time[0]! : Infinity;
  }

  /** Remove the earliest; its fields are copied into `out`. */
  pop(out: { time: number; endpoint: number; outcome: number; latencyUs: number }): void {
    out.time = this.time[0]!;
    out.endpoint = this.endpoint[0]!;
    out.outcome = this.outcome[0]!;
    out.latencyUs = this.latencyUs[0]!;
    const n = --this.size;
    if (n === 0) return;
    const t = this.time[n]!;
    const e = this.endpoint[n]!;
    const o = this.outcome[n]!;
    const l = this.latencyUs[n]!;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && this.time[c + 1]! < this.time[c]!) c++;
      if (this.time[c]! >= t) break;
      this.move(c, i);
      i = c;
    }
    this.time[i] = t;
    this.endpoint[i] = e;
    this.outcome[i] = o;
    this.latencyUs[i] = l;
  }

  private move(from: number, to: number): void {
    this.time[to] = this.time[from]!;
    this.endpoint[to] = this.endpoint[from]!;
    this.outcome[to] = this.outcome[from]!;
    this.latencyUs[to] = this.latencyUs[from]!;
  }

  private grow(): void {
    const n = this.time.length * 2;
    const t = new Float64Array(n);
    t.set(this.time);
    const e = new Int32Array(n);
    e.set(this.endpoint);
    const o = new Int8Array(n);
    o.set(this.outcome);
    const l = new Float64Array(n);
    l.set(this.latencyUs);
    this.time = t;
    this.endpoint = e;
    this.outcome = o;
    this.latencyUs = l;
  }
}
