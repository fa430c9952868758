import { FrameBuffers, runBatchPipeline } from '../src/analysis/batch-pipeline.js';
import type { SampledBatch } from '../src/analysis/frame-sampler.js';

describe('FrameBuffers', () => {
  it('hands back a kept buffer before making a new one, and keeps only whole buffers of its size, up to its limit', () => {
    const buffers = new FrameBuffers(12, 2);
    const first = buffers.take();
    expect(first.byteLength).toBe(12);
    buffers.give(first);
    expect(buffers.take()).toBe(first);
    buffers.give(new Uint8Array(8)); // another size
    buffers.give(new Uint8Array(24).subarray(0, 12)); // a view into a larger buffer
    buffers.give(new Uint8Array(24).subarray(12)); // a view at an offset
    const fresh = buffers.take();
    expect(fresh.byteLength).toBe(12);
    expect(fresh.buffer.byteLength).toBe(12);
    const kept = [new Uint8Array(12), new Uint8Array(12), new Uint8Array(12)];
    for (const buffer of kept) buffers.give(buffer);
    expect([buffers.take(), buffers.take()]).toEqual([kept[1], kept[0]]);
    expect(buffers.take()).not.toBe(kept[2]);
  });
});

describe('runBatchPipeline', () => {
  async function* batchesOf(count: number, frameBytes: number, recycled: Uint8Array[]): AsyncGenerator<SampledBatch> {
    for (let b = 0; b < count; b++) {
      const frames = new Uint8Array(frameBytes * 2).fill(b + 1);
      yield { firstIndex: b * 2, count: 2, frames, recycle: (buffer) => recycled.push(buffer) };
    }
  }

  it('collects results in batch order and hands each returned buffer back to its batch', async () => {
    const recycled: Uint8Array[] = [];
    const collected: number[] = [];
    const previousFirstBytes: (number | null)[] = [];
    await runBatchPipeline(batchesOf(4, 3, recycled), {
      frameBytes: 3,
      maxInFlight: 2,
      start: async (batch, previous) => {
        previousFirstBytes.push(previous ? previous[0]! : null);
        // Later batches finish first: the order of collection must not follow.
        await new Promise((resolve) => setTimeout(resolve, 20 - batch.firstIndex * 2));
        return { firstIndex: batch.firstIndex, frames: batch.frames };
      },
      returnedFrames: (result) => result.frames,
      collect: (firstIndex, result) => {
        expect(result.firstIndex).toBe(firstIndex);
        collected.push(firstIndex);
      },
    });
    expect(collected).toEqual([0, 2, 4, 6]);
    expect(recycled.map((buffer) => buffer[0])).toEqual([1, 2, 3, 4]);
    // Each batch is given a copy of the frame before it, taken before its buffer could be reused.
    expect(previousFirstBytes).toEqual([null, 1, 2, 3]);
  });

  it('recycles nothing when results do not bring their buffers back', async () => {
    const recycled: Uint8Array[] = [];
    await runBatchPipeline(batchesOf(3, 3, recycled), { frameBytes: 3, maxInFlight: 2, start: async () => 1, collect: () => {} });
    expect(recycled).toEqual([]);
  });
});
