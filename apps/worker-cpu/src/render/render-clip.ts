import { rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeScratchDir, PermanentJobError, partFileFor, removeOtherParts, type ClipAspect } from '@clipline/shared';
import { runBatchPipeline } from '../analysis/batch-pipeline.js';
import { expectSuccess, probe, spawnTool, type FfmpegTools } from '../analysis/ffmpeg.js';
import { DEFAULT_STALL_TIMEOUT_MS, followProgress, StallWatchdog } from '@clipline/shared';
import { sampleSize } from '../analysis/frame-sampler.js';
import type { CpuPool } from '../analysis/pool.js';
import { detectCutFrames } from '../analysis/scene-cuts.js';
import { assFilter, type CaptionWord, captionDocument } from './burned-captions.js';
import { CLIP_AUDIO, sampleClip } from './clip-sampler.js';
import { cropGeometry, type CropGeometry } from './crop-geometry.js';
import { cropExpression, type CropKeyframe } from './crop-plan.js';
import type { InterestBatch } from './interest-profile.js';
import type { RenderCores } from './render-cores.js';
import type { AnalysedFrame, SourceAnalysis, SourceFacts } from './stored-analysis.js';

export interface RenderSettings {
  tools: FfmpegTools;
  pool: CpuPool;
  /** libx264 preset. @defaultValue 'veryfast' */
  preset?: string;
  /** libx264 constant rate factor (lower is better and bigger). @defaultValue 20 */
  crf?: number;
  /** Frames per second sampled to follow the action and pick the thumbnail. @defaultValue 8 */
  sampleFps?: number;
  /**
   * Width of those frames; as narrow as analysis samples, the window still moves in steps of a few
   * source pixels, and the bytes piped, copied and profiled are 2.5 times fewer than at 256.
   * @defaultValue 160
   */
  sampleWidth?: number;
  /** Shares the process's cores between renders running at once; absent, ffmpeg picks its threads. */
  cores?: RenderCores;
  /**
   * Milliseconds an ffmpeg run of the render may go without progress (no frame sampled, no
   * frame encoded); past that it is killed and the render fails, to be tried again.
   * @defaultValue 60000
   */
  stallTimeoutMs?: number;
}

export interface RenderRequest {
  source: string;
  startSeconds: number;
  endSeconds: number;
  aspect: ClipAspect;
  /** Where the mp4 goes. Written under a temporary name and renamed once complete. */
  videoFile: string;
  /** Where the JPEG thumbnail goes, likewise. */
  thumbnailFile: string;
  /** Words to burn into the picture as captions (source times); absent or empty: none. */
  captions?: readonly CaptionWord[];
  /** What analysis stored of the source (see `storedAnalysis`); absent, the source is probed and measured here. */
  analysis?: SourceAnalysis | undefined;
}

export interface RenderedClip {
  width: number;
  height: number;
  /** Duration of the written file, as its mp4 header (and ffprobe) states it. */
  durationSeconds: number;
  /** Seconds into the clip of the thumbnail: the sharpest sampled frame. */
  thumbnailSeconds: number;
  /** The crop window and its path along each axis it can move on (null: it spans that axis). */
  crop: { width: number; height: number; x: CropKeyframe[] | null; y: CropKeyframe[] | null };
}

export interface RenderHooks {
  signal?: AbortSignal;
  /** Called with the share done, 0..1. */
  onProgress?: (fraction: number) => void | Promise<void>;
}

/** Share of the progress that following the action takes; encoding takes the rest. */
const FOLLOW_SHARE = 0.2;
const ENCODE_END = 0.98;
/** A clip may end this far past the probed duration (containers round it) before it is refused. */
const END_TOLERANCE_SECONDS = 0.25;

/**
 * Renders one clip: an exact cut (ffmpeg seeks the input to the keyframe before the start and
 * drops the frames before it, so only the clip's span is decoded) re-encoded with libx264,
 * reframed to the aspect with a crop window that follows the region of most motion and detail,
 * an mp4 and a JPEG of its sharpest frame written by the same ffmpeg run.
 *
 * With `request.analysis` (what analysis stored of the source), the source is not probed again
 * and the frames sampled to follow the action are only measured for where the interest lies:
 * sharpness and shot changes come from analysis. When analysis also kept the interest profiles
 * of the clip's frames, no frame is sampled at all: the path is planned from them, and the one
 * ffmpeg run is the encode.
 */
export async function renderClip(settings: RenderSettings, request: RenderRequest, hooks: RenderHooks = {}): Promise<RenderedClip> {
  const { signal } = hooks;
  const readIndex = (file: string) => settings.pool.mp4Facts(file, signal);
  const facts = request.analysis?.facts ?? (await probe(settings.tools, request.source, signal, { readIndex }));
  const start = request.startSeconds;
  if (request.endSeconds > facts.durationSeconds + END_TOLERANCE_SECONDS) {
    throw new PermanentJobError(`clip ends at ${request.endSeconds} s, after the end of the video (${facts.durationSeconds.toFixed(3)} s)`);
  }
  const end = Math.min(request.endSeconds, facts.durationSeconds);
  if (end - start < 0.1) throw new PermanentJobError(`clip ${start}-${end} s is too short to render (under 0.1 s)`);
  const geometry = cropGeometry(facts.width, facts.height, request.aspect);

  await Promise.all([request.videoFile, request.thumbnailFile, `${request.videoFile}.audio`].map(removeOtherParts));
  const lease = settings.cores?.acquire();
  const videoPart = partFileFor(request.videoFile);
  const thumbnailPart = partFileFor(request.thumbnailFile);
  const audioPart = facts.hasAudio ? partFileFor(`${request.videoFile}.audio`) : undefined;
  let captions: Awaited<ReturnType<typeof writeCaptions>> = null;
  try {
    const span = { startSeconds: start, durationSeconds: end - start };
    const followed = await followAction(settings, { ...request, facts, geometry, ...span, audioTarget: audioPart, threads: lease?.threads }, hooks);
    captions = await writeCaptions(request, { startSeconds: start, endSeconds: end }, geometry);
    const filter = reframeFilter(facts, geometry, followed) + (captions ? `,${assFilter(captions.file)}` : '');
    // The thumbnail is a frame of the clip, not past its last one.
    const thumbnailSeconds = Math.max(0, Math.min(followed.thumbnailSeconds, span.durationSeconds - 0.1));
    const targets = { video: videoPart, thumbnail: thumbnailPart };
    const audio = followed.audioEncoded && audioPart ? { file: audioPart } : facts.hasAudio ? 'encode' : 'none';
    await encode(settings, request.source, { ...span, filter, thumbnailSeconds, threads: lease?.threads, audio }, targets, hooks);
    // Read from the written file's index (ffprobe only if that fails); a clip's index is short
    // enough to walk in this thread.
    const { durationSeconds } = await probe(settings.tools, videoPart, signal);
    await rename(videoPart, request.videoFile);
    await rename(thumbnailPart, request.thumbnailFile);
    await hooks.onProgress?.(1);
    return {
      width: geometry.width,
      height: geometry.height,
      durationSeconds,
      thumbnailSeconds,
      crop: { width: geometry.width, height: geometry.height, x: followed.x, y: followed.y },
    };
  } finally {
    lease?.release();
    const parts = [videoPart, thumbnailPart, ...(audioPart ? [audioPart] : [])];
    await Promise.all([...parts.map((part) => rm(part, { force: true })), captions?.remove()]);
  }
}

/** The clip's captions as an ASS file in a temporary folder, or null when there are none to burn. */
async function writeCaptions(
  request: RenderRequest,
  span: { startSeconds: number; endSeconds: number },
  geometry: CropGeometry,
): Promise<{ file: string; remove: () => Promise<void> } | null> {
  if (!request.captions?.length) return null;
  const document = captionDocument(request.captions, span, { width: geometry.width, height: geometry.height, aspect: request.aspect });
  if (!document) return null;
  const dir = await makeScratchDir('captions');
  const file = path.join(dir, 'captions.ass');
  const remove = () => rm(dir, { recursive: true, force: true });
  try {
    await writeFile(file, document);
  } catch (error) {
    await remove();
    throw error;
  }
  return { file, remove };
}

interface FollowedAction {
  x: CropKeyframe[] | null;
  y: CropKeyframe[] | null;
  thumbnailSeconds: number;
  /** True when the clip's sound was encoded into the audio target while the frames were sampled. */
  audioEncoded?: boolean;
}

/** What following the action works on: the source, its facts, the window and the clip's span. */
interface FollowTarget {
  source: string;
  facts: SourceFacts;
  geometry: CropGeometry;
  startSeconds: number;
  durationSeconds: number;
  analysis?: SourceAnalysis | undefined;
  /** Where the sampling run encodes the clip's sound (absent: the source has none). */
  audioTarget?: string | undefined /** ffmpeg threads of this render (its share of the cores). */;
  threads?: number | undefined;
}

/** What sampling the clip's frames yields: each frame's profiles, and its metrics when measured. */
interface SampledInterest {
  columns: Float32Array[];
  rows: Float32Array[];
  sharpness: number[];
  contentScores: number[];
}

/**
 * Samples the clip's frames into the pool for interest profiles (and, without analysis to reuse,
 * sharpness and shot changes), and plans the window's path along each axis it can move on.
 */
async function followAction(settings: RenderSettings, target: FollowTarget, hooks: RenderHooks): Promise<FollowedAction> {
  const { pool } = settings;
  const { signal } = hooks;
  const { facts, geometry } = target;
  const fps = settings.sampleFps ?? 8;
  const size = sampleSize(facts.width, facts.height, settings.sampleWidth ?? 160);
  const analysed = target.analysis?.frames;
  // Nothing moves (the window spans the picture) and analysis chose the thumbnail: no need to decode.
  if (geometry.slackX <= 0 && geometry.slackY <= 0 && analysed) return { x: null, y: null, thumbnailSeconds: sharpestAnalysed(analysed.list, target) };
  // Analysis kept the profiles of the clip's frames, at least as fine as sampling would: no need to decode either.
  const interest = target.analysis?.interest;
  if (analysed && interest && interest.width >= size.width && interest.columns.length === analysed.list.length) {
    return followStored(settings, target, { analysed, interest }, hooks);
  }
  const sampled = await sampleInterest(settings, target, { fps, size, profilesOnly: analysed !== undefined }, hooks);
  if (sampled.columns.length === 0) {
    throw new PermanentJobError(`no frame could be decoded between ${target.startSeconds} s and ${target.startSeconds + target.durationSeconds} s`);
  }
  const cutFrames = analysed ? analysedCutFrames(analysed, target.startSeconds, fps) : detectCutFrames(sampled.contentScores, { fps, minSceneSeconds: 0.3 });
  const plan = (profiles: Float32Array[], window: number) => pool.cropPath({ fps, profiles, window, cutFrames }, signal);
  const [x, y] = await Promise.all([
    geometry.slackX > 0 ? plan(sampled.columns, (geometry.width * size.width) / facts.width) : null,
    geometry.slackY > 0 ? plan(sampled.rows, (geometry.height * size.height) / facts.height) : null,
  ]);
  const thumbnailSeconds = analysed ? sharpestAnalysed(analysed.list, target) : indexOfMax(sampled.sharpness) / fps;
  return { x, y, thumbnailSeconds, audioEncoded: target.audioTarget !== undefined };
}

/**
 * Plans the window's path from the profiles analysis kept of the clip's frames: their time base
 * is analysis's (its rate, its first frame up to half a sample off the clip's start), and so are
 * the shot changes, found in the same frames.
 */
async function followStored(
  settings: RenderSettings,
  target: FollowTarget,
  stored: { analysed: NonNullable<SourceAnalysis['frames']>; interest: NonNullable<SourceAnalysis['interest']> },
  hooks: RenderHooks,
): Promise<FollowedAction> {
  const { facts, geometry } = target;
  const { analysed, interest } = stored;
  const cutFrames = detectCutFrames(
    analysed.list.map((frame) => frame.contentScore),
    { fps: analysed.fps, minSceneSeconds: 0.3 },
  );
  const startSeconds = analysed.list[0]!.timeSeconds - target.startSeconds;
  const plan = (profiles: Float32Array[], window: number) =>
    settings.pool.cropPath({ fps: interest.fps, profiles, window, cutFrames, startSeconds }, hooks.signal);
  const [x, y] = await Promise.all([
    geometry.slackX > 0 ? plan(interest.columns, (geometry.width * interest.width) / facts.width) : null,
    geometry.slackY > 0 ? plan(interest.rows, (geometry.height * interest.height) / facts.height) : null,
  ]);
  await hooks.onProgress?.(FOLLOW_SHARE);
  return { x, y, thumbnailSeconds: sharpestAnalysed(analysed.list, target) };
}

/** Decodes the clip's frames (input-side seek: only its span) through the pool, in order. */
async function sampleInterest(
  settings: RenderSettings,
  target: FollowTarget,
  sampling: { fps: number; size: { width: number; height: number }; profilesOnly: boolean },
  hooks: RenderHooks,
): Promise<SampledInterest> {
  const { pool } = settings;
  const { signal } = hooks;
  const { fps, size, profilesOnly } = sampling;
  const sampled: SampledInterest = { columns: [], rows: [], sharpness: [], contentScores: [] };
  const expectedFrames = Math.max(1, Math.ceil(target.durationSeconds * fps));
  const batches = sampleClip(settings.tools, {
    file: target.source,
    fps,
    ...size,
    batchFrames: 8,
    startSeconds: target.startSeconds,
    durationSeconds: target.durationSeconds,
    audioTarget: target.audioTarget,
    threads: target.threads,
    stallTimeoutMs: settings.stallTimeoutMs,
    signal,
  });
  await runBatchPipeline(batches, {
    frameBytes: size.width * size.height * 3,
    maxInFlight: pool.threads * 2,
    start: (batch, previous) => {
      const task: InterestBatch = { ...size, frames: batch.frames, count: batch.count, previous, profilesOnly };
      return pool.clipInterest(task, signal);
    },
    returnedFrames: (result) => result.frames,
    collect: async (_firstIndex, { value }) => {
      for (const frame of value) {
        sampled.columns.push(frame.columns);
        sampled.rows.push(frame.rows);
        sampled.sharpness.push(frame.sharpness);
        sampled.contentScores.push(frame.contentScore);
      }
      await hooks.onProgress?.(FOLLOW_SHARE * Math.min(1, sampled.columns.length / expectedFrames));
    },
  });
  return sampled;
}

/** Shot changes analysis found within the clip, as indices of the frames sampled at `fps` from its start. */
function analysedCutFrames(analysed: NonNullable<SourceAnalysis['frames']>, startSeconds: number, fps: number): number[] {
  const cuts = detectCutFrames(
    analysed.list.map((frame) => frame.contentScore),
    { fps: analysed.fps, minSceneSeconds: 0.3 },
  );
  const indices = cuts.map((index) => Math.round((analysed.list[index]!.timeSeconds - startSeconds) * fps)).filter((index) => index > 0);
  return [...new Set(indices)];
}

/** Seconds into the clip of the sharpest frame analysis sampled in it. */
function sharpestAnalysed(frames: readonly AnalysedFrame[], target: FollowTarget): number {
  const best = frames[indexOfMax(frames.map((frame) => frame.sharpness))];
  return best ? Math.max(0, best.timeSeconds - target.startSeconds) : 0;
}

function indexOfMax(values: readonly number[]): number {
  return values.reduce((best, value, index) => (value > values[best]! ? index : best), 0);
}

/**
 * The filter chain of a clip: the decoded frames brought to the displayed picture's size (`picture`,
 * the source's facts: non-square pixels made square; ffmpeg passes frames of that size through
 * untouched), the moving crop, square pixels, 4:2:0 for every player.
 */
export function reframeFilter(picture: { width: number; height: number }, geometry: CropGeometry, followed: Pick<FollowedAction, 'x' | 'y'>): string {
  const x = followed.x ? cropExpression(followed.x, geometry.slackX) : String(Math.floor(geometry.slackX / 2));
  const y = followed.y ? cropExpression(followed.y, geometry.slackY) : String(Math.floor(geometry.slackY / 2));
  return `scale=w=${picture.width}:h=${picture.height},crop=w=${geometry.width}:h=${geometry.height}:x=${x}:y=${y},setsar=1,format=yuv420p`;
}

/** What one encode run makes of the clip's span. */
interface EncodeJob {
  startSeconds: number;
  durationSeconds: number;
  /** The clip's filter chain (crop, captions). */
  filter: string;
  /** Seconds into the clip of the frame written as the thumbnail. */
  thumbnailSeconds: number;
  /** ffmpeg threads (decoder, filters, encoder); undefined lets ffmpeg choose. */
  threads: number | undefined;
  /** The clip's sound: already encoded in a file (copied in), encoded here, or none. */
  audio: { file: string } | 'encode' | 'none';
}

/**
 * The ffmpeg arguments of a clip. The input seek (`-ss`/`-t` before `-i`) makes ffmpeg read
 * from the keyframe before the start and drop every frame and audio sample before it, so the
 * cut is exact and only the span is decoded. The filtered picture is split: one branch is
 * encoded, the other gives up one frame as the JPEG thumbnail, then closes.
 */
export function encodeArgs(
  source: string,
  job: EncodeJob,
  settings: Pick<RenderSettings, 'preset' | 'crf'>,
  targets: { video: string; thumbnail: string },
): string[] {
  const threads = job.threads ? ['-threads', String(job.threads)] : [];
  const still = job.thumbnailSeconds.toFixed(3);
  const { audio } = job;
  // `?`: a span the sound track does not reach leaves the sampler's file without a stream, and
  // the clip without sound, as encoding it here would.
  const sound = typeof audio === 'object' ? ['-map', '1:a:0?', '-c:a', 'copy'] : audio === 'encode' ? ['-map', '0:a:0', ...CLIP_AUDIO] : [];
  return [
    '-nostdin',
    '-hide_banner',
    '-loglevel',
    'error',
    '-nostats',
    '-y',
    ...(job.threads ? ['-filter_complex_threads', String(job.threads)] : []),
    ...threads,
    '-ss',
    job.startSeconds.toFixed(3),
    '-t',
    job.durationSeconds.toFixed(3),
    '-i',
    source,
    ...(typeof audio === 'object' ? ['-i', audio.file] : []),
    '-filter_complex',
    `[0:V:0]${job.filter},split=2[clip][still];[still]trim=start=${still},trim=end_frame=1[thumbnail]`,
    '-map',
    '[clip]',
    '-c:v',
    'libx264',
    '-preset',
    settings.preset ?? 'veryfast',
    '-crf',
    String(settings.crf ?? 20),
    ...threads,
    ...sound,
    '-sn',
    '-dn',
    '-movflags',
    '+faststart',
    '-progress',
    'pipe:1',
    '-f',
    'mp4',
    targets.video,
    '-map',
    '[thumbnail]',
    '-frames:v',
    '1',
    '-q:v',
    '3',
    '-update',
    '1',
    '-f',
    'image2',
    targets.thumbnail,
  ];
}

async function encode(
  settings: RenderSettings,
  source: string,
  job: EncodeJob,
  targets: { video: string; thumbnail: string },
  hooks: RenderHooks,
): Promise<void> {
  const run = await spawnTool(settings.tools.ffmpegPath, encodeArgs(source, job, settings, targets), hooks.signal);
  // ffmpeg reports twice a second; a run whose frame count and output time stand still (a
  // source on a hung mount, a wedged filter) is stopped instead of holding a render slot.
  const watchdog = new StallWatchdog(
    settings.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS,
    () => run.kill(),
    () => run.cpuTicks(),
  );
  watchdog.waiting();
  followProgress(run.output.stdout, watchdog, ['frame', 'out_time_us'], (key, value) => {
    if (key !== 'out_time_us' || !/^\d+$/.test(value)) return;
    const fraction = Math.min(1, Number(value) / 1e6 / job.durationSeconds);
    void Promise.resolve(hooks.onProgress?.(FOLLOW_SHARE + (ENCODE_END - FOLLOW_SHARE) * fraction)).catch(() => {});
  });
  try {
    await expectSuccess(run, 'rendering the clip failed', hooks.signal);
  } catch (error) {
    if (watchdog.fired && !hooks.signal?.aborted)
      throw new Error(`rendering the clip stalled: ffmpeg made no progress for ${watchdog.limitMs / 1000} s and was stopped`);
    throw error;
  } finally {
    watchdog.stop();
  }
}
