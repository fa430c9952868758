import {
  AiResultsRepository,
  AnalysisRepository,
  BreakerBoard,
  closeServer,
  connectVideoRuntime,
  createRedis,
  whileWaitingForRedis,
  elevenlabsQueue,
  ExternalMetadataRepository,
  IdempotencyRepository,
  PublicJobsRepository,
  ingestQueue,
  keepScheduled,
  LocalStorage,
  notifyQueue,
  openaiQueue,
  openDatabase,
  persistQueue,
  pipelineQueue,
  registerStorageBytesGauge,
  stabilityQueue,
  startMetricsServer,
  startWorker,
  StorageLedger,
  storageQueue,
  syncQueue,
  UsersRepository,
  WebhookSecretsRepository,
  WebhooksRepository,
  type Db,
  type JobPolicy,
  type JobQueues,
  type RunningWorker,
  type ServiceContext,
  type VideosRepository,
} from '@clipline/shared';
import { parseKeyring } from '@clipline/shared/crypto';
import { elevenlabsProcessors, openaiProcessors, stabilityProcessors, type AiStepDependencies } from './ai/ai-steps.js';
import type { FetchSettings } from './ingest/fetch-source.js';
import type { WebhookSettings } from './notify/deliver-webhook.js';
import { notifyProcessors } from './notify/notify-processors.js';
import { ingestProcessors, persistProcessors, pipelineProcessors } from './pipeline/video-processors.js';
import { createProviderClients, type ProviderClients, type ProviderSettings } from './providers/index.js';
import { type ExpiringRecords, storageProcessors } from './storage/storage-processors.js';
import { syncProcessors } from './sync/metadata-sync.js';

export { ingestProcessors, notifyProcessors, persistProcessors, pipelineProcessors };

/** Starts a worker-io process: high-concurrency async workers for the I/O queues. */
export interface IoWorkerOptions {
  /** Serve /metrics on the configured port. @defaultValue true */
  metricsServer?: boolean;
  /** Upstream providers (keys, base URLs, breakers, limits), parsed by main from the environment. */
  providers: ProviderSettings;
}

/** How often this process reports its circuit breakers' states to the dashboard. */
const BREAKER_REPORT_MS = 5000;
/** Storage work (file removals, walks) is disk-bound and nothing waits on it: a few at once. */
const STORAGE_CONCURRENCY = 4;
/**
 * A provider's queue pause (a {@link RateLimitedError}) must hold for every worker of the queue,
 * and BullMQ reads the manual rate-limit key only when the worker has a limiter: this one never
 * limits by itself.
 */
const PAUSABLE = { max: 1_000_000, duration: 1000 };

/** Breaker states go to Redis every few seconds so the dashboard shows every process's view. */
function reportBreakers(service: ServiceContext, redis: ReturnType<typeof createRedis>, providers: ProviderClients): void {
  const board = new BreakerBoard(redis, service.config.queuePrefix);
  const report = () => board.report(providers.breakerStates()).catch(() => {});
  void report();
  const timer = setInterval(report, BREAKER_REPORT_MS);
  service.shutdown.register('breaker reports', async () => {
    clearInterval(timer);
    await board.withdraw(Object.keys(providers.breakerStates())).catch(() => {});
  });
}

interface IoDependencies {
  db: Db;
  redis: ReturnType<typeof createRedis>;
  videos: VideosRepository;
  jobs: JobQueues;
  policy: JobPolicy;
  providers: ProviderClients;
  fetch: FetchSettings;
  ledger: StorageLedger;
}

function webhookSettings(service: ServiceContext, db: Db): WebhookSettings {
  const { config } = service;
  return {
    secrets: new WebhookSecretsRepository(db, parseKeyring(config.accountsKeyring)),
    timeoutMs: config.webhookTimeoutMs,
    allowPrivateHosts: config.allowPrivateSources,
  };
}

function expiringRecords(service: ServiceContext, db: Db): ExpiringRecords {
  return {
    idempotencyKeys: new IdempotencyRepository(db),
    webhookSecrets: new WebhookSecretsRepository(db, parseKeyring(service.config.accountsKeyring)),
    publicJobs: new PublicJobsRepository(db),
  };
}

function startIoWorkers(service: ServiceContext, deps: IoDependencies): RunningWorker[] {
  const { config, logger } = service;
  const { db, videos, jobs, providers } = deps;
  const ai: AiStepDependencies = {
    providers,
    videos,
    analyses: new AnalysisRepository(db),
    results: new AiResultsRepository(db),
    storage: deps.fetch.storage,
    ffmpegPath: config.ffmpegPath,
  };
  const common = {
    connection: deps.redis,
    prefix: config.queuePrefix,
    logger,
    policy: deps.policy,
    maxStalledCount: config.jobStallLimit,
    metrics: service.metrics,
  };
  const io = { ...common, concurrency: config.workerIoConcurrency };
  const upstream = { ...io, limiter: PAUSABLE };
  const notify = { webhooks: new WebhooksRepository(db), videos, users: new UsersRepository(db), jobs, settings: webhookSettings(service, db) };
  const sync = { providers, external: new ExternalMetadataRepository(db), jobs, intervalMs: config.metadataSyncIntervalMs };
  return [
    startWorker(ingestQueue, ingestProcessors(deps.fetch, videos), io),
    startWorker(persistQueue, persistProcessors(videos, { analyses: ai.analyses, results: ai.results, openai: providers.openai }), {
      ...common,
      concurrency: Math.min(config.workerIoConcurrency, config.databasePoolSize),
    }),
    startWorker(openaiQueue, openaiProcessors(ai), upstream),
    startWorker(stabilityQueue, stabilityProcessors(ai), upstream),
    startWorker(elevenlabsQueue, elevenlabsProcessors(ai), upstream),
    startWorker(syncQueue, syncProcessors(sync), upstream),
    startWorker(pipelineQueue, pipelineProcessors(videos, ai.analyses, jobs), io),
    startWorker(notifyQueue, notifyProcessors(notify), io),
    startWorker(
      storageQueue,
      storageProcessors({ videos, storage: deps.fetch.storage, jobs, ledger: deps.ledger, expiring: expiringRecords(service, db) }, config),
      {
        ...common,
        concurrency: STORAGE_CONCURRENCY,
      },
    ),
  ];
}

/** One schedule for the whole deployment (upsert is idempotent across replicas), kept in place while the process runs. */
async function scheduleRecurringJobs(service: ServiceContext, jobs: JobQueues): Promise<void> {
  const stop = await keepScheduled(
    jobs,
    [
      { declaration: notifyQueue, name: 'sweep-webhooks', payload: {}, everyMs: 30_000 },
      { declaration: syncQueue, name: 'sync-metadata', payload: {}, everyMs: service.config.metadataSyncIntervalMs },
      { declaration: pipelineQueue, name: 'reconcile-videos', payload: {}, everyMs: 60_000 },
      { declaration: storageQueue, name: 'purge-expired', payload: {}, everyMs: 10 * 60_000 },
      { declaration: storageQueue, name: 'measure-storage', payload: {}, everyMs: 5 * 60_000 },
    ],
    { logger: service.logger },
  );
  service.shutdown.register('schedule checks', stop);
}

export async function startIoWorker(service: ServiceContext, options: IoWorkerOptions) {
  const { config, logger, shutdown, metrics } = service;
  const redis = createRedis(config.redisUrl, 'worker');
  shutdown.register('redis', () => redis.quit());
  const db = openDatabase(config, config.databasePoolSize, metrics);
  shutdown.register('database', () => db.destroy());
  const { signals, jobs, videos, policy } = connectVideoRuntime(service, redis, db);
  // Subscribed before the first job, so a cancellation can reach any job this process runs.
  await whileWaitingForRedis(redis, logger, signals.ready());
  const fetch: FetchSettings = {
    storage: new LocalStorage(config.storageDir),
    maxBytes: config.maxSourceBytes,
    fileRoots: config.fileSourceRoots,
    allowPrivateHosts: config.allowPrivateSources,
    downloadTimeoutMs: config.downloadTimeoutMs,
  };
  const ledger = new StorageLedger(redis, config.queuePrefix);
  registerStorageBytesGauge(metrics, ledger);
  if (options.metricsServer ?? true) {
    const server = await startMetricsServer(metrics, config.workerIoMetricsPort, config.host);
    shutdown.register('metrics server', () => closeServer(server));
  }
  const providers = createProviderClients({ settings: options.providers, redis, keyPrefix: config.queuePrefix, registry: metrics, logger });
  shutdown.register('provider clients', () => providers.close());
  reportBreakers(service, redis, providers);
  const workers = startIoWorkers(service, { db, redis, videos, jobs, policy, providers, fetch, ledger });
  await scheduleRecurringJobs(service, jobs);
  const grace = Math.max(1000, config.shutdownTimeoutMs - 3000);
  shutdown.register('io workers', () => Promise.all(workers.map((worker) => worker.close(grace))));
  logger.info({ concurrency: config.workerIoConcurrency, queues: workers.map((w) => w.queue) }, 'worker-io ready');
  return { workers };
}
