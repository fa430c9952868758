/**
 * The HTTP contract in zod: requests are validated with these schemas and the OpenAPI document
 * is generated from them (openapi.ts), so the two cannot drift apart.
 */
import { clipAspect, clipOptions, hasControlCharacters } from '@clipline/shared';
import { z } from 'zod';

/** A refinement naming the field whose text holds a NUL, which PostgreSQL cannot store (tabs and line breaks are fine). */
export const withoutNul = (field: string) => [(value: string) => !value.includes('\u0000'), `${field} must not contain NUL characters`] as const;

const httpUrl = z
  .string()
  .max(2048, 'callbackUrl is longer than 2048 characters')
  .refine((value) => !hasControlCharacters(value), 'callbackUrl must not contain control characters')
  .refine((value) => {
    try {
      const url = new URL(value);
      return (url.protocol === 'https:' || url.protocol === 'http:') && !url.username && !url.password;
    } catch {
      return false;
    }
  }, 'callbackUrl must be an http(s) URL without credentials');

/** Clip options as the CPU workers read them; omitted fields get their documented defaults. */
export const videoOptions = clipOptions;

/** `POST /v1/videos` body. Unknown fields are refused, so a typo never goes unnoticed. */
export const videoSubmission = z
  .strictObject({
    source: z
      .string({
        error: (issue) => `source ${issue.input === undefined ? 'is required' : 'must be a string'}: a file path, file:// URL or http(s) URL`,
      })
      .trim()
      .min(1, 'source must not be empty')
      .max(4096, 'source is longer than 4096 characters')
      .meta({ description: 'Absolute local path, file:// URL or http(s) URL of the video', example: 'https://cdn.example.com/talk.mp4' }),
    title: z
      .string()
      .trim()
      .max(300, 'title is longer than 300 characters')
      .refine(...withoutNul('title'))
      .nullish(),
    options: videoOptions.optional(),
    callbackUrl: httpUrl.optional().meta({ description: 'Receives a signed POST when the video completes or fails' }),
    priority: z.enum(['high', 'normal', 'low']).optional().meta({ description: 'Queue priority (default normal)' }),
    delaySeconds: z
      .number()
      .min(0)
      .max(7 * 24 * 3600)
      .optional()
      .meta({ description: 'Start processing no sooner than this' }),
    youtubeId: z
      .string()
      .regex(/^[A-Za-z0-9_-]{11}$/, 'youtubeId must be an 11-character YouTube video id')
      .optional()
      .meta({ description: 'The same video on YouTube: its metadata is fetched and kept fresh' }),
  })
  .meta({ id: 'VideoSubmission' });
export type VideoSubmissionBody = z.infer<typeof videoSubmission>;

export const MAX_BATCH = 1000;
export const videoBatch = z
  .strictObject({
    videos: z.array(videoSubmission).min(1, 'videos must hold at least one submission').max(MAX_BATCH, `at most ${MAX_BATCH} videos per batch`),
  })
  .meta({ id: 'VideoBatch' });

export const videoListQuery = z.strictObject({
  status: z.enum(['queued', 'processing', 'completed', 'failed', 'cancelled']).optional(),
  // Given twice (`?limit=1&limit=2`) it is a list, which coerces to no number: the same message.
  limit: z.coerce
    .number({ error: 'limit must be a whole number 1-100' })
    .int('limit must be a whole number 1-100')
    .min(1, 'limit must be 1-100')
    .max(100, 'limit must be 1-100')
    .default(20),
  cursor: z
    .string()
    .max(512)
    .optional()
    .describe("The previous page's nextCursor: the next page starts after that place in the order, whether or not that video still exists"),
});

export const videoIdParam = z.uuid();

const links = z.object({ self: z.string(), events: z.string().optional() });

export const submissionAccepted = z.object({ id: z.uuid(), status: z.literal('queued'), links }).meta({ id: 'SubmissionAccepted' });

export const batchAccepted = z.object({ videos: z.array(submissionAccepted) }).meta({ id: 'BatchAccepted' });

const stepView = z.object({
  name: z.string(),
  status: z.enum(['pending', 'active', 'completed', 'failed', 'skipped', 'cancelled']),
  reason: z.string().nullable(),
  attempts: z.number().int(),
  updatedAt: z.string(),
});

export const videoView = z
  .object({
    id: z.uuid(),
    tenant: z.string().describe('The tenant that owns the video'),
    status: z.enum(['queued', 'processing', 'completed', 'failed', 'cancelled']),
    progress: z.number().int().min(0).max(100),
    version: z.number().int(),
    priority: z.enum(['high', 'normal', 'low']),
    options: z.record(z.string(), z.unknown()),
    callbackUrl: z.string().nullable(),
    youtubeId: z.string().nullable(),
    youtube: z.record(z.string(), z.unknown()).nullable().optional().meta({ description: 'YouTube metadata as last fetched (on GET /v1/videos/{id})' }),
    title: z.string().nullable(),
    source: z.string(),
    error: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
    completedAt: z.string().nullable(),
    metadata: z
      .object({
        durationSeconds: z.number(),
        width: z.number().int(),
        height: z.number().int(),
        fps: z.number(),
        hasAudio: z.boolean(),
        sizeBytes: z.number().int(),
        videoCodec: z.string().nullable(),
      })
      .nullable(),
    scenes: z.array(z.object({ startSeconds: z.number(), endSeconds: z.number() })),
    steps: z.array(stepView),
    clips: z
      .array(
        z.object({
          id: z.uuid(),
          index: z.number().int(),
          status: z.enum(['pending', 'rendered', 'failed']),
          startSeconds: z.number(),
          endSeconds: z.number(),
          durationSeconds: z.number().nullable(),
          score: z.number().min(0).max(100),
          reasons: z.array(z.string()),
          aspect: clipAspect,
          width: z.number().int().nullable(),
          height: z.number().int().nullable(),
          error: z.string().nullable(),
          url: z.string().nullable().meta({ description: 'Downloads the mp4 with the same API key; null until rendered' }),
          thumbnailUrl: z.string().nullable(),
        }),
      )
      .optional()
      .meta({ description: 'Ranked clips (on GET /v1/videos/{id})' }),
    links,
  })
  .meta({ id: 'Video' });

export const userView = z
  .object({
    id: z.uuid(),
    email: z.string(),
    name: z.string().nullable(),
    status: z.enum(['pending', 'active', 'failed']),
    failure: z.string().nullable(),
    createdAt: z.string(),
    activatedAt: z.string().nullable(),
    welcomedAt: z.string().nullable(),
  })
  .meta({ id: 'User' });

export const videoList = z.object({ items: z.array(videoView), nextCursor: z.string().nullable() }).meta({ id: 'VideoList' });

export const cancelAccepted = z.object({ id: z.uuid(), status: z.literal('cancelled') }).meta({ id: 'CancelAccepted' });

export const jobAccepted = z.object({ id: z.string(), queue: z.string(), name: z.string(), status: z.string(), links }).meta({ id: 'JobAccepted' });

export const jobView = z
  .object({
    id: z.string(),
    queue: z.string(),
    name: z.string(),
    state: z.string(),
    progress: z.unknown(),
    returnValue: z.unknown(),
    failedReason: z.string().nullable(),
    attemptsMade: z.number().int(),
    createdAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
  })
  .meta({ id: 'Job' });

export const problem = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    instance: z.string().optional(),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
    videoStatus: z
      .string()
      .optional()
      .meta({ description: 'On a 409 to a cancel: the state the video had already reached (`cancelled`: an earlier cancel did it)' }),
  })
  .meta({ id: 'Problem' });

/** Flattens zod issues into `{path, message}` pairs and one readable sentence. */
export function describeIssues(error: z.ZodError): { detail: string; errors: { path: string; message: string }[] } {
  const errors = error.issues.slice(0, 20).map((issue) => ({
    path: issue.path.map(String).join('.') || '(body)',
    message: issue.message,
  }));
  const detail = errors.map((item) => (item.path === '(body)' ? item.message : `${item.path}: ${item.message}`)).join('; ');
  return { detail: detail.length > 2000 ? `${detail.slice(0, 1999)}…` : detail, errors };
}
