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

/** What one decode of an uploaded recording tells: how long it is and where it speaks and pauses. */
export interface DecodedRecording {
  seconds: number;
  activity: SpeechActivity;
}

/** Sample rate of the decode: 16 kHz mono, 2 bytes a sample. */
const DECODE_RATE = 16_000;

/**
 * Decodes an uploaded recording once, to 16 kHz mono PCM: its length comes from the samples and
 * a voice-activity pass reads them as they stream. Undefined when ffmpeg cannot decode it as
 * audio (what a provider answers with "invalid file format").
 */
export async function decodeRecording(ffmpegPath: string, data: Buffer, filename: string): Promise<DecodedRecording | undefined> {
  const extension = path
    .extname(filename)
    .replace(/[^.a-z0-9]/gi, '')
    .slice(0, 8);
  const file = path.join(os.tmpdir(), `upstream-sim-${randomUUID()}${extension}`);
  await writeFile(file, data);
  try {
    return await new Promise<DecodedRecording | undefined>((resolve) => {
      const detector = new VoiceActivityDetector(DECODE_RATE);
      let bytes = 0;
      const child = spawn(ffmpegPath, ['-nostdin', '-v', 'error', '-i', file, '-vn', '-ac', '1', '-ar', String(DECODE_RATE), '-f', 's16le', 'pipe:1'], {
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      child.stdout.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        detector.push(chunk);
      });
      child.once('error', () => resolve(undefined));
      child.once('close', (code) => resolve(code === 0 && bytes > 0 ? { seconds: bytes / 2 / DECODE_RATE, activity: detector.result() } : undefined));
    });
  } finally {
    await rm(file, { force: true });
  }
}
