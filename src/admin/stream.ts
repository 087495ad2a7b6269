// GET /v1/stream: Server-Sent Events for the web dashboard and `meshmedic events --follow`. Decisions are
// pushed the moment the mesh state records them (with the endpoint view right after); window stats are
// sampled once per second while anyone listens, computed once and written to every client.
import type http from 'node:http';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { MeshState } from '../mesh/state.js';
import { decisionJson } from './decision-log.js';

export interface StreamOptions {
  readonly mesh: MeshState;
  readonly clock: Clock;
  /** The endpoints view (the body of GET /v1/endpoints). */
  readonly view: () => unknown;
  /** Stats sample period, ms. */
  readonly periodMs?: number;
  /** Decisions replayed to a new client. */
  readonly backlog?: number;
}

/** A client whose unsent output grows past this is too slow to follow and is dropped. */
const MAX_BUFFERED = 1 << 20;

export class EventStream {
  private readonly clients = new Set<http.ServerResponse>();
  private unsubscribe: (() => void) | undefined;
  private timer: TimerHandle | undefined;
  private viewPending = false;

  constructor(private readonly o: StreamOptions) {}

  get size(): number {
    return this.clients.size;
  }

  /** Serve one client: headers, the current view, recent decisions, then live events until it goes. */
  attach(req: http.IncomingMessage, res: http.ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    res.write('retry: 1000\n\n');
    res.write(frame('view', this.o.view()));
    for (const e of this.o.mesh.eventsSince(0, this.o.backlog ?? 200)) res.write(frame('decision', decisionJson(e)));
    this.clients.add(res);
    const gone = () => this.detach(res);
    res.on('close', gone);
    req.on('close', gone);
    this.start();
  }

  close(): void {
    for (const c of this.clients) c.end();
    this.clients.clear();
    this.stop();
  }

  private detach(res: http.ServerResponse): void {
    if (!this.clients.delete(res)) return;
    if (this.clients.size === 0) this.stop();
  }

  private start(): void {
    if (this.unsubscribe !== undefined) return;
    this.unsubscribe = this.o.mesh.subscribe((_snap, changes) => {
      for (const c of changes) this.broadcast(frame('decision', decisionJson(c)));
      this.viewSoon();
    });
    this.timer = this.o.clock.setInterval(() => this.broadcast(frame('view', this.o.view())), this.o.periodMs ?? 1000);
  }

  private stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.timer?.cancel();
    this.timer = undefined;
  }

  /** One fresh view after a burst of decisions (several listeners' notifications coalesce). */
  private viewSoon(): void {
    if (this.viewPending) return;
    this.viewPending = true;
    setImmediate(() => {
      this.viewPending = false;
      if (this.clients.size > 0) this.broadcast(frame('view', this.o.view()));
    });
  }

  private broadcast(text: string): void {
    for (const c of this.clients) {
      if (c.writableLength > MAX_BUFFERED) {
        c.destroy();
        this.detach(c);
        continue;
      }
      c.write(text);
    }
  }
}

function frame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
