import type { SampledBatch } from './frame-sampler.js';

export interface BatchPipelineOptions<R> {
  /** Bytes of one frame in the batches. */
  frameBytes: number;
  /** Batches handed out and not yet collected; more make the sampler wait. */
  maxInFlight: number;
  /**
   * Starts the work on a batch (usually a pool task that takes over `batch.frames`), given a
   * copy of the frame before it.
   */
  start: (batch: SampledBatch, previous: Uint8Array | null) => Promise<R>;
  /** Receives each batch's result, in batch order. */
  collect: (firstIndex: number, result: R) => void | Promise<void>;
  /**
   * The batch's frame buffer, when the result brings it back (a pool task moves it back out of
   * its thread): it goes to the batch's `recycle` for the sampler to fill again.
   */
  returnedFrames?: (result: R) => Uint8Array | undefined;
}

/**
 * Frame buffers of one size handed back after use, so a sampler fills memory it already has
 * instead of a new buffer a batch: a new one is zeroed by the allocator and its pages fault in
 * on the first write. Analysing the 60 s fixture with both pool threads, four runs each: 8.1-8.7
 * thousand page faults and 0.56-0.71 CPU s against 13-14.6 thousand and 0.74-0.78 with a new
 * buffer a batch.
 */
export class FrameBuffers {
  private readonly spare: Uint8Array[] = [];

  constructor(
    readonly bytes: number,
    private readonly keep = 8,
  ) {}

  take(): Uint8Array {
    return this.spare.pop() ?? new Uint8Array(this.bytes);
  }

  /** Keeps a buffer for later: only a whole buffer of this size, and at most `keep` of them. */
  give(buffer: Uint8Array): void {
    const whole = buffer.byteOffset === 0 && buffer.byteLength === this.bytes && buffer.buffer.byteLength === this.bytes;
    if (whole && this.spare.length < this.keep) this.spare.push(buffer);
  }
}

/**
 * Feeds sampled batches to the pool with a bounded number in flight and collects the results
 * in order. Bounding the work handed out is what gives backpressure: the sampler is not read
 * while the pool is full, so ffmpeg waits on its pipe. On failure, it waits for the tasks it
 * already handed out, so no pool work outlives the caller.
 */
export async function runBatchPipeline<R>(batches: AsyncIterable<SampledBatch>, options: BatchPipelineOptions<R>): Promise<void> {
  const inFlight: { batch: SampledBatch; result: Promise<R> }[] = [];
  let previousFrame: Uint8Array | null = null;
  const collectNext = async () => {
    const next = inFlight.shift();
    if (!next) return;
    const result = await next.result;
    const frames = options.returnedFrames?.(result);
    if (frames) next.batch.recycle?.(frames);
    await options.collect(next.batch.firstIndex, result);
  };
  try {
    for await (const batch of batches) {
      // The last frame is copied before the batch buffer is moved into a pool thread.
      const previous = previousFrame;
      previousFrame = batch.frames.slice((batch.count - 1) * options.frameBytes, batch.count * options.frameBytes);
      const result = options.start(batch, previous);
      result.catch(() => {});
      inFlight.push({ batch, result });
      while (inFlight.length >= options.maxInFlight) await collectNext();
    }
    while (inFlight.length) await collectNext();
  } finally {
    await Promise.allSettled(inFlight.map((item) => item.result));
  }
}
