import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { copyFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { QueueEvents } from 'bullmq';
import type { RedisClient } from '@clipline/shared';
import {
  AnalysisRepository,
  createLogger,
  createQueue,
  JobCancelledError,
  LocalStorage,
  renderQueue,
  startWorker,
  validatePayload,
  VideosRepository,
  type RenderClipPayload,
  type RunningWorker,
} from '@clipline/shared';
import { CpuPool } from '../src/analysis/pool.js';
import { renderClip, type RenderSettings } from '../src/render/render-clip.js';
import { renderProcessors } from '../src/render/render-processor.js';
import { generateVideo, TOOLS } from '../../../tests/helpers/media.js';
import { fixtures, fixturesPresent } from '../../../tests/helpers/fixtures.js';
import { connectRedis, createTestEnvironment, waitFor, type TestEnvironment } from '../../../tests/helpers/services.js';

const run = promisify(execFile);
const realVideo = fixtures('video', ['bbb_h264_aac_60s.mp4']);
const ASPECTS = { '9:16': 9 / 16, '1:1': 1, '16:9': 16 / 9 } as const;

let env: TestEnvironment;
let pool: CpuPool;
let settings: RenderSettings;
let storage: LocalStorage;

beforeAll(async () => {
  env = await createTestEnvironment();
  pool = new CpuPool({ threads: 2 });
  settings = { tools: TOOLS, pool };
  storage = new LocalStorage(env.config.storageDir);
});

afterAll(async () => {
  await pool.close();
  await env.cleanup();
});

interface Facts {
  width: number;
  height: number;
  duration: number;
  codec: string;
}

async function facts(file: string): Promise<Facts> {
  const { stdout } = await run('ffprobe', [
    '-v',
    'error',
    '-select_streams',
    'v:0',
    '-show_entries',
    'stream=width,height,codec_name:format=duration',
    '-of',
    'json',
    file,
  ]);
  const parsed = JSON.parse(stdout) as { streams: { width: number; height: number; codec_name: string }[]; format: { duration: string } };
  return { width: parsed.streams[0]!.width, height: parsed.streams[0]!.height, duration: Number(parsed.format.duration), codec: parsed.streams[0]!.codec_name };
}

/** Decodes every frame; ffmpeg says nothing at level error when the file is sound. */
async function decodesCleanly(file: string): Promise<string> {
  const { stderr } = await run('ffmpeg', ['-v', 'error', '-i', file, '-f', 'null', '-']);
  return stderr.trim();
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

describe('renderClip', () => {
  let box: string;
  beforeAll(async () => {
    // A white square drifting right on a dark ground, in the right third of a 16:9 picture.
    box = path.join(env.config.storageDir, 'box.mp4');
    await run('ffmpeg', [
      '-v',
      'error',
      '-y',
      '-f',
      'lavfi',
      '-i',
      "color=c=0x202020:size=640x360:rate=25[bg];color=c=white:size=60x60:rate=25[box];[bg][box]overlay=x='430+20*t':y=150:shortest=1",
      '-t',
      '6',
      '-c:v',
      'libx264',
      '-preset',
      'veryfast',
      '-pix_fmt',
      'yuv420p',
      box,
    ]);
  });

  it('crops a 9:16 window that follows the moving subject', async () => {
    const videoFile = path.join(env.config.storageDir, 'box-916.mp4');
    const rendered = await renderClip(settings, { source: box, startSeconds: 1, endSeconds: 5, aspect: '9:16', videoFile, thumbnailFile: `${videoFile}.jpg` });
    expect(rendered).toMatchObject({ width: 198, height: 352 });
    expect(Math.abs(rendered.durationSeconds - 4)).toBeLessThan(0.1);
    for (const keyframe of rendered.crop.x!) expect(keyframe.offset).toBeGreaterThan(0.7);
    // The square (60x60) is whole in the picture: 3600 of 198 × 352 pixels.
    for (const at of [0.5, 2, 3.5]) expect(await brightShare(videoFile, at)).toBeCloseTo(3600 / (198 * 352), 2);
    expect(await facts(`${videoFile}.jpg`)).toMatchObject({ width: 198, height: 352, codec: 'mjpeg' });
  });

  it('renders a source of non-square pixels as it is seen: the square stays square, the 16:9 clip full width', async () => {
    // The same picture stored anamorphic: 320x360 pixels each twice as wide as tall (as HDV and
    // DV store theirs), which players show as 640x360.
    const anamorphic = path.join(env.config.storageDir, 'box-anamorphic.mp4');
    await run('ffmpeg', ['-v', 'error', '-y', '-i', box, '-vf', 'scale=320:360,setsar=2', '-c:v', 'libx264', '-preset', 'veryfast', anamorphic]);
    const tall = path.join(env.config.storageDir, 'box-anamorphic-916.mp4');
    const rendered = await renderClip(settings, {
      source: anamorphic,
      startSeconds: 1,
      endSeconds: 5,
      aspect: '9:16',
      videoFile: tall,
      thumbnailFile: `${tall}.jpg`,
    });
    expect(rendered).toMatchObject({ width: 198, height: 352 });
    // Cropped from the stored pixels, the square would come out 30 pixels wide: half this share.
    for (const at of [0.5, 3.5]) expect(await brightShare(tall, at)).toBeCloseTo(3600 / (198 * 352), 2);
    const wide = path.join(env.config.storageDir, 'box-anamorphic-169.mp4');
    expect(
      await renderClip(settings, { source: anamorphic, startSeconds: 1, endSeconds: 3, aspect: '16:9', videoFile: wide, thumbnailFile: `${wide}.jpg` }),
    ).toMatchObject({
      width: 640,
      height: 360,
    });
    expect(await facts(wide)).toMatchObject({ width: 640, height: 360 });
  });

  it('cuts on the exact frame: a clip starting on a scene change starts with the new scene', async () => {
    const video = await generateVideo({ path: path.join(env.config.storageDir, 'scenes.mp4'), segments: [2, 2, 2] });
    const videoFile = path.join(env.config.storageDir, 'scenes-cut.mp4');
    await renderClip(settings, { source: video.path, startSeconds: 2, endSeconds: 4, aspect: '16:9', videoFile, thumbnailFile: `${videoFile}.jpg` });
    // Segment 2 (smptebars) fills the whole clip; a frame of segment 1 (testsrc2) would differ.
    const whole = path.join(env.config.storageDir, 'scenes-whole.mp4');
    await renderClip(settings, { source: video.path, startSeconds: 0, endSeconds: 6, aspect: '16:9', videoFile: whole, thumbnailFile: `${whole}.jpg` });
    const frame = async (file: string, seconds: number) =>
      (
        await run('ffmpeg', ['-v', 'error', '-ss', String(seconds), '-i', file, '-frames:v', '1', '-vf', 'scale=32:18,format=gray', '-f', 'rawvideo', '-'], {
          encoding: 'buffer',
        })
      ).stdout;
    const difference = (a: Buffer, b: Buffer) => a.reduce((sum, value, i) => sum + Math.abs(value - b[i]!), 0) / a.length;
    expect(difference(await frame(videoFile, 0), await frame(whole, 2.02))).toBeLessThan(8);
    expect(difference(await frame(videoFile, 0), await frame(whole, 1.9))).toBeGreaterThan(20);
    expect(Math.abs((await facts(videoFile)).duration - 2)).toBeLessThan(0.1);
  });

  it('keeps the sound where it is in the source when the track starts late, and renders a span the track does not reach', async () => {
    // 10 s of the drifting square; a tone from 6 s to 8 s only.
    const late = path.join(env.config.storageDir, 'late-tone.mp4');
    await run('ffmpeg', [
      ...['-v', 'error', '-y', '-i', box, '-stream_loop', '1', '-i', box],
      ...['-f', 'lavfi', '-itsoffset', '6', '-i', 'sine=frequency=440:sample_rate=48000:duration=2'],
      ...['-filter_complex', '[0:v][1:v]concat=n=2:v=1[v]', '-map', '[v]', '-map', '2:a', '-t', '10'],
      ...['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', late],
    ]);
    // Clip 4-8 s: silence for its first 2 s, then the tone.
    const clip = path.join(env.config.storageDir, 'late-tone-clip.mp4');
    await renderClip(settings, { source: late, startSeconds: 4, endSeconds: 8, aspect: '9:16', videoFile: clip, thumbnailFile: `${clip}.jpg` });
    const { stderr } = await run('ffmpeg', [
      '-nostdin',
      '-hide_banner',
      '-i',
      clip,
      '-map',
      '0:a:0',
      '-af',
      'silencedetect=noise=-40dB:d=0.5',
      '-f',
      'null',
      '-',
    ]);
    const soundFrom = Number(/silence_end: ([\d.]+)/.exec(stderr)?.[1]);
    expect(soundFrom).toBeGreaterThan(1.8);
    expect(soundFrom).toBeLessThan(2.2);
    // Clip 8.5-10 s: the track has ended; the clip renders, without sound.
    const after = path.join(env.config.storageDir, 'after-tone-clip.mp4');
    const rendered = await renderClip(settings, {
      source: late,
      startSeconds: 8.5,
      endSeconds: 10,
      aspect: '9:16',
      videoFile: after,
      thumbnailFile: `${after}.jpg`,
    });
    expect(rendered.durationSeconds).toBeCloseTo(1.5, 0);
    expect(await decodesCleanly(after)).toBe('');
  });

  it('stops ffmpeg and leaves no file behind when aborted', async () => {
    const long = await generateVideo({ path: path.join(env.config.storageDir, 'long.mp4'), segments: [12], width: 640, height: 360 });
    const controller = new AbortController();
    const videoFile = path.join(env.config.storageDir, 'aborted', 'clip.mp4');
    await storage.prepare('aborted/clip.mp4');
    const rendering = renderClip(
      settings,
      { source: long.path, startSeconds: 0, endSeconds: 12, aspect: '1:1', videoFile, thumbnailFile: `${videoFile}.jpg` },
      { signal: controller.signal, onProgress: (fraction) => void (fraction > 0.3 && controller.abort(new Error('cancelled by test'))) },
    );
    await expect(rendering).rejects.toThrow(/cancelled by test/);
    expect(await readdir(path.dirname(videoFile))).toEqual([]);
  });

  it('refuses a clip past the end of the video', async () => {
    await expect(
      renderClip(settings, {
        source: box,
        startSeconds: 4,
        endSeconds: 9,
        aspect: '1:1',
        videoFile: path.join(env.config.storageDir, 'x.mp4'),
        thumbnailFile: path.join(env.config.storageDir, 'x.jpg'),
      }),
    ).rejects.toThrow(/clip ends at 9 s, after the end of the video \(6.000 s\)/);
  });
});

describe('the render worker (real BullMQ jobs)', () => {
  let worker: RunningWorker;
  let connection: RedisClient;
  let eventsConnection: RedisClient;
  let events: QueueEvents;
  let analyses: AnalysisRepository;
  let videos: VideosRepository;
  const progress = new Map<string, number[]>();

  beforeAll(async () => {
    connection = connectRedis(env.config.redisUrl);
    analyses = new AnalysisRepository(env.db);
    videos = new VideosRepository(env.db);
    worker = startWorker(renderQueue, renderProcessors({ settings, analyses, storage }), {
      connection,
      prefix: env.config.queuePrefix,
      concurrency: 2,
      logger: createLogger({ name: 'render-test', level: 'silent' }),
    });
    eventsConnection = connectRedis(env.config.redisUrl);
    events = new QueueEvents(renderQueue.name, { connection: eventsConnection, prefix: env.config.queuePrefix });
    events.on('progress', ({ jobId, data }) => progress.set(jobId, [...(progress.get(jobId) ?? []), Number(data)]));
    await events.waitUntilReady();
  });

  afterAll(async () => {
    await worker.close();
    await events.close();
    eventsConnection.disconnect();
    connection.disconnect();
  });

  /** A video whose source is stored, as ingest leaves it. */
  async function storedVideo(file: string): Promise<string> {
    const id = randomUUID();
    await videos.create({ id, source: file, title: null, steps: ['ingest', 'analyze', 'persist'] });
    const key = `videos/${id}/source${path.extname(file)}`;
    await copyFile(file, await storage.prepare(key));
    await videos.setSource(id, { storageKey: key, sizeBytes: 1 });
    return id;
  }

  async function renderAll(payloads: RenderClipPayload[]) {
    const queue = createQueue(renderQueue, { connection, prefix: env.config.queuePrefix });
    try {
      const jobs = await Promise.all(
        payloads.map((payload) =>
          queue.add('render-clip', validatePayload(renderQueue, 'render-clip', payload), { jobId: `${payload.videoId}-render-${payload.clipIndex}` }),
        ),
      );
      return await waitFor(
        async () => {
          // State first: a job read before it finishes would show as finished without its result.
          const states = await Promise.all(jobs.map(async (job) => ({ state: await job.getState(), job: (await queue.getJob(job.id!))! })));
          return states.every(({ state }) => state === 'completed' || state === 'failed') ? states : undefined;
        },
        50_000,
        'render jobs to finish',
      );
    } finally {
      await queue.close();
    }
  }

  it('records a clip whose render was cancelled as failed with the reason, not pending for ever', async () => {
    const id = await storedVideo((await generateVideo({ path: path.join(env.config.storageDir, 'to-cancel.mp4'), segments: [3, 3] })).path);
    const controller = new AbortController();
    const cancelled = new JobCancelledError('stopped: the video was cancelled');
    const job = {
      id: `${id}-render-0`,
      data: { videoId: id, clipIndex: 0, startSeconds: 0.5, endSeconds: 5.5, aspect: '9:16' as const, score: 60, reasons: ['strong motion'] },
      signal: controller.signal,
      attemptsMade: 0,
      maxAttempts: 3,
      logger: createLogger({ name: 'render-test', level: 'silent' }),
      updateProgress: async (percent: number) => {
        if (percent > 20) controller.abort(cancelled);
      },
    };
    const processor = renderProcessors({ settings, analyses, storage })['render-clip'];
    await expect(processor(job as never)).rejects.toThrow();
    const [clip] = await analyses.listClips(id);
    expect(clip).toMatchObject({ status: 'failed', error: 'stopped: the video was cancelled', storageKey: null });
  });

  it('renders clips in every aspect that decode, have the aspect and the duration, with a thumbnail and a clips row', async () => {
    const generated = await generateVideo({ path: path.join(env.config.storageDir, 'generated.mp4'), segments: [3, 3, 3] });
    const sources = [generated.path];
    if (fixturesPresent(realVideo, 'the render test of a real video')) sources.push(...realVideo.files);
    const payloads: RenderClipPayload[] = [];
    for (const source of sources) {
      const id = await storedVideo(source);
      (Object.keys(ASPECTS) as (keyof typeof ASPECTS)[]).forEach((aspect, clipIndex) =>
        payloads.push({
          videoId: id,
          clipIndex,
          startSeconds: 1.3 + clipIndex,
          endSeconds: 5.7 + clipIndex * 0.9,
          aspect,
          score: 70 - clipIndex,
          reasons: ['strong motion'],
        }),
      );
    }
    const finished = await renderAll(payloads);
    for (const [k, { job, state }] of finished.entries()) {
      const payload = payloads[k]!;
      expect({ state, reason: job.failedReason }).toEqual({ state: 'completed', reason: undefined });
      const [clip] = (await analyses.listClips(payload.videoId)).filter((row) => row.clipIndex === payload.clipIndex);
      expect(clip).toMatchObject({
        status: 'rendered',
        aspect: payload.aspect,
        score: payload.score,
        reasons: ['strong motion'],
        storageKey: `videos/${payload.videoId}/clips/${payload.clipIndex}.mp4`,
      });
      expect(job.returnvalue).toMatchObject({ clipId: clip!.id, storageKey: clip!.storageKey, thumbnailKey: clip!.thumbnailKey });
      const file = storage.pathOf(clip!.storageKey!);
      expect(await decodesCleanly(file)).toBe('');
      const rendered = await facts(file);
      expect(rendered.width / rendered.height).toBeCloseTo(ASPECTS[payload.aspect], 10);
      expect(Math.abs(rendered.duration - (payload.endSeconds - payload.startSeconds))).toBeLessThan(0.1);
      expect(await facts(storage.pathOf(clip!.thumbnailKey!))).toMatchObject({ codec: 'mjpeg', width: rendered.width, height: rendered.height });
      const reported = progress.get(job.id!) ?? [];
      expect(reported.length).toBeGreaterThan(2);
      expect(reported.at(-1)).toBe(100);
    }
  });

  it('keeps a rendered clip as it is when its completed job is run again after the source was released', async () => {
    const id = await storedVideo((await generateVideo({ path: path.join(env.config.storageDir, 'again.mp4'), segments: [3, 3] })).path);
    const payload: RenderClipPayload = { videoId: id, clipIndex: 0, startSeconds: 0.5, endSeconds: 4.5, aspect: '1:1', score: 55, reasons: ['strong motion'] };
    const [first] = await renderAll([payload]);
    expect(first!.state).toBe('completed');
    const [rendered] = await analyses.listClips(id);
    expect(rendered!.status).toBe('rendered');
    const before = await stat(storage.pathOf(rendered!.storageKey!));
    // As a finished video leaves it: the clip stored, the source released.
    await env.db.updateTable('videos').set({ storage_key: null }).where('id', '=', id).execute();
    // An operator retries the completed job (Bull Board offers it), or a second delivery runs it.
    const queue = createQueue(renderQueue, { connection, prefix: env.config.queuePrefix });
    const again = await (async () => {
      try {
        await (await queue.getJob(first!.job.id!))!.retry('completed');
        return await waitFor(
          async () => {
            const job = await queue.getJob(first!.job.id!);
            const state = await job?.getState();
            return job && (state === 'completed' || state === 'failed') && job.finishedOn !== first!.job.finishedOn ? job : undefined;
          },
          30_000,
          'the retried render to finish',
        );
      } finally {
        await queue.close();
      }
    })();
    expect(again.failedReason).toBeUndefined();
    expect(again.returnvalue).toMatchObject({ clipId: rendered!.id, storageKey: rendered!.storageKey, thumbnailKey: rendered!.thumbnailKey });
    const [kept] = await analyses.listClips(id);
    expect(kept).toEqual(rendered);
    expect((await stat(storage.pathOf(kept!.storageKey!))).mtimeMs).toBe(before.mtimeMs);
  });

  it('renders a clip again when its job is retried with the source kept, the clip shown all along', async () => {
    const id = await storedVideo((await generateVideo({ path: path.join(env.config.storageDir, 'kept.mp4'), segments: [3, 3] })).path);
    const payload: RenderClipPayload = { videoId: id, clipIndex: 0, startSeconds: 0.5, endSeconds: 4.5, aspect: '1:1', score: 55, reasons: ['strong motion'] };
    const [first] = await renderAll([payload]);
    const [rendered] = await analyses.listClips(id);
    const before = await stat(storage.pathOf(rendered!.storageKey!));
    const queue = createQueue(renderQueue, { connection, prefix: env.config.queuePrefix });
    const seen = new Set<string>();
    try {
      await (await queue.getJob(first!.job.id!))!.retry('completed');
      await waitFor(
        async () => {
          const [row] = await analyses.listClips(id);
          seen.add(row!.status);
          const job = await queue.getJob(first!.job.id!);
          return job && (await job.getState()) === 'completed' && job.finishedOn !== first!.job.finishedOn ? job : undefined;
        },
        30_000,
        'the render to run again',
      );
    } finally {
      await queue.close();
    }
    const [again] = await analyses.listClips(id);
    expect(again).toMatchObject({ id: rendered!.id, status: 'rendered', storageKey: rendered!.storageKey });
    expect([...seen]).toEqual(['rendered']);
    expect((await stat(storage.pathOf(again!.storageKey!))).mtimeMs).toBeGreaterThan(before.mtimeMs);
  });

  it('fails a clip it cannot render with the reason on its row, and takes the next job', async () => {
    const id = await storedVideo((await generateVideo({ path: path.join(env.config.storageDir, 'short.mp4'), segments: [4] })).path);
    const [bad, good] = await renderAll([
      { videoId: id, clipIndex: 0, startSeconds: 2, endSeconds: 60, aspect: '1:1', score: 50, reasons: [] },
      { videoId: id, clipIndex: 1, startSeconds: 0.5, endSeconds: 3.5, aspect: '1:1', score: 40, reasons: [] },
    ]);
    expect(bad!.state).toBe('failed');
    expect(bad!.job.failedReason).toMatch(/clip ends at 60 s, after the end of the video/);
    expect(bad!.job.attemptsMade).toBe(1);
    expect(good!.state).toBe('completed');
    const clips = await analyses.listClips(id);
    expect(clips.map((clip) => [clip.clipIndex, clip.status])).toEqual([
      [0, 'failed'],
      [1, 'rendered'],
    ]);
    expect(clips[0]!.error).toMatch(/after the end of the video/);
  });

  it('refuses a payload whose clip ends before it starts, before it reaches Redis', () => {
    expect(() =>
      validatePayload(renderQueue, 'render-clip', { videoId: randomUUID(), clipIndex: 0, startSeconds: 5, endSeconds: 2, aspect: '9:16', score: 1 }),
    ).toThrow(/endSeconds: endSeconds must be after startSeconds/);
    expect(() =>
      validatePayload(renderQueue, 'render-clip', { videoId: randomUUID(), clipIndex: 0, startSeconds: 0, endSeconds: 2, aspect: '4:3', score: 1 }),
    ).toThrow(/aspect: aspect must be one of 9:16, 1:1, 16:9/);
  });
});
