import type { FrameMetrics } from './frame-metrics.js';

/**
 * The per-frame values highlight scoring needs, kept in typed arrays that grow by doubling: a
 * four-hour video at 10 fps is 144k frames, about 3 MB here instead of 144k objects.
 */
export class FrameSignals {
  private motionValues = new Float32Array(1024);
  private sharpnessValues = new Float32Array(1024);
  private hashBytes = new Uint8Array(1024 * 8);
  private count = 0;

  get length(): number {
    return this.count;
  }

  /** Stores the metrics of frames `firstIndex…`; batches arrive in order. */
  append(firstIndex: number, metrics: readonly FrameMetrics[]): void {
    if (firstIndex !== this.count) throw new Error(`frame signals out of order: expected frame ${this.count}, got ${firstIndex}`);
    this.reserve(this.count + metrics.length);
    for (const frame of metrics) {
      this.motionValues[this.count] = frame.motion;
      this.sharpnessValues[this.count] = frame.sharpness;
      writeHexBytes(frame.dhash, this.hashBytes, this.count * 8);
      this.count++;
    }
  }

  /** Trimmed copies, each in a buffer of its own, safe to move into a pool thread. */
  snapshot(): { motion: Float32Array; sharpness: Float32Array; dhash: Uint8Array } {
    return {
      motion: this.motionValues.slice(0, this.count),
      sharpness: this.sharpnessValues.slice(0, this.count),
      dhash: this.hashBytes.slice(0, this.count * 8),
    };
  }

  private reserve(frames: number): void {
    if (frames <= this.motionValues.length) return;
    let capacity = this.motionValues.length;
    while (capacity < frames) capacity *= 2;
    this.motionValues = grown(this.motionValues, new Float32Array(capacity));
    this.sharpnessValues = grown(this.sharpnessValues, new Float32Array(capacity));
    this.hashBytes = grown(this.hashBytes, new Uint8Array(capacity * 8));
  }
}

function grown<T extends Float32Array | Uint8Array>(from: T, to: T): T {
  to.set(from);
  return to;
}

function writeHexBytes(hex: string, into: Uint8Array, offset: number): void {
  for (let i = 0; i < 8; i++) into[offset + i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16) || 0;
}
