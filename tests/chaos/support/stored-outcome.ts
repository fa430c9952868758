/**
 * What PostgreSQL holds for one finished video, summarised so a chaos test can demand
 * exactly-once effects from at-least-once delivery: scene rows equal to the generated cuts,
 * one clip row per clip index, one frame-metric row per sampled frame, one `completed` audit
 * event per essential step.
 */
import { expect } from '@jest/globals';
import type { Db } from '@clipline/shared';

/** One sampled frame at ANALYZE_FPS=10: how far a found cut may sit from the true one. */
const CUT_TOLERANCE_SECONDS = 0.1 + 1e-6;
const ESSENTIAL_STEPS = ['ingest', 'analyze', 'persist'] as const;

export interface StoredOutcome {
  videoId: string;
  status: string;
  sceneIndexes: number[];
  /** For each generated cut, whether the scene starting there was found within one sampled frame. */
  cutsFound: boolean[];
  clipIndexes: number[];
  clipStatuses: string[];
  clipCandidates: number;
  frameRows: number;
  sampledFrames: number;
  /** `completed` job events per essential step. */
  completedEvents: Record<string, number>;
}

export async function storedOutcome(db: Db, videoId: string, cutSeconds: readonly number[]): Promise<StoredOutcome> {
  const [video, scenes, clips, frames, analysis, events] = await Promise.all([
    db.selectFrom('videos').select('status').where('id', '=', videoId).executeTakeFirstOrThrow(),
    db.selectFrom('scenes').select(['scene_index', 'start_seconds']).where('video_id', '=', videoId).orderBy('scene_index').execute(),
    db.selectFrom('clips').select(['clip_index', 'status']).where('video_id', '=', videoId).orderBy('clip_index').execute(),
    db
      .selectFrom('frame_metrics')
      .select((eb) => eb.fn.countAll<number>().as('rows'))
      .where('video_id', '=', videoId)
      .executeTakeFirstOrThrow(),
    db.selectFrom('analyses').select('result').where('video_id', '=', videoId).executeTakeFirst(),
    db.selectFrom('job_events').select('step').where('video_id', '=', videoId).where('status', '=', 'completed').execute(),
  ]);
  const result = (analysis?.result ?? {}) as { sampledFrames?: number; clipCandidates?: unknown[] };
  const starts = scenes.map((scene) => scene.start_seconds);
  return {
    videoId,
    status: video.status,
    sceneIndexes: scenes.map((scene) => scene.scene_index),
    cutsFound: cutSeconds.map((cut, index) => starts[index + 1] !== undefined && Math.abs(starts[index + 1]! - cut) <= CUT_TOLERANCE_SECONDS),
    clipIndexes: clips.map((clip) => clip.clip_index),
    clipStatuses: clips.map((clip) => clip.status),
    clipCandidates: result.clipCandidates?.length ?? -1,
    frameRows: Number(frames.rows),
    sampledFrames: result.sampledFrames ?? -1,
    completedEvents: Object.fromEntries(ESSENTIAL_STEPS.map((step) => [step, events.filter((event) => event.step === step).length])),
  };
}

/**
 * Asserts the video completed with every effect exactly once. The expected clip and frame
 * counts come from the stored analysis, which must exist and have chosen clips.
 */
export async function expectExactlyOnceEffects(db: Db, videoId: string, cutSeconds: readonly number[]): Promise<StoredOutcome> {
  const stored = await storedOutcome(db, videoId, cutSeconds);
  const range = (count: number) => Array.from({ length: Math.max(0, count) }, (_, index) => index);
  expect({ videoId, hasAnalysis: stored.sampledFrames > 0, hasClipCandidates: stored.clipCandidates > 0 }).toEqual({
    videoId,
    hasAnalysis: true,
    hasClipCandidates: true,
  });
  expect(stored).toEqual({
    videoId,
    status: 'completed',
    sceneIndexes: range(cutSeconds.length + 1),
    cutsFound: cutSeconds.map(() => true),
    clipIndexes: range(stored.clipCandidates),
    clipStatuses: range(stored.clipCandidates).map(() => 'rendered'),
    clipCandidates: stored.clipCandidates,
    frameRows: stored.sampledFrames,
    sampledFrames: stored.sampledFrames,
    completedEvents: Object.fromEntries(ESSENTIAL_STEPS.map((step) => [step, 1])),
  });
  return stored;
}
