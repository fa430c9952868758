import {
  AiResultsRepository,
  AnalysisRepository,
  ApiKeysRepository,
  ExternalMetadataRepository,
  LocalStorage,
  UsersRepository,
  createRedis,
  connectVideoRuntime,
  IdempotencyRepository,
  openDatabase,
  PublicJobsRepository,
  QueueActionsRepository,
  QueueOperations,
  allQueues,
  createQueue,
  WebhookSecretsRepository,
  VideoPipelineProducer,
  type ServiceContext,
} from '@clipline/shared';
import { parseKeyring } from '@clipline/shared/crypto';
import { StrengthPool } from './accounts/strength-pool.js';
import { createProducerApp } from './app.js';
import { PublicJobRecords } from './routes/public-job-records.js';
import type { KeyVerifier } from './http/auth.js';

/** Long enough for a batch of a thousand videos in one round trip on a busy Redis. */
const PRODUCER_REDIS_COMMAND_TIMEOUT_MS = 10_000;
/** A readiness probe's own bound: the kubelet waits a few seconds for its answer. */
const READINESS_TIMEOUT_MS = 2000;

/** `work`, or a rejection once `ms` have passed. */
function withinMs<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/**
 * Wires the producer's dependencies (Redis for queues and signals, the database for records) into
 * the HTTP app; each is registered for shutdown. Used by main and by the integration tests.
 */
export function buildProducer(service: ServiceContext, options: { verifyKey?: KeyVerifier; strengthQueue?: number } = {}) {
  const { config, logger, shutdown, metrics } = service;
  // A Redis that stays connected but stops answering (paused, wedged, a network black hole) fails
  // a command after this long instead of holding the request, and /readyz, forever.
  const redis = createRedis(config.redisUrl, 'producer', { commandTimeoutMs: PRODUCER_REDIS_COMMAND_TIMEOUT_MS });
  shutdown.register('redis', () => redis.quit().catch(() => redis.disconnect()));
  const db = openDatabase(config, config.databasePoolSize, metrics);
  shutdown.register('database', () => db.destroy());
  // A cancellation finishes a video here: its webhook leaves from this process.
  const { signals, jobs, videos } = connectVideoRuntime(service, redis, db);
  const context = { connection: redis, prefix: config.queuePrefix };
  const apiKeys = new ApiKeysRepository(db);
  const idempotency = new IdempotencyRepository(db, config.idempotencyTtlSeconds);
  const pipeline = new VideoPipelineProducer(context, videos, signals, { quotaPerMinute: config.fairShareQuotaPerMinute });
  shutdown.register('flow producer', () => pipeline.close());

  const adminQueues = allQueues.map((declaration) => createQueue(declaration, context));
  shutdown.register('admin queues', () => Promise.all(adminQueues.map((queue) => queue.close())));

  const strength = new StrengthPool((err) => logger.error({ err }, 'a password strength thread failed outside a check'), options.strengthQueue);
  shutdown.register('password strength pool', () => strength.close());
  const keyring = parseKeyring(config.accountsKeyring);
  const app = createProducerApp({
    analyses: new AnalysisRepository(db),
    results: new AiResultsRepository(db),
    external: new ExternalMetadataRepository(db),
    storage: new LocalStorage(config.storageDir),
    users: new UsersRepository(db),
    strength,
    keyring,
    webhookSecrets: new WebhookSecretsRepository(db, keyring),
    apiKeys,
    publicJobs: new PublicJobsRepository(db),
    publicJobRecords: new PublicJobRecords(db, metrics),
    queueOperations: new QueueOperations(adminQueues, new QueueActionsRepository(db), () => redis.status === 'ready'),
    config,
    logger,
    metrics,
    redis,
    videos,
    pipeline,
    idempotency,
    signals,
    jobs,
    // Keys created with `clipline keys create` live hashed in the database.
    verifyKey: options.verifyKey ?? ((key) => apiKeys.verify(key)),
    queueReady: () => redis.status === 'ready',
    checkDependencies: async () => {
      const [redisOk, dbOk] = await Promise.all([
        withinMs(redis.ping(), READINESS_TIMEOUT_MS).then(
          () => true,
          () => false,
        ),
        withinMs(videos.ping(), READINESS_TIMEOUT_MS).then(
          () => true,
          () => false,
        ),
      ]);
      return { redis: redisOk, database: dbOk };
    },
  });
  return { app, redis, db, videos, pipeline, signals, idempotency, jobs };
}
