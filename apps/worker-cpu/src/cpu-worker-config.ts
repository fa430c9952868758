import { z } from 'zod';
import { parseEnv } from '@clipline/shared';

/** Variables only worker-cpu reads, beside the shared `Config`. */
const cpuWorkerEnv = z.object({
  /** Clips one process renders at once. @defaultValue half the pool threads, at least 1 */
  RENDER_CONCURRENCY: z.coerce.number().int().positive().optional(),
  /** libx264 preset of rendered clips. @defaultValue veryfast */
  RENDER_PRESET: z.enum(['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium', 'slow']).default('veryfast'),
  /** libx264 constant rate factor of rendered clips (0-51, lower is better). @defaultValue 20 */
  RENDER_CRF: z.coerce.number().int().min(0).max(51).default(20),
});

export interface CpuWorkerSettings {
  readonly renderConcurrency: number | undefined;
  readonly renderPreset: string;
  readonly renderCrf: number;
}

export function loadCpuWorkerSettings(source: Record<string, string | undefined>): CpuWorkerSettings {
  const env = parseEnv(cpuWorkerEnv, source);
  return Object.freeze({
    renderConcurrency: env.RENDER_CONCURRENCY,
    renderPreset: env.RENDER_PRESET,
    renderCrf: env.RENDER_CRF,
  });
}

/**
 * Jobs a worker-cpu process runs at once, from its pool. Analysis is paced by the pool (each
 * video keeps up to two batches per thread in flight), so more videos than threads only queue
 * frames in memory. Rendering is mostly libx264, which threads itself: half the cores each.
 */
export function cpuConcurrency(poolThreads: number, configuredAnalyze: number, configuredRender?: number): { analyze: number; render: number } {
  const threads = Math.max(1, poolThreads);
  return {
    analyze: Math.max(1, Math.min(configuredAnalyze, threads)),
    render: configuredRender ?? Math.max(1, Math.floor(threads / 2)),
  };
}
