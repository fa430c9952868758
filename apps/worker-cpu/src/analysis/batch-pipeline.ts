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
}

/**
 * Feeds sampled batches to the pool with a bounded number in flight and collects the results
 * in order. Bounding the work handed out is what gives backpressure: the sampler is not read
 * while the pool is full, so ffmpeg waits on its pipe. On failure, it waits for the tasks it
 * already handed out, so no pool work outlives the caller.
 */
export async function runBatchPipeline<R>(batches: AsyncIterable<SampledBatch>, options: BatchPipelineOptions<R>): Promise<void> {
  const inFlight: { firstIndex: number; result: Promise<R> }[] = [];
  let previousFrame: Uint8Array | null = null;
  const collectNext = async () => {
    const next = inFlight.shift();
    if (next) await options.collect(next.firstIndex, await next.result);
  };
  try {
    for await (const batch of batches) {
      // The last frame is copied before the batch buffer is moved into a pool thread.
      const previous = previousFrame;
      previousFrame = batch.frames.slice((batch.count - 1) * options.frameBytes, batch.count * options.frameBytes);
      const result = options.start(batch, previous);
      result.catch(() => {});
      inFlight.push({ firstIndex: batch.firstIndex, result });
      while (inFlight.length >= options.maxInFlight) await collectNext();
    }
    while (inFlight.length) await collectNext();
  } finally {
    await Promise.allSettled(inFlight.map((item) => item.result));
  }
}
