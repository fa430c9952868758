/**
 * The transcript's audio, made by real ffmpeg from real files: an AAC track is copied as it is,
 * other codecs and copies past the upload limit are encoded to MP3, and a file without sound
 * says so.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { extractSpeech, NoAudioTrack } from '../src/ai/speech-audio.js';
import { generateVideo } from '../../../tests/helpers/media.js';

const run = promisify(execFile);
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'clipline-speech-audio-'));
});

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
  const speech = await extractSpeech('ffmpeg', file, out);
  expect(path.basename(speech)).toBe('speech.m4a');
  const { codec, sampleRate, seconds } = await codecOf(speech);
  expect(codec).toBe('aac');
  expect(seconds).toBeGreaterThan(3.8);
  // The source's 44.1 kHz as it was, not the 16 kHz of the speech encoding.
  expect(sampleRate).toBe(44_100);
});

it('encodes any other codec (Vorbis here) to MP3, and leaves no copy behind', async () => {
  const file = await source('vorbis.webm');
  const out = await outputDir('vorbis');
  const speech = await extractSpeech('ffmpeg', file, out);
  expect(path.basename(speech)).toBe('speech.mp3');
  expect((await codecOf(speech)).codec).toBe('mp3');
  expect(await readdir(out)).toEqual(['speech.mp3']);
});

it('encodes an AAC track whose copy would pass the upload limit', async () => {
  const file = await source('big.mp4');
  const out = await outputDir('big');
  const speech = await extractSpeech('ffmpeg', file, out, { copyLimitBytes: 10_000 });
  expect(path.basename(speech)).toBe('speech.mp3');
  expect(await readdir(out)).toEqual(['speech.mp3']);
});

it('says when there is no sound to transcribe', async () => {
  const file = await source('silent.mp4', false);
  await expect(extractSpeech('ffmpeg', file, await outputDir('silent'))).rejects.toBeInstanceOf(NoAudioTrack);
});

it('names an unreadable source in a permanent error', async () => {
  const file = path.join(dir, 'not-a-video.mp4');
  await run('sh', ['-c', `printf 'not a video' > ${file}`]);
  await expect(extractSpeech('ffmpeg', file, await outputDir('broken'))).rejects.toThrow(/audio extraction failed: .*Invalid data/);
});
