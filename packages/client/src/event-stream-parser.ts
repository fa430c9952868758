/** One dispatched event of a `text/event-stream`. */
export interface ServerSentEvent {
  /** `event:` field; `message` when the server sent none. */
  type: string;
  /** `data:` lines joined with newlines. */
  data: string;
  /** The last event id in effect when the event was dispatched ('' when none was sent). */
  id: string;
}

/**
 * Incremental parser of the event-stream format (WHATWG HTML, "Server-sent events"): feed it
 * decoded text in chunks of any size and it returns the events completed so far. Lines may end
 * in CRLF, LF or CR, also when a CRLF is split between two chunks.
 */
export class EventStreamParser {
  /** The event id a reconnecting client sends as `Last-Event-ID`. */
  lastEventId: string;
  /** The latest `retry:` the server asked for, in milliseconds. */
  reconnectionDelayMs: number | undefined;

  private pending = '';
  private started = false;
  /** The previous chunk ended in CR: an LF opening this one belongs to that line end. */
  private afterCarriageReturn = false;
  private idBuffer: string;
  private typeBuffer = '';
  private dataBuffer = '';
  private hasData = false;

  /**
   * @param lastEventId the id in effect from an earlier connection of the same stream: as the
   * format says, it stays in effect until an `id:` field changes it (a reconnection that gets
   * only comments and `retry:` must send it again).
   */
  constructor(lastEventId = '') {
    this.lastEventId = lastEventId;
    this.idBuffer = lastEventId;
  }

  feed(text: string): ServerSentEvent[] {
    let chunk = text;
    if (this.afterCarriageReturn && chunk.length > 0) {
      this.afterCarriageReturn = false;
      if (chunk.charCodeAt(0) === 0x0a) chunk = chunk.slice(1);
    }
    let input = this.pending + chunk;
    if (!this.started && input.length > 0) {
      this.started = true;
      if (input.charCodeAt(0) === 0xfeff) input = input.slice(1);
    }
    const events: ServerSentEvent[] = [];
    let start = 0;
    for (let index = 0; index < input.length; index += 1) {
      const char = input.charCodeAt(index);
      if (char !== 0x0a && char !== 0x0d) continue;
      this.line(input.slice(start, index), events);
      if (char === 0x0d) {
        // A CR ends the line at once (the stream may pause after it); an LF right after is its pair.
        if (index === input.length - 1) this.afterCarriageReturn = true;
        else if (input.charCodeAt(index + 1) === 0x0a) index += 1;
      }
      start = index + 1;
    }
    this.pending = input.slice(start);
    return events;
  }

  private line(line: string, events: ServerSentEvent[]): void {
    if (line === '') {
      this.dispatch(events);
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.typeBuffer = value;
        break;
      case 'data':
        this.dataBuffer += this.hasData ? `\n${value}` : value;
        this.hasData = true;
        break;
      case 'id':
        if (!value.includes('\u0000')) this.idBuffer = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.reconnectionDelayMs = Number(value);
        break;
      default:
        // Unknown fields are ignored, as the format requires.
        break;
    }
  }

  private dispatch(events: ServerSentEvent[]): void {
    this.lastEventId = this.idBuffer;
    if (this.hasData) events.push({ type: this.typeBuffer || 'message', data: this.dataBuffer, id: this.idBuffer });
    this.typeBuffer = '';
    this.dataBuffer = '';
    this.hasData = false;
  }
}
