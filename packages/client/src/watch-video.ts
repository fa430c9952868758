import { ClipLineApiError, ClipLineConnectionError, ClipLineProtocolError } from './errors.js';
import { EventStreamParser } from './event-stream-parser.js';
import type { HttpTransport } from './http-transport.js';
import { DEFAULT_RETRY_POLICY } from './retry-policy.js';
import { sleep } from './sleep.js';
import { TERMINAL_VIDEO_STATUSES, type Video, type VideoEvent, type VideoEventType } from './types.js';

export interface WatchOptions {
  /** Ends the watch: the iterator rejects with the signal's reason and the connection is closed. */
  signal?: AbortSignal;
  /** Resume after this event id, e.g. one kept from an earlier watch. */
  lastEventId?: string;
  /** Wait before reconnecting after a drop, unless the server asked otherwise with `retry:`. @defaultValue 1000 */
  reconnectDelayMs?: number;
  /**
   * Drops in a row, with no event in between, before the watch gives up. The wait between them
   * doubles from the reconnection delay up to 10 s, so the default rides out a server away for
   * about five minutes (a restart, a deploy). @defaultValue 30
   */
  maxReconnects?: number;
  /** Reconnect when nothing at all (not even a heartbeat comment) arrived for this long. @defaultValue 60000 */
  idleTimeoutMs?: number;
}

/** The longest wait between two reconnections the watch makes of its own accord. */
const MAX_RECONNECT_DELAY_MS = 10_000;

const VIDEO_EVENT_TYPES: ReadonlySet<string> = new Set<VideoEventType>(['progress', 'completed', 'failed', 'cancelled']);
const TERMINAL_EVENT_TYPES: ReadonlySet<string> = new Set<string>(TERMINAL_VIDEO_STATUSES);

function videoOf(data: string, eventId: string): Video {
  let video: unknown;
  try {
    video = JSON.parse(data);
  } catch {
    throw new ClipLineProtocolError(`event ${eventId || '(no id)'} carries data that is not JSON: ${data.slice(0, 120)}`);
  }
  if (!video || typeof video !== 'object' || typeof (video as Video).id !== 'string' || typeof (video as Video).status !== 'string') {
    throw new ClipLineProtocolError(`event ${eventId || '(no id)'} does not carry a video (id and status expected)`);
  }
  return video as Video;
}

/** A failure to reconnect that a server restarting, or a gateway in front of it, gives for a while. */
function isPassing(error: ClipLineApiError | ClipLineConnectionError): boolean {
  return error instanceof ClipLineConnectionError || [429, 502, 503, 504].includes(error.status);
}

/** Non-negative integer option, or a TypeError naming it. */
function count(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 0) throw new TypeError(`${name} must be a non-negative whole number, got ${value}`);
  return value;
}

/**
 * The events of one video's stream (`GET /v1/videos/:id/events`). A dropped or idle connection
 * is reopened with `Last-Event-ID`, so no event is lost or repeated; the iteration ends after a
 * terminal event (completed, failed, cancelled). Failures to connect are retried by the
 * transport's policy; the first connection's failure (but a 429: too many streams open for the
 * key) and API errors (401, 404) end the watch at once. Once the stream was open, a reconnection
 * the server cannot take yet (it restarts: the connection refused, 429, 502, 503, 504) counts as
 * one more drop, up to `maxReconnects`; a stream the server ends after it carried heartbeats (its
 * SSE_MAX_SECONDS) is not a drop.
 */
export async function* watchVideoEvents(transport: HttpTransport, videoId: string, options: WatchOptions = {}): AsyncGenerator<VideoEvent, void, undefined> {
  const path = `/v1/videos/${encodeURIComponent(videoId)}/events`;
  const maxReconnects = count('maxReconnects', options.maxReconnects, 30);
  const idleTimeoutMs = count('idleTimeoutMs', options.idleTimeoutMs, 60_000);
  let reconnectDelayMs = count('reconnectDelayMs', options.reconnectDelayMs, 1000);
  let lastEventId = options.lastEventId ?? '';
  let dropsInARow = 0;
  let opened = false;
  const userSignal = options.signal;

  for (;;) {
    userSignal?.throwIfAborted();
    const connection = new AbortController();
    const forwardAbort = () => connection.abort(userSignal?.reason);
    userSignal?.addEventListener('abort', forwardAbort, { once: true });
    let idleTimer: NodeJS.Timeout | undefined;
    const restartIdleTimer = () => {
      clearTimeout(idleTimer);
      idleTimer = setTimeout(() => connection.abort(new DOMException(`no data for ${idleTimeoutMs} ms`, 'TimeoutError')), idleTimeoutMs);
    };
    let reader: ReadableStreamDefaultReader<string> | undefined;
    let retryAfterMs = 0;
    // Chunks read on this connection, and whether the server ended it (rather than it breaking).
    let chunks = 0;
    let endedByServer = false;
    try {
      const response = await transport.open(
        { method: 'GET', path, idempotent: true, signal: connection.signal, headers: lastEventId ? { 'last-event-id': lastEventId } : {} },
        'text/event-stream',
      );
      // 204 is the event-stream way of saying "do not reconnect".
      if (response.status === 204) return;
      const contentType = response.headers.get('content-type') ?? '';
      if (!/^text\/event-stream\b/i.test(contentType) || !response.body) {
        throw new ClipLineProtocolError(`${path} answered ${contentType || 'no content type'} instead of text/event-stream`);
      }
      opened = true;
      const parser = new EventStreamParser(lastEventId);
      reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      restartIdleTimer();
      for (;;) {
        const chunk = await reader.read();
        if (chunk.done) {
          endedByServer = true;
          break;
        }
        chunks += 1;
        restartIdleTimer();
        const events = parser.feed(chunk.value);
        if (parser.reconnectionDelayMs !== undefined) reconnectDelayMs = parser.reconnectionDelayMs;
        for (const event of events) {
          lastEventId = event.id;
          if (!VIDEO_EVENT_TYPES.has(event.type)) continue;
          dropsInARow = 0;
          yield { id: event.id, type: event.type as VideoEventType, video: videoOf(event.data, event.id) };
          if (TERMINAL_EVENT_TYPES.has(event.type)) return;
        }
        lastEventId = parser.lastEventId;
      }
    } catch (error) {
      if (userSignal?.aborted) throw userSignal.reason;
      // Refusals and failures to connect (after the transport's own retries) are final; a
      // connection that broke while the stream was being read is reopened below.
      if (error instanceof ClipLineProtocolError) throw error;
      // A first connection refused for the key's many open streams (429) waits its turn too.
      const busy = error instanceof ClipLineApiError && error.status === 429;
      if ((error instanceof ClipLineApiError || error instanceof ClipLineConnectionError) && !((opened || busy) && isPassing(error))) throw error;
      if (error instanceof ClipLineApiError) retryAfterMs = error.retryAfterMs ?? 0;
    } finally {
      clearTimeout(idleTimer);
      userSignal?.removeEventListener('abort', forwardAbort);
      reader?.cancel().catch(() => {});
      connection.abort();
    }
    // A stream the server ended after it had carried heartbeats is one it rotated (it ends each
    // after SSE_MAX_SECONDS), not a drop: a video quiet for hours (waiting in a long queue) is
    // watched for as long as it takes.
    // A long healthy stream also shows the connection works: the drops before it are forgiven.
    if (endedByServer && chunks > 1) dropsInARow = 0;
    else dropsInARow += 1;
    if (dropsInARow > maxReconnects) {
      throw new ClipLineConnectionError(transport.url(path), new Error(`the event stream dropped ${dropsInARow} times in a row without delivering an event`));
    }
    // Drops in a row wait longer each time (a server that is away is not asked every second). A
    // server asking for a long wait is waited for no longer than the retries would: the
    // reconnections left then decide (DEFAULT_RETRY_POLICY.maxRetryAfterMs).
    const backedOff = Math.min(Math.max(reconnectDelayMs, MAX_RECONNECT_DELAY_MS), reconnectDelayMs * 2 ** Math.max(0, dropsInARow - 1));
    await sleep(Math.max(backedOff, Math.min(retryAfterMs, DEFAULT_RETRY_POLICY.maxRetryAfterMs)), userSignal);
  }
}
