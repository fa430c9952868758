import { spawn } from 'node:child_process';
import { setPriority } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { cpuTicksOf, endSpan, PermanentJobError, startChildSpan } from '@clipline/shared';
import { mp4Facts } from './mp4-facts.js';
import { displayedSize, parsedPixelAspect } from './picture-size.js';
import { type ToolChild, type ToolExit, ToolSpawner, type ToolStart, ToolStartError } from './tool-spawner.js';

export interface FfmpegTools {
  ffmpegPath: string;
  ffprobePath: string;
}

export interface ProbeResult {
  durationSeconds: number;
  /**
   * The picture as displayed ({@link displayedSize}): non-square pixels made square, a rotated
   * source's sides swapped.
   */
  width: number;
  height: number;
  /** Pixels of a decoded frame (the stored picture), which the decoder holds for each frame it keeps. */
  decodedPixels: number;
  fps: number;
  hasAudio: boolean;
  videoCodec: string | null;
  /** Clockwise rotation the player applies (0, 90, 180, 270); width/height already account for it. */
  rotation: number;
  formatName: string;
}

/** Niceness of ffmpeg children: below the Node process, so the event loop and the pool keep their share. */
const FFMPEG_NICENESS = 10;

/** A line's level tag under `-loglevel level+…`; lines of the levels below warnings are no failure's reason. */
const LEVEL_TAG = /\[(panic|fatal|error|warning|info|verbose|debug|trace)\] /;
const PROBLEM_LEVELS = new Set(['panic', 'fatal', 'error', 'warning']);

/**
 * Keeps the tail of a stream (stderr), so a failure can quote ffmpeg's own last words. With
 * `levelTagged` (ffmpeg run with `-loglevel level+info`, whose log also carries a filter's
 * measurements) only the lines tagged as problems are quoted, without their tag. The files the
 * run was given by absolute path are quoted by their names alone: the words reach API clients,
 * who have no business with the server's folders.
 */
class TailBuffer {
  private text = '';
  constructor(
    private readonly levelTagged = false,
    private readonly files: readonly string[] = [],
    private readonly limit = 8192,
  ) {}
  push(chunk: Buffer | string): void {
    this.text = (this.text + chunk.toString()).slice(-this.limit);
  }
  lastLines(count = 3): string {
    const lines = this.text
      .split('\n')
      .map((line) => line.trim())
      .filter(Boolean);
    const quoted = this.levelTagged
      ? lines.flatMap((line) => {
          const tag = LEVEL_TAG.exec(line);
          return tag && PROBLEM_LEVELS.has(tag[1]!) ? [line.replace(LEVEL_TAG, '')] : [];
        })
      : lines;
    let text = quoted.slice(-count).join(' | ');
    for (const file of this.files) text = text.replaceAll(file, path.basename(file));
    return text;
  }
}

export interface SpawnedTool {
  /** The child's streams: stdout, stderr and (with `fd3`) its fd 3. */
  output: Pick<ToolChild, 'stdout' | 'stderr' | 'fd3'>;
  /** The tail of stderr, for a failure's message. */
  stderr: TailBuffer;
  /** Resolves with the exit code (or null when killed by a signal) once its streams are closed. */
  exited: Promise<ToolExit>;
  /** Whether it has not exited yet. */
  running(): boolean;
  /** Ends it with SIGKILL. */
  kill(): void;
  /**
   * The CPU time it has used so far, in clock ticks (Linux's /proc), or undefined where that
   * cannot be read: a run that decodes without output yet (a seek's pre-roll) is not stalled.
   */
  cpuTicks(): number | undefined;
}

export interface SpawnToolOptions {
  /** A fourth stream, the child's fd 3 (`pipe:3` to ffmpeg), readable as `output.fd3`. */
  fd3?: boolean;
  /** The child logs with `-loglevel level+…`: failures quote only its problem lines. */
  levelTagged?: boolean;
}

/**
 * How this process starts ffmpeg and ffprobe. `helper` (the default): a small process of its own
 * starts them ({@link ToolSpawner}), so this process, with its pool threads and buffers, is never
 * forked. `direct`: forked from this process.
 */
export type ToolSpawning = 'helper' | 'direct';

let spawning: ToolSpawning = 'helper';
let spawner: ToolSpawner | null = null;

/** Sets how tools are started from now on (`FFMPEG_SPAWNING`). */
export function setToolSpawning(mode: ToolSpawning): void {
  spawning = mode;
  if (mode === 'direct') {
    spawner?.close();
    spawner = null;
  }
}

function startTool(request: ToolStart): ToolChild | Promise<ToolChild> {
  if (spawning === 'helper') {
    try {
      spawner ??= new ToolSpawner();
      return spawner.start(request);
    } catch (error) {
      // Its module is not built: started from here instead.
      process.emitWarning(`ffmpeg is started directly: ${(error as Error).message}`);
      spawning = 'direct';
    }
  }
  return startDirect(request);
}

/** A tool forked from this process. */
function startDirect(request: ToolStart): ToolChild {
  const child = spawn(request.command, request.args, { stdio: request.fd3 ? ['ignore', 'pipe', 'pipe', 'pipe'] : ['ignore', 'pipe', 'pipe'] });
  if (child.pid !== undefined) {
    try {
      setPriority(child.pid, request.niceness);
    } catch {
      // Not permitted here: run at normal priority.
    }
  }
  const closed = new Promise<ToolExit>((resolve, reject) => {
    child.once('error', (error: NodeJS.ErrnoException) => reject(new ToolStartError(error.message, error.code)));
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  closed.catch(() => {});
  return {
    stdout: child.stdout!,
    stderr: child.stderr!,
    fd3: request.fd3 ? (child.stdio[3] as Readable) : null,
    closed,
    running: () => child.exitCode === null && child.signalCode === null,
    kill: (signal) => child.kill(signal),
    pid: () => child.pid ?? null,
  };
}

/**
 * Starts ffmpeg/ffprobe niced, with stderr always drained into a tail buffer (a full stderr
 * pipe would block the child forever). Killed with SIGKILL on abort. A tool that cannot start
 * (not installed) makes `exited` reject with an error that says how to install it.
 */
export async function spawnTool(command: string, args: readonly string[], signal?: AbortSignal, options: SpawnToolOptions = {}): Promise<SpawnedTool> {
  const tool = path.basename(command);
  // One span per run, a child of the job's: how long ffmpeg took, with what, and how it ended.
  const span = startChildSpan(tool, { attributes: { 'process.executable.name': tool, 'process.command_args': [...args] } });
  const child = await startTool({ command, args, fd3: options.fd3 ?? false, niceness: FFMPEG_NICENESS });
  const stderr = new TailBuffer(
    options.levelTagged,
    args.filter((arg) => path.isAbsolute(arg)),
  );
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  const exited = child.closed.catch((error: Error) => {
    if (error instanceof ToolStartError && error.code === 'ENOENT')
      throw new Error(`${command} not found: install ffmpeg (apt-get install -y ffmpeg) or set FFMPEG_PATH/FFPROBE_PATH`);
    throw error;
  });
  exited.then(
    ({ code, signal: killedBy }) => {
      span.setAttribute('process.exit.code', code ?? -1);
      endSpan(span, code === 0 ? undefined : `${tool} ${killedBy ? `killed by ${killedBy}` : `exited with ${code}`}`);
    },
    (error: Error) => endSpan(span, error.message),
  );
  const kill = () => child.kill('SIGKILL');
  if (signal) {
    if (signal.aborted) kill();
    else signal.addEventListener('abort', kill, { once: true });
    void exited.finally(() => signal.removeEventListener('abort', kill)).catch(() => {});
  }
  return { output: child, stderr, exited, running: child.running, kill, cpuTicks: () => cpuTicksOf(child.pid()) };
}

/** What the machine did to a run (out of disk, memory or file handles, an I/O error): worth another try. */
const MACHINE_CONDITION = /No space left on device|Input\/output error|Too many open files|Cannot allocate memory/i;

/** Signals a program dies of when it crashes on its input: the same file crashes it again. */
const CRASH_SIGNALS = new Set<string>(['SIGSEGV', 'SIGABRT', 'SIGFPE', 'SIGILL', 'SIGBUS']);

/**
 * How a tool that failed on its own (not stopped by us) is thrown: a crash on the file, or an
 * error it reports about the file, fails the job for good (another attempt decodes the same bytes
 * the same way); a kill we did not send (the kernel's OOM killer, say) or the machine's condition
 * is tried again.
 */
export function toolFailure(killedBy: string | null, said: string): new (message: string) => Error {
  if (killedBy !== null) return CRASH_SIGNALS.has(killedBy) ? PermanentJobError : Error;
  return MACHINE_CONDITION.test(said) ? Error : PermanentJobError;
}

/**
 * Waits for a tool to exit. An abort rethrows its reason; a failed exit throws, as
 * {@link toolFailure} classes it, `<what> (ffmpeg: <its last words>)`.
 */
export async function expectSuccess(run: SpawnedTool, what: string, signal?: AbortSignal): Promise<void> {
  const { code, signal: killedBy } = await run.exited;
  if (signal?.aborted) throw signal.reason ?? new Error(`${what}: aborted`);
  if (code !== 0) {
    const said = run.stderr.lastLines();
    const Failure = toolFailure(killedBy, said);
    throw new Failure(`${what} (ffmpeg: ${said || (killedBy ? `killed by ${killedBy}` : `exit code ${code}`)})`);
  }
}

function parseRate(rate: unknown): number {
  if (typeof rate !== 'string') return 0;
  const [num, den] = rate.split('/').map(Number);
  if (!num || !Number.isFinite(num)) return 0;
  if (den === undefined) return num;
  return den ? num / den : 0;
}

interface ProbeStream {
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  sample_aspect_ratio?: string;
  avg_frame_rate?: string;
  r_frame_rate?: string;
  duration?: string;
  disposition?: { attached_pic?: number };
  tags?: { rotate?: string };
  side_data_list?: { rotation?: number }[];
}

/** Seconds ffprobe may take before the file counts as unreadable. */
export const DEFAULT_PROBE_TIMEOUT_MS = 30_000;

/**
 * The display matrix states its angle counter-clockwise; the older `rotate` tag states it
 * clockwise. Both come out as a clockwise quarter turn.
 */
function clockwiseRotation(video: ProbeStream): number {
  const matrixAngle = video.side_data_list?.find((item) => typeof item.rotation === 'number')?.rotation;
  const clockwise = matrixAngle !== undefined ? -matrixAngle : Number(video.tags?.rotate ?? 0) || 0;
  return (((Math.round(clockwise / 90) * 90) % 360) + 360) % 360;
}

export interface ProbeOptions {
  /** How long ffprobe may take. @defaultValue {@link DEFAULT_PROBE_TIMEOUT_MS} */
  timeoutMs?: number;
  /**
   * Reads the facts from an MP4's index; the workers pass their pool's (`CpuPool#mp4Facts`), so
   * a long index is walked off the event loop. @defaultValue {@link mp4Facts}, in this thread
   */
  readIndex?: (file: string) => Promise<ProbeResult | undefined>;
}

/**
 * Reads container and stream facts: from an MP4's index when it states them all
 * ({@link mp4Facts}, the same facts ffprobe gives), else with ffprobe. A file ffprobe cannot
 * read, one without a video stream or without a known duration fails with a
 * {@link PermanentJobError} that says so.
 */
export async function probe(tools: FfmpegTools, file: string, signal?: AbortSignal, options: ProbeOptions = {}): Promise<ProbeResult> {
  const { timeoutMs = DEFAULT_PROBE_TIMEOUT_MS, readIndex = mp4Facts } = options;
  // A span like ffprobe's would have, saying whether the index told everything.
  const span = startChildSpan('mp4 index', { attributes: { 'file.path': file } });
  // A file that cannot be opened is ffprobe's to describe.
  const fromIndex = await readIndex(file).catch(() => undefined);
  span.setAttribute('clipline.facts_from_index', fromIndex !== undefined);
  endSpan(span);
  if (fromIndex) return fromIndex;
  return ffprobeFacts(tools, file, signal, timeoutMs);
}

/** The facts as ffprobe gives them. */
export async function ffprobeFacts(tools: FfmpegTools, file: string, signal?: AbortSignal, timeoutMs = DEFAULT_PROBE_TIMEOUT_MS): Promise<ProbeResult> {
  // A pipe or a pathological file can keep ffprobe reading forever: it gets a deadline of its own.
  const deadline = AbortSignal.timeout(timeoutMs);
  const run = await spawnTool(
    tools.ffprobePath,
    ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', file],
    signal ? AbortSignal.any([signal, deadline]) : deadline,
  );
  let stdout = '';
  run.output.stdout.setEncoding('utf8');
  run.output.stdout.on('data', (chunk: string) => {
    if (stdout.length < 4 * 1024 * 1024) stdout += chunk;
  });
  const { code } = await run.exited;
  if (signal?.aborted) throw signal.reason ?? new Error('probe aborted');
  if (deadline.aborted) throw new PermanentJobError(`not a readable video (ffprobe gave no answer within ${timeoutMs / 1000} s)`);
  if (code !== 0) {
    const detail = run.stderr.lastLines() || `exit code ${code}`;
    throw new PermanentJobError(`not a readable video (ffprobe: ${detail})`);
  }
  let parsed: { streams?: ProbeStream[]; format?: { duration?: string; format_name?: string } };
  try {
    parsed = JSON.parse(stdout) as typeof parsed;
  } catch {
    throw new PermanentJobError('not a readable video (ffprobe printed no usable description)');
  }
  const streams = parsed.streams ?? [];
  const video = streams.find((stream) => stream.codec_type === 'video' && !stream.disposition?.attached_pic);
  if (!video) {
    // A cover picture (an MP3's or M4A's album art) is a video stream to ffprobe, not a video.
    const kinds = [...new Set(streams.map((stream) => (stream.disposition?.attached_pic ? 'a cover picture' : (stream.codec_type ?? 'unknown'))))];
    throw new PermanentJobError(
      kinds.length ? `no video stream (the file holds only ${kinds.join(' and ')})` : 'no video stream (the file holds no streams at all)',
    );
  }
  const durationSeconds = Number(parsed.format?.duration ?? video.duration);
  if (!Number.isFinite(durationSeconds) || durationSeconds <= 0) throw new PermanentJobError('video duration is unknown or zero');
  const width = video.width ?? 0;
  const height = video.height ?? 0;
  if (width <= 0 || height <= 0) throw new PermanentJobError('video stream has no picture size');
  const rotation = clockwiseRotation(video);
  return {
    durationSeconds,
    ...displayedSize({ width, height }, parsedPixelAspect(video.sample_aspect_ratio), rotation),
    decodedPixels: width * height,
    fps: Math.round((parseRate(video.avg_frame_rate) || parseRate(video.r_frame_rate)) * 1000) / 1000,
    hasAudio: streams.some((stream) => stream.codec_type === 'audio'),
    videoCodec: video.codec_name ?? null,
    rotation,
    formatName: parsed.format?.format_name ?? 'unknown',
  };
}
