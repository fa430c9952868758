import { loadConfig, type Config } from '@clipline/shared';

/** worker-cpu's render settings: `config.cpuWorker` of the one configuration schema (RENDER_* variables). */
export type CpuWorkerSettings = Config['cpuWorker'];

/** The settings of an environment (tests build them from a few variables); a bad variable throws a ConfigError naming it. */
export function loadCpuWorkerSettings(source: Record<string, string | undefined>): CpuWorkerSettings {
  return loadConfig(source).cpuWorker;
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
