import { chmod, mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { PermanentJobError } from '@clipline/shared';
import { analyzeVideo, type AnalysisSettings } from '../src/analysis/analyze-video.js';
import { setToolSpawning } from '../src/analysis/ffmpeg.js';
import { CpuPool } from '../src/analysis/pool.js';
import { renderClip } from '../src/render/render-clip.js';
import { ffprobeDuration, generateVideo, withClaimedDuration, TOOLS } from '../../../tests/helpers/media.js';

const FPS = 10;
const run = promisify(execFile);
let dir: string;
let pool: CpuPool;
let settings: AnalysisSettings;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'clipline-analyze-'));
  pool = new CpuPool({ threads: 2 });
  settings = { tools: TOOLS, pool, fps: FPS, width: 160, maxSeconds: 4 * 3600 };
});

afterAll(async () => {
  await pool.close();
  await rm(dir, { recursive: true, force: true });
});

/** Matches detected cuts to true ones within one sampled frame; returns precision and recall. */
function score(detected: number[], truth: number[], tolerance = 1 / FPS + 1e-6) {
  const unmatched = [...truth];
  let hits = 0;
  for (const cut of detected) {
    const index = unmatched.findIndex((t) => Math.abs(t - cut) <= tolerance);
    if (index >= 0) {
      hits++;
      unmatched.splice(index, 1);
    }
  }
  return { precision: detected.length ? hits / detected.length : 1, recall: truth.length ? hits / truth.length : 1 };
}

/**
 * The tests whose ffmpeg is a script that dies at once start it directly (FFMPEG_SPAWNING=direct)
 * until the file's end: what they test is how a run's end is classed, not how it is started.
 */
function directSpawning(): void {
  setToolSpawning('direct');
}

afterEach(() => setToolSpawning('helper'));

describe('analyzeVideo on generated media', () => {
  it('finds every cut of an H.264/AAC video within one sampled frame, and its duration within 0.1 s', async () => {
    const video = await generateVideo({ path: path.join(dir, 'cuts.mp4'), segments: [2.3, 1.7, 3.1, 2.0, 2.6, 1.9, 2.2, 1.6] });
    const progress: number[] = [];
    const result = await analyzeVideo(settings, { file: video.path, sizeBytes: 1234 }, { onProgress: (fraction) => void progress.push(fraction) });
    const { precision, recall } = score(result.cutSeconds, video.cutSeconds);
    expect({ precision, recall, cuts: result.cutSeconds }).toMatchObject({ precision: 1, recall: 1 });
    expect(Math.abs(result.metadata.durationSeconds - (await ffprobeDuration(video.path)))).toBeLessThan(0.1);
    expect(result.metadata).toMatchObject({ width: 320, height: 240, fps: 25, hasAudio: true, sizeBytes: 1234, videoCodec: 'h264' });
    expect(result.scenes).toHaveLength(video.cutSeconds.length + 1);
    expect(result.scenes[0]!.startSeconds).toBe(0);
    expect(result.scenes.at(-1)!.endSeconds).toBeCloseTo(result.metadata.durationSeconds, 3);
    expect(progress.length).toBeGreaterThan(3);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    // The sine track is steady: its loudness is measured, and the clips come from the defaults.
    expect(result.audio!.integratedLufs).toBeLessThan(0);
    expect(result.clipOptions).toEqual({ clipCount: 3, minClipSeconds: 5, maxClipSeconds: 30, aspect: '9:16', captions: 'off' });
    expect(result.clipCandidates.length).toBeGreaterThan(0);
    expect(result.clipCandidates.length).toBeLessThanOrEqual(3);
    // Cuts, or (when cut-aligned picks cannot give the count asked for) the edges of equal slices.
    const slices = [1, 2].map((k) => (k * result.metadata.durationSeconds) / 3);
    const bounds = [0, ...result.cutSeconds, ...slices, result.metadata.durationSeconds].map((t) => Math.round(t * 1000));
    for (const clip of result.clipCandidates) {
      expect(clip.endSeconds - clip.startSeconds).toBeGreaterThanOrEqual(5);
      expect(clip.endSeconds - clip.startSeconds).toBeLessThanOrEqual(30);
      expect(bounds).toContain(Math.round(clip.startSeconds * 1000));
      expect(bounds).toContain(Math.round(clip.endSeconds * 1000));
    }
    // Small enough for a job's return value: no per-frame data.
    expect(JSON.stringify(result).length).toBeLessThan(4000);
    expect(result.warnings).toEqual([]);
  });

  it('takes clip options and refuses bad ones with the field named', async () => {
    const video = await generateVideo({ path: path.join(dir, 'options.mp4'), segments: [2, 3, 2, 3, 2], audio: false });
    const result = await analyzeVideo(settings, { file: video.path, sizeBytes: 1, clipOptions: { clipCount: 1, minClipSeconds: 2, maxClipSeconds: 4 } });
    expect(result.clipCandidates).toHaveLength(1);
    expect(result.clipCandidates[0]!.endSeconds - result.clipCandidates[0]!.startSeconds).toBeLessThanOrEqual(4);
    expect(result.audio).toBeNull();
    await expect(analyzeVideo(settings, { file: video.path, sizeBytes: 1, clipOptions: { minClipSeconds: 9, maxClipSeconds: 4 } })).rejects.toThrow(
      /invalid clip options: minClipSeconds: minClipSeconds must not exceed maxClipSeconds/,
    );
  });

  it('handles a VP8 webm with no audio track and an odd frame size', async () => {
    const video = await generateVideo({ path: path.join(dir, 'silent.webm'), segments: [2.5, 2.5, 2.5], width: 322, height: 178, audio: false });
    const result = await analyzeVideo(settings, { file: video.path, sizeBytes: 1 });
    expect(result.metadata).toMatchObject({ width: 322, height: 178, hasAudio: false, videoCodec: 'vp8' });
    expect(score(result.cutSeconds, video.cutSeconds)).toEqual({ precision: 1, recall: 1 });
  });

  it('samples a source of non-square pixels, turned or not, at the size it is shown in', async () => {
    const video = await generateVideo({ path: path.join(dir, 'square-pixels.mp4'), segments: [2.3, 1.7, 3.1], width: 640, height: 240, audio: false });
    // 320x240 stored, each pixel twice as wide as tall: shown 640x240; turned a quarter, 120x320
    // (ffmpeg's `iw*sar` of the turned picture).
    const anamorphic = path.join(dir, 'anamorphic.mp4');
    await run('ffmpeg', ['-v', 'error', '-y', '-i', video.path, '-vf', 'scale=320:240,setsar=2', '-c:v', 'libx264', '-preset', 'veryfast', anamorphic]);
    const turned = path.join(dir, 'anamorphic-turned.mp4');
    await run('ffmpeg', ['-v', 'error', '-y', '-i', anamorphic, '-c', 'copy', '-metadata:s:v', 'rotate=90', turned]);
    for (const [file, shown] of [
      [anamorphic, { width: 640, height: 240 }],
      [turned, { width: 120, height: 320 }],
    ] as const) {
      const frames: number[] = [];
      const result = await analyzeVideo(settings, { file, sizeBytes: 1 }, { onInterestProfiles: (_first, batch) => void frames.push(batch.count) });
      expect(result.metadata).toMatchObject(shown);
      // Frames of another size than the one expected would come out of step: more or fewer, the cuts elsewhere.
      expect(frames.reduce((sum, count) => sum + count, 0)).toBe(Math.round(result.metadata.durationSeconds * FPS));
      expect(score(result.cutSeconds, video.cutSeconds)).toEqual({ precision: 1, recall: 1 });
    }
  });

  it('starts one ffmpeg for an MP4 with sound (its facts from its index, the frames and the audio from one decode), and ffprobe too for a WebM', async () => {
    // Wrappers that log each start, then run the real tool.
    const starts = path.join(dir, 'starts.log');
    const wrapper = async (tool: string) => {
      const file = path.join(dir, `logged-${tool}`);
      await writeFile(file, `#!/bin/sh\necho ${tool} >> '${starts}'\nexec ${tool} "$@"\n`);
      await chmod(file, 0o755);
      return file;
    };
    const logged = { ...settings, tools: { ffmpegPath: await wrapper('ffmpeg'), ffprobePath: await wrapper('ffprobe') } };
    const video = await generateVideo({ path: path.join(dir, 'counted.mp4'), segments: [2, 2] });
    const result = await analyzeVideo(logged, { file: video.path, sizeBytes: 1 });
    expect(result.audio!.integratedLufs).toBeLessThan(0);
    expect(result.speech).not.toBeNull();
    expect(result.warnings).toEqual([]);
    expect((await readFile(starts, 'utf8')).trim().split('\n').sort()).toEqual(['ffmpeg']);
    expect(result.metadata).toMatchObject({ videoCodec: 'h264', hasAudio: true });

    await rm(starts);
    const webm = await generateVideo({ path: path.join(dir, 'counted.webm'), segments: [2, 2] });
    const fromWebm = await analyzeVideo(logged, { file: webm.path, sizeBytes: 1 });
    expect(fromWebm.speech).not.toBeNull();
    expect((await readFile(starts, 'utf8')).trim().split('\n').sort()).toEqual(['ffmpeg', 'ffprobe']);
    expect(fromWebm.metadata).toMatchObject({ videoCodec: 'vp8' });
  });

  it('takes sound ffmpeg cannot decode for none, with a warning, so the clips render silent instead of failing', async () => {
    // An ffmpeg without the track's decoder: it refuses any run that maps the audio.
    directSpawning();
    const file = path.join(dir, 'no-audio-decoder');
    await writeFile(
      file,
      `#!/bin/sh\nfor arg in "$@"; do case "$arg" in 0:a:0*) echo 'Decoder (codec apac) not found for input stream #0:1' >&2; exit 1;; esac; done\nexec ${TOOLS.ffmpegPath} "$@"\n`,
    );
    await chmod(file, 0o755);
    const tools = { ...TOOLS, ffmpegPath: file };
    const video = await generateVideo({ path: path.join(dir, 'undecodable-sound.mp4'), segments: [3, 3] });
    const result = await analyzeVideo({ ...settings, tools }, { file: video.path, sizeBytes: 1 });
    expect(result.metadata.hasAudio).toBe(false);
    expect(result.warnings).toEqual([expect.stringMatching(/^the audio could not be decoded, .* the clips are silent \(ffmpeg: .+\)$/)]);
    const videoFile = path.join(dir, 'silent-clip.mp4');
    const facts = {
      durationSeconds: result.metadata.durationSeconds,
      width: result.metadata.width,
      height: result.metadata.height,
      hasAudio: result.metadata.hasAudio,
    };
    await renderClip(
      { tools, pool: settings.pool },
      { source: video.path, startSeconds: 1, endSeconds: 4, aspect: '9:16', videoFile, thumbnailFile: `${videoFile}.jpg`, analysis: { facts } },
    );
    const { stdout } = await run(TOOLS.ffprobePath, ['-v', 'error', '-show_entries', 'stream=codec_type', '-of', 'csv=p=0', videoFile]);
    expect(stdout.trim().split('\n')).toEqual(['video']);
  });

  it('fails for good when ffmpeg crashes on the file (SIGSEGV), and is tried again when something else kills it (SIGKILL)', async () => {
    directSpawning();
    const video = await generateVideo({ path: path.join(dir, 'crashing.mp4'), segments: [2, 2] });
    const dying = async (signal: string) => {
      const file = path.join(dir, `dies-of-${signal}`);
      await writeFile(file, `#!/bin/sh\nkill -${signal} $$\n`);
      await chmod(file, 0o755);
      return { ...TOOLS, ffmpegPath: file };
    };
    const outcome = (promise: Promise<unknown>) =>
      promise.then(
        () => ({ permanent: undefined, message: 'succeeded' }),
        (error: Error) => ({ permanent: error instanceof PermanentJobError, message: error.message }),
      );
    const crashed = await dying('SEGV');
    expect(await outcome(analyzeVideo({ ...settings, tools: crashed }, { file: video.path, sizeBytes: 1 }))).toEqual({
      permanent: true,
      message: 'decoding stopped: ffmpeg was killed by SIGSEGV',
    });
    expect(await outcome(analyzeVideo({ ...settings, tools: await dying('KILL') }, { file: video.path, sizeBytes: 1 }))).toEqual({
      permanent: false,
      message: 'decoding stopped: ffmpeg was killed by SIGKILL',
    });
    // The render's own runs likewise.
    const videoFile = path.join(dir, 'crashed-clip.mp4');
    const facts = { durationSeconds: 4, width: 320, height: 240, hasAudio: true };
    const render = renderClip(
      { tools: crashed, pool: settings.pool },
      { source: video.path, startSeconds: 0, endSeconds: 3, aspect: '9:16', videoFile, thumbnailFile: `${videoFile}.jpg`, analysis: { facts } },
    );
    expect(await outcome(render)).toEqual({ permanent: true, message: expect.stringMatching(/killed by SIGSEGV/) });
  });

  it('ends its scenes and clips where the picture ends when the sound goes on after it', async () => {
    // 20 s of picture, 21 s of sound: the file lasts 21 s, within the decode's tolerance.
    const file = path.join(dir, 'sound-outlasts.mp4');
    await run(TOOLS.ffmpegPath, [
      ...['-hide_banner', '-loglevel', 'error', '-y'],
      ...['-f', 'lavfi', '-i', 'testsrc2=duration=20:size=320x180:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:duration=21'],
      ...['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', file],
    ]);
    const result = await analyzeVideo(settings, { file, sizeBytes: 1 });
    expect(result.metadata.durationSeconds).toBeGreaterThan(20.5);
    expect(result.scenes.at(-1)!.endSeconds).toBeLessThanOrEqual(20.05);
    expect(result.clipCandidates.length).toBeGreaterThan(0);
    for (const clip of result.clipCandidates) expect(clip.endSeconds).toBeLessThanOrEqual(20.05);
  });

  it('does not cut inside continuous motion', async () => {
    const video = await generateVideo({ path: path.join(dir, 'motion.mp4'), segments: [6], audio: false });
    const result = await analyzeVideo(settings, { file: video.path, sizeBytes: 1 });
    expect(result.cutSeconds).toEqual([]);
    expect(result.scenes).toEqual([{ startSeconds: 0, endSeconds: 6 }]);
  });
});

describe('analyzeVideo on bad input', () => {
  let reference: string;
  beforeAll(async () => {
    reference = (await generateVideo({ path: path.join(dir, 'reference.mp4'), segments: [3, 3] })).path;
  });

  async function failure(file: string): Promise<Error> {
    const started = Date.now();
    const error = await analyzeVideo(settings, { file, sizeBytes: 1 }).then(
      () => new Error('analysis succeeded'),
      (thrown: Error) => thrown,
    );
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(error).toBeInstanceOf(PermanentJobError);
    return error;
  }

  it('refuses a zero-byte file', async () => {
    const file = path.join(dir, 'empty.mp4');
    await writeFile(file, '');
    expect((await failure(file)).message).toMatch(/not a readable video/);
  });

  it('refuses a text file renamed .mp4', async () => {
    const file = path.join(dir, 'text.mp4');
    await writeFile(file, 'this is not a video at all\n'.repeat(100));
    expect((await failure(file)).message).toMatch(/not a readable video/);
  });

  it('refuses a truncated mp4', async () => {
    const file = path.join(dir, 'truncated.mp4');
    const bytes = await readFile(reference);
    await writeFile(file, bytes.subarray(0, Math.floor(bytes.length / 3)));
    expect((await failure(file)).message).toMatch(/not a readable video|truncated/);
  });

  it('refuses an audio-only file', async () => {
    const file = path.join(dir, 'audio.m4a');
    const { execFile } = await import('node:child_process');
    await new Promise((resolve, reject) =>
      execFile('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'sine=duration=2', file], (error) => (error ? reject(error) : resolve(null))),
    );
    expect((await failure(file)).message).toBe('no video stream (the file holds only audio)');
  });

  it('refuses an audio file with a cover picture, naming the picture for what it is', async () => {
    const file = path.join(dir, 'song.mp3');
    const { execFile } = await import('node:child_process');
    const args = ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'sine=duration=2', '-f', 'lavfi', '-i', 'color=c=red:s=64x64:d=1', '-frames:v', '1'];
    const cover = ['-map', '0:a', '-map', '1:v', '-c:v', 'mjpeg', '-disposition:v', 'attached_pic', '-id3v2_version', '3', file];
    await new Promise((resolve, reject) => execFile('ffmpeg', [...args, ...cover], (error) => (error ? reject(error) : resolve(null))));
    expect((await failure(file)).message).toBe('no video stream (the file holds only audio and a cover picture)');
  });

  /** Whether an ffmpeg reading `file` is still running, after up to 2 s for it to be reaped. */
  async function ffmpegLingersOn(file: string): Promise<boolean> {
    const { readdir } = await import('node:fs/promises');
    for (let attempt = 0; attempt < 20; attempt++) {
      const commands = await Promise.all(
        (await readdir('/proc')).filter((entry) => /^\d+$/.test(entry)).map((pid) => readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')),
      );
      if (!commands.some((command) => command.startsWith('ffmpeg') && command.includes(file))) return false;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return true;
  }

  it('refuses at once a file whose header claims ten hours, and stops the decode it had started', async () => {
    // Long enough that its frames overflow what the sampler holds before the probe answers: an
    // ffmpeg nobody stopped would wait on the pipe for ever.
    const twenty = await generateVideo({ path: path.join(dir, 'twenty.mp4'), segments: [20], width: 640, height: 360, audio: false });
    const file = path.join(dir, 'ten-hours.mp4');
    await withClaimedDuration(twenty.path, file, 10 * 3600);
    expect((await failure(file)).message).toMatch(/10h00m long, more than the 4h00m limit/);
    expect(await ffmpegLingersOn(file)).toBe(false);
  });

  /** One second of ffmpeg's test pattern at `size`, losslessly: no encoder rounds the size. */
  async function pattern(name: string, size: string): Promise<string> {
    const file = path.join(dir, name);
    const { execFile } = await import('node:child_process');
    await new Promise((resolve, reject) =>
      execFile('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', `testsrc=size=${size}:rate=5`, '-t', '1', '-c:v', 'ffv1', file], (error) =>
        error ? reject(error) : resolve(null),
      ),
    );
    return file;
  }

  it.each([
    ['wide', 'ribbon.mkv', '4000x20', 'a picture of 4000x20 is too wide to analyse'],
    ['tall', 'strip.mkv', '20x400', 'a picture of 20x400 is too tall to analyse (at most 8 times as tall as wide)'],
  ])('refuses a picture too %s to sample (no row at 160 px wide; frames and batches too large)', async (_shape, name, size, reason) => {
    const file = await pattern(name, size);
    expect((await failure(file)).message).toBe(reason);
    expect(await ffmpegLingersOn(file)).toBe(false);
  });

  it('refuses a picture larger than DCI 8K by default, naming its size and MAX_SOURCE_PIXELS, and stops the decode', async () => {
    const file = path.join(dir, 'over-8k.mkv');
    const { execFile } = await import('node:child_process');
    const args = ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'color=c=gray:size=8200x4400:rate=1', '-frames:v', '1', '-c:v', 'ffv1', file];
    await new Promise((resolve, reject) => execFile('ffmpeg', args, (error) => (error ? reject(error) : resolve(null))));
    expect((await failure(file)).message).toBe('a picture of 8200x4400 is 36,080,000 pixels, more than the 35,389,440 limit (MAX_SOURCE_PIXELS)');
    expect(await ffmpegLingersOn(file)).toBe(false);
  });

  it('takes a picture of exactly MAX_SOURCE_PIXELS, and refuses one a pixel over it', async () => {
    const within = await analyzeVideo({ ...settings, maxPixels: 320 * 240 }, { file: reference, sizeBytes: 1 });
    expect(within.metadata).toMatchObject({ width: 320, height: 240 });
    const error = await analyzeVideo({ ...settings, maxPixels: 320 * 240 - 1 }, { file: reference, sizeBytes: 1 }).catch((thrown: Error) => thrown);
    expect(error).toBeInstanceOf(PermanentJobError);
    expect((error as Error).message).toBe('a picture of 320x240 is 76,800 pixels, more than the 76,799 limit (MAX_SOURCE_PIXELS)');
  });

  it('counts the stored picture when its pixels are declared narrow: a crafted aspect does not let a larger picture through', async () => {
    // 320x240 stored, each pixel a quarter as wide as tall: shown 80x240 (19,200 pixels), decoded 76,800.
    const narrow = path.join(dir, 'narrow-pixels.mp4');
    await run('ffmpeg', ['-v', 'error', '-y', '-i', reference, '-vf', 'setsar=1/4', '-c:v', 'libx264', '-preset', 'ultrafast', '-an', narrow]);
    const error = await analyzeVideo({ ...settings, maxPixels: 40_000 }, { file: narrow, sizeBytes: 1 }).catch((thrown: Error) => thrown);
    expect((error as Error).message).toBe('a picture of 80x240 is 76,800 pixels as stored, more than the 40,000 limit (MAX_SOURCE_PIXELS)');
  });

  it('stops ffmpeg when the job is aborted', async () => {
    const controller = new AbortController();
    const long = await generateVideo({ path: path.join(dir, 'long.mp4'), segments: [20], width: 640, height: 360, audio: false });
    const running = analyzeVideo(
      settings,
      { file: long.path, sizeBytes: 1 },
      { signal: controller.signal, onProgress: () => controller.abort(new Error('cancelled by test')) },
    );
    await expect(running).rejects.toThrow(/cancelled by test|abort/i);
  });
});
