import { coerceError, type FrameMetricRecord } from '@clipline/shared';
import type { FrameMetrics } from './frame-metrics.js';

/** Where the writer sends rows: `AnalysisRepository` in production. */
export interface FrameMetricsStore {
  saveFrameMetrics(videoId: string, frames: readonly FrameMetricRecord[]): Promise<unknown>;
  trimFrameMetrics(videoId: string, frameCount: number): Promise<void>;
}

export interface FrameMetricsWriterOptions {
  /** Rows gathered before one multi-row write. @defaultValue 2000 */
  rowsPerWrite?: number;
}

/**
 * Stores the frame metrics of one analysis while it runs. Rows are gathered into large batches
 * and written by one statement at a time in the background; analysis only waits when a batch is
 * ready while the previous write is still running, so the database paces a fast decoder instead
 * of rows piling up in memory. Writes are upserts, so a retried analysis rewrites the same rows.
 */
export class FrameMetricsWriter {
  private pending: FrameMetricRecord[] = [];
  private writing: Promise<unknown> = Promise.resolve();
  private failure: Error | undefined;
  private readonly rowsPerWrite: number;
  private frames = 0;

  constructor(
    private readonly store: FrameMetricsStore,
    private readonly videoId: string,
    private readonly sampleFps: number,
    options: FrameMetricsWriterOptions = {},
  ) {
    this.rowsPerWrite = Math.max(1, options.rowsPerWrite ?? 2000);
  }

  /** Hook for `analyzeVideo`'s `onFrameMetrics`. */
  async add(firstIndex: number, metrics: readonly FrameMetrics[]): Promise<void> {
    this.throwIfFailed();
    metrics.forEach((frame, offset) => {
      const frameIndex = firstIndex + offset;
      this.pending.push({ frameIndex, timeSeconds: Math.round((frameIndex / this.sampleFps) * 1000) / 1000, ...frame });
    });
    this.frames = Math.max(this.frames, firstIndex + metrics.length);
    if (this.pending.length >= this.rowsPerWrite) {
      await this.writing;
      this.throwIfFailed();
      this.startWrite();
    }
  }

  /** Writes what is left and removes rows an earlier, longer attempt left past the last frame. */
  async finish(): Promise<number> {
    await this.writing;
    this.throwIfFailed();
    this.startWrite();
    await this.writing;
    this.throwIfFailed();
    await this.store.trimFrameMetrics(this.videoId, this.frames);
    return this.frames;
  }

  /** Lets a write in flight settle (after a failed analysis), without reporting its error. */
  async abandon(): Promise<void> {
    this.pending = [];
    await this.writing;
  }

  private startWrite(): void {
    if (this.pending.length === 0) return;
    const rows = this.pending;
    this.pending = [];
    this.writing = this.store.saveFrameMetrics(this.videoId, rows).catch((error: unknown) => {
      this.failure ??= coerceError(error);
    });
  }

  private throwIfFailed(): void {
    if (this.failure) throw new Error(`storing frame metrics failed: ${this.failure.message}`, { cause: this.failure });
  }
}
