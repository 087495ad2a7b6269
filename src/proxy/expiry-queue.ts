// Spreads the answering of late client connections (408) and the closing of idle ones over turns of the
// event loop. Finding who is past a deadline is cheap; answering 408 and closing costs ~0.1 ms each, and
// connections opened together (an attack) expire together and reconnect together. So the late are
// answered `perTurn` per turn (other clients' I/O runs in between) and at most `perRefill` between two
// refills (the listener's sweeps), which spreads a flood's expiry, and its reconnection, over seconds; a
// larger backlog is spread over `drainRefills` refills, and whatever has waited that long is answered at
// the next, so a flood cannot keep connections open (and their slots taken) much past their deadlines.
export interface Expirable {
  /**
   * Answer or close the connection. False when there was nothing to do any more (what was late arrived,
   * or the idle connection was used, before its turn came): the queue does not care, diagnostics do.
   */
  expire(why: string): boolean;
}

export class ExpiryQueue<T extends Expirable> {
  private readonly late: { item: T; why: string; refill: number }[] = [];
  private refills = 0;
  private at = 0;
  private allowance = 0;
  private scheduled = false;
  private readonly run = (): void => this.turn();

  constructor(
    private readonly perTurn: number,
    private readonly perRefill: number,
    private readonly drainRefills: number,
    /** Runs fn on a later turn of the event loop (setImmediate; injectable for tests). */
    private readonly later: (fn: () => void) => void,
  ) {}

  /** Connections found late, in the order found; answered in that order. */
  add(item: T, why: string): void {
    this.late.push({ item, why, refill: this.refills });
  }

  /** Waiting to be answered. */
  get pending(): number {
    return this.late.length - this.at;
  }

  /** A new allowance (each sweep); answering starts now if anything waits. */
  refill(): void {
    this.refills++;
    // Spread a backlog over drainRefills refills, and answer whatever has waited that long now.
    let due = 0;
    const late = this.late;
    while (this.at + due < late.length && late[this.at + due]!.refill <= this.refills - this.drainRefills) due++;
    this.allowance = Math.max(this.perRefill, Math.ceil(this.pending / this.drainRefills), due);
    if (this.pending > 0 && !this.scheduled) this.turn();
  }

  private turn(): void {
    this.scheduled = false;
    const late = this.late;
    const end = Math.min(late.length, this.at + this.perTurn, this.at + this.allowance);
    this.allowance -= end - this.at;
    for (; this.at < end; this.at++) {
      const l = late[this.at]!;
      l.item.expire(l.why);
    }
    if (this.at === late.length) {
      late.length = 0;
      this.at = 0;
    } else if (this.at > 1024 && this.at * 2 > late.length) {
      // A flood that never lets the queue run dry: drop the answered ones, not to hold closed connections.
      late.splice(0, this.at);
      this.at = 0;
    }
    if (this.at < late.length && this.allowance > 0) {
      this.scheduled = true;
      this.later(this.run);
    }
  }
}
