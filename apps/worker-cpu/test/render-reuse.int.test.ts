/**
 * Rendering on what analysis stored: the processor reads the source's facts and frame metrics
 * instead of probing and measuring again, renders share the cores, and the written clip's
 * duration is read from its mp4 header as ffprobe reads it.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { jest } from '@jest/globals';
import {
  AnalysisRepository,
  createLogger,
  LocalStorage,
  PermanentJobError,
  readMp4Movie,
  videoStorageKey,
  VideosRepository,
  type JobHandle,
  type RenderClipPayload,
} from '@clipline/shared';
import { analyzeWithReuse } from '../src/analysis/analysis-reuse.js';
import { CpuPool } from '../src/analysis/pool.js';
import { interestProfilesKey } from '../src/render/interest-store.js';
import { renderClip, type RenderSettings } from '../src/render/render-clip.js';
import { RenderCores } from '../src/render/render-cores.js';
import { renderProcessors } from '../src/render/render-processor.js';
import { storedAnalysis } from '../src/render/stored-analysis.js';
import { generateVideo, TOOLS } from '../../../tests/helpers/media.js';
import { createTestEnvironment, type TestEnvironment } from '../../../tests/helpers/services.js';

const run = promisify(execFile);
const ANALYSIS_FPS = 10;

let env: TestEnvironment;
let pool: CpuPool;
let settings: RenderSettings;
let storage: LocalStorage;

beforeAll(async () => {
  env = await createTestEnvironment();
  pool = new CpuPool({ threads: 2 });
  settings = { tools: TOOLS, pool, cores: new RenderCores(2) };
  storage = new LocalStorage(env.config.storageDir);
});

afterAll(async () => {
  await pool.close();
  await env.cleanup();
});

async function ffprobeDuration(file: string): Promise<number> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', file]);
  return Number(stdout.trim());
}

/** Share of bright pixels in the frame at `seconds`. */
async function brightShare(file: string, seconds: number): Promise<number> {
  const { stdout } = await run('ffmpeg', ['-v', 'error', '-ss', String(seconds), '-i', file, '-frames:v', '1', '-vf', 'format=gray', '-f', 'rawvideo', '-'], {
    encoding: 'buffer',
    maxBuffer: 64 * 1024 * 1024,
  });
  let bright = 0;
  for (const value of stdout) if (value > 200) bright++;
  return bright / stdout.length;
}

/** A video row with its source stored as ingest leaves it. */
async function storedVideo(videos: VideosRepository, file: string): Promise<{ videoId: string; key: string }> {
  const videoId = randomUUID();
  await videos.create({ id: videoId, source: file, title: null, steps: ['ingest', 'analyze', 'persist', 'render'] });
  const key = `videos/${videoId}/source.mp4`;
  await copyFile(file, await storage.prepare(key));
  await videos.setSource(videoId, { storageKey: key, sizeBytes: 1 });
  return { videoId, key };
}

function jobOf(data: RenderClipPayload): JobHandle<RenderClipPayload> {
  return {
    id: `${data.videoId}-render-${data.clipIndex}`,
    name: 'render-clip',
    queue: 'render',
    data,
    attemptsMade: 0,
    maxAttempts: 1,
    upstreamWaits: {},
    parentId: undefined,
    logger: createLogger({ name: 'render-reuse-test', level: 'silent' }),
    signal: new AbortController().signal,
    updateProgress: async () => {},
    childResults: async () => [],
    addChildren: async () => {},
    waitForChildren: async () => {},
  };
}

describe('RenderCores', () => {
  it('gives each render the cores divided by the renders running, at least one', () => {
    const cores = new RenderCores(4);
    const first = cores.acquire();
    const second = cores.acquire();
    const third = cores.acquire();
    expect([first.threads, second.threads, third.threads]).toEqual([4, 2, 1]);
    second.release();
    second.release();
    expect(cores.running).toBe(2);
    expect(cores.acquire().threads).toBe(1);
    expect(new RenderCores(1).acquire().threads).toBe(1);
  });
});

describe('rendering with a stored analysis', () => {
  it('takes the facts and the thumbnail from the analysis given, and states the duration ffprobe reads', async () => {
    const video = await generateVideo({ path: path.join(env.config.storageDir, 'given.mp4'), segments: [3, 3], width: 640, height: 360 });
    const videoFile = path.join(env.config.storageDir, 'given-clip.mp4');
    // The sharpest frame analysis saw is at 3.4 s: 1.4 s into a clip starting at 2 s.
    const frames = Array.from({ length: 30 }, (_, k) => ({ timeSeconds: 2 + k / 10, sharpness: k === 14 ? 500 : 10, contentScore: 1 }));
    const rendered = await renderClip(settings, {
      source: video.path,
      startSeconds: 2,
      endSeconds: 5,
      aspect: '1:1',
      videoFile,
      thumbnailFile: `${videoFile}.jpg`,
      analysis: { facts: { durationSeconds: 6, width: 640, height: 360, hasAudio: true }, frames: { fps: 10, list: frames } },
    });
    expect(rendered).toMatchObject({ width: 360, height: 360, thumbnailSeconds: 1.4 });
    expect(rendered.durationSeconds).toBeCloseTo(await ffprobeDuration(videoFile), 3);
    // Read from the clip's own index (its movie header), not by starting ffprobe.
    const movie = await readMp4Movie(videoFile);
    expect(movie!.duration / movie!.timescale).toBeCloseTo(rendered.durationSeconds, 5);
    expect(Math.abs(rendered.durationSeconds - 3)).toBeLessThan(0.1);
    expect((await stat(`${videoFile}.jpg`)).size).toBeGreaterThan(0);
  });

  it('renders a job on the analysis the pipeline stored, frame metrics covering the clip', async () => {
    const videos = new VideosRepository(env.db);
    const analyses = new AnalysisRepository(env.db);
    const source = await generateVideo({ path: path.join(env.config.storageDir, 'stored.mp4'), segments: [2, 2, 2, 2], width: 640, height: 360 });
    const videoId = randomUUID();
    await videos.create({ id: videoId, source: source.path, title: null, steps: ['ingest', 'analyze', 'persist', 'render'] });
    const key = `videos/${videoId}/source.mp4`;
    await copyFile(source.path, await storage.prepare(key));
    await videos.setSource(videoId, { storageKey: key, sizeBytes: 1 });
    const analysis = { tools: TOOLS, pool, fps: ANALYSIS_FPS, width: 160, maxSeconds: 3600 };
    const result = await analyzeWithReuse(analysis, analyses, { videoId, file: storage.pathOf(key), sizeBytes: 1 });
    await videos.saveAnalysis(videoId, result.metadata, result.scenes);

    const span = { startSeconds: 1.5, endSeconds: 6.5 };
    const stored = await storedAnalysis({ videos, analyses }, videoId, span, ANALYSIS_FPS);
    expect(stored?.facts).toMatchObject({ width: 640, height: 360, hasAudio: true });
    expect(stored?.frames?.list.length).toBe(50);
    expect(stored?.frames?.list[0]?.timeSeconds).toBeCloseTo(1.5, 3);

    const processor = renderProcessors({ settings, analyses, storage, videos, analysisFps: ANALYSIS_FPS })['render-clip'];
    const payloads = [0, 1, 2].map((clipIndex) => ({ videoId, clipIndex, ...span, aspect: '9:16' as const, score: 50, reasons: [] }));
    const results = await Promise.all(payloads.map((payload) => processor(jobOf(payload))));
    for (const clip of results) {
      expect(clip).toMatchObject({ width: 198, height: 352 });
      expect(Math.abs(clip.durationSeconds - 5)).toBeLessThan(0.1);
      expect(clip.durationSeconds).toBeCloseTo(await ffprobeDuration(storage.pathOf(clip.storageKey)), 3);
    }
    expect((await analyses.listClips(videoId)).map((clip) => clip.status)).toEqual(['rendered', 'rendered', 'rendered']);
  });
});

describe('rendering on the interest profiles analysis kept', () => {
  it('follows the moving subject from the kept profiles without sampling a frame; a reusing video keeps its own copy', async () => {
    const videos = new VideosRepository(env.db);
    const analyses = new AnalysisRepository(env.db);
    // A white square drifting right on a dark ground, in the right third of a 16:9 picture.
    const box = path.join(env.config.storageDir, 'kept-box.mp4');
    const graph = "color=c=0x202020:size=640x360:rate=25[bg];color=c=white:size=60x60:rate=25[box];[bg][box]overlay=x='430+20*t':y=150:shortest=1";
    await run('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', graph, '-t', '6', '-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', box]);
    const { videoId, key } = await storedVideo(videos, box);
    const analysis = { tools: TOOLS, pool, fps: ANALYSIS_FPS, width: 160, maxSeconds: 3600 };
    const result = await analyzeWithReuse(analysis, analyses, { videoId, file: storage.pathOf(key), sizeBytes: 1, storage });
    await videos.saveAnalysis(videoId, result.metadata, result.scenes);
    expect(existsSync(storage.pathOf(interestProfilesKey(videoId)))).toBe(true);

    const span = { startSeconds: 1, endSeconds: 5 };
    const stored = await storedAnalysis({ videos, analyses, storage }, videoId, span, ANALYSIS_FPS);
    expect(stored?.interest).toMatchObject({ fps: ANALYSIS_FPS, width: 160, height: 90 });
    expect(stored?.interest?.columns.length).toBe(stored?.frames?.list.length);

    const sampling = jest.spyOn(pool, 'clipInterest');
    const videoFile = path.join(env.config.storageDir, 'kept-box-916.mp4');
    const rendered = await renderClip(settings, { source: box, analysis: stored, ...span, aspect: '9:16', videoFile, thumbnailFile: `${videoFile}.jpg` });
    expect(sampling).not.toHaveBeenCalled();
    sampling.mockRestore();
    expect(rendered).toMatchObject({ width: 198, height: 352 });
    expect(Math.abs(rendered.durationSeconds - 4)).toBeLessThan(0.1);
    for (const keyframe of rendered.crop.x!) expect(keyframe.offset).toBeGreaterThan(0.7);
    // The square (60x60) is whole in the picture: 3600 of 198 × 352 pixels.
    for (const at of [0.5, 2, 3.5]) expect(await brightShare(videoFile, at)).toBeCloseTo(3600 / (198 * 352), 2);

    // The same bytes again: the analysis is reused and the profiles copied, so purging the first video's folder leaves them.
    const second = await storedVideo(videos, box);
    const reused = await analyzeWithReuse(analysis, analyses, { videoId: second.videoId, file: storage.pathOf(second.key), sizeBytes: 1, storage });
    expect(reused.reusedFrom).toBe(videoId);
    await videos.saveAnalysis(second.videoId, reused.metadata, reused.scenes);
    await storage.remove(videoStorageKey(videoId));
    const kept = await storedAnalysis({ videos, analyses, storage }, second.videoId, span, ANALYSIS_FPS);
    expect(kept?.interest?.columns).toEqual(stored?.interest?.columns);
  });

  it('covers a clip that runs to the end of a video whose sound outlasts its picture with the kept profiles', async () => {
    const videos = new VideosRepository(env.db);
    const analyses = new AnalysisRepository(env.db);
    // 6 s of picture and 6.4 s of sound: the container (and so the last clip) ends 0.4 s after the last frame.
    const file = path.join(env.config.storageDir, 'long-tail.mp4');
    const picture = "color=c=0x202020:size=640x360:rate=25[bg];color=c=white:size=60x60:rate=25[box];[bg][box]overlay=x='100+20*t':y=150:shortest=1";
    await run(
      'ffmpeg',
      ['-v', 'error', '-y', '-t', '6', '-f', 'lavfi', '-i', picture, '-f', 'lavfi', '-i', 'sine=frequency=440:duration=6.4'].concat([
        '-c:v',
        'libx264',
        '-preset',
        'veryfast',
        '-pix_fmt',
        'yuv420p',
        '-c:a',
        'aac',
        file,
      ]),
    );
    const { videoId, key } = await storedVideo(videos, file);
    const analysis = { tools: TOOLS, pool, fps: ANALYSIS_FPS, width: 160, maxSeconds: 3600 };
    const result = await analyzeWithReuse(analysis, analyses, { videoId, file: storage.pathOf(key), sizeBytes: 1, storage });
    await videos.saveAnalysis(videoId, result.metadata, result.scenes);
    expect(result.metadata.durationSeconds).toBeGreaterThan(6.3);

    const span = { startSeconds: 3, endSeconds: result.metadata.durationSeconds };
    const stored = await storedAnalysis({ videos, analyses, storage }, videoId, span, ANALYSIS_FPS);
    expect(stored?.frames?.list.at(-1)?.timeSeconds).toBeLessThan(6.05);
    expect(stored?.interest?.columns.length).toBe(stored?.frames?.list.length);
    // A span ending before the frames do still needs every frame up to its end.
    const cut = await storedAnalysis({ videos, analyses, storage }, videoId, { startSeconds: 1, endSeconds: 3 }, ANALYSIS_FPS);
    expect(cut?.frames?.list.length).toBe(20);
  });
});

describe('a render whose ffmpeg stalls (a source on a FIFO nobody writes, as a hung mount would)', () => {
  const facts = { durationSeconds: 6, width: 640, height: 360, hasAudio: false };
  const frames = Array.from({ length: 30 }, (_, k) => ({ timeSeconds: 2 + k / 10, sharpness: 10, contentScore: 1 }));
  let fifo: string;
  let folder: string;

  beforeAll(async () => {
    folder = await mkdtemp(path.join(env.config.storageDir, 'stalled-'));
    fifo = path.join(folder, 'source.fifo');
    await run('mkfifo', [fifo]);
  });

  async function stalledRender(aspect: '16:9' | '9:16'): Promise<Error> {
    const cores = new RenderCores(2);
    const videoFile = path.join(folder, `${aspect.replace(':', 'x')}.mp4`);
    const started = Date.now();
    const failure = await renderClip(
      { ...settings, cores, stallTimeoutMs: 300 },
      {
        source: fifo,
        startSeconds: 2,
        endSeconds: 5,
        aspect,
        videoFile,
        thumbnailFile: `${videoFile}.jpg`,
        analysis: { facts, frames: { fps: 10, list: frames } },
      },
    ).then(
      () => new Error('rendered'),
      (thrown: Error) => thrown,
    );
    expect(Date.now() - started).toBeLessThan(5000);
    // The render's share of the cores is given back, and nothing of it is left in storage.
    expect(cores.running).toBe(0);
    expect((await readdir(folder)).sort()).toEqual(['source.fifo']);
    return failure;
  }

  it('an encode that makes no progress is stopped and fails to be tried again', async () => {
    // 16:9 of a 16:9 source: the window cannot move and analysis chose the thumbnail, so the encode is the only run.
    const failure = await stalledRender('16:9');
    expect(failure.message).toBe('rendering the clip stalled: ffmpeg made no progress for 0.3 s and was stopped');
    expect(failure).not.toBeInstanceOf(PermanentJobError);
  });

  it('a run that decodes a long way to its first frame (rare keyframes) is not taken for stalled', async () => {
    // One keyframe only: ffmpeg decodes 46 s of 1080p60 on one thread (about 5 s, far longer on a
    // loaded machine) before the clip's first frame, with no output meanwhile. The stall timeout
    // (2.5 s) is short of that, and long enough that a busy machine starving the niced ffmpeg for
    // a moment does not pass for a stall.
    const scratch = await mkdtemp(path.join(env.config.storageDir, 'one-keyframe-'));
    try {
      const source = path.join(scratch, 'one-keyframe.mp4');
      const encode = ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=1920x1080:rate=60:duration=48', '-c:v', 'libx264', '-preset', 'ultrafast'];
      await run('ffmpeg', [...encode, '-g', '100000', '-keyint_min', '100000', '-sc_threshold', '0', '-pix_fmt', 'yuv420p', source]);
      const videoFile = path.join(scratch, 'late.mp4');
      const late = Array.from({ length: 10 }, (_, k) => ({ timeSeconds: 46 + k / 10, sharpness: 10, contentScore: 1 }));
      const started = Date.now();
      const rendered = await renderClip(
        { ...settings, cores: new RenderCores(1), stallTimeoutMs: 2500 },
        {
          source,
          startSeconds: 46,
          endSeconds: 47,
          aspect: '16:9',
          videoFile,
          thumbnailFile: `${videoFile}.jpg`,
          analysis: { facts: { durationSeconds: 48, width: 1920, height: 1080, hasAudio: false }, frames: { fps: 10, list: late } },
        },
      );
      // Longer than the stall timeout with no output, and rendered all the same.
      expect(Date.now() - started).toBeGreaterThan(2500);
      expect(Math.abs(rendered.durationSeconds - 1)).toBeLessThan(0.1);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });

  it('sampling the clip to follow the action is stopped likewise', async () => {
    const failure = await stalledRender('9:16');
    expect(failure.message).toBe('decoding the clip stalled: ffmpeg produced nothing for 0.3 s and was stopped');
    expect(failure).not.toBeInstanceOf(PermanentJobError);
  });
});
