import { spawnTool, toolFailure, type FfmpegTools } from '../analysis/ffmpeg.js';
import { FrameBuffers } from '../analysis/batch-pipeline.js';
import { rawFramesFrom, type SampledBatch } from '../analysis/frame-sampler.js';
import { DEFAULT_STALL_TIMEOUT_MS, StallWatchdog } from '@clipline/shared';

/** The AAC settings of every clip's sound, wherever it is encoded. */
export const CLIP_AUDIO = ['-c:a', 'aac', '-b:a', '128k'] as const;

export interface ClipSampling {
  file: string;
  startSeconds: number;
  durationSeconds: number;
  /** Frames per second sampled, and their size (RGB24). */
  fps: number;
  width: number;
  height: number;
  batchFrames: number;
  /**
   * Where the clip's sound goes, encoded as the clip keeps it (AAC in an mp4), by the same ffmpeg
   * run while it decodes the frames; absent, no sound is read.
   */
  audioTarget?: string | undefined;
  /** Decoder threads; undefined lets ffmpeg choose. */
  threads?: number | undefined;
  /**
   * Milliseconds ffmpeg may go without a byte while it is waited on; past that it is killed and
   * the render fails, to be tried again. @defaultValue 60000
   */
  stallTimeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * One ffmpeg run over the clip's span (input-side seek: from the keyframe before the start, the
 * frames and samples before it dropped) giving the sampled frames on stdout and, when asked, the
 * clip's encoded sound in a file. Encoding the sound here, while the frames are followed, leaves
 * the picture alone to the encode that comes after: the two halves of the work overlap.
 * The decoder skips the deblocking filter: it smooths block edges, which the small frames
 * profiled for interest do not show, and costs about a third of decoding them.
 */
export function clipSamplerArgs(options: ClipSampling): string[] {
  // The sound laid on the clip's clock from its first instant (silence where the track starts
  // late or pauses): the file is copied in beside the picture, and ffmpeg starts each input at 0.
  const onClipClock = ['-af', 'aresample=async=1:first_pts=0'];
  const audio = options.audioTarget ? ['-map', '0:a:0', '-vn', '-sn', '-dn', ...onClipClock, ...CLIP_AUDIO, '-f', 'mp4', options.audioTarget] : [];
  return [
    '-nostdin',
    '-hide_banner',
    '-loglevel',
    'error',
    '-y',
    ...(options.threads ? ['-threads', String(options.threads)] : []),
    '-skip_loop_filter',
    'all',
    '-ss',
    options.startSeconds.toFixed(3),
    '-t',
    options.durationSeconds.toFixed(3),
    ...rawFramesFrom(options.file, options.fps, options.width, options.height),
    ...audio,
  ];
}

/**
 * The clip's sampled frames in batches of their own buffers (safe to move into the pool). The
 * caller's pace is ffmpeg's: while it awaits, the pipe is not read. A failed run, an abort or
 * a consumer leaving early ends ffmpeg and the iteration with an error.
 */
export async function* sampleClip(tools: FfmpegTools, options: ClipSampling): AsyncGenerator<SampledBatch> {
  const frameBytes = options.width * options.height * 3;
  const batchBytes = frameBytes * options.batchFrames;
  const run = await spawnTool(tools.ffmpegPath, clipSamplerArgs(options), options.signal);
  const stdout = run.output.stdout;
  const buffers = new FrameBuffers(batchBytes);
  const recycle = (frames: Uint8Array) => buffers.give(frames);
  let batch = buffers.take();
  let filled = 0;
  let nextIndex = 0;
  let finished = false;
  const watchdog = new StallWatchdog(
    options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS,
    () => run.kill(),
    () => run.cpuTicks(),
  );
  watchdog.waiting();
  try {
    for await (const chunk of stdout as AsyncIterable<Buffer>) {
      watchdog.waiting();
      for (let offset = 0; offset < chunk.length; ) {
        const take = Math.min(chunk.length - offset, batchBytes - filled);
        batch.set(chunk.subarray(offset, offset + take), filled);
        filled += take;
        offset += take;
        if (filled < batchBytes) continue;
        const full = batch;
        batch = buffers.take();
        filled = 0;
        // The consumer's time with a batch is not ffmpeg's.
        watchdog.busy();
        yield { firstIndex: nextIndex, count: options.batchFrames, frames: full, recycle };
        watchdog.waiting();
        nextIndex += options.batchFrames;
      }
    }
    const { code, signal } = await run.exited;
    if (options.signal?.aborted) throw options.signal.reason ?? new Error('sampling the clip aborted');
    if (watchdog.fired) throw new Error(`decoding the clip stalled: ffmpeg produced nothing for ${watchdog.limitMs / 1000} s and was stopped`);
    // Killed by a signal we did not send (the OOM killer: tried again; a crash on the file: for good).
    if (signal !== null) throw new (toolFailure(signal, ''))(`decoding the clip stopped: ffmpeg was killed by ${signal}`);
    if (code !== 0) {
      const said = run.stderr.lastLines() || `exit code ${code}`;
      // The machine's condition (a full disk for the sound, say) is tried again; anything else is the file's.
      throw new (toolFailure(null, said))(`decoding the clip failed (ffmpeg: ${said})`);
    }
    const count = Math.floor(filled / frameBytes);
    if (count > 0) yield { firstIndex: nextIndex, count, frames: batch.slice(0, count * frameBytes) };
    finished = true;
  } finally {
    watchdog.stop();
    if (!finished && run.running()) run.kill();
    await run.exited.catch(() => {});
  }
}
