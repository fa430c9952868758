import path from 'node:path';
import express, { type Request, type Router } from 'express';
import {
  InvalidCursorError,
  isDependencyOutage,
  type AiResultsRepository,
  type AnalysisRepository,
  type ClipExtras,
  type ClipView,
  type ExternalMetadataRepository,
  type LocalStorage,
  InvalidSubmissionError,
  type IdempotencyRepository,
  type VideoPipelineProducer,
  type VideoSignals,
  type VideosRepository,
  type VideoView,
  type PurgeOutcome,
  type TenantScope,
  VideoNotFinishedError,
  checkUrl,
  EgressRefusedError,
  type EgressPolicy,
} from '@clipline/shared';
import { describeIssues, videoBatch, videoIdParam, videoListQuery, videoSubmission, type VideoSubmissionBody } from '../api-schemas.js';
import { callerOf, principalOf, scopeOf } from '../http/auth.js';
import type { RequestBudget } from '../http/rate-limit.js';
import type { StreamSlots } from '../http/stream-slots.js';
import { idempotent } from '../http/idempotency.js';
import { badRequest, HttpProblem, notFound, serviceUnavailable } from '../http/problem.js';
import { EventStream, lastEventId } from '../http/sse.js';
import type { z } from 'zod';

export interface VideoRoutesDependencies {
  videos: VideosRepository;
  analyses: AnalysisRepository;
  results: AiResultsRepository;
  external: ExternalMetadataRepository;
  storage: LocalStorage;
  pipeline: VideoPipelineProducer;
  idempotency: IdempotencyRepository;
  signals: VideoSignals;
  /** Server secret keying the stored fingerprints of idempotent requests. */
  fingerprintKey: string;
  queueReady(): boolean;
  /** The per-key request budget: a batch is charged one unit per video. */
  budget: RequestBudget;
  /** Open live event streams per key. */
  streamSlots: StreamSlots;
  /** Removes a finished video's files and rows (`DELETE …?purge=true`). */
  purge: (videoId: string, scope: TenantScope) => Promise<PurgeOutcome>;
  /** Whether sources and callbacks may name loopback/private hosts (ALLOW_PRIVATE_SOURCES). */
  egress: EgressPolicy;
  limits: {
    /** Unfinished videos one tenant may have. */
    maxActiveVideosPerTenant: number;
    /** Seconds one live event stream stays open. */
    sseMaxSeconds: number;
  };
}

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

function requireJson(req: Request): unknown {
  if (!req.is('application/json')) {
    throw new HttpProblem(415, 'Unsupported Media Type', 'send the body as JSON with "Content-Type: application/json"');
  }
  return req.body;
}

function parse<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const { detail, errors } = describeIssues(parsed.error);
    throw badRequest(detail, errors);
  }
  return parsed.data;
}

/** Errors of a lost Redis or database connection: the client may retry later. */
export function isUnavailable(error: unknown): boolean {
  if (isDependencyOutage(error)) return true;
  const text = `${(error as Error)?.name} ${(error as Error)?.message} ${(error as { code?: string })?.code}`;
  return /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|Connection is closed|Stream isn't writeable|enableOfflineQueue|ENOTFOUND|Connection terminated|timeout exceeded when trying to connect|max retries per request/i.test(text);
}

const links = (id: string) => ({ self: `/v1/videos/${id}`, events: `/v1/videos/${id}/events` });
const present = (video: VideoView) => ({ ...video, links: links(video.id) });

/** A clip as the API shows it: its files download through the API (same key) once rendered. */
function presentClip(videoId: string, clip: ClipView, extras: ClipExtras | undefined) {
  const rendered = clip.status === 'rendered';
  const base = `/v1/videos/${videoId}/clips/${clip.id}`;
  return {
    id: clip.id,
    index: clip.clipIndex,
    status: clip.status,
    startSeconds: clip.startSeconds,
    endSeconds: clip.endSeconds,
    durationSeconds: clip.durationSeconds,
    score: clip.score,
    reasons: clip.reasons,
    aspect: clip.aspect,
    width: clip.width,
    height: clip.height,
    error: clip.error,
    url: rendered && clip.storageKey ? `${base}/file` : null,
    // The generated image when there is one, else the sharpest frame.
    thumbnailUrl: rendered && (extras?.thumbnailKey || clip.thumbnailKey) ? `${base}/thumbnail` : null,
    title: extras?.title ?? null,
    caption: extras?.caption ?? null,
    hashtags: extras?.hashtags ?? null,
    voiceoverUrl: extras?.voiceoverKey ? `${base}/voiceover` : null,
  };
}

/**
 * Refuses at submission what the workers would refuse later: a source or callback URL whose host
 * is written as a non-public address (`http://127.1/`, `http://[::ffff:7f00:1]/`, `localhost`).
 * Host names are judged again by the workers at connect time; this only saves a doomed video.
 */
function checkEgress(body: VideoSubmissionBody, policy: EgressPolicy, where = ''): void {
  const urls: [string, string][] = [];
  if (/^https?:\/\//i.test(body.source)) urls.push(['source', body.source]);
  if (body.callbackUrl) urls.push(['callbackUrl', body.callbackUrl]);
  for (const [field, url] of urls) {
    try {
      checkUrl(url, policy);
    } catch (error) {
      if (!(error instanceof EgressRefusedError)) throw error;
      throw badRequest(`${where}${field}: ${error.message}`, [{ path: `${where}${field}`, message: error.message }]);
    }
  }
}

function toSubmission(body: VideoSubmissionBody) {
  return {
    source: body.source,
    title: body.title ?? null,
    ...(body.options ? { options: body.options } : {}),
    ...(body.callbackUrl ? { callbackUrl: body.callbackUrl } : {}),
    ...(body.priority ? { priority: body.priority } : {}),
    ...(body.delaySeconds ? { delaySeconds: body.delaySeconds } : {}),
    ...(body.youtubeId ? { youtubeId: body.youtubeId } : {}),
  };
}

export function videoRoutes(deps: VideoRoutesDependencies): Router {
  const { videos, pipeline, idempotency, signals } = deps;
  const router = express.Router();

  const guardQueue = () => {
    if (!deps.queueReady()) throw serviceUnavailable('the job queue (Redis) is unreachable; retry shortly');
  };
  /** Fair use: a tenant's unfinished videos are capped, so one service cannot fill the queues. */
  const guardActiveVideos = async (tenant: string, adding: number) => {
    const cap = deps.limits.maxActiveVideosPerTenant;
    const active = await videos.countUnfinished(tenant).catch((error: unknown) => {
      throw unavailableOr(error, 'the database');
    });
    if (active + adding > cap) {
      throw new HttpProblem(
        429,
        'Too Many Requests',
        `this tenant has ${active} unfinished videos and may have at most ${cap} (MAX_ACTIVE_VIDEOS_PER_TENANT); ${adding > 1 ? `a batch of ${adding} does not fit; ` : ''}submit more once some finish`,
        { activeVideos: active, limit: cap },
        { 'retry-after': '60' },
      );
    }
  };
  const unavailableOr = (error: unknown, what = 'the job queue or database') => {
    if (error instanceof InvalidSubmissionError) {
      const [path, ...rest] = error.message.split(': ');
      return rest.length ? badRequest(error.message, [{ path: path!, message: rest.join(': ') }]) : badRequest(error.message, [{ path: 'source', message: error.message }]);
    }
    if (error instanceof InvalidCursorError) return badRequest(error.message, [{ path: 'cursor', message: error.message }]);
    if (isUnavailable(error)) return serviceUnavailable(`${what} is unreachable; retry shortly`);
    return error;
  };

  router.post(
    '/videos',
    idempotent(idempotency, async (req, res) => {
      const body = parse(videoSubmission, requireJson(req) ?? undefined);
      checkEgress(body, deps.egress);
      guardQueue();
      const { tenant } = callerOf(res);
      await guardActiveVideos(tenant, 1);
      try {
        const { id } = await pipeline.submit(toSubmission(body), { submittedBy: principalOf(res), tenant });
        res.status(202).location(`/v1/videos/${id}`).json({ id, status: 'queued', links: links(id) });
      } catch (error) {
        throw unavailableOr(error);
      }
    }, deps.fingerprintKey),
  );

  // "/videos:batch": the colon is literal here, not a route parameter.
  router.post(
    /^\/videos:batch$/,
    idempotent(idempotency, async (req, res) => {
      const body = parse(videoBatch, requireJson(req) ?? undefined);
      body.videos.forEach((video, index) => checkEgress(video, deps.egress, `videos.${index}.`));
      // The request itself was charged one unit on the way in; each further video is one more.
      await deps.budget.charge(principalOf(res), body.videos.length - 1, (name, value) => res.setHeader(name, value));
      guardQueue();
      const { tenant } = callerOf(res);
      await guardActiveVideos(tenant, body.videos.length);
      try {
        const created = await pipeline.submitMany(
          body.videos.map((video) => ({ submission: toSubmission(video) })),
          { submittedBy: principalOf(res), tenant },
        );
        res.status(202).json({ videos: created.map(({ id }) => ({ id, status: 'queued', links: links(id) })) });
      } catch (error) {
        throw unavailableOr(error);
      }
    }, deps.fingerprintKey),
  );

  router.get('/videos', async (req, res) => {
    const query = parse(videoListQuery, req.query);
    try {
      const page = await videos.list({ scope: scopeOf(res), limit: query.limit, ...(query.status ? { status: query.status } : {}), ...(query.cursor ? { cursor: query.cursor } : {}) });
      res.json({ items: page.items.map(present), nextCursor: page.nextCursor });
    } catch (error) {
      throw unavailableOr(error, 'the database');
    }
  });

  // Ids are issued in lower case; one sent in upper case names the same video on every engine
  // (PostgreSQL's uuid type ignores case, MySQL's char(36) and SQLite's text do not).
  const videoIdOf = (req: Request) => {
    const id = String(req.params.id);
    if (!videoIdParam.safeParse(id).success) throw notFound(`no video with id "${id.slice(0, 100)}" (ids are UUIDs)`);
    return id.toLowerCase();
  };

  router.get('/videos/:id', async (req, res) => {
    const id = videoIdOf(req);
    let video: VideoView | undefined;
    try {
      video = await videos.find(id, scopeOf(res));
    } catch (error) {
      throw unavailableOr(error, 'the database');
    }
    if (!video) throw notFound(`no video with id ${id}`);
    const [clips, extras, transcript, external] = await Promise.all([
      deps.analyses.listClips(id),
      deps.results.clipExtras(id),
      deps.results.transcript(id),
      video.youtubeId ? deps.external.find(id) : undefined,
    ]).catch((error: unknown) => {
      throw unavailableOr(error, 'the database');
    });
    res.json({
      ...present(video),
      youtube: external ? { ...external.data, fetchedAt: external.fetchedAt } : null,
      transcript: transcript ?? null,
      clips: clips.map((clip) => presentClip(id, clip, extras.get(clip.id))),
    });
  });

  router.get('/videos/:id/clips/:clipId/:file', async (req, res) => {
    const id = videoIdOf(req);
    const clipId = String(req.params.clipId).toLowerCase();
    const file = String(req.params.file);
    if (file !== 'file' && file !== 'thumbnail' && file !== 'voiceover') throw notFound(`no route for GET ${req.path.slice(0, 200)}`);
    if (!videoIdParam.safeParse(clipId).success) throw notFound(`no clip with id "${clipId.slice(0, 100)}"`);
    // The video is looked up in the caller's scope first: another tenant's clip is a missing one.
    const owned = await videos.status(id, scopeOf(res)).catch((error: unknown) => {
      throw unavailableOr(error, 'the database');
    });
    if (!owned) throw notFound(`no video with id ${id}`);
    const clip = await deps.analyses.findClip(clipId);
    if (!clip || clip.videoId !== id) throw notFound(`video ${id} has no clip ${clipId}`);
    const extras = (await deps.results.clipExtras(id)).get(clipId);
    const key = file === 'file' ? clip.storageKey : file === 'voiceover' ? (extras?.voiceoverKey ?? null) : (extras?.thumbnailKey ?? clip.thumbnailKey);
    if (clip.status !== 'rendered' || !key) throw new HttpProblem(409, 'Conflict', `clip ${clipId} has no ${file} yet (clip is ${clip.status})`);
    const extension = path.extname(key).slice(1).toLowerCase();
    const type = ({ mp4: 'video/mp4', jpg: 'image/jpeg', png: 'image/png', mp3: 'audio/mpeg' } as Record<string, string>)[extension] ?? 'application/octet-stream';
    res.type(type);
    res.setHeader('content-disposition', `inline; filename="clip-${clip.clipIndex}-${file}.${extension}"`);
    await new Promise<void>((resolve, reject) =>
      // Served relative to the storage root: only the key's own segments are checked for dot
      // files, so a storage directory such as `.data/storage` does not turn every download into 403.
      res.sendFile(path.relative(deps.storage.root, deps.storage.pathOf(key)), { root: deps.storage.root, dotfiles: 'deny', maxAge: '1h' }, (error) => {
        if (!error) return resolve();
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return reject(notFound(`the file of clip ${clipId} is missing from storage`));
        if (res.headersSent) return resolve();
        reject(error);
      }),
    );
  });

  router.delete('/videos/:id', async (req, res) => {
    const id = videoIdOf(req);
    const purge = req.query.purge;
    if (purge !== undefined && purge !== 'true' && purge !== 'false') throw badRequest('purge must be true or false', [{ path: 'purge', message: 'expected true or false' }]);
    if (purge === 'true') {
      let purged: PurgeOutcome;
      try {
        purged = await deps.purge(id, scopeOf(res));
      } catch (error) {
        if (error instanceof VideoNotFinishedError) throw new HttpProblem(409, 'Conflict', error.message);
        throw unavailableOr(error);
      }
      if (purged.outcome === 'not-found') throw notFound(`no video with id ${id}`);
      res.status(200).json({ id, status: 'purged', bytesRemoved: purged.bytesRemoved });
      return;
    }
    let outcome;
    try {
      outcome = await pipeline.cancel(id, scopeOf(res));
    } catch (error) {
      throw unavailableOr(error);
    }
    if (outcome === 'not-found') throw notFound(`no video with id ${id}`);
    if (outcome === 'already-finished') {
      const status = await videos.status(id, scopeOf(res));
      throw new HttpProblem(409, 'Conflict', `video ${id} already finished (${status}); there is nothing to cancel`);
    }
    res.status(202).json({ id, status: 'cancelled' });
  });

  router.get('/videos/:id/events', async (req, res) => {
    const id = videoIdOf(req);
    const scope = scopeOf(res);
    const first = await videos.find(id, scope).catch((error: unknown) => {
      throw unavailableOr(error, 'the database');
    });
    if (!first) throw notFound(`no video with id ${id}`);
    let sent = lastEventId(req);
    if (TERMINAL.has(first.status) && sent >= first.version) {
      // The client already has the final event: 204 tells an EventSource not to reconnect.
      res.status(204).end();
      return;
    }
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
    const lifetime = setTimeout(() => stream.end(`stream ends after ${deps.limits.sseMaxSeconds} s; reconnect with Last-Event-ID`), deps.limits.sseMaxSeconds * 1000);
    stream.whenClosed(() => {
      clearInterval(refreshSlot);
      clearTimeout(lifetime);
      void deps.streamSlots.release(principal, slot);
    });
    let busy = false;
    let again = false;
    // Reads the video and sends it when it moved past what the client has; coalesces bursts.
    const push = async (view?: VideoView) => {
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
    const unsubscribe = signals.onChange((changed) => {
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
