import {
  analyzeQueue,
  closeServer,
  createRedis,
  Gauge,
  ingestResult,
  LocalStorage,
  openDatabase,
  PermanentJobError,
  runVideoStep,
  startMetricsServer,
  startWorker,
  VideosRepository,
  type Processors,
  type ServiceContext,
} from '@clipline/shared';
import { analyzeVideo, type AnalysisSettings } from './analysis/analyze-video.js';
import { CpuPool } from './analysis/pool.js';

export interface CpuWorkerOptions {
  /** Serve /metrics on the configured port. @defaultValue true */
  metricsServer?: boolean;
}

export function analyzeProcessors(settings: AnalysisSettings, videos: VideosRepository, storage: LocalStorage): Processors<typeof analyzeQueue> {
  return {
    'analyze-video': (job) =>
      runVideoStep('analyze', job, videos, async (step) => {
        const [ingested] = await job.childResults();
        const source = ingestResult.safeParse(ingested);
        if (!source.success) throw new PermanentJobError('the ingest step left no stored source to analyse');
        return analyzeVideo(settings, storage.pathOf(source.data.storageKey), source.data.sizeBytes, {
          signal: job.signal,
          onProgress: (fraction) => step.progress(fraction),
        });
      }),
  };
}

/**
 * Starts a worker-cpu process: one piscina pool sized to the cores, and a BullMQ worker for the
 * CPU queues whose concurrency keeps that pool busy without queueing whole videos in memory.
 */
export async function startCpuWorker(service: ServiceContext, options: CpuWorkerOptions = {}) {
  const { config, logger, shutdown, metrics } = service;
  const redis = createRedis(config.redisUrl, 'worker');
  shutdown.register('redis', () => redis.quit());
  const db = openDatabase(config, Math.max(2, config.workerCpuConcurrency + 1));
  shutdown.register('database', () => db.destroy());
  const pool = new CpuPool({ threads: config.cpuPoolThreads });
  shutdown.register('cpu pool', () => pool.close());

  new Gauge({
    name: 'clipline_cpu_pool_utilization',
    help: 'Share of the thread pool capacity in use (0-1)',
    registers: [metrics],
    collect() {
      this.set(pool.utilization);
    },
  });

  const videos = new VideosRepository(db);
  const storage = new LocalStorage(config.storageDir);
  const settings: AnalysisSettings = {
    tools: { ffmpegPath: config.ffmpegPath, ffprobePath: config.ffprobePath },
    pool,
    fps: config.analyzeFps,
    width: config.analyzeWidth,
    maxSeconds: config.maxSourceSeconds,
  };

  if (options.metricsServer ?? true) {
    const server = await startMetricsServer(metrics, config.workerCpuMetricsPort, config.host);
    shutdown.register('metrics server', () => closeServer(server));
  }
  const worker = startWorker(analyzeQueue, analyzeProcessors(settings, videos, storage), {
    connection: redis,
    prefix: config.queuePrefix,
    concurrency: config.workerCpuConcurrency,
    logger,
  });
  shutdown.register('analyze worker', () => worker.close(Math.max(1000, config.shutdownTimeoutMs - 3000)));
  logger.info({ threads: pool.threads, concurrency: config.workerCpuConcurrency, queues: [analyzeQueue.name] }, 'worker-cpu ready');
  return { pool, worker };
}
