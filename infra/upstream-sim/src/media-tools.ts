import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { type SpeechActivity, VoiceActivityDetector } from '@clipline/shared/clips';

const run = promisify(execFile);

const tones = new Map<string, Promise<Buffer>>();

/**
 * One second of a sine tone as MP3 frames without ID3 or Xing headers, so that copies of it
 * can be concatenated into a longer, still decodable file. Made once per ffmpeg binary.
 */
export function oneSecondMp3(ffmpegPath: string): Promise<Buffer> {
  let tone = tones.get(ffmpegPath);
  if (!tone) {
    tone = run(
      ffmpegPath,
      [
        '-v',
        'error',
        '-f',
        'lavfi',
        '-i',
        'sine=frequency=330:sample_rate=44100:duration=1',
        '-ac',
        '1',
        '-c:a',
        'libmp3lame',
        '-b:a',
        '64k',
        '-write_xing',
        '0',
        '-id3v2_version',
        '0',
        '-f',
        'mp3',
        'pipe:1',
      ],
      { encoding: 'buffer', maxBuffer: 4 * 1024 * 1024 },
    ).then(
      ({ stdout }) => stdout,
      (error: Error) => {
        tones.delete(ffmpegPath);
        throw new Error(`the simulator needs ffmpeg (with libmp3lame) to make speech audio; "${ffmpegPath}" failed: ${error.message}`);
      },
    );
    tones.set(ffmpegPath, tone);
  }
  return tone;
}

/**
 * Seconds of audio in an uploaded file, or undefined when ffprobe cannot read it as media
 * (what a provider answers with "invalid file format").
 */
export async function probeDuration(ffprobePath: string, data: Buffer, filename: string): Promise<number | undefined> {
  const extension = path
    .extname(filename)
    .replace(/[^.a-z0-9]/gi, '')
    .slice(0, 8);
  const file = path.join(os.tmpdir(), `upstream-sim-${randomUUID()}${extension}`);
  await writeFile(file, data);
  try {
    const { stdout } = await run(ffprobePath, ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', file]);
    const seconds = Number.parseFloat(stdout.trim());
    return Number.isFinite(seconds) && seconds > 0 ? seconds : undefined;
  } catch {
    return undefined;
  } finally {
    await rm(file, { force: true });
  }
}

/**
 * Where an uploaded recording speaks and pauses: ffmpeg decodes it to 16 kHz mono PCM, which a
 * voice-activity pass reads as it streams. Undefined when ffmpeg cannot decode it.
 */
export async function audioActivity(ffmpegPath: string, data: Buffer, filename: string): Promise<SpeechActivity | undefined> {
  const extension = path
    .extname(filename)
    .replace(/[^.a-z0-9]/gi, '')
    .slice(0, 8);
  const file = path.join(os.tmpdir(), `upstream-sim-${randomUUID()}${extension}`);
  await writeFile(file, data);
  try {
    return await new Promise<SpeechActivity | undefined>((resolve) => {
      const detector = new VoiceActivityDetector(16_000);
      const child = spawn(ffmpegPath, ['-nostdin', '-v', 'error', '-i', file, '-vn', '-ac', '1', '-ar', '16000', '-f', 's16le', 'pipe:1'], {
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      child.stdout.on('data', (chunk: Buffer) => detector.push(chunk));
      child.once('error', () => resolve(undefined));
      child.once('close', (code) => resolve(code === 0 ? detector.result() : undefined));
    });
  } finally {
    await rm(file, { force: true });
  }
}
