/**
 * The transcript's audio from real files: an AAC track in an MP4 is copied as it is in this
 * process (the same sound as ffmpeg's own copy, checked by decoding both with real ffmpeg),
 * other containers are copied by ffmpeg, other codecs and copies past the upload limit are
 * encoded to MP3, and a file without sound says so. A track that starts after the picture keeps
 * its place on the picture's clock in the file a transcription service decodes.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { PermanentJobError } from '@clipline/shared';
import { extractSpeech, NoAudioTrack } from '../src/ai/speech-audio.js';
import { describeWithFixtures, fixtures } from '../../../tests/helpers/fixtures.js';
import { generateVideo, TOOLS } from '../../../tests/helpers/media.js';

const run = promisify(execFile);
const MP4_FIXTURES = fixtures('video', ['bbb_h264_aac_60s.mp4', 'talking_head_h264_aac_24s.mp4', 'bbb_hevc_aac_10s.mp4']);
let dir: string;
/** An `ffmpeg` that logs each start to {@link startsLog} and runs the real one. */
let countingFfmpeg: string;
let startsLog: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'clipline-speech-audio-'));
  startsLog = path.join(dir, 'starts.log');
  countingFfmpeg = path.join(dir, 'counting-ffmpeg');
  await writeFile(countingFfmpeg, `#!/bin/sh\necho "$*" >> ${startsLog}\nexec ffmpeg "$@"\n`);
  await chmod(countingFfmpeg, 0o755);
});

beforeEach(async () => {
  await rm(startsLog, { force: true });
});

async function ffmpegStarts(): Promise<number> {
  const log = await readFile(startsLog, 'utf8').catch(() => '');
  return log.split('\n').filter(Boolean).length;
}

/** The decoded sound of a file, as real ffmpeg decodes it. */
async function decodedSound(file: string): Promise<string> {
  const { stdout } = await run('ffmpeg', ['-v', 'error', '-i', file, '-map', '0:a:0', '-f', 's16le', '-'], {
    encoding: 'buffer',
    maxBuffer: 256 * 1024 * 1024,
  });
  return createHash('sha256').update(stdout).digest('hex');
}

/** The track ffmpeg's own `-c:a copy` writes, as a reference. */
async function ffmpegCopy(file: string, name: string): Promise<string> {
  const target = path.join(dir, `${name}-ffmpeg.m4a`);
  await run('ffmpeg', ['-v', 'error', '-y', '-i', file, '-map', '0:a:0', '-vn', '-c:a', 'copy', target]);
  return target;
}

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A 4 s source: `.mp4` carries H.264 and AAC, `.webm` VP8 and Vorbis; `audio: false` leaves out the sound. */
async function source(name: string, audio = true): Promise<string> {
  return (await generateVideo({ segments: [4], width: 160, height: 90, fps: 10, audio, path: path.join(dir, name) })).path;
}

async function codecOf(file: string): Promise<{ codec: string; sampleRate: number; seconds: number }> {
  const { stdout } = await run('ffprobe', [
    '-v',
    'error',
    '-select_streams',
    'a:0',
    '-show_entries',
    'stream=codec_name,sample_rate:format=duration',
    '-of',
    'json',
    file,
  ]);
  const probed = JSON.parse(stdout) as { streams: { codec_name: string; sample_rate: string }[]; format: { duration: string } };
  return { codec: probed.streams[0]?.codec_name ?? 'none', sampleRate: Number(probed.streams[0]?.sample_rate), seconds: Number(probed.format.duration) };
}

async function outputDir(name: string): Promise<string> {
  const out = path.join(dir, name);
  await run('mkdir', ['-p', out]);
  return out;
}

it('copies an AAC track into an .m4a, the whole length, without encoding', async () => {
  const file = await source('aac.mp4');
  const out = await outputDir('aac');
  const speech = await extractSpeech(TOOLS.ffmpegPath, file, out);
  expect(path.basename(speech)).toBe('speech.m4a');
  const { codec, sampleRate, seconds } = await codecOf(speech);
  expect(codec).toBe('aac');
  expect(seconds).toBeGreaterThan(3.8);
  // The source's 44.1 kHz as it was, not the 16 kHz of the speech encoding.
  expect(sampleRate).toBe(44_100);
});

describeWithFixtures(MP4_FIXTURES, 'the real MP4 fixtures', () => {
  it.each(MP4_FIXTURES.files)("copies the AAC track of %s without starting ffmpeg: the same sound and length as ffmpeg's copy", async (file) => {
    const fixture = path.basename(file);
    const out = await outputDir(`fixture-${fixture}`);
    const speech = await extractSpeech(countingFfmpeg, file, out);
    expect(path.basename(speech)).toBe('speech.m4a');
    expect(await ffmpegStarts()).toBe(0);
    const reference = await ffmpegCopy(file, fixture);
    expect(await decodedSound(speech)).toBe(await decodedSound(reference));
    const [ours, theirs] = [await codecOf(speech), await codecOf(reference)];
    expect(ours.codec).toBe('aac');
    expect(ours.sampleRate).toBe(theirs.sampleRate);
    expect(Math.abs(ours.seconds - theirs.seconds)).toBeLessThan(0.1);
  });
});

it('copies from an MP4 whose index sits after the samples, from one with it in front, and from QuickTime', async () => {
  const atEnd = await source('index-at-end.mp4');
  const inFront = path.join(dir, 'index-in-front.mp4');
  await run('ffmpeg', ['-v', 'error', '-y', '-i', atEnd, '-c', 'copy', '-movflags', '+faststart', inFront]);
  const quickTime = path.join(dir, 'quicktime.mov');
  await run('ffmpeg', ['-v', 'error', '-y', '-i', atEnd, '-c', 'copy', quickTime]);
  for (const file of [atEnd, inFront, quickTime]) {
    const out = await outputDir(path.basename(file).replace('.', '-'));
    const speech = await extractSpeech(countingFfmpeg, file, out);
    expect(path.basename(speech)).toBe('speech.m4a');
    expect(await decodedSound(speech)).toBe(await decodedSound(await ffmpegCopy(file, path.basename(file))));
  }
  expect(await ffmpegStarts()).toBe(0);
});

it('leaves a fragmented MP4 and a damaged index to ffmpeg, which copies what it can', async () => {
  const plain = await source('to-fragment.mp4');
  const fragmented = path.join(dir, 'fragmented.mp4');
  await run('ffmpeg', ['-v', 'error', '-y', '-i', plain, '-c', 'copy', '-movflags', 'frag_keyframe+empty_moov', fragmented]);
  const speech = await extractSpeech(countingFfmpeg, fragmented, await outputDir('fragmented'));
  expect(path.basename(speech)).toBe('speech.m4a');
  expect(await ffmpegStarts()).toBe(1);
  expect(await decodedSound(speech)).toBe(await decodedSound(await ffmpegCopy(fragmented, 'fragmented')));

  // The index (at the end) survives, the last samples it points to do not: no half-read copy from this process.
  const damaged = path.join(dir, 'damaged.mp4');
  await run('ffmpeg', ['-v', 'error', '-y', '-i', plain, '-c', 'copy', '-movflags', '+faststart', damaged]);
  const { size } = await stat(damaged);
  await truncate(damaged, size - 2000);
  await rm(startsLog, { force: true });
  await extractSpeech(countingFfmpeg, damaged, await outputDir('damaged')).catch(() => undefined);
  expect(await ffmpegStarts()).toBeGreaterThanOrEqual(1);
});

it('encodes MP3 sound in an MP4 rather than copying it, and says without ffmpeg when an MP4 has no sound', async () => {
  const aac = await source('for-mp3.mp4');
  const mp3InMp4 = path.join(dir, 'mp3-in.mp4');
  await run('ffmpeg', ['-v', 'error', '-y', '-i', aac, '-c:v', 'copy', '-c:a', 'libmp3lame', '-b:a', '64k', mp3InMp4]);
  const speech = await extractSpeech(countingFfmpeg, mp3InMp4, await outputDir('mp3-in'));
  expect(path.basename(speech)).toBe('speech.mp3');
  expect(await ffmpegStarts()).toBe(1);

  await rm(startsLog, { force: true });
  const silent = await source('silent-count.mp4', false);
  await expect(extractSpeech(countingFfmpeg, silent, await outputDir('silent-count'))).rejects.toBeInstanceOf(NoAudioTrack);
  expect(await ffmpegStarts()).toBe(0);
});

it('encodes any other codec (Vorbis here) to MP3, and leaves no copy behind', async () => {
  const file = await source('vorbis.webm');
  const out = await outputDir('vorbis');
  const speech = await extractSpeech(TOOLS.ffmpegPath, file, out);
  expect(path.basename(speech)).toBe('speech.mp3');
  expect((await codecOf(speech)).codec).toBe('mp3');
  expect(await readdir(out)).toEqual(['speech.mp3']);
});

it('encodes an AAC track whose copy would pass the upload limit', async () => {
  const file = await source('big.mp4');
  const out = await outputDir('big');
  const speech = await extractSpeech(TOOLS.ffmpegPath, file, out, { copyLimitBytes: 10_000 });
  expect(path.basename(speech)).toBe('speech.mp3');
  expect(await readdir(out)).toEqual(['speech.mp3']);
});

it('encodes speech too long for the upload at 32 kb/s again at a rate that fits, and refuses speech too long even at 8 kb/s', async () => {
  // 20 s: about 80 KB at 32 kb/s.
  const file = (await generateVideo({ segments: [10, 10], width: 160, height: 90, fps: 10, path: path.join(dir, 'long.webm') })).path;
  const out = await outputDir('long');
  const speech = await extractSpeech(TOOLS.ffmpegPath, file, out, { copyLimitBytes: 50_000 });
  expect(path.basename(speech)).toBe('speech.mp3');
  expect((await stat(speech)).size).toBeLessThanOrEqual(50_000);
  expect((await codecOf(speech)).seconds).toBeGreaterThan(19.5);
  expect(await readdir(out)).toEqual(['speech.mp3']);

  const tight = await outputDir('too-long');
  const error = await extractSpeech(TOOLS.ffmpegPath, file, tight, { copyLimitBytes: 15_000 }).catch((thrown: Error) => thrown);
  expect(error).toBeInstanceOf(PermanentJobError);
  expect((error as Error).message).toMatch(
    /^the sound is too long to transcribe in one upload: 0\.0\d\d MiB as MP3 at 32 kb\/s, about 0\.0\d\d MiB even at 8 kb\/s, over the 0\.014 MiB limit$/,
  );
  expect(await readdir(tight)).toEqual([]);
});

it('says when there is no sound to transcribe', async () => {
  const file = await source('silent.mp4', false);
  await expect(extractSpeech(TOOLS.ffmpegPath, file, await outputDir('silent'))).rejects.toBeInstanceOf(NoAudioTrack);
});

it('names a missing source in a permanent error, as ffmpeg words it, by its name alone', async () => {
  const missing = path.join(dir, 'gone.mp4');
  const error = await extractSpeech(TOOLS.ffmpegPath, missing, await outputDir('gone')).catch((thrown: Error) => thrown);
  expect((error as Error).message).toMatch(/^audio extraction failed: gone\.mp4: No such file/);
  // The reason reaches API clients: no server folder in it.
  expect((error as Error).message).not.toContain(dir);
});

it('names an unreadable source in a permanent error', async () => {
  const file = path.join(dir, 'not-a-video.mp4');
  await run('sh', ['-c', `printf 'not a video' > ${file}`]);
  await expect(extractSpeech(TOOLS.ffmpegPath, file, await outputDir('broken'))).rejects.toThrow(/^audio extraction failed: not-a-video\.mp4: Invalid data/);
});

it('stops an ffmpeg that makes no progress and fails the step to be tried again, naming the stall', async () => {
  const file = await source('stalled.webm');
  const hanging = path.join(dir, 'hanging-ffmpeg');
  await writeFile(hanging, `#!/bin/sh\necho "$$" > ${hanging}.pid\nexec sleep 60\n`);
  await chmod(hanging, 0o755);
  const started = Date.now();
  const error = await extractSpeech(hanging, file, await outputDir('stalled'), { stallTimeoutMs: 300 }).catch((thrown: Error) => thrown);
  expect(Date.now() - started).toBeLessThan(5000);
  expect(error).toBeInstanceOf(Error);
  expect(error).not.toBeInstanceOf(PermanentJobError);
  expect((error as Error).message).toBe('extracting the speech stalled: ffmpeg made no progress for 0.3 s and was stopped');
  // The stopped run is gone, not left sleeping.
  const pid = Number(await readFile(`${hanging}.pid`, 'utf8'));
  expect(() => process.kill(pid, 0)).toThrow();
});

it('lets a run that reports progress go on past the stall timeout', async () => {
  const file = (await generateVideo({ segments: [10, 10], width: 160, height: 90, fps: 10, path: path.join(dir, 'slow.webm') })).path;
  const slowed = path.join(dir, 'slowed-ffmpeg');
  // Real ffmpeg held to the source's own pace: 20 s of sound take about 2 s at ten times real time.
  await writeFile(slowed, '#!/bin/sh\nexec ffmpeg -readrate 10 "$@"\n');
  await chmod(slowed, 0o755);
  const started = Date.now();
  const speech = await extractSpeech(slowed, file, await outputDir('slowed'), { stallTimeoutMs: 700 });
  expect(Date.now() - started).toBeGreaterThan(1400);
  expect((await codecOf(speech)).seconds).toBeGreaterThan(19.5);
});

it('stops an ffmpeg that keeps reporting but whose output does not grow (newer ffmpeg reports while its read hangs)', async () => {
  const file = await source('reporting.webm');
  const reporting = path.join(dir, 'reporting-ffmpeg');
  await writeFile(reporting, `#!/bin/sh\nwhile true; do printf 'total_size=100\\nout_time_us=5\\nprogress=continue\\n'; sleep 0.1; done\n`);
  await chmod(reporting, 0o755);
  const error = await extractSpeech(reporting, file, await outputDir('reporting'), { stallTimeoutMs: 400 }).catch((thrown: Error) => thrown);
  expect((error as Error).message).toBe('extracting the speech stalled: ffmpeg made no progress for 0.4 s and was stopped');
});

it('kills ffmpeg on an abort and settles only once it is gone', async () => {
  const file = await source('aborted.webm');
  const hanging = path.join(dir, 'aborted-ffmpeg');
  await writeFile(hanging, `#!/bin/sh\necho "$$" > ${hanging}.pid\nexec sleep 60\n`);
  await chmod(hanging, 0o755);
  const controller = new AbortController();
  setTimeout(() => controller.abort(new Error('the video was cancelled')), 300);
  await expect(extractSpeech(hanging, file, await outputDir('aborted'), { signal: controller.signal })).rejects.toThrow();
  const pid = Number(await readFile(`${hanging}.pid`, 'utf8'));
  expect(() => process.kill(pid, 0)).toThrow();
});

describe('a sound track that starts after the picture', () => {
  /** A 4 s black picture from 0 and a tone from 1.0 to 1.5 s of its time, in a track that starts 1 s late. */
  async function lateSound(name: string, audioCodec: string[]): Promise<string> {
    const file = path.join(dir, name);
    await run('ffmpeg', [
      ...['-v', 'error', '-y', '-f', 'lavfi', '-i', 'color=c=black:s=160x90:r=25:d=4'],
      ...['-itsoffset', '1', '-f', 'lavfi', '-i', 'sine=f=1000:d=0.5:sample_rate=48000,apad=pad_dur=2.5'],
      ...['-map', '0:v', '-map', '1:a', '-c:v', 'libx264', '-preset', 'ultrafast', ...audioCodec, file],
    ]);
    return file;
  }

  /** Where the tone starts in a file decoded as speech-to-text services decode uploads (16 kHz mono PCM). */
  async function toneStartSeconds(file: string): Promise<number> {
    const { stdout } = await run('ffmpeg', ['-nostdin', '-v', 'error', '-i', file, '-f', 's16le', '-ac', '1', '-ar', '16000', '-'], {
      encoding: 'buffer',
      maxBuffer: 64 * 1024 * 1024,
    });
    for (let at = 0; at + 1 < stdout.length; at += 2) if (Math.abs(stdout.readInt16LE(at)) > 3000) return at / 2 / 16000;
    throw new Error(`no tone in ${file}`);
  }

  // A copy keeps the delay only in its edit list, which decoders drop: the words would come a
  // second early, and every transcript cut and caption with them.
  it.each([
    ['an AAC track in an MP4 (copied in this process)', 'late-aac.mp4', ['-c:a', 'aac']],
    ['an AAC track in Matroska (copied by ffmpeg)', 'late-aac.mkv', ['-c:a', 'aac']],
    ['an Opus track in Matroska (encoded)', 'late-opus.mkv', ['-c:a', 'libopus']],
  ])('%s: the speech file keeps the tone where the picture has it', async (_what, name, codec) => {
    const file = await lateSound(name, codec);
    const speech = await extractSpeech(TOOLS.ffmpegPath, file, await outputDir(`late-${name}`));
    expect(await toneStartSeconds(speech)).toBeCloseTo(1, 1);
  });

  it('an AAC track that starts with its picture is still copied', async () => {
    const file = await source('on-time.mp4');
    const speech = await extractSpeech(countingFfmpeg, file, await outputDir('on-time'));
    expect([path.basename(speech), await ffmpegStarts()]).toEqual(['speech.m4a', 0]);
  });
});
