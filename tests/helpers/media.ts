/**
 * Test media made with ffmpeg's lavfi sources. Each segment is a visibly different picture, so
 * the cut times between segments are the ground truth for scene detection.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * The ffmpeg and ffprobe the code under test runs: `FFMPEG_PATH` / `FFPROBE_PATH`, as the apps'
 * configuration reads them (`npm run test:ffmpeg-build` points them at clipline's own build).
 * Test media is always made with the system's ffmpeg, which has the encoders the fixtures need.
 */
export const TOOLS = { ffmpegPath: process.env.FFMPEG_PATH ?? 'ffmpeg', ffprobePath: process.env.FFPROBE_PATH ?? 'ffprobe' } as const;

/** Sources that look nothing alike; moving ones (testsrc2, mandelbrot, cellauto) test that motion is not a cut. */
export const SEGMENT_SOURCES = [
  'testsrc2',
  'smptebars',
  'mandelbrot',
  'color=c=0x2050c0',
  'rgbtestsrc',
  'cellauto=rule=110',
  'color=c=0xe0c020',
  'smptehdbars',
] as const;

export interface GeneratedVideo {
  path: string;
  durationSeconds: number;
  /** Times where a new segment begins. */
  cutSeconds: number[];
}

export interface VideoSpec {
  /** Length of each segment, in seconds. */
  segments: number[];
  width?: number;
  height?: number;
  fps?: number;
  audio?: boolean;
  /** Container by extension: .mp4 (H.264/AAC) or .webm (VP8/Vorbis). */
  path: string;
}

export async function generateVideo(spec: VideoSpec): Promise<GeneratedVideo> {
  const width = spec.width ?? 320;
  const height = spec.height ?? 240;
  const fps = spec.fps ?? 25;
  // Segments are cut to whole frames (trim), so the true cut times are exact multiples of 1/fps.
  const frames = spec.segments.map((seconds) => Math.max(1, Math.round(seconds * fps)));
  const inputs: string[] = [];
  const trims: string[] = [];
  frames.forEach((count, index) => {
    const source = SEGMENT_SOURCES[index % SEGMENT_SOURCES.length]!;
    const sized = `${source}${source.includes('=') ? ':' : '='}size=${width}x${height}:rate=${fps}`;
    inputs.push('-f', 'lavfi', '-i', sized);
    trims.push(`[${index}:v]trim=end_frame=${count},setpts=PTS-STARTPTS[s${index}]`);
  });
  const totalFrames = frames.reduce((sum, count) => sum + count, 0);
  const durationSeconds = totalFrames / fps;
  const labels = frames.map((_, index) => `[s${index}]`).join('');
  const filter = `${trims.join(';')};${labels}concat=n=${frames.length}:v=1:a=0,format=yuv420p[v]`;
  const args = ['-v', 'error', '-y', ...inputs];
  if (spec.audio ?? true) args.push('-f', 'lavfi', '-t', String(durationSeconds), '-i', 'sine=frequency=440:sample_rate=44100');
  args.push('-filter_complex', filter, '-map', '[v]');
  if (spec.audio ?? true) args.push('-map', `${spec.segments.length}:a`);
  if (spec.path.endsWith('.webm')) args.push('-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '1M', '-c:a', 'libvorbis');
  else args.push('-c:v', 'libx264', '-preset', 'veryfast', '-c:a', 'aac');
  args.push('-t', String(durationSeconds), spec.path);
  await run('ffmpeg', args);
  const cutSeconds: number[] = [];
  let at = 0;
  for (const count of frames.slice(0, -1)) {
    at += count;
    cutSeconds.push(at / fps);
  }
  return { path: spec.path, durationSeconds, cutSeconds };
}

export async function ffprobeDuration(file: string): Promise<number> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', file]);
  return Number(stdout.trim());
}

/**
 * Rewrites the movie header (mvhd) of an MP4 so it declares `seconds` of duration while the
 * streams stay as they are: a file whose header lies about its length.
 */
export async function withClaimedDuration(source: string, target: string, seconds: number): Promise<void> {
  const { readFile, writeFile } = await import('node:fs/promises');
  const bytes = await readFile(source);
  const at = bytes.indexOf('mvhd');
  if (at < 0) throw new Error(`${source} has no mvhd box`);
  if (bytes[at + 4] !== 0) throw new Error('only version-0 mvhd boxes are handled');
  const timescaleAt = at + 4 + 4 + 4 + 4;
  const timescale = bytes.readUInt32BE(timescaleAt);
  bytes.writeUInt32BE(Math.round(seconds * timescale), timescaleAt + 4);
  await writeFile(target, bytes);
}

/** `source` played `times` times in a row into `target`, streams copied: a long video in a fraction of a second. */
export async function loopVideo(source: string, target: string, times: number): Promise<void> {
  await run('ffmpeg', ['-v', 'error', '-y', '-stream_loop', String(times - 1), '-i', source, '-c', 'copy', target]);
}

/** Size and duration of the first video stream (display size: rotation applied). */
export async function ffprobeStream(file: string): Promise<{ width: number; height: number; duration: number }> {
  const { stdout } = await run('ffprobe', [
    '-v',
    'error',
    '-select_streams',
    'v:0',
    '-show_entries',
    'stream=width,height:format=duration',
    '-of',
    'json',
    file,
  ]);
  const parsed = JSON.parse(stdout) as { streams: { width: number; height: number }[]; format: { duration: string } };
  return { width: parsed.streams[0]!.width, height: parsed.streams[0]!.height, duration: Number(parsed.format.duration) };
}
