/**
 * What analysis finds, declared once: the zod schemas below validate it where it crosses a
 * process boundary (worker-cpu → Redis → worker-io), and every TypeScript type is inferred from
 * them. Nothing here imports queue or database code, so the repositories can use the types.
 */
import { z } from 'zod';
import { clipAspect, clipCandidate, clipCaptions, clipOptions } from '../queues/render.js';

export const videoMetadata = z.object({
  durationSeconds: z.number().positive(),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  fps: z.number().nonnegative(),
  hasAudio: z.boolean(),
  sizeBytes: z.number().int().nonnegative(),
  videoCodec: z.string().nullable(),
});
export type VideoMetadata = z.infer<typeof videoMetadata>;

export const scene = z.object({ startSeconds: z.number().nonnegative(), endSeconds: z.number().nonnegative() });
export type Scene = z.infer<typeof scene>;

/** Loudness of the whole audio track (EBU R128). */
export const audioSummary = z.object({ integratedLufs: z.number().nullable(), loudnessRangeLu: z.number().nullable() });
export type AudioSummary = z.infer<typeof audioSummary>;

/** Pauses in speech found by the voice-activity pass (see `clips/speech.ts`). */
export const speechActivity = z.object({
  pauses: z.array(z.object({ startSeconds: z.number().nonnegative(), endSeconds: z.number().nonnegative() })),
  speechSeconds: z.number().nonnegative(),
  thresholdDb: z.number(),
});

/** What analysing one file yields; small enough to travel through Redis (no per-frame data). */
export const videoAnalysis = z.object({
  metadata: videoMetadata,
  scenes: z.array(scene),
  /** Times (seconds) where a new scene starts. */
  cutSeconds: z.array(z.number()),
  sampledFrames: z.number().int().nonnegative(),
  sampleFps: z.number().positive(),
  /** The options the candidates were chosen with, defaults filled in. */
  clipOptions,
  /** Best clips first; at most `clipOptions.clipCount`. */
  clipCandidates: z.array(clipCandidate),
  /** Null when the video has no audio or its loudness could not be measured (see `warnings`). */
  audio: audioSummary.nullable(),
  /** Pauses in speech; null without audio, absent in analyses made before speech was measured. */
  speech: speechActivity.nullable().optional(),
  /** Problems that did not stop the analysis, e.g. an audio stream that does not decode. */
  warnings: z.array(z.string()),
});
export type VideoAnalysis = z.infer<typeof videoAnalysis>;

/** What the `analyze-video` step returns: the analysis of the video's stored source. */
export const analyzeResult = videoAnalysis.extend({
  /** SHA-256 (hex) of the source bytes. */
  contentSha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** The video whose finished analysis was reused, or null when this one was analysed itself. */
  reusedFrom: z.string().nullable(),
});
export type AnalyzeResult = z.infer<typeof analyzeResult>;

/** What the `persist-analysis` step hands to the pipeline parent, which renders the candidates next. */
export const persistedAnalysis = z.object({
  scenes: z.number().int().nonnegative(),
  clipCandidates: z.array(clipCandidate),
  aspect: clipAspect,
  /** Whether the clips get captions burned in. */
  captions: clipCaptions.optional(),
  /** What the clips' boundaries follow: transcript sentences, pauses in the audio, or scene cuts. */
  boundaries: z.enum(['transcript', 'pauses', 'scenes']).optional(),
  /** What ranked them: the words and the signals, or the signals alone. */
  ranking: z.enum(['content and signals', 'signals']).optional(),
  /** Why fewer clips than asked were chosen, when so. */
  shortfall: z.string().optional(),
});
export type PersistedAnalysis = z.infer<typeof persistedAnalysis>;
