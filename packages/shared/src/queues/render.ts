import { z } from 'zod';
import { defineQueue, standardRetention } from './define.js';
import { videoId } from './payloads.js';

export const clipAspect = z.enum(['9:16', '1:1', '16:9'], { message: 'aspect must be one of 9:16, 1:1, 16:9' });
export type ClipAspect = z.infer<typeof clipAspect>;

export const clipCaptions = z.enum(['off', 'burned'], { message: 'captions must be one of off, burned' });
export type ClipCaptions = z.infer<typeof clipCaptions>;

/**
 * What a submission asks of its clips; analysis scores candidates with it and rendering frames
 * them. Every field has a default, so `{}` is valid.
 */
export const clipOptions = z
  .strictObject({
    /** Clips kept after scoring. @defaultValue 3 */
    clipCount: z.number().int().min(1).max(20).default(3),
    /** Shortest clip, in seconds. @defaultValue 5 */
    minClipSeconds: z.number().min(1).max(300).default(5),
    /** Longest clip, in seconds. @defaultValue 30 */
    maxClipSeconds: z.number().min(1).max(600).default(30),
    /** Aspect of the rendered clips. @defaultValue '9:16' */
    aspect: clipAspect.default('9:16'),
    /** `burned`: the words said, timed to the speech, drawn into the picture (needs a transcript). @defaultValue 'off' */
    captions: clipCaptions.default('off'),
  })
  .refine((options) => options.minClipSeconds <= options.maxClipSeconds, {
    message: 'minClipSeconds must not exceed maxClipSeconds',
    path: ['minClipSeconds'],
  });
export type ClipOptions = z.output<typeof clipOptions>;

/** A stretch of a video that highlight scoring proposes as a clip. */
export const clipCandidate = z.object({
  startSeconds: z.number().nonnegative(),
  endSeconds: z.number().positive(),
  /** 0-100. */
  score: z.number().min(0).max(100),
  /** Why it scored as it did, strongest first, e.g. "strong motion". */
  reasons: z.array(z.string().max(200)).max(10),
});
export type ClipCandidate = z.infer<typeof clipCandidate>;

export const renderClipPayload = z
  .strictObject({
    videoId,
    /** Rank of the clip among the video's candidates, 0 first; with videoId it names the clip. */
    clipIndex: z.number().int().min(0).max(99),
    startSeconds: z.number().nonnegative(),
    endSeconds: z.number().positive(),
    aspect: clipAspect,
    score: z.number().min(0).max(100),
    reasons: z.array(z.string().max(200)).max(10).default([]),
    captions: clipCaptions.default('off'),
  })
  .refine((clip) => clip.endSeconds > clip.startSeconds, { message: 'endSeconds must be after startSeconds', path: ['endSeconds'] });
export type RenderClipPayload = z.output<typeof renderClipPayload>;

export const renderQueue = defineQueue({
  name: 'render',
  resourceClass: 'cpu',
  jobs: { 'render-clip': renderClipPayload },
  defaultJobOptions: { attempts: 3, backoff: { type: 'exponential', delay: 2000, jitter: 0.5 }, ...standardRetention },
});

/** What a finished `render-clip` job returns (also recorded in its `clips` row). */
export const renderClipResult = z.object({
  clipId: z.uuid(),
  storageKey: z.string().min(1),
  thumbnailKey: z.string().min(1),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  durationSeconds: z.number().positive(),
});
export type RenderClipResult = z.infer<typeof renderClipResult>;

/** Storage keys of a clip's files: `videos/<id>/clips/<n>.mp4` and `.jpg`. */
export function clipStorageKeys(videoIdValue: string, clipIndex: number): { video: string; thumbnail: string } {
  return { video: `videos/${videoIdValue}/clips/${clipIndex}.mp4`, thumbnail: `videos/${videoIdValue}/clips/${clipIndex}.jpg` };
}

/** The render jobs of a video's candidates, ranked as scoring left them. */
export function renderClipPayloads(
  videoIdValue: string,
  candidates: readonly ClipCandidate[],
  aspect: ClipAspect,
  captions: ClipCaptions = 'off',
): RenderClipPayload[] {
  return candidates.map((candidate, clipIndex) => ({
    captions,
    videoId: videoIdValue,
    clipIndex,
    startSeconds: candidate.startSeconds,
    endSeconds: candidate.endSeconds,
    aspect,
    score: candidate.score,
    reasons: [...candidate.reasons],
  }));
}
