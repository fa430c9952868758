import { PermanentJobError, type Scene, type VideoMetadata } from '@clipline/shared';
import { probe, type FfmpegTools } from './ffmpeg.js';
import type { FrameMetrics } from './frame-metrics.js';
import { sampleFrames, sampleSize } from './frame-sampler.js';
import type { CpuPool } from './pool.js';
import { detectCutFrames, scenesFromCuts } from './scene-cuts.js';

export interface AnalysisSettings {
  tools: FfmpegTools;
  pool: CpuPool;
  /** Sampled frames per second. */
  fps: number;
  /** Width of sampled frames. */
  width: number;
  /** Longest video accepted, in seconds. */
  maxSeconds: number;
  /** Frames per pool task. @defaultValue 16 */
  batchFrames?: number;
  /** Content-score threshold of a cut. @defaultValue 27 */
  cutThreshold?: number;
}

export interface AnalysisResult {
  metadata: VideoMetadata;
  scenes: Scene[];
  /** Times (seconds) where a new scene starts. */
  cutSeconds: number[];
  sampledFrames: number;
  sampleFps: number;
}

export interface AnalysisHooks {
  signal?: AbortSignal;
  /** Called with the share done, 0..1. */
  onProgress?: (fraction: number) => void | Promise<void>;
  /** Receives each batch's metrics in order (frame index, metrics), e.g. to store them. */
  onFrameMetrics?: (firstIndex: number, metrics: FrameMetrics[]) => void | Promise<void>;
}

/** Decoded duration may fall short of the container's by rounding; more than this means a truncated file. */
function tolerableShortfall(durationSeconds: number, fps: number): number {
  return Math.max(1.0, durationSeconds * 0.05) + 2 / fps;
}

/**
 * Probes a video, samples its frames through ffmpeg into the pool for metrics, and finds scene
 * cuts. The main thread only moves bytes: every per-pixel loop runs in the pool.
 */
export async function analyzeVideo(settings: AnalysisSettings, file: string, sizeBytes: number, hooks: AnalysisHooks = {}) {
  const { signal } = hooks;
  const facts = await probe(settings.tools, file, signal);
  if (facts.durationSeconds > settings.maxSeconds) {
    throw new PermanentJobError(
      `video is ${formatDuration(facts.durationSeconds)} long, more than the ${formatDuration(settings.maxSeconds)} limit (MAX_SOURCE_SECONDS)`,
    );
  }
  const size = sampleSize(facts.width, facts.height, settings.width);
  const batchFrames = settings.batchFrames ?? 16;
  const maxInFlight = settings.pool.threads * 2;
  const inFlight: { firstIndex: number; metrics: Promise<FrameMetrics[]> }[] = [];
  const scores: number[] = [];
  let previousFrame: Uint8Array | null = null;
  const frameBytes = size.width * size.height * 3;
  const expectedFrames = Math.max(1, Math.ceil(facts.durationSeconds * settings.fps));

  const collect = async () => {
    const next = inFlight.shift();
    if (!next) return;
    const metrics = await next.metrics;
    for (const frame of metrics) scores.push(frame.contentScore);
    await hooks.onFrameMetrics?.(next.firstIndex, metrics);
    await hooks.onProgress?.(Math.min(0.99, scores.length / expectedFrames));
  };

  try {
    for await (const batch of sampleFrames(settings.tools, {
      file,
      fps: settings.fps,
      width: size.width,
      height: size.height,
      batchFrames,
      ...(signal ? { signal } : {}),
    })) {
      // The last frame is copied before the batch buffer is moved into a pool thread.
      const previous = previousFrame;
      previousFrame = batch.frames.slice((batch.count - 1) * frameBytes, batch.count * frameBytes);
      const metrics = settings.pool.frameMetrics({ ...size, frames: batch.frames, count: batch.count, previous }, signal);
      metrics.catch(() => {});
      inFlight.push({ firstIndex: batch.firstIndex, metrics });
      while (inFlight.length >= maxInFlight) await collect();
    }
    while (inFlight.length) await collect();
  } finally {
    // On failure, wait for tasks already handed out so no pool work outlives the job.
    await Promise.allSettled(inFlight.map((item) => item.metrics));
  }

  if (scores.length === 0) throw new PermanentJobError('no frame could be decoded');
  const decodedSeconds = scores.length / settings.fps;
  if (facts.durationSeconds - decodedSeconds > tolerableShortfall(facts.durationSeconds, settings.fps)) {
    throw new PermanentJobError(
      `video is truncated or corrupt: decoded ${decodedSeconds.toFixed(1)} s of the ${facts.durationSeconds.toFixed(1)} s its header declares`,
    );
  }
  const cutFrames = detectCutFrames(scores, { fps: settings.fps, ...(settings.cutThreshold ? { threshold: settings.cutThreshold } : {}) });
  const cutSeconds = cutFrames.map((index) => Math.round((index / settings.fps) * 1000) / 1000);
  return {
    metadata: {
      durationSeconds: facts.durationSeconds,
      width: facts.width,
      height: facts.height,
      fps: facts.fps,
      hasAudio: facts.hasAudio,
      sizeBytes,
      videoCodec: facts.videoCodec,
    },
    scenes: scenesFromCuts(cutSeconds, facts.durationSeconds),
    cutSeconds,
    sampledFrames: scores.length,
    sampleFps: settings.fps,
  } satisfies AnalysisResult;
}

function formatDuration(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.round(seconds % 60);
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(s).padStart(2, '0')}s` : `${s}s`;
}
