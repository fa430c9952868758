import { z } from 'zod';
import { defineQueue, standardRetention } from './define.js';
import { videoId } from './payloads.js';
import { clipCandidate, clipOptions } from './render.js';

export const analyzeQueue = defineQueue({
  name: 'analyze',
  resourceClass: 'cpu',
  jobs: { 'analyze-video': z.strictObject({ videoId, options: clipOptions.optional() }) },
  defaultJobOptions: { attempts: 2, backoff: { type: 'exponential', delay: 2000, jitter: 0.5 }, ...standardRetention },
});

/** What analysis hands to persistence. Validated on arrival: it crosses a process boundary. */
export const analyzeResult = z.object({
  metadata: z.object({
    durationSeconds: z.number().positive(),
    width: z.number().int().positive(),
    height: z.number().int().positive(),
    fps: z.number().nonnegative(),
    hasAudio: z.boolean(),
    sizeBytes: z.number().int().nonnegative(),
    videoCodec: z.string().nullable(),
  }),
  scenes: z.array(z.object({ startSeconds: z.number().nonnegative(), endSeconds: z.number().nonnegative() })),
  cutSeconds: z.array(z.number()),
  sampledFrames: z.number().int().nonnegative(),
  sampleFps: z.number().positive(),
  clipOptions: clipOptions,
  clipCandidates: z.array(clipCandidate),
});
export type AnalyzeResult = z.infer<typeof analyzeResult>;
