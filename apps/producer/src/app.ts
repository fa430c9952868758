import express, { type Express, type RequestHandler } from 'express';
import type { RedisClient } from '@clipline/shared';
import { AuthFailureThrottle, purgeVideo, StorageLedger } from '@clipline/shared';
import type {
  AiResultsRepository,
  ApiKeysRepository,
  PublicJobsRepository,
  WebhookSecretsRepository,
  AnalysisRepository,
  Config,
  ExternalMetadataRepository,
  Keyring,
  LocalStorage,
  UsersRepository,
  IdempotencyRepository,
  JobQueues,
  Logger,
  Registry,
  VideoPipelineProducer,
  VideoSignals,
  VideosRepository,
  QueueOperations,
} from '@clipline/shared';
import { requireApiKey, type KeyVerifier } from './http/auth.js';
import { fingerprintKeys } from './http/idempotency.js';
import { webhookSecretRoutes } from './routes/webhook-secrets.js';
import { adminKeyRoutes } from './routes/admin-keys.js';
import { adminQueueRoutes } from './routes/admin-queues.js';
import { notFound, problemHandler } from './http/problem.js';
import { KnownKeyGate, rateLimitPerKey, RequestBudget } from './http/rate-limit.js';
import { requestContext, requestLog } from './http/request-log.js';
import { StreamSlots } from './http/stream-slots.js';
import { openApiDocument } from './openapi.js';
import { apiDocsRoutes } from './docs/api-docs.js';
import type { StrengthPool } from './accounts/strength-pool.js';
import { jobRoutes } from './routes/jobs.js';
import type { PublicJobRecords } from './routes/public-job-records.js';
import { userRoutes } from './routes/users.js';
import { videoRoutes } from './routes/videos.js';

export interface ProducerDependencies {
  config: Config;
  logger: Logger;
  metrics: Registry;
  redis: RedisClient;
  videos: VideosRepository;
  pipeline: VideoPipelineProducer;
  idempotency: IdempotencyRepository;
  signals: VideoSignals;
  jobs: JobQueues;
  analyses: AnalysisRepository;
  results: AiResultsRepository;
  external: ExternalMetadataRepository;
  storage: LocalStorage;
  users: UsersRepository;
  strength: StrengthPool;
  keyring: Keyring;
  webhookSecrets: WebhookSecretsRepository;
  apiKeys: ApiKeysRepository;
  publicJobs: PublicJobsRepository;
  /** Operators' bulk retries and discards of failed jobs, pauses and resumes, audited. */
  queueOperations: QueueOperations;
  /** Public jobs about a video: ownership check and record in one statement (else two queries). */
  publicJobRecords?: PublicJobRecords;
  /** Looks up API keys kept in the database, beside those of the configuration. */
  verifyKey?: KeyVerifier;
  /** Whether Redis answers; the API refuses to enqueue (503) when it does not. */
  queueReady(): boolean;
  /** Round trip to Redis and the database, for /readyz. */
  checkDependencies(): Promise<{ redis: boolean; database: boolean }>;
}

/**
 * Logs what /readyz finds when it changes, once, instead of a line a probe: not ready while
 * starting (info), ready, and a dependency lost after that (warn) or back (info).
 */
function readinessLog(logger: Logger): (checks: Record<string, boolean>) => void {
  let last: string | undefined;
  let wasReady = false;
  return (checks) => {
    const missing = Object.keys(checks).filter((name) => !checks[name]);
    const state = missing.join(',');
    if (state === last) return;
    last = state;
    if (missing.length === 0) {
      logger.info(wasReady ? 'ready again' : 'ready');
      wasReady = true;
    } else if (wasReady) logger.warn({ unavailable: missing }, `not ready: ${missing.join(' and ')} unavailable`);
    else logger.info({ unavailable: missing }, `not ready yet: ${missing.join(' and ')} unavailable`);
  };
}

/** CORS only for configured origins; without any, browsers get no CORS headers at all. */
function cors(origins: readonly string[]): RequestHandler {
  return (req, res, next) => {
    const origin = req.get('origin');
    if (!origin || origins.length === 0) return next();
    if (!origins.includes('*') && !origins.includes(origin)) return next();
    res.setHeader('access-control-allow-origin', origins.includes('*') ? '*' : origin);
    res.setHeader('vary', 'Origin');
    if (req.method === 'OPTIONS') {
      res.setHeader('access-control-allow-methods', 'GET, POST, DELETE');
      res.setHeader('access-control-allow-headers', 'authorization, content-type, idempotency-key, last-event-id');
      res.setHeader('access-control-max-age', '600');
      res.status(204).end();
      return;
    }
    return next();
  };
}

/** API keys (with the failed-authentication throttle) and the per-key request budget, on every `/v1` route. */
function authenticateAndLimit(v1: express.Router, deps: ProducerDependencies): RequestBudget {
  const { config } = deps;
  const throttlePrefix = `${config.queuePrefix}:auth-fail:api`;
  const throttle = new AuthFailureThrottle(deps.redis, throttlePrefix, config.authFailuresPerMinute);
  const budget = new RequestBudget(deps.redis, config.queuePrefix, config.apiRateLimitPerMinute);
  // Keys of the configuration: throttle check and rate-limit charge in one Redis command.
  const probe = new KnownKeyGate(deps.redis, throttlePrefix, config.authFailuresPerMinute, budget);
  v1.use(requireApiKey({ keys: config.apiKeys, adminKeys: config.adminApiKeys, throttle, probe, ...(deps.verifyKey ? { verify: deps.verifyKey } : {}) }));
  v1.use(rateLimitPerKey(budget));
  return budget;
}

/** `/healthz` (the process answers) and `/readyz` (Redis and the database answer too). */
function healthRoutes(app: Express, deps: ProducerDependencies): void {
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  const noteReadiness = readinessLog(deps.logger);
  app.get('/readyz', async (_req, res) => {
    const checks = await deps.checkDependencies();
    const ready = checks.redis && checks.database;
    noteReadiness(checks);
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'unavailable', checks });
  });
}

export function createProducerApp(deps: ProducerDependencies): Express {
  const { config, logger } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.trustProxy === false ? false : [...config.trustProxy]);
  app.set('query parser', 'simple');
  app.use(requestLog({ logger, metrics: deps.metrics }));
  app.use(cors(config.corsOrigins));
  app.use(express.json({ limit: '1mb', strict: true, type: ['application/json', 'application/*+json'] }));
  app.use(requestContext());

  healthRoutes(app, deps);
  // `/metrics` is served on its own port (PRODUCER_METRICS_PORT), away from the public listener.
  const document = openApiDocument();
  app.get('/openapi.json', (_req, res) => {
    res.json(document);
  });
  app.use(apiDocsRoutes());

  // Derived from a configured secret, so idempotency fingerprints cannot be recomputed from a guessed body.
  const fingerprintKey = fingerprintKeys(config.accountsKeyring);
  const v1 = express.Router();
  const budget = authenticateAndLimit(v1, deps);
  v1.use(
    videoRoutes({
      ...deps,
      fingerprintKey,
      budget,
      streamSlots: new StreamSlots(deps.redis, config.queuePrefix, config.sseMaxStreamsPerKey),
      purge: (videoId, scope) =>
        purgeVideo({ videos: deps.videos, storage: deps.storage, jobs: deps.jobs, ledger: new StorageLedger(deps.redis, config.queuePrefix) }, videoId, scope),
      egress: { allowPrivate: config.allowPrivateSources },
      fileRoots: config.fileSourceRoots,
      limits: { maxActiveVideosPerTenant: config.maxActiveVideosPerTenant, sseMaxSeconds: config.sseMaxSeconds },
    }),
  );
  v1.use(
    jobRoutes({
      queues: deps.jobs,
      idempotency: deps.idempotency,
      fingerprintKey,
      queueReady: deps.queueReady,
      videos: deps.videos,
      publicJobs: deps.publicJobs,
      ...(deps.publicJobRecords ? { records: deps.publicJobRecords } : {}),
      storageDir: config.storageDir,
    }),
  );
  v1.use(userRoutes(deps));
  v1.use(webhookSecretRoutes({ secrets: deps.webhookSecrets }));
  v1.use(adminKeyRoutes({ keys: deps.apiKeys }));
  v1.use(adminQueueRoutes({ operations: deps.queueOperations }));

  app.use('/v1', v1);
  app.use((req, _res, next) => next(notFound(`no route for ${req.method} ${req.path.slice(0, 200)}`)));
  app.use(problemHandler((error) => logger.error({ err: error }, 'unhandled request error')));
  return app;
}
