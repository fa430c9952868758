import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { PermanentJobError, usableCores } from '@clipline/shared';
import { loudnessOutputs } from './audio-loudness.js';
import { FrameBuffers } from './batch-pipeline.js';
import { spawnTool, toolFailure, type FfmpegTools, type SpawnedTool } from './ffmpeg.js';
import { sampledHeightExpression } from './picture-size.js';
import { DEFAULT_STALL_TIMEOUT_MS, StallWatchdog } from '@clipline/shared';

export interface SampleOptions {
  file: string;
  /** Frames per second to sample. */
  fps: number;
  /** Output frame size (RGB24). */
  width: number;
  /**
   * A promise when the caller has not probed the source yet: ffmpeg starts at once and keeps the
   * displayed picture's aspect (the formula of {@link sampleSize} on `displayedSize`, worked out
   * by ffmpeg: {@link sampledHeightExpression}), and frames are read once it resolves to the same
   * height. Sampling then does not wait on ffprobe.
   */
  height: number | Promise<number>;
  /** Frames per batch handed to the pool. */
  batchFrames: number;
  /** Where sampling starts, in seconds of the source (an exact seek, not the previous keyframe). @defaultValue 0 */
  startSeconds?: number;
  /** Seconds sampled from `startSeconds` on. @defaultValue to the end */
  durationSeconds?: number;
  /**
   * Milliseconds ffmpeg may go without producing a byte while the sampler waits for it; past
   * that it is killed and sampling fails. Time the consumer spends on a batch does not count.
   * @defaultValue 60000
   */
  stallTimeoutMs?: number;
  signal?: AbortSignal;
  /** The longest source analysed (MAX_SOURCE_SECONDS): the speech PCM is not made longer. */
  maxSeconds?: number;
  /**
   * Also measure the first audio stream in the same ffmpeg (one start and one demux instead of a
   * second ffmpeg): its loudness log and speech PCM go to the sink as they come.
   */
  audio?: AudioSink;
}

/** Where the sampler's ffmpeg sends what it measures of the first audio stream. */
export interface AudioSink {
  /** ffmpeg's log, where the loudness filter writes its values (see `LoudnessReader`). */
  log(chunk: string): void;
  /** 16 kHz mono s16le PCM of the same decode, for the pause finder. */
  pcm(chunk: Buffer): void;
  /**
   * ffmpeg would not start with the audio outputs (the source has no audio stream, or one it
   * cannot open), so the frames were decoded by an ffmpeg without them; `reason` is its own.
   */
  dropped(reason: string): void;
}

export interface SampledBatch {
  /** Index (in sampled frames) of the batch's first frame. */
  firstIndex: number;
  count: number;
  /** `count` packed RGB24 frames in a buffer of their own (safe to transfer). */
  frames: Uint8Array;
  /** Hands a batch buffer back once its frames are used, for the sampler to fill again. */
  recycle?: (frames: Uint8Array) => void;
}

/** Width of sampled frames asked to be `width` wide: even, whatever the source. */
export function sampleWidth(width: number): number {
  return Math.max(2, Math.round(width / 2) * 2);
}

/** Size of sampled frames: `width` wide, the source's aspect kept, both even. */
export function sampleSize(sourceWidth: number, sourceHeight: number, width: number): { width: number; height: number } {
  const w = sampleWidth(width);
  const h = Math.max(2, Math.round((w * sourceHeight) / sourceWidth / 2) * 2);
  return { width: w, height: h };
}

/** The ffmpeg filter chain of sampling; benchmarks decode with the very same chain. */
export function samplingFilter(fps: number, width: number, height: number | string): string {
  return `fps=${fps},scale=${width}:${height}:flags=area,format=rgb24`;
}

/**
 * ffmpeg decoding the first video stream (within the window, if any) into scaled RGB24 frames on
 * stdout. With the height left to ffmpeg (an expression) frames keep their first size when the source's
 * changes mid-stream: ffmpeg rebuilds the filters then, but scales their output back to the size
 * its encoder was opened with.
 */
function samplerArgs(options: SampleOptions, withAudio: boolean): string[] {
  const window = [
    ...(options.startSeconds ? ['-ss', options.startSeconds.toFixed(3)] : []),
    ...(options.durationSeconds !== undefined ? ['-t', options.durationSeconds.toFixed(3)] : []),
  ];
  const height = typeof options.height === 'number' ? options.height : sampledHeightExpression(options.width);
  const frames = rawFramesFrom(options.file, options.fps, options.width, height);
  // The loudness filter logs its values at info level; level tags keep ffmpeg's errors apart.
  if (withAudio)
    return ['-nostdin', '-hide_banner', '-nostats', '-loglevel', 'level+info', ...window, ...frames, ...loudnessOutputs('pipe:3', true, options.maxSeconds)];
  return ['-nostdin', '-hide_banner', '-loglevel', 'error', ...window, ...frames];
}

/** Starts the sampler's ffmpeg, its audio outputs (if any) wired to the sink. */
async function startSampler(tools: FfmpegTools, options: SampleOptions, audio: AudioSink | undefined): Promise<{ run: SpawnedTool; reader: BatchReader }> {
  const withAudio = audio !== undefined;
  const run = await spawnTool(tools.ffmpegPath, samplerArgs(options, withAudio), options.signal, { fd3: withAudio, levelTagged: withAudio });
  if (audio) {
    const decoder = new StringDecoder('utf8');
    run.output.stderr.on('data', (chunk: Buffer) => audio.log(decoder.write(chunk)));
    run.output.fd3?.on('data', (chunk: Buffer) => audio.pcm(chunk));
  }
  // Read from the start: a pipe nobody listens to is drained and dropped when ffmpeg exits.
  return { run, reader: new BatchReader(run.output.stdout) };
}

/** ffmpeg's ceiling on the threads it starts of its own accord (MAX_AUTO_THREADS). */
const MAX_AUTO_THREADS = 16;

/**
 * Decoder threads for `cores` usable cores, as ffmpeg's automatic count makes them from the
 * machine's (one more than the cores, to keep frame threading fed, at most 16; one on a single core).
 */
export function decoderThreads(cores: number): number {
  return cores > 1 ? Math.min(cores + 1, MAX_AUTO_THREADS) : 1;
}

/**
 * Input `file` and an output of its first video stream as scaled RGB24 frames on stdout (sampling's
 * filter chain). The decoder's threads follow the cores the process may use (its cgroup quota
 * included), not ffmpeg's own count of the machine's: under a 2-CPU limit on a large node it would
 * start a thread per node core, be throttled, and hold a decoded frame for each.
 */
export function rawFramesFrom(file: string, fps: number, width: number, height: number | string, threads = decoderThreads(usableCores())): string[] {
  // `V`: the first video stream that is not an attached picture (an MP4's cover art may come first).
  return [
    '-threads',
    String(threads),
    '-i',
    file,
    '-map',
    '0:V:0',
    '-an',
    '-sn',
    '-dn',
    '-vf',
    samplingFilter(fps, width, height),
    '-f',
    'rawvideo',
    '-pix_fmt',
    'rgb24',
    'pipe:1',
  ];
}

/**
 * Batches decoded ahead of the consumer. ffmpeg keeps decoding while the caller works on a batch
 * instead of blocking on a pipe that holds about one frame; read through a stream's async
 * iterator (a 16 KiB buffer), the pipe stopped ffmpeg so often that sampling took 10-15 % longer
 * than the same decode to nothing.
 */
const READ_AHEAD_BATCHES = 2;

/**
 * Decodes a video into batches of RGB24 frames through an ffmpeg rawvideo pipe, frames counted
 * from bytes. At most {@link READ_AHEAD_BATCHES} batches are held ahead of the caller, so a long
 * video is never buffered whole. A decode error, a stall or an abort ends the iteration with an
 * error; a partial frame at the end is dropped.
 */
export function sampleFrames(tools: FfmpegTools, options: SampleOptions): AsyncGenerator<SampledBatch> {
  // ffmpeg starts now, not at the first read: it decodes while the caller still probes. A caller
  // that gives up before reading aborts `options.signal`, which stops it.
  const started = startSampler(tools, options, options.audio);
  started.catch(() => {}); // read (and thrown) by the first step of the iteration
  // Aborted before the iteration began (a probe that failed, a cancellation), the pipe may hold
  // early frames paused: nobody would read it to its end, so it is let go here.
  options.signal?.addEventListener(
    'abort',
    () =>
      void started.then(
        ({ reader }) => reader.discard(),
        () => {},
      ),
    { once: true },
  );
  const height = Promise.resolve(options.height);
  height.catch(() => {}); // the caller handles a failed probe; the height is read only after it
  return readBatches(tools, started, height, options);
}

async function* readBatches(
  tools: FfmpegTools,
  started: Promise<{ run: SpawnedTool; reader: BatchReader }>,
  height: Promise<number>,
  options: SampleOptions,
): AsyncGenerator<SampledBatch> {
  let { run, reader } = await started;
  let audio = options.audio;
  const watchdog = new StallWatchdog(
    options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS,
    () => run.kill(),
    () => run.cpuTicks(),
  );
  let finished = false;
  try {
    const frameBytes = options.width * (await height) * 3;
    let nextIndex = 0;
    for (;;) {
      reader.start(frameBytes * options.batchFrames, watchdog);
      const recycle = (frames: Uint8Array) => reader?.recycle(frames);
      for (let frames = await reader.next(); frames; frames = await reader.next()) {
        yield { firstIndex: nextIndex, count: options.batchFrames, frames, recycle };
        nextIndex += options.batchFrames;
      }
      const { code, signal } = await run.exited;
      if (options.signal?.aborted) throw options.signal.reason ?? new Error('frame sampling aborted');
      if (watchdog.fired) throw new Error(`decoding stalled: ffmpeg produced nothing for ${watchdog.limitMs / 1000} s and was stopped`);
      if (code !== 0) {
        const detail = run.stderr.lastLines() || (signal ? `killed by ${signal}` : `exit code ${code}`);
        // Refused before its first frame with the audio outputs: the frames go on without them.
        if (audio && signal === null && reader.receivedBytes === 0) {
          audio.dropped(detail);
          audio = undefined;
          ({ run, reader } = await startSampler(tools, options, undefined));
          continue;
        }
        // Killed by a signal we did not send: the kernel's OOM killer (the machine's condition,
        // tried again), or a crash on the file (for good).
        if (signal !== null) throw new (toolFailure(signal, detail))(`decoding stopped: ffmpeg was killed by ${signal}`);
        throw new PermanentJobError(`decoding failed (ffmpeg: ${detail})`);
      }
      const tail = reader.tail();
      const count = Math.floor(tail.length / frameBytes);
      if (count > 0) yield { firstIndex: nextIndex, count, frames: tail.slice(0, count * frameBytes) };
      finished = true;
      return;
    }
  } finally {
    watchdog.stop();
    // Leaving early (consumer error, abort, a failed probe): make sure ffmpeg does not linger.
    if (!finished && run.running()) run.kill();
    // A pipe paused with batches read ahead never reaches its end: let it go with what it holds.
    if (!finished) reader.discard();
    await run.exited.catch(() => {});
  }
}

/** Bytes held before the batch size is known (while the probe answers); past this ffmpeg waits. */
const EARLY_BYTES_LIMIT = 4 * 1024 * 1024;

/**
 * Cuts a pipe into fixed-size batches. Pipe chunks do not align with frames, so bytes are copied
 * into batch buffers. The pipe is read as fast as ffmpeg writes until {@link READ_AHEAD_BATCHES}
 * full batches wait; then it is paused (ffmpeg blocks on it) until the caller takes one. Chunks
 * that arrive before {@link BatchReader.start} gives the batch size are kept until then.
 */
class BatchReader {
  private readonly ready: Uint8Array[] = [];
  private early: Buffer[] | null = [];
  private earlyBytes = 0;
  private batchBytes = 0;
  private buffers = new FrameBuffers(0);
  private batch: Uint8Array = new Uint8Array(0);
  private filled = 0;
  private watchdog: StallWatchdog | undefined;
  private ended = false;
  private error: Error | undefined;
  private wake: (() => void) | undefined;
  /** Bytes read from the pipe so far. */
  receivedBytes = 0;

  constructor(private readonly stream: Readable) {
    stream.on('data', (chunk: Buffer) => {
      this.receivedBytes += chunk.length;
      this.take(chunk);
    });
    stream.once('end', () => this.finish());
    stream.once('error', (error: Error) => this.finish(error));
    stream.once('close', () => this.finish());
  }

  /** Lets the pipe go unread (its reader gave up): its socket closes and the frames it held are freed. */
  discard(): void {
    if (this.early) this.early = [];
    this.ready.length = 0;
    this.stream.destroy();
  }

  start(batchBytes: number, watchdog: StallWatchdog): void {
    this.batchBytes = batchBytes;
    this.buffers = new FrameBuffers(batchBytes);
    this.batch = this.buffers.take();
    this.watchdog = watchdog;
    const early = this.early ?? [];
    this.early = null;
    for (const chunk of early) this.take(chunk);
    if (this.stream.isPaused() && this.ready.length < READ_AHEAD_BATCHES) this.stream.resume();
    if (!this.stream.isPaused()) watchdog.waiting();
  }

  /** The next full batch, or undefined once the pipe has ended; throws what the pipe threw. */
  async next(): Promise<Uint8Array | undefined> {
    for (;;) {
      const batch = this.ready.shift();
      if (batch) {
        if (this.stream.isPaused() && this.ready.length < READ_AHEAD_BATCHES) {
          this.watchdog?.waiting();
          this.stream.resume();
        }
        return batch;
      }
      if (this.ended) {
        if (this.error) throw this.error;
        return undefined;
      }
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  /** Takes back a batch buffer whose frames were used (see {@link FrameBuffers}). */
  recycle(frames: Uint8Array): void {
    this.buffers.give(frames);
  }

  /** Bytes after the last full batch (a partial batch at the end of the video). */
  tail(): Uint8Array {
    return this.batch.subarray(0, this.filled);
  }

  private take(chunk: Buffer): void {
    if (this.early) {
      this.early.push(chunk);
      this.earlyBytes += chunk.length;
      if (this.earlyBytes >= EARLY_BYTES_LIMIT) this.stream.pause();
      return;
    }
    let offset = 0;
    while (offset < chunk.length) {
      const take = Math.min(chunk.length - offset, this.batchBytes - this.filled);
      this.batch.set(chunk.subarray(offset, offset + take), this.filled);
      this.filled += take;
      offset += take;
      if (this.filled === this.batchBytes) {
        this.ready.push(this.batch);
        this.batch = this.buffers.take();
        this.filled = 0;
      }
    }
    // Only time spent waiting on ffmpeg counts as a stall, not time it is held back on purpose.
    if (this.ready.length >= READ_AHEAD_BATCHES) {
      this.stream.pause();
      this.watchdog?.busy();
    } else this.watchdog?.waiting();
    this.notify();
  }

  private finish(error?: Error): void {
    this.error ??= error;
    this.ended = true;
    this.notify();
  }

  private notify(): void {
    const resolve = this.wake;
    this.wake = undefined;
    resolve?.();
  }
}
