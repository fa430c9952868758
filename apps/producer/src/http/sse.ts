import type { Request, Response } from 'express';

/** Writes Server-Sent Events: `id`, `event` and a JSON `data` line per event, plus heartbeats. */
export class EventStream {
  private readonly heartbeat: NodeJS.Timeout;
  closed = false;

  constructor(
    req: Request,
    private readonly res: Response,
    heartbeatMs = 15_000,
  ) {
    res.status(200);
    res.setHeader('content-type', 'text/event-stream; charset=utf-8');
    res.setHeader('cache-control', 'no-cache, no-transform');
    res.setHeader('connection', 'keep-alive');
    res.setHeader('x-accel-buffering', 'no');
    res.flushHeaders();
    // Clients reconnect after this many ms when the connection drops.
    res.write('retry: 2000\n\n');
    this.heartbeat = setInterval(() => res.write(': keep-alive\n\n'), heartbeatMs);
    // A client gone while the stream was being set up (a slot awaited) closed before this listener.
    if (req.socket.destroyed) this.close();
    else req.on('close', () => this.close());
  }

  send(id: number, event: string, data: unknown): void {
    if (this.closed) return;
    this.res.write(`id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  /**
   * Ends a stream that is not finished: a comment says why, and the client reconnects after the
   * `retry` delay with its Last-Event-ID, as EventSource does on any end.
   */
  end(reason: string): void {
    if (this.closed) return;
    this.res.write(`: ${reason.replace(/[\r\n]+/g, ' ')}\n\n`);
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    this.res.end();
    for (const listener of this.onClose) listener();
  }

  private readonly onClose: (() => void)[] = [];
  whenClosed(listener: () => void): void {
    if (this.closed) listener();
    else this.onClose.push(listener);
  }
}

/** The id after which a resuming client wants events (`Last-Event-ID` header or `lastEventId` query). */
export function lastEventId(req: Request): number {
  const raw = req.get('last-event-id') ?? (typeof req.query.lastEventId === 'string' ? req.query.lastEventId : undefined);
  const value = Number(raw);
  return Number.isInteger(value) && value >= 0 ? value : 0;
}
