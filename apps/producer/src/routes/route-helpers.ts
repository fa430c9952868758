import type { Request } from 'express';
import type { z } from 'zod';
import { InvalidCursorError, InvalidSubmissionError, isRedisOrDatabaseOutage, type ClipExtras, type ClipView, type VideoView } from '@clipline/shared';
import { describeIssues, videoIdParam } from '../api-schemas.js';
import { badRequest, HttpProblem, notFound, serviceUnavailable } from '../http/problem.js';

/** Statuses a video never leaves. */
export const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

export function requireJson(req: Request): unknown {
  if (!req.is('application/json')) {
    throw new HttpProblem(415, 'Unsupported Media Type', 'send the body as JSON with "Content-Type: application/json"');
  }
  return req.body;
}

/** The value `schema` makes of `value`, or a 400 naming every field it refused. */
export function parse<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const { detail, errors } = describeIssues(parsed.error);
    throw badRequest(detail, errors);
  }
  return parsed.data;
}

/** Errors of a lost Redis or database connection: the client may retry later. */
export const isUnavailable = isRedisOrDatabaseOutage;

/** The answer an error of the producer or the repositories deserves: 400 for bad input, 503 for an outage. */
export function unavailableOr(error: unknown, what = 'the job queue or database'): unknown {
  if (error instanceof InvalidSubmissionError) return badRequest(error.message, [{ path: error.path, message: error.reason }]);
  if (error instanceof InvalidCursorError) return badRequest(error.message, [{ path: 'cursor', message: error.message }]);
  if (isUnavailable(error)) return serviceUnavailable(`${what} is unreachable; retry shortly`);
  return error;
}

/** Runs a database read, turning an outage into 503. */
export async function fromDatabase<T>(read: Promise<T>): Promise<T> {
  return read.catch((error: unknown) => {
    throw unavailableOr(error, 'the database');
  });
}

export function guardQueue(queueReady: () => boolean): void {
  if (!queueReady()) throw serviceUnavailable('the job queue (Redis) is unreachable; retry shortly');
}

/**
 * The video id of the path. Ids are issued in lower case; one sent in upper case names the same
 * video on every engine (PostgreSQL's uuid type ignores case, MySQL's char(36) and SQLite's text
 * do not).
 */
export function videoIdOf(req: Request): string {
  const id = String(req.params.id);
  if (!videoIdParam.safeParse(id).success) throw notFound(`no video with id "${id.slice(0, 100)}" (ids are UUIDs)`);
  return id.toLowerCase();
}

export const links = (id: string) => ({ self: `/v1/videos/${id}`, events: `/v1/videos/${id}/events` });
export const present = (video: VideoView) => ({ ...video, links: links(video.id) });

/** A clip as the API shows it: its files download through the API (same key) once rendered. */
export function presentClip(videoId: string, clip: ClipView, extras: ClipExtras | undefined) {
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
    // As the file route serves it: only for a rendered clip (a failed one's voice-over would answer 409).
    voiceoverUrl: rendered && extras?.voiceoverKey ? `${base}/voiceover` : null,
  };
}
