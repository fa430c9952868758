import {
  AiResultsRepository,
  accountsQueue,
  AnalysisRepository,
  analyzeQueue,
  connectVideoRuntime,
  UsersRepository,
  closeServer,
  createRedis,
  whileWaitingForRedis,
  defaultRenderConcurrency,
  Gauge,
  LocalStorage,
  openDatabase,
  renderQueue,
  startMetricsServer,
  startWorker,
  type RunningWorker,
  type ServiceContext,
  usableCores,
} from '@clipline/shared';
import { parseKeyring } from '@clipline/shared/crypto';
import { accountsPolicy, accountsProcessors } from './accounts/register-user.js';
import { analyzeProcessors } from './analysis/analyze-processor.js';
import type { AnalysisSettings } from './analysis/analyze-video.js';
import { setToolSpawning } from './analysis/ffmpeg.js';
import { CpuPool } from './analysis/pool.js';
import { cpuConcurrency, type CpuWorkerSettings } from './cpu-worker-config.js';
import { RenderCores } from './render/render-cores.js';
import { renderProcessors } from './render/render-processor.js';
import type { RenderSettings } from './render/render-clip.js';

export interface CpuWorkerOptions {
  /** Serve /metrics on the configured port. @defaultValue true */
  metricsServer?: boolean;
  /** worker-cpu's own settings. @defaultValue the defaults of `loadCpuWorkerSettings({})` */
  settings?: CpuWorkerSettings;
}

export interface RunningCpuWorker {
  pool: CpuPool;
  workers: RunningWorker[];
  concurrency: { analyze: number; render: number };
  /** The port /metrics listens on, when served. */
  metricsPort: number | undefined;
}

/** The pool's utilisation, queue and size on /metrics. */
function registerPoolGauges(metrics: ServiceContext['metrics'], pool: CpuPool): void {
  new Gauge({
    name: 'clipline_cpu_pool_utilization',
    help: 'Share of the thread pool capacity in use (0-1)',
    registers: [metrics],
    collect() {
      this.set(pool.utilization);
    },
  });
  new Gauge({
    name: 'clipline_cpu_pool_queue_size',
    help: 'Pool tasks waiting for a free thread',
    registers: [metrics],
    collect() {
      this.set(pool.queued);
    },
  });
  new Gauge({ name: 'clipline_cpu_pool_threads', help: 'Threads of the pool', registers: [metrics] }).set(pool.threads);
}

/**
 * Starts a worker-cpu process: one piscina pool sized to the cores, and BullMQ workers for the
 * `analyze` and `render` queues whose concurrency derives from that pool, so the pool stays
 * busy without whole videos queueing in memory. Metrics include the main thread's event-loop
 * lag (`nodejs_eventloop_lag_p99_seconds`) and the pool's utilisation and queue.
 */
export async function startCpuWorker(service: ServiceContext, options: CpuWorkerOptions = {}): Promise<RunningCpuWorker> {
  const { config, logger, shutdown, metrics } = service;
  const own = options.settings;
  const pool = new CpuPool({ threads: config.cpuPoolThreads, onThreadError: (err) => logger.error({ err }, 'a pool thread failed outside a task') });
  // Renders default to one per usable core (cgroup quota included); their ffmpeg runs share those cores.
  const cores = usableCores();
  const concurrency = cpuConcurrency(pool.threads, config.workerCpuConcurrency, own?.renderConcurrency ?? defaultRenderConcurrency(cores));

  const redis = createRedis(config.redisUrl, 'worker');
  shutdown.register('redis', () => redis.quit());
  const db = openDatabase(config, concurrency.analyze + concurrency.render + 2, metrics);
  shutdown.register('database', () => db.destroy());
  shutdown.register('cpu pool', () => pool.close());

  registerPoolGauges(metrics, pool);

  const { signals, jobs, videos, policy } = connectVideoRuntime(service, redis, db);
  // Subscribed before the first job, so a cancellation can reach any job this process runs.
  await whileWaitingForRedis(redis, logger, signals.ready());
  const analyses = new AnalysisRepository(db);
  const storage = new LocalStorage(config.storageDir);
  setToolSpawning(config.ffmpegSpawning);
  const tools = { ffmpegPath: config.ffmpegPath, ffprobePath: config.ffprobePath };
  const analysis: AnalysisSettings = {
    tools,
    pool,
    fps: config.analyzeFps,
    width: config.analyzeWidth,
    maxSeconds: config.maxSourceSeconds,
    maxPixels: config.maxSourcePixels,
  };
  const render: RenderSettings = { tools, pool, cores: new RenderCores(cores), ...(own ? { preset: own.renderPreset, crf: own.renderCrf } : {}) };

  let metricsPort: number | undefined;
  if (options.metricsServer ?? true) {
    const server = await startMetricsServer(metrics, config.workerCpuMetricsPort, config.host);
    shutdown.register('metrics server', () => closeServer(server));
    const address = server.address();
    metricsPort = typeof address === 'object' && address ? address.port : config.workerCpuMetricsPort;
  }
  const common = { connection: redis, prefix: config.queuePrefix, logger, policy, maxStalledCount: config.jobStallLimit, metrics };
  const users = new UsersRepository(db);
  const workers = [
    startWorker(analyzeQueue, analyzeProcessors({ settings: analysis, videos, analyses, storage }), { ...common, concurrency: concurrency.analyze }),
    startWorker(
      renderQueue,
      renderProcessors({ settings: render, analyses, storage, videos, analysisFps: config.analyzeFps, results: new AiResultsRepository(db) }),
      {
        ...common,
        concurrency: concurrency.render,
      },
    ),
    startWorker(accountsQueue, accountsProcessors({ pool, users, jobs, keyring: parseKeyring(config.accountsKeyring) }), {
      ...common,
      policy: accountsPolicy(users, policy),
      concurrency: pool.threads,
    }),
  ];
  const grace = Math.max(1000, config.shutdownTimeoutMs - 3000);
  shutdown.register('cpu workers', () => Promise.all(workers.map((worker) => worker.close(grace))));
  logger.info({ threads: pool.threads, concurrency, queues: workers.map((worker) => worker.queue) }, 'worker-cpu ready');
  return { pool, workers, concurrency, metricsPort };
}
