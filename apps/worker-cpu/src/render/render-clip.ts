import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PermanentJobError, type ClipAspect } from '@clipline/shared';
import { runBatchPipeline } from '../analysis/batch-pipeline.js';
import { expectSuccess, probe, spawnTool, type FfmpegTools, type ProbeResult } from '../analysis/ffmpeg.js';
import { sampleFrames, sampleSize } from '../analysis/frame-sampler.js';
import type { CpuPool } from '../analysis/pool.js';
import { detectCutFrames } from '../analysis/scene-cuts.js';
import { assFilter, type CaptionWord, captionDocument } from './burned-captions.js';
import { cropGeometry, type CropGeometry } from './crop-geometry.js';
import { cropExpression, type CropKeyframe } from './crop-plan.js';

export interface RenderSettings {
  tools: FfmpegTools;
  pool: CpuPool;
  /** libx264 preset. @defaultValue 'veryfast' */
  preset?: string;
  /** libx264 constant rate factor (lower is better and bigger). @defaultValue 20 */
  crf?: number;
  /** Frames per second sampled to follow the action and pick the thumbnail. @defaultValue 8 */
  sampleFps?: number;
  /** Width of those frames. @defaultValue 256 */
  sampleWidth?: number;
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
}

export interface RenderedClip {
  width: number;
  height: number;
  /** Duration of the written file, as ffprobe reads it. */
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

/** Share of the progress that following the action takes; encoding takes the rest but the thumbnail. */
const FOLLOW_SHARE = 0.2;
const ENCODE_END = 0.95;
/** A clip may end this far past the probed duration (containers round it) before it is refused. */
const END_TOLERANCE_SECONDS = 0.25;

/**
 * Renders one clip: an exact cut (decoded from a keyframe before it, trimmed to the first frame
 * at or after the start and re-encoded with libx264), reframed to the aspect with a crop window that
 * follows the region of most motion and detail, an mp4 and a JPEG of its sharpest frame.
 */
export async function renderClip(settings: RenderSettings, request: RenderRequest, hooks: RenderHooks = {}): Promise<RenderedClip> {
  const { signal } = hooks;
  const facts = await probe(settings.tools, request.source, signal);
  const start = request.startSeconds;
  if (request.endSeconds > facts.durationSeconds + END_TOLERANCE_SECONDS) {
    throw new PermanentJobError(`clip ends at ${request.endSeconds} s, after the end of the video (${facts.durationSeconds.toFixed(3)} s)`);
  }
  const end = Math.min(request.endSeconds, facts.durationSeconds);
  if (end - start < 0.1) throw new PermanentJobError(`clip ${start}-${end} s is too short to render (under 0.1 s)`);
  const geometry = cropGeometry(facts.width, facts.height, request.aspect);

  const followed = await followAction(settings, request.source, facts, geometry, start, end - start, hooks);
  const videoPart = `${request.videoFile}.part`;
  const thumbnailPart = `${request.thumbnailFile}.part`;
  const captions = await writeCaptions(request, { startSeconds: start, endSeconds: end }, geometry);
  try {
    const filter = reframeFilter(geometry, followed) + (captions ? `,${assFilter(captions.file)}` : '');
    await encode(settings, request.source, facts, { startSeconds: start, durationSeconds: end - start, filter }, videoPart, hooks);
    const output = await probe(settings.tools, videoPart, signal);
    const thumbnailSeconds = Math.max(0, Math.min(followed.thumbnailSeconds, output.durationSeconds - 0.1));
    await extractFrame(settings.tools, videoPart, thumbnailSeconds, thumbnailPart, signal);
    await rename(videoPart, request.videoFile);
    await rename(thumbnailPart, request.thumbnailFile);
    await hooks.onProgress?.(1);
    return {
      width: output.width,
      height: output.height,
      durationSeconds: output.durationSeconds,
      thumbnailSeconds,
      crop: { width: geometry.width, height: geometry.height, x: followed.x, y: followed.y },
    };
  } finally {
    await Promise.all([rm(videoPart, { force: true }), rm(thumbnailPart, { force: true }), captions?.remove()]);
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
  const dir = await mkdtemp(path.join(os.tmpdir(), 'clipline-captions-'));
  const file = path.join(dir, 'captions.ass');
  await writeFile(file, document);
  return { file, remove: () => rm(dir, { recursive: true, force: true }) };
}

interface FollowedAction {
  x: CropKeyframe[] | null;
  y: CropKeyframe[] | null;
  thumbnailSeconds: number;
}

/**
 * Samples the clip's frames into the pool for interest profiles, sharpness and shot changes,
 * and plans the window's path along each axis it can move on.
 */
async function followAction(
  settings: RenderSettings,
  source: string,
  facts: ProbeResult,
  geometry: CropGeometry,
  startSeconds: number,
  durationSeconds: number,
  hooks: RenderHooks,
): Promise<FollowedAction> {
  const { pool } = settings;
  const { signal } = hooks;
  const fps = settings.sampleFps ?? 8;
  const size = sampleSize(facts.width, facts.height, settings.sampleWidth ?? 256);
  const columns: Float32Array[] = [];
  const rows: Float32Array[] = [];
  const sharpness: number[] = [];
  const contentScores: number[] = [];
  const expectedFrames = Math.max(1, Math.ceil(durationSeconds * fps));
  const batches = sampleFrames(settings.tools, {
    file: source,
    fps,
    ...size,
    batchFrames: 8,
    startSeconds,
    durationSeconds,
    ...(signal ? { signal } : {}),
  });
  await runBatchPipeline(batches, {
    frameBytes: size.width * size.height * 3,
    maxInFlight: pool.threads * 2,
    start: (batch, previous) => pool.clipInterest({ ...size, frames: batch.frames, count: batch.count, previous }, signal),
    collect: async (_firstIndex, frames) => {
      for (const frame of frames) {
        columns.push(frame.columns);
        rows.push(frame.rows);
        sharpness.push(frame.sharpness);
        contentScores.push(frame.contentScore);
      }
      await hooks.onProgress?.(FOLLOW_SHARE * Math.min(1, columns.length / expectedFrames));
    },
  });
  if (columns.length === 0) throw new PermanentJobError(`no frame could be decoded between ${startSeconds} s and ${startSeconds + durationSeconds} s`);

  const cutFrames = detectCutFrames(contentScores, { fps, minSceneSeconds: 0.3 });
  const plan = (profiles: Float32Array[], window: number) => pool.cropPath({ fps, profiles, window, cutFrames }, signal);
  const [x, y] = await Promise.all([
    geometry.slackX > 0 ? plan(columns, (geometry.width * size.width) / facts.width) : null,
    geometry.slackY > 0 ? plan(rows, (geometry.height * size.height) / facts.height) : null,
  ]);
  const sharpest = sharpness.reduce((best, value, index) => (value > sharpness[best]! ? index : best), 0);
  return { x, y, thumbnailSeconds: sharpest / fps };
}

/** The filter chain of a clip: the moving crop, square pixels, 4:2:0 for every player. */
export function reframeFilter(geometry: CropGeometry, followed: Pick<FollowedAction, 'x' | 'y'>): string {
  const x = followed.x ? cropExpression(followed.x, geometry.slackX) : String(Math.floor(geometry.slackX / 2));
  const y = followed.y ? cropExpression(followed.y, geometry.slackY) : String(Math.floor(geometry.slackY / 2));
  return `crop=w=${geometry.width}:h=${geometry.height}:x=${x}:y=${y},setsar=1,format=yuv420p`;
}

/** Seconds the input seek lands before the clip; the exact cut is the trim filters' job. */
const SEEK_MARGIN_SECONDS = 3;

async function encode(
  settings: RenderSettings,
  source: string,
  facts: ProbeResult,
  { startSeconds, durationSeconds, filter }: { startSeconds: number; durationSeconds: number; filter: string },
  target: string,
  hooks: RenderHooks,
): Promise<void> {
  // Timestamps stay those of the source (-copyts) and trim filters cut at the exact start and
  // end, then shift the clip to 0. The input seek only skips decoding: it lands a margin early
  // because it goes to a video keyframe, and audio before that position would be lost.
  const start = startSeconds.toFixed(3);
  const end = (startSeconds + durationSeconds).toFixed(3);
  const seek = startSeconds - SEEK_MARGIN_SECONDS;
  const args = [
    '-nostdin',
    '-hide_banner',
    '-loglevel',
    'error',
    '-nostats',
    '-y',
    '-copyts',
    ...(seek > 0 ? ['-ss', seek.toFixed(3)] : []),
    '-i',
    source,
    '-map',
    '0:v:0',
    '-sn',
    '-dn',
    '-vf',
    `trim=start=${start}:end=${end},setpts=PTS-${start}/TB,${filter}`,
    '-c:v',
    'libx264',
    '-preset',
    settings.preset ?? 'veryfast',
    '-crf',
    String(settings.crf ?? 20),
    ...(facts.hasAudio ? ['-map', '0:a:0', '-af', `atrim=start=${start}:end=${end},asetpts=PTS-${start}/TB`, '-c:a', 'aac', '-b:a', '128k'] : ['-an']),
    '-t',
    durationSeconds.toFixed(3),
    '-movflags',
    '+faststart',
    '-progress',
    'pipe:1',
    '-f',
    'mp4',
    target,
  ];
  const run = spawnTool(settings.tools.ffmpegPath, args, hooks.signal);
  run.child.stdout?.setEncoding('utf8');
  let pending = '';
  run.child.stdout?.on('data', (chunk: string) => {
    const lines = (pending + chunk).split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      const done = /^out_time_us=(\d+)/.exec(line);
      if (!done) continue;
      const fraction = Math.min(1, Number(done[1]) / 1e6 / durationSeconds);
      void Promise.resolve(hooks.onProgress?.(FOLLOW_SHARE + (ENCODE_END - FOLLOW_SHARE) * fraction)).catch(() => {});
    }
  });
  await expectSuccess(run, 'rendering the clip failed', hooks.signal);
}

async function extractFrame(tools: FfmpegTools, video: string, seconds: number, target: string, signal?: AbortSignal): Promise<void> {
  const args = [
    '-nostdin',
    '-hide_banner',
    '-loglevel',
    'error',
    '-y',
    '-ss',
    seconds.toFixed(3),
    '-i',
    video,
    '-frames:v',
    '1',
    '-q:v',
    '3',
    '-update',
    '1',
    '-f',
    'image2',
    target,
  ];
  await expectSuccess(spawnTool(tools.ffmpegPath, args, signal), 'writing the thumbnail failed', signal);
}
