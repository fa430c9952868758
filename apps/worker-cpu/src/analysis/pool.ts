import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { FrameBatch, FrameMetrics } from './frame-metrics.js';

/**
 * Where the compiled pool tasks live. Worker threads load plain JavaScript, so when this
 * module itself runs from TypeScript sources (tests) the built file under dist/ is used.
 */
function poolTasksFile(): string {
  const beside = fileURLToPath(new URL('./pool-tasks.js', import.meta.url));
  if (existsSync(beside)) return beside;
  const built = beside.replace(`${'/src/'}`, '/dist/');
  if (existsSync(built)) return built;
  throw new Error(`pool tasks not built: ${built} is missing (run "npm run build")`);
}

export interface CpuPoolOptions {
  threads: number;
  /** Tasks waiting per thread before `run` callers wait too. @defaultValue 4 */
  queuePerThread?: number;
}

/** The one thread pool of a worker-cpu process. */
export class CpuPool {
  private readonly pool: Piscina;
  private closing: Promise<void> | undefined;

  constructor(readonly options: CpuPoolOptions) {
    this.pool = new Piscina({
      filename: poolTasksFile(),
      minThreads: options.threads,
      maxThreads: options.threads,
      idleTimeout: 60_000,
      maxQueue: options.threads * (options.queuePerThread ?? 4) * 64,
    });
  }

  get threads(): number {
    return this.options.threads;
  }

  /** Metrics of a batch of frames; the frame buffer is moved into the thread, not copied. */
  frameMetrics(batch: FrameBatch, signal?: AbortSignal): Promise<FrameMetrics[]> {
    const transfer = [batch.frames.buffer as ArrayBuffer];
    return this.pool.run(batch, { name: 'frameMetrics', transferList: transfer, ...(signal ? { signal } : {}) }) as Promise<FrameMetrics[]>;
  }

  get utilization(): number {
    return this.pool.utilization;
  }

  close(): Promise<void> {
    this.closing ??= this.pool.destroy();
    return this.closing;
  }
}
