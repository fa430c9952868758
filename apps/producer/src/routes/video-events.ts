import express, { type Request, type Response, type Router } from 'express';
import type { TenantScope, VideoSignals, VideosRepository, VideoView } from '@clipline/shared';
import { principalOf, scopeOf } from '../http/auth.js';
import { HttpProblem, notFound } from '../http/problem.js';
import { EventStream, lastEventId } from '../http/sse.js';
import type { StreamSlots } from '../http/stream-slots.js';
import { fromDatabase, present, TERMINAL, videoIdOf } from './route-helpers.js';

export interface EventDependencies {
  videos: VideosRepository;
  signals: VideoSignals;
  /** Open live event streams per key. */
  streamSlots: StreamSlots;
  /** Seconds one live event stream stays open. */
  sseMaxSeconds: number;
}

/** Opens the stream once the key has a free slot; the slot is refreshed while open and given back on close. */
async function openStream(deps: EventDependencies, req: Request, res: Response, id: string): Promise<EventStream> {
  const principal = principalOf(res);
  const slot = await deps.streamSlots.acquire(principal);
  if (!slot) {
    throw new HttpProblem(
      429,
      'Too Many Requests',
      `this API key already holds ${deps.streamSlots.perKey} open event streams (SSE_MAX_STREAMS_PER_KEY); close one or poll GET /v1/videos/${id}`,
      {},
      { 'retry-after': '30' },
    );
  }
  const stream = new EventStream(req, res);
  const refreshSlot = setInterval(() => void deps.streamSlots.refresh(principal, slot), 15_000);
  // A stream ends after SSE_MAX_SECONDS; the client reconnects with Last-Event-ID and misses nothing.
  const lifetime = setTimeout(() => stream.end(`stream ends after ${deps.sseMaxSeconds} s; reconnect with Last-Event-ID`), deps.sseMaxSeconds * 1000);
  stream.whenClosed(() => {
    clearInterval(refreshSlot);
    clearTimeout(lifetime);
    void deps.streamSlots.release(principal, slot);
  });
  return stream;
}

/**
 * Sends the video each time it moved past what the client has, until it finishes. Calls made
 * while a send is under way are coalesced into one more read, so bursts of changes cost one query.
 */
function videoPusher(videos: VideosRepository, id: string, scope: TenantScope, stream: EventStream, after: number) {
  let sent = after;
  let busy = false;
  let again = false;
  return async (view?: VideoView) => {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      do {
        again = false;
        const video = view ?? (await videos.find(id, scope));
        view = undefined;
        if (!video || stream.closed) return stream.close();
        if (video.version > sent) {
          sent = video.version;
          stream.send(video.version, TERMINAL.has(video.status) ? video.status : 'progress', present(video));
        }
        if (TERMINAL.has(video.status)) return stream.close();
      } while (again);
    } catch {
      // The database hiccuped: the next signal or poll tries again.
    } finally {
      busy = false;
    }
  };
}

/** `GET /videos/:id/events`: Server-Sent Events of one video, resumable after Last-Event-ID. */
export function eventRoutes(deps: EventDependencies): Router {
  const router = express.Router();
  router.get('/videos/:id/events', async (req, res) => {
    const id = videoIdOf(req);
    const scope = scopeOf(res);
    const first = await fromDatabase(deps.videos.find(id, scope));
    if (!first) throw notFound(`no video with id ${id}`);
    const after = lastEventId(req);
    if (TERMINAL.has(first.status) && after >= first.version) {
      // The client already has the final event: 204 tells an EventSource not to reconnect.
      res.status(204).end();
      return;
    }
    const stream = await openStream(deps, req, res, id);
    const push = videoPusher(deps.videos, id, scope, stream, after);
    const unsubscribe = deps.signals.onChange((changed) => {
      if (changed === id) void push();
    });
    // Signals are hints; a slow poll catches anything a lost message would have carried.
    const poll = setInterval(() => void push(), 2000);
    stream.whenClosed(() => {
      unsubscribe();
      clearInterval(poll);
    });
    await push(first);
  });
  return router;
}
