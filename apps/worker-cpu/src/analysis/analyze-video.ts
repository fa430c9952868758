import { clipOptions as clipOptionsSchema, DEFAULT_MAX_SOURCE_PIXELS, PermanentJobError, type ClipOptions, type VideoAnalysis } from '@clipline/shared';
import { speechBoundaries } from '@clipline/shared/clips';
import { LoudnessReader, type LoudnessTrack } from './audio-loudness.js';
import { runBatchPipeline } from './batch-pipeline.js';
import { probe, type FfmpegTools } from './ffmpeg.js';
import type { FrameMetrics, WithFrames } from './frame-metrics.js';
import { sampleFrames, sampleSize, sampleWidth, type AudioSink, type SampledBatch } from './frame-sampler.js';
import { FrameSignals } from './frame-signals.js';
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
  /** Largest picture accepted, in pixels (width × height). @defaultValue {@link DEFAULT_MAX_SOURCE_PIXELS} */
  maxPixels?: number;
  /** Frames per pool task; larger batches spread the cost of a task hand-off over more frames. @defaultValue 32 */
  batchFrames?: number;
  /** Content-score threshold of a cut. @defaultValue 27 */
  cutThreshold?: number;
}

export interface AnalysisInput {
  file: string;
  sizeBytes: number;
  /** What the submission asked of its clips; missing fields take their defaults. */
  clipOptions?: Partial<ClipOptions>;
}

export interface AnalysisHooks {
  signal?: AbortSignal;
  /** Called with the share done, 0..1. */
  onProgress?: (fraction: number) => void | Promise<void>;
  /** Receives each batch's metrics in order (frame index, metrics), e.g. to store them. */
  onFrameMetrics?: (firstIndex: number, metrics: FrameMetrics[]) => void | Promise<void>;
  /**
   * When given, each batch's frames are also profiled for where their interest lies (what
   * rendering's moving crop follows) and the quantised records (see `render/interest-store.ts`)
   * handed here in order, e.g. to store them.
   */
  onInterestProfiles?: (firstIndex: number, batch: InterestRecords) => void | Promise<void>;
  /** Receives the loudness track once measured, e.g. to store it. */
  onLoudness?: (track: LoudnessTrack) => void | Promise<void>;
}

/** A batch's interest profiles, quantised: `count` records of frames `width` × `height`. */
export interface InterestRecords {
  width: number;
  height: number;
  count: number;
  records: Uint8Array;
}

/** Fills in the defaults of clip options; bad options fail the job for good, naming the field. */
export function resolveClipOptions(options: unknown): ClipOptions {
  const parsed = clipOptionsSchema.safeParse(options ?? {});
  if (!parsed.success) {
    throw new PermanentJobError(
      `invalid clip options: ${parsed.error.issues.map((issue) => `${issue.path.join('.') || '(options)'}: ${issue.message}`).join('; ')}`,
    );
  }
  return parsed.data;
}

/** Frames per pool task unless the settings say otherwise. */
const DEFAULT_BATCH_FRAMES = 32;

/** Decoded duration may fall short of the container's by rounding; more than this means a truncated file. */
function tolerableShortfall(durationSeconds: number, fps: number): number {
  return Math.max(1.0, durationSeconds * 0.05) + 2 / fps;
}

/** What the audio decode yields: the loudness track, or a warning when it could not be measured. */
type LoudnessOutcome = { track: LoudnessTrack | null; warning?: string; undecodable?: true };

/** What sampling the frames yields: each frame's content score and the signals highlights are scored on. */
interface SampledFrames {
  scores: number[];
  signals: FrameSignals;
}

/**
 * The loudness and pauses of the first audio stream, measured by the frame sampler's own ffmpeg
 * (one start and one demux for both). When that ffmpeg would not start with the audio outputs,
 * the frames went on without them and a source with audio gets a warning instead of a track.
 */
function audioMeasure(): { sink: AudioSink; outcome(hasAudio: boolean): LoudnessOutcome } {
  const reader = new LoudnessReader({ speech: true });
  let dropped: string | undefined;
  return {
    sink: { log: (chunk) => reader.log(chunk), pcm: (chunk) => reader.pcm(chunk), dropped: (reason) => (dropped = reason) },
    outcome(hasAudio) {
      if (!hasAudio) return { track: null };
      if (dropped !== undefined) {
        return {
          track: null,
          undecodable: true,
          warning: `the audio could not be decoded, so its loudness and speech were not measured and the clips are silent (ffmpeg: ${dropped})`,
        };
      }
      return { track: reader.result() };
    },
  };
}

/** The source's facts, as {@link probe} gives them. */
type SourceFacts = Awaited<ReturnType<typeof probe>>;

/** The tallest picture analysed, in heights per width (a 9:16 portrait is 1.8). */
const MAX_HEIGHT_PER_WIDTH = 8;

/**
 * Starts decoding the frames before the probe answers (the sampled frames' width does not depend
 * on the source; their height follows once the probe does), so ffprobe's start-up is not paid
 * before the decode. `stop` ends the decode when the probe refuses the file.
 */

function startSampling(settings: AnalysisSettings, file: string, facts: Promise<SourceFacts>, audio: AudioSink, signal: AbortSignal | undefined) {
  const stop = new AbortController();
  const samplingSignal = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
  const batches = sampleFrames(settings.tools, {
    file,
    fps: settings.fps,
    maxSeconds: settings.maxSeconds,
    width: sampleWidth(settings.width),
    height: facts.then((probed) => {
      const size = sampleSize(probed.width, probed.height, settings.width);
      // ffmpeg's -2 rounds as sampleSize does, without its floor of 2 rows: a picture that wide gets none.
      if (Math.round((size.width * probed.height) / probed.width / 2) === 0) {
        throw new PermanentJobError(`a picture of ${probed.width}x${probed.height} is too wide to analyse`);
      }
      // A strip taller than wide by this much would make each sampled frame (and its batches) huge.
      if (size.height > MAX_HEIGHT_PER_WIDTH * size.width) {
        throw new PermanentJobError(
          `a picture of ${probed.width}x${probed.height} is too tall to analyse (at most ${MAX_HEIGHT_PER_WIDTH} times as tall as wide)`,
        );
      }
      return size.height;
    }),
    batchFrames: settings.batchFrames ?? DEFAULT_BATCH_FRAMES,
    signal: samplingSignal,
    audio,
  });
  return { batches, stop: (reason: unknown) => stop.abort(reason) };
}

/** Frames through an ffmpeg rawvideo pipe into the pool for metrics, in bounded batches. */
async function sampleFrameMetrics(
  settings: AnalysisSettings,
  batches: AsyncIterable<SampledBatch>,
  facts: SourceFacts,
  hooks: AnalysisHooks,
): Promise<SampledFrames> {
  const { signal } = hooks;
  const size = sampleSize(facts.width, facts.height, settings.width);
  const sampled: SampledFrames = { scores: [], signals: new FrameSignals() };
  const expectedFrames = Math.max(1, Math.ceil(facts.durationSeconds * settings.fps));
  const profiled = hooks.onInterestProfiles;
  await runBatchPipeline(batches, {
    frameBytes: size.width * size.height * 3,
    maxInFlight: settings.pool.threads * 2,
    start: (batch, previous): Promise<WithFrames<{ metrics: FrameMetrics[]; profiles: Uint8Array | null }>> => {
      const task = { ...size, frames: batch.frames, count: batch.count, previous };
      if (profiled) return settings.pool.analysisFrames(task, signal);
      return settings.pool.frameMetrics(task, signal).then(({ value, frames }) => ({ value: { metrics: value, profiles: null }, frames }));
    },
    returnedFrames: (result) => result.frames,
    collect: async (firstIndex, { value: { metrics, profiles } }: WithFrames<{ metrics: FrameMetrics[]; profiles: Uint8Array | null }>) => {
      if (profiles && profiled) await profiled(firstIndex, { ...size, count: metrics.length, records: profiles });
      for (const frame of metrics) sampled.scores.push(frame.contentScore);
      sampled.signals.append(firstIndex, metrics);
      await hooks.onFrameMetrics?.(firstIndex, metrics);
      await hooks.onProgress?.(Math.min(0.99, sampled.scores.length / expectedFrames));
    },
  });
  return sampled;
}

/** A file whose frames stop well before its header says it ends is truncated or corrupt. */
function assertFullyDecoded(decodedFrames: number, durationSeconds: number, fps: number): void {
  if (decodedFrames === 0) throw new PermanentJobError('no frame could be decoded');
  const decodedSeconds = decodedFrames / fps;
  if (durationSeconds - decodedSeconds > tolerableShortfall(durationSeconds, fps)) {
    throw new PermanentJobError(
      `video is truncated or corrupt: decoded ${decodedSeconds.toFixed(1)} s of the ${durationSeconds.toFixed(1)} s its header declares`,
    );
  }
}

/**
 * Where the picture ends: the header's duration, unless the decoded frames stop short of it by
 * more than two sampling periods (sound outlasting the picture, or a file cut short within
 * {@link tolerableShortfall}), and then the end of the last frame.
 */
function pictureEndSeconds(decodedFrames: number, durationSeconds: number, fps: number): number {
  const decodedSeconds = decodedFrames / fps;
  return durationSeconds - decodedSeconds > 2 / fps ? decodedSeconds : durationSeconds;
}

/**
 * The probe's facts, if the video is within the limits: no longer than `maxSeconds`, and no
 * larger a picture than `maxPixels` (each decoded frame of a huge picture costs its decoder
 * hundreds of megabytes, so a crafted 16K file could exhaust the worker's memory).
 */
function acceptedSource(facts: SourceFacts, settings: AnalysisSettings): SourceFacts {
  if (facts.durationSeconds > settings.maxSeconds) {
    throw new PermanentJobError(
      `video is ${formatDuration(facts.durationSeconds)} long, more than the ${formatDuration(settings.maxSeconds)} limit (MAX_SOURCE_SECONDS)`,
    );
  }
  const maxPixels = settings.maxPixels ?? DEFAULT_MAX_SOURCE_PIXELS;
  // The larger of the picture shown and the one decoded: pixels declared narrow (a crafted
  // aspect) must not let a larger stored picture through.
  const pixels = Math.max(facts.width * facts.height, facts.decodedPixels);
  if (pixels > maxPixels) {
    const stored = pixels > facts.width * facts.height ? ' as stored' : '';
    throw new PermanentJobError(
      `a picture of ${facts.width}x${facts.height} is ${pixels.toLocaleString('en-US')} pixels${stored}, more than the ${maxPixels.toLocaleString('en-US')} limit (MAX_SOURCE_PIXELS)`,
    );
  }
  return facts;
}

/**
 * Probes a video, samples its frames through ffmpeg into the pool for metrics, measures audio
 * loudness alongside, finds scene cuts and scores clip candidates. The main thread only moves
 * bytes: every per-pixel loop and the scoring run in the pool.
 */
export async function analyzeVideo(settings: AnalysisSettings, input: AnalysisInput, hooks: AnalysisHooks = {}): Promise<VideoAnalysis> {
  const { signal } = hooks;
  const clipOptions = resolveClipOptions(input.clipOptions);
  const probed = probe(settings.tools, input.file, signal, { readIndex: (file) => settings.pool.mp4Facts(file, signal) });
  const audioMeasured = audioMeasure();
  const sampling = startSampling(settings, input.file, probed, audioMeasured.sink, signal);
  let facts: SourceFacts;
  try {
    facts = acceptedSource(await probed, settings);
  } catch (error) {
    sampling.stop(error);
    throw error;
  }
  let sampled: SampledFrames;
  try {
    sampled = await sampleFrameMetrics(settings, sampling.batches, facts, hooks);
  } catch (error) {
    sampling.stop(error);
    throw error;
  }
  const audio = audioMeasured.outcome(facts.hasAudio);
  assertFullyDecoded(sampled.scores.length, facts.durationSeconds, settings.fps);
  if (signal?.aborted) throw signal.reason ?? new Error('analysis aborted');
  if (audio.track) await hooks.onLoudness?.(audio.track);

  // Scenes and clips end where the picture does: a clip past it would have no frame to show.
  const endSeconds = pictureEndSeconds(sampled.scores.length, facts.durationSeconds, settings.fps);
  const cutFrames = detectCutFrames(sampled.scores, { fps: settings.fps, ...(settings.cutThreshold ? { threshold: settings.cutThreshold } : {}) });
  const cutSeconds = cutFrames.map((index) => Math.round((index / settings.fps) * 1000) / 1000);
  const track = audio.track;
  const clipCandidates = await settings.pool.clipCandidates(
    {
      fps: settings.fps,
      durationSeconds: endSeconds,
      ...sampled.signals.snapshot(),
      cutFrames,
      loudness: track ? { stepSeconds: track.stepSeconds, shortTermLufs: Float32Array.from(track.shortTermLufs) } : null,
    },
    { ...clipOptions, speech: track?.speech ? speechBoundaries(endSeconds, track.speech.pauses) : null },
    signal,
  );
  return {
    metadata: {
      durationSeconds: facts.durationSeconds,
      width: facts.width,
      height: facts.height,
      fps: facts.fps,
      // Sound ffmpeg cannot decode is none to the steps after this one: a render mapping it would
      // fail every clip, and there is nothing to transcribe.
      hasAudio: facts.hasAudio && !audio.undecodable,
      sizeBytes: input.sizeBytes,
      videoCodec: facts.videoCodec,
    },
    scenes: scenesFromCuts(cutSeconds, endSeconds),
    cutSeconds,
    sampledFrames: sampled.scores.length,
    sampleFps: settings.fps,
    clipOptions,
    clipCandidates,
    audio: track ? { integratedLufs: track.integratedLufs, loudnessRangeLu: track.loudnessRangeLu } : null,
    speech: track?.speech ?? null,
    warnings: audio.warning ? [audio.warning] : [],
  };
}

function formatDuration(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.round(seconds % 60);
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(s).padStart(2, '0')}s` : `${s}s`;
}
