/**
 * The transcript's audio, made by real ffmpeg from real files: an AAC track is copied as it is,
 * other codecs and copies past the upload limit are encoded to MP3, and a file without sound
 * says so.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { extractSpeech, NoAudioTrack } from '../src/ai/speech-audio.js';

const run = promisify(execFile);
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'clipline-speech-audio-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A 4 s source with a test picture and, unless `audio` is null, a tone in that codec. */
async function source(name: string, audio: string[] | null): Promise<string> {
  const file = path.join(dir, name);
  const sound = audio ? ['-f', 'lavfi', '-i', 'sine=frequency=440:duration=4'] : [];
  await run('ffmpeg', [
    '-v',
    'error',
    '-y',
    '-f',
    'lavfi',
    '-i',
    'testsrc=size=160x90:rate=10:duration=4',
    ...sound,
    '-c:v',
    'libx264',
    '-preset',
    'ultrafast',
    ...(audio ?? []),
    '-shortest',
    file,
  ]);
  return file;
}

async function codecOf(file: string): Promise<{ codec: string; seconds: number }> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'a:0', '-show_entries', 'stream=codec_name:format=duration', '-of', 'json', file]);
  const probed = JSON.parse(stdout) as { streams: { codec_name: string }[]; format: { duration: string } };
  return { codec: probed.streams[0]?.codec_name ?? 'none', seconds: Number(probed.format.duration) };
}

async function outputDir(name: string): Promise<string> {
  const out = path.join(dir, name);
  await run('mkdir', ['-p', out]);
  return out;
}

it('copies an AAC track into an .m4a, the whole length, without encoding', async () => {
  const file = await source('aac.mp4', ['-c:a', 'aac', '-b:a', '96k']);
  const out = await outputDir('aac');
  const speech = await extractSpeech('ffmpeg', file, out);
  expect(path.basename(speech)).toBe('speech.m4a');
  const { codec, seconds } = await codecOf(speech);
  expect(codec).toBe('aac');
  expect(seconds).toBeGreaterThan(3.8);
  // 96 kb/s stereo as it was, not the 32 kb/s mono of the speech encoding.
  expect((await stat(speech)).size).toBeGreaterThan(30_000);
});

it('encodes any other codec to MP3, and leaves no copy behind', async () => {
  const file = await source('opus.mkv', ['-c:a', 'libopus']);
  const out = await outputDir('opus');
  const speech = await extractSpeech('ffmpeg', file, out);
  expect(path.basename(speech)).toBe('speech.mp3');
  expect((await codecOf(speech)).codec).toBe('mp3');
  expect(await readdir(out)).toEqual(['speech.mp3']);
});

it('encodes an AAC track whose copy would pass the upload limit', async () => {
  const file = await source('big.mp4', ['-c:a', 'aac', '-b:a', '96k']);
  const out = await outputDir('big');
  const speech = await extractSpeech('ffmpeg', file, out, { copyLimitBytes: 10_000 });
  expect(path.basename(speech)).toBe('speech.mp3');
  expect(await readdir(out)).toEqual(['speech.mp3']);
});

it('says when there is no sound to transcribe', async () => {
  const file = await source('silent.mp4', null);
  await expect(extractSpeech('ffmpeg', file, await outputDir('silent'))).rejects.toBeInstanceOf(NoAudioTrack);
});

it('names an unreadable source in a permanent error', async () => {
  const file = path.join(dir, 'not-a-video.mp4');
  await run('sh', ['-c', `printf 'not a video' > ${file}`]);
  await expect(extractSpeech('ffmpeg', file, await outputDir('broken'))).rejects.toThrow(/audio extraction failed: .*Invalid data/);
});
