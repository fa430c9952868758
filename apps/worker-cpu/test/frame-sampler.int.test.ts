import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { PermanentJobError, usableCores } from '@clipline/shared';
import { expectSuccess, probe, spawnTool } from '../src/analysis/ffmpeg.js';
import { batchMetrics } from '../src/analysis/frame-metrics.js';
import { LoudnessReader, loudnessOutputs } from '../src/analysis/audio-loudness.js';
import { decoderThreads, rawFramesFrom, sampleFrames, sampleSize, type AudioSink, type SampledBatch } from '../src/analysis/frame-sampler.js';
import { generateVideo, TOOLS } from '../../../tests/helpers/media.js';

const run = promisify(execFile);
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'clipline-sampler-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function collect(batches: AsyncIterable<SampledBatch>): Promise<SampledBatch[]> {
  const all: SampledBatch[] = [];
  for await (const batch of batches) all.push(batch);
  return all;
}

/** `seconds` of ffmpeg's 320x240 test pattern in H.264, with `extra` output options. */
async function testPattern(file: string, seconds: number, extra: string[] = []): Promise<void> {
  await run('ffmpeg', [
    '-v',
    'error',
    '-y',
    '-f',
    'lavfi',
    '-i',
    'testsrc2=size=320x240:rate=25',
    '-t',
    String(seconds),
    '-c:v',
    'libx264',
    '-preset',
    'veryfast',
    ...extra,
    file,
  ]);
}

/** Mean luma of the rows [from, to) of the first frame, from its green channel (the picture is grey). */
function rowsMean(frames: Uint8Array, width: number, from: number, to: number): number {
  let sum = 0;
  for (let y = from; y < to; y++) for (let x = 0; x < width; x++) sum += frames[(y * width + x) * 3 + 1]!;
  return sum / ((to - from) * width);
}

describe('sampleFrames', () => {
  it("gives the decoder the cores the process may use (its cgroup quota included), not ffmpeg's count of the machine's", () => {
    expect(rawFramesFrom('a.mp4', 10, 160, 90).slice(0, 4)).toEqual(['-threads', String(decoderThreads(usableCores())), '-i', 'a.mp4']);
    expect(rawFramesFrom('a.mp4', 10, 160, 90, 3).slice(0, 2)).toEqual(['-threads', '3']);
    // As ffmpeg counts them from the machine's cores: one more than the cores, at most 16, one on a single core.
    expect([1, 2, 4, 64].map(decoderThreads)).toEqual([1, 3, 5, 16]);
  });

  it('follows rotation metadata: frames come out in display orientation', async () => {
    const plain = path.join(dir, 'half-white.mp4');
    // Left half white, right half black, stored landscape.
    await run('ffmpeg', [
      '-v',
      'error',
      '-y',
      '-f',
      'lavfi',
      '-i',
      'color=c=black:size=320x240:rate=25,drawbox=x=0:y=0:w=160:h=240:color=white:t=fill',
      '-t',
      '1',
      '-c:v',
      'libx264',
      '-preset',
      'veryfast',
      '-pix_fmt',
      'yuv420p',
      plain,
    ]);
    const rotated = path.join(dir, 'rotated.mp4');
    await run('ffmpeg', ['-v', 'error', '-y', '-i', plain, '-c', 'copy', '-metadata:s:v:0', 'rotate=90', rotated]);
    const facts = await probe(TOOLS, rotated);
    expect([90, 270]).toContain(facts.rotation);
    expect({ width: facts.width, height: facts.height }).toEqual({ width: 240, height: 320 });
    const size = sampleSize(facts.width, facts.height, 120);
    expect(size).toEqual({ width: 120, height: 160 });
    const [batch] = await collect(sampleFrames(TOOLS, { file: rotated, fps: 5, ...size, batchFrames: 2 }));
    const top = rowsMean(batch!.frames, size.width, 0, 60);
    const bottom = rowsMean(batch!.frames, size.width, 100, 160);
    // A clockwise quarter turn brings the left edge to the top; counter-clockwise, to the bottom.
    if (facts.rotation === 90) expect(top - bottom).toBeGreaterThan(200);
    else expect(bottom - top).toBeGreaterThan(200);
  });

  it('samples a variable-frame-rate video at a constant rate, shots where they are in time', async () => {
    const file = path.join(dir, 'vfr.mp4');
    const parts = [
      ['testsrc2', 30],
      ['smptebars', 10],
      ['mandelbrot', 24],
    ] as const;
    const inputs = parts.flatMap(([source, rate]) => ['-f', 'lavfi', '-i', `${source}=size=320x240:rate=${rate}`]);
    const trims = parts.map((_, k) => `[${k}:v]trim=duration=2,setpts=PTS-STARTPTS,settb=1/90000[s${k}]`).join(';');
    await run('ffmpeg', [
      '-v',
      'error',
      '-y',
      ...inputs,
      '-filter_complex',
      `${trims};[s0][s1][s2]concat=n=3:v=1:a=0,format=yuv420p[v]`,
      '-map',
      '[v]',
      '-fps_mode',
      'vfr',
      '-c:v',
      'libx264',
      '-preset',
      'veryfast',
      file,
    ]);
    const facts = await probe(TOOLS, file);
    const batches = await collect(sampleFrames(TOOLS, { file, fps: 10, width: 64, height: 48, batchFrames: 16 }));
    const frames = batches.reduce((sum, batch) => sum + batch.count, 0);
    expect(Math.abs(frames - facts.durationSeconds * 10)).toBeLessThanOrEqual(1);
    const scores = batches.flatMap((batch, k) =>
      batchMetrics({ width: 64, height: 48, frames: batch.frames, count: batch.count, previous: k ? batches[k - 1]!.frames.slice(-64 * 48 * 3) : null }).map(
        (m) => m.contentScore,
      ),
    );
    const cuts = scores.flatMap((score, index) => (score > 27 ? [index] : []));
    expect(cuts).toEqual([20, 40]);
  });

  it('samples an exact window: a cut 0.5 s after the start lands on frame 5', async () => {
    const video = await generateVideo({ path: path.join(dir, 'window.mp4'), segments: [2, 2, 2], audio: false });
    const batches = await collect(
      sampleFrames(TOOLS, { file: video.path, fps: 10, width: 64, height: 48, batchFrames: 4, startSeconds: 1.5, durationSeconds: 1 }),
    );
    expect(batches.reduce((sum, batch) => sum + batch.count, 0)).toBe(10);
    const packed = new Uint8Array(batches.reduce((sum, batch) => sum + batch.frames.length, 0));
    batches.reduce((offset, batch) => (packed.set(batch.frames, offset), offset + batch.frames.length), 0);
    const scores = batchMetrics({ width: 64, height: 48, frames: packed, count: 10 }).map((m) => m.contentScore);
    expect(scores.flatMap((score, index) => (score > 27 ? [index] : []))).toEqual([5]);
  });

  it('handles an odd frame size', async () => {
    const file = path.join(dir, 'odd.mkv');
    await run('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=321x179:rate=25', '-t', '1', '-c:v', 'ffv1', file]);
    const facts = await probe(TOOLS, file);
    expect({ width: facts.width, height: facts.height }).toEqual({ width: 321, height: 179 });
    const size = sampleSize(facts.width, facts.height, 161);
    expect((size.width % 2) + (size.height % 2)).toBe(0);
    const batches = await collect(sampleFrames(TOOLS, { file, fps: 10, ...size, batchFrames: 3 }));
    expect(batches.map((batch) => batch.count)).toEqual([3, 3, 3, 1]);
    expect(batches.every((batch) => batch.frames.length === batch.count * size.width * size.height * 3)).toBe(true);
  });

  describe('started before the height is known (analysis does not wait for the probe)', () => {
    /** Every byte of a sampling, fixed height or promised. */
    const sampledBytes = async (file: string, size: { width: number; height: number | Promise<number> }) =>
      Buffer.concat((await collect(sampleFrames(TOOLS, { file, fps: 10, ...size, batchFrames: 4 }))).map((batch) => batch.frames));

    it('gives the same frames as a fixed height, rotated or odd-sized', async () => {
      const rotated = path.join(dir, 'rotated-promised.mp4');
      const plain = path.join(dir, 'plain-promised.mp4');
      await testPattern(plain, 2);
      await run('ffmpeg', ['-v', 'error', '-y', '-i', plain, '-c', 'copy', '-metadata:s:v:0', 'rotate=90', rotated]);
      const odd = path.join(dir, 'odd-promised.mkv');
      await run('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=321x179:rate=25', '-t', '1', '-c:v', 'ffv1', odd]);
      for (const file of [rotated, odd]) {
        const facts = await probe(TOOLS, file);
        const size = sampleSize(facts.width, facts.height, 120);
        const fixed = await sampledBytes(file, size);
        expect(fixed.length).toBeGreaterThan(0);
        const promised = await sampledBytes(file, { width: size.width, height: new Promise((resolve) => setTimeout(() => resolve(size.height), 200)) });
        expect(promised.equals(fixed)).toBe(true);
      }
    });

    it('keeps the first size when the picture changes size mid-stream', async () => {
      const parts = ['640x360', '320x480'].map((size, k) => path.join(dir, `part-${k}-${size}.ts`));
      for (const [k, size] of ['640x360', '320x480'].entries()) {
        await run('ffmpeg', [
          '-v',
          'error',
          '-y',
          '-f',
          'lavfi',
          '-i',
          `testsrc2=size=${size}:rate=25:duration=3`,
          '-c:v',
          'libx264',
          '-preset',
          'ultrafast',
          parts[k]!,
        ]);
      }
      const joined = path.join(dir, 'size-change.ts');
      await writeFile(joined, Buffer.concat(await Promise.all(parts.map((part) => readFile(part)))));
      const promised = await sampledBytes(joined, { width: 160, height: Promise.resolve(90) });
      const fixed = await sampledBytes(joined, { width: 160, height: 90 });
      const frameBytes = 160 * 90 * 3;
      expect(promised.length).toBe(60 * frameBytes);
      expect(fixed.length).toBe(60 * frameBytes);
      // The first part is scaled alike; the second is scaled to 160x240 then back to 160x90, so close, not equal.
      expect(promised.subarray(0, 30 * frameBytes).equals(fixed.subarray(0, 30 * frameBytes))).toBe(true);
      let difference = 0;
      for (let i = 30 * frameBytes; i < fixed.length; i++) difference += Math.abs(promised[i]! - fixed[i]!);
      expect(difference / (30 * frameBytes)).toBeLessThan(6);
    });

    it('ends with the error of a height that never comes (a refused probe)', async () => {
      const file = path.join(dir, 'plain-promised.mp4');
      const refused = new PermanentJobError('refused by the probe');
      await expect(collect(sampleFrames(TOOLS, { file, fps: 10, width: 64, height: Promise.reject(refused), batchFrames: 4 }))).rejects.toBe(refused);
    });
  });

  it('lets go of a pipe holding early frames when aborted before it is read (a probe that failed)', async () => {
    const file = path.join(dir, 'early.mp4');
    await testPattern(file, 4);
    const openFiles = () => readdirSync('/proc/self/fd').length;
    const until = async (done: () => boolean, what: string) => {
      for (const started = Date.now(); !done(); await new Promise((resolve) => setTimeout(resolve, 50))) {
        if (Date.now() - started > 10_000) throw new Error(`timed out waiting for ${what}: ${openFiles()} open files`);
      }
    };
    // A first run opens what every run shares (the spawner's connection).
    await collect(sampleFrames(TOOLS, { file, fps: 5, width: 64, height: 48, batchFrames: 4 }));
    const before = openFiles();
    const stop = new AbortController();
    // A height that never comes: the frames ffmpeg writes meanwhile are held, past 4 MiB with the pipe paused.
    sampleFrames(TOOLS, { file, fps: 25, width: 320, height: new Promise<number>(() => {}), batchFrames: 4, signal: stop.signal });
    await until(() => openFiles() > before, "the sampler's pipes");
    await new Promise((resolve) => setTimeout(resolve, 1500));
    stop.abort(new PermanentJobError('refused by the probe'));
    await until(() => openFiles() <= before, 'the pipes to close');
  });

  it('fails with a reason on a file cut short after its header', async () => {
    const whole = path.join(dir, 'faststart.mp4');
    await testPattern(whole, 6, ['-movflags', '+faststart']);
    const cut = path.join(dir, 'faststart-cut.mp4');
    const bytes = await readFile(whole);
    await writeFile(cut, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const facts = await probe(TOOLS, cut);
    expect(facts.durationSeconds).toBeCloseTo(6, 1);
    const started = Date.now();
    const outcome = await collect(sampleFrames(TOOLS, { file: cut, fps: 10, width: 64, height: 48, batchFrames: 8 })).then(
      (batches) => ({ frames: batches.reduce((sum, batch) => sum + batch.count, 0) }),
      (error: Error) => ({ error }),
    );
    expect(Date.now() - started).toBeLessThan(10_000);
    // ffmpeg either stops with an error or decodes what is there: both must be visible to analysis.
    if ('error' in outcome) expect(outcome.error).toBeInstanceOf(PermanentJobError);
    else expect(outcome.frames).toBeLessThan(50);
  });
});

describe('with the audio measured in the same ffmpeg', () => {
  /** A sink into a loudness reader, counting PCM bytes and noting why audio was dropped. */
  function sink() {
    const reader = new LoudnessReader({ speech: true });
    const seen = { pcmBytes: 0, dropped: [] as string[] };
    const audio: AudioSink = {
      log: (chunk) => reader.log(chunk),
      pcm: (chunk) => {
        seen.pcmBytes += chunk.length;
        reader.pcm(chunk);
      },
      dropped: (reason) => void seen.dropped.push(reason),
    };
    return { audio, reader, seen };
  }

  const frameBytes = (batches: SampledBatch[]) => Buffer.concat(batches.map((batch) => batch.frames));

  it('gives the frames it gives without audio, and the loudness and pauses a pass of their own gives', async () => {
    const video = await generateVideo({ path: path.join(dir, 'with-sound.mp4'), segments: [1.5, 2.5], width: 160, height: 120 });
    const size = sampleSize(160, 120, 64);
    const alone = frameBytes(await collect(sampleFrames(TOOLS, { file: video.path, fps: 10, ...size, batchFrames: 8 })));
    const measured = sink();
    const withAudio = frameBytes(await collect(sampleFrames(TOOLS, { file: video.path, fps: 10, ...size, batchFrames: 8, audio: measured.audio })));
    expect(withAudio.equals(alone)).toBe(true);
    expect(measured.seen.dropped).toEqual([]);
    // 4 s of 16 kHz mono 16-bit PCM.
    expect(measured.seen.pcmBytes).toBeGreaterThan(4 * 32_000 * 0.95);
    expect(measured.seen.pcmBytes).toBeLessThan(4 * 32_000 * 1.05);
    const track = measured.reader.result();
    expect(track.shortTermLufs.length).toBeGreaterThanOrEqual(7);
    // The reference: the audio pass of its own that analysis ran before, a separate ffmpeg.
    const alonePass = await run('ffmpeg', ['-nostdin', '-hide_banner', '-nostats', '-loglevel', 'info', '-i', video.path, ...loudnessOutputs('pipe:1')], {
      encoding: 'buffer',
      maxBuffer: 64 * 1024 * 1024,
    });
    const reference = new LoudnessReader({ speech: true });
    reference.log(alonePass.stderr.toString('utf8'));
    reference.pcm(alonePass.stdout);
    expect(track).toEqual(reference.result());
  });

  it('finds pauses on the source clock when the audio track starts late', async () => {
    // 12 s of picture; the sound starts at 3 s: a tone 1 s on, 1 s off (on at 3-4, 5-6, 7-8 and 9-10 s).
    const file = path.join(dir, 'late-sound.mp4');
    await run('ffmpeg', [
      ...['-nostdin', '-hide_banner', '-loglevel', 'error', '-y'],
      ...['-f', 'lavfi', '-i', 'testsrc2=size=160x90:rate=25:duration=12'],
      ...['-f', 'lavfi', '-itsoffset', '3', '-i', "sine=frequency=440:sample_rate=16000:duration=7,volume='lt(mod(t,2),1)':eval=frame"],
      ...['-map', '0:v', '-map', '1:a', '-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac', file],
    ]);
    const pass = await run('ffmpeg', ['-nostdin', '-hide_banner', '-nostats', '-loglevel', 'info', '-i', file, ...loudnessOutputs('pipe:1')], {
      encoding: 'buffer',
      maxBuffer: 64 * 1024 * 1024,
    });
    const reader = new LoudnessReader({ speech: true });
    reader.log(pass.stderr.toString('utf8'));
    reader.pcm(pass.stdout);
    const { pauses } = reader.result().speech!;
    // The silences between the tones: 4-5, 6-7 and 8-9 s (not 1-2, 3-4 and 5-6, counted from the track's start).
    const inner = pauses.filter((pause) => pause.startSeconds > 3.5 && pause.endSeconds < 9.5);
    expect(inner).toHaveLength(3);
    inner.forEach((pause, index) => {
      expect(pause.startSeconds).toBeCloseTo(4 + 2 * index, 0);
      expect(pause.endSeconds).toBeCloseTo(5 + 2 * index, 0);
    });
    // And the silence before the sound begins is a pause from the start.
    expect(pauses[0]).toMatchObject({ startSeconds: 0 });
    expect(pauses[0]!.endSeconds).toBeCloseTo(3, 0);
  });

  it('fills a forward jump of the sound track with silence no further than the longest source taken', async () => {
    // 3 s of sound whose timestamps jump an hour ahead after the first second.
    const file = path.join(dir, 'jump.mkv');
    await run('ffmpeg', [
      ...['-nostdin', '-hide_banner', '-loglevel', 'error', '-y'],
      ...['-f', 'lavfi', '-i', 'testsrc2=size=160x90:rate=25:duration=3', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=16000:duration=3'],
      ...['-map', '0:v', '-map', '1:a', '-af', "asetpts='PTS+if(gte(T,1),3600/TB,0)'", '-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac', file],
    ]);
    const pass = await run('ffmpeg', ['-nostdin', '-hide_banner', '-nostats', '-loglevel', 'error', '-i', file, ...loudnessOutputs('pipe:1', false, 10)], {
      encoding: 'buffer',
      maxBuffer: 256 * 1024 * 1024,
    });
    // 10 s of 16 kHz mono 16-bit PCM at most, not the hour (115 MB) the jump would fill.
    expect(pass.stdout.length).toBeLessThanOrEqual(10 * 32_000);
    expect(pass.stdout.length).toBeGreaterThan(0.9 * 32_000);
  });

  it('on a source without sound, decodes the frames in an ffmpeg without the audio outputs and says why', async () => {
    const video = await generateVideo({ path: path.join(dir, 'silent-film.mp4'), segments: [2], width: 160, height: 120, audio: false });
    const size = sampleSize(160, 120, 64);
    const alone = frameBytes(await collect(sampleFrames(TOOLS, { file: video.path, fps: 10, ...size, batchFrames: 8 })));
    const measured = sink();
    const batches = await collect(sampleFrames(TOOLS, { file: video.path, fps: 10, ...size, batchFrames: 8, audio: measured.audio }));
    expect(frameBytes(batches).equals(alone)).toBe(true);
    expect(measured.seen.dropped).toHaveLength(1);
    expect(measured.seen.dropped[0]).toMatch(/does not contain any stream/);
    expect(measured.seen.pcmBytes).toBe(0);
  });

  it('fails on a file that is no video as it does without audio: decoding failed, with the reason ffmpeg gives', async () => {
    const file = path.join(dir, 'not-a-video.mp4');
    await writeFile(file, 'plain text, not a video');
    const measured = sink();
    const error = await collect(sampleFrames(TOOLS, { file, fps: 10, width: 64, height: 48, batchFrames: 8, audio: measured.audio })).then(
      () => undefined,
      (thrown: Error) => thrown,
    );
    expect(error).toBeInstanceOf(PermanentJobError);
    expect(error!.message).toMatch(/^decoding failed \(ffmpeg: .*not-a-video\.mp4: Invalid data found when processing input\)$/);
    // The reason reaches API clients: the file by its name, not the server's folders.
    expect(error!.message).not.toContain(dir);
    expect(measured.seen.dropped).toHaveLength(1);
  });

  it('quotes only the problem lines of a level-tagged log, without their tags', async () => {
    const file = path.join(dir, 'also-not-a-video.mp4');
    await writeFile(file, 'plain text, not a video');
    const run = await spawnTool('ffmpeg', ['-nostdin', '-loglevel', 'level+info', '-i', file, '-f', 'null', '-'], undefined, { levelTagged: true });
    const error = await expectSuccess(run, 'probe by hand').then(
      () => undefined,
      (thrown: Error) => thrown,
    );
    expect(error!.message).toMatch(/^probe by hand \(ffmpeg: .*Invalid data found when processing input\)$/);
    expect(error!.message).not.toMatch(/\[(error|info)\]|ffmpeg version|configuration:/);
  });
});

describe('a source that never delivers (a FIFO nobody writes)', () => {
  let fifo: string;
  beforeAll(async () => {
    fifo = path.join(dir, 'stalled.fifo');
    await run('mkfifo', [fifo]);
  });

  it('probe gives up with a clear reason', async () => {
    const started = Date.now();
    await expect(probe(TOOLS, fifo, undefined, { timeoutMs: 300 })).rejects.toThrow(/ffprobe gave no answer within 0.3 s/);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('sampling is killed after the stall timeout', async () => {
    const started = Date.now();
    await expect(collect(sampleFrames(TOOLS, { file: fifo, fps: 10, width: 64, height: 48, batchFrames: 4, stallTimeoutMs: 300 }))).rejects.toThrow(
      /decoding stalled: ffmpeg produced nothing for 0.3 s/,
    );
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
