import {
  analyzeResult,
  closeServer,
  createRedis,
  ingestQueue,
  LocalStorage,
  openDatabase,
  parseSource,
  PermanentJobError,
  persistQueue,
  pipelineQueue,
  runVideoStep,
  startMetricsServer,
  startWorker,
  VideosRepository,
  type Processors,
  type RunningWorker,
  type ServiceContext,
  connectVideoRuntime,
  failVideoOnFinalFailure,
  enqueueWebhookDeliveries,
  JobQueues,
  notifyQueue,
  WebhooksRepository,
  UsersRepository,
  AnalysisRepository,
  clipAspect,
  clipCandidate,
  renderClipPayloads,
  renderQueue,
  openaiQueue,
  stabilityQueue,
  elevenlabsQueue,
  AiResultsRepository,
  BreakerBoard,
  ExternalMetadataRepository,
  syncQueue,
  WebhookSecretsRepository,
  type QueueDeclaration,
  registerStorageBytesGauge,
  StorageLedger,
  storageQueue,
} from '@clipline/shared';
import { parseKeyring } from '@clipline/shared/crypto';
import { syncProcessors } from './sync/metadata-sync.js';
import { elevenlabsProcessors, openaiProcessors, stabilityProcessors, type AiStepDependencies } from './ai/ai-steps.js';
import { createProviderClients, ProviderRateLimitedError, type ProviderSettings } from './providers/index.js';
import { z } from 'zod';
import { fetchSource, type FetchSettings } from './ingest/fetch-source.js';
import { deliverWebhook, type WebhookSettings } from './notify/deliver-webhook.js';
import { storageProcessors } from './storage/storage-processors.js';

export function ingestProcessors(settings: FetchSettings, videos: VideosRepository): Processors<typeof ingestQueue> {
  return {
    'ingest-video': (job) =>
      runVideoStep('ingest', job, videos, async (step) => {
        const parsed = parseSource(job.data.source);
        if (!parsed.ok) throw new PermanentJobError(parsed.reason);
        const stored = await fetchSource(settings, job.data.videoId, parsed.source, {
          signal: job.signal,
          onProgress: (fraction) => step.progress(fraction),
        });
        await videos.setSource(job.data.videoId, { storageKey: stored.storageKey, sizeBytes: stored.sizeBytes });
        return stored;
      }),
  };
}

export function persistProcessors(videos: VideosRepository): Processors<typeof persistQueue> {
  return {
    'persist-analysis': (job) =>
      runVideoStep('persist', job, videos, async () => {
        const [analysis] = await job.childResults();
        const parsed = analyzeResult.safeParse(analysis);
        if (!parsed.success) throw new PermanentJobError(`analysis result is malformed: ${parsed.error.issues[0]?.message ?? 'unknown'}`);
        await videos.saveAnalysis(job.data.videoId, parsed.data.metadata, parsed.data.scenes);
        // The pipeline parent renders these next: they travel on as this step's result.
        return { scenes: parsed.data.scenes.length, clipCandidates: parsed.data.clipCandidates, aspect: parsed.data.clipOptions.aspect };
      }),
  };
}

const persistedResult = z.object({ clipCandidates: z.array(clipCandidate), aspect: clipAspect });

/**
 * The parent of a video's flow. It first runs when ingest, analyze and persist are done, and
 * then in phases, each adding children and parking until they finish: render jobs for the clip
 * candidates and the transcript; then captions; then the generated thumbnail and voice-over.
 * The phase comes from the steps' states in the database, so a retry resumes where it was.
 * Optional children (the AI steps) never fail the video; render failures do only when no clip
 * could be rendered.
 */
export function pipelineProcessors(videos: VideosRepository, analyses: AnalysisRepository, jobs: JobQueues): Processors<typeof pipelineQueue> {
  return {
    // The safety net behind onFinalFailure: a video whose flow failed in Redis (a parent failed
    // by its child) or disappeared, while the record was never told (the database was away,
    // the settling process died), is failed here with the flow's own reason.
    'reconcile-videos': async () => {
      const suspects = await videos.unfinishedSince(300, 200);
      let settled = 0;
      for (const videoId of suspects) {
        const parent = await jobs.get(pipelineQueue, `${videoId}-pipeline`);
        if (parent && parent.state !== 'failed') continue;
        await videos.failVideo(videoId, 'pipeline', `pipeline: ${parent?.failedReason ?? 'its jobs were lost from the queue'}`);
        settled++;
      }
      return { checked: suspects.length, settled };
    },
    'video-pipeline': async (job) => {
      const { videoId } = job.data;
      const video = await videos.find(videoId);
      if (!video) throw new PermanentJobError(`video ${videoId} does not exist`);
      if (video.status === 'cancelled' || video.status === 'failed') return { finished: video.status };
      const stepStatus = (name: string) => video.steps.find((step) => step.name === name)?.status;
      const child = (declaration: QueueDeclaration, jobName: string, suffix: string) => ({
        step: { declaration, jobName, data: { videoId } },
        jobId: `${videoId}-${suffix}`,
        optional: true,
      });

      if (stepStatus('render') === 'pending') {
        const persisted = persistedResult.safeParse((await job.childResults()).find((value) => value && typeof value === 'object' && 'clipCandidates' in value));
        const candidates = persisted.success ? persisted.data.clipCandidates : [];
        const renders = renderClipPayloads(videoId, candidates, persisted.success ? persisted.data.aspect : '9:16').map((data) => ({
          step: { declaration: renderQueue, jobName: 'render-clip', data },
          jobId: `${videoId}-render-${data.clipIndex}`,
          optional: true,
        }));
        const transcribe = stepStatus('transcribe') === 'pending' ? [child(openaiQueue, 'transcribe', 'transcribe')] : [];
        // Children first, then the step: a crash in between re-adds the same job ids on retry.
        await job.addChildren([...renders, ...transcribe]);
        if (renders.length) await videos.setStep(videoId, 'render', 'active', { attempts: 1 });
        else await videos.setStep(videoId, 'render', 'skipped', { reason: 'no clip candidates: the video is shorter than the shortest clip asked for, or has no usable stretch' });
        await job.waitForChildren();
      }
      if (stepStatus('render') === 'pending' || stepStatus('render') === 'active') {
        // A retry that never parked (a blip after the step turned active) waits here for the clips still rendering.
        await job.waitForChildren();
        const clips = await analyses.listClips(videoId);
        if (clips.length > 0) {
          const failed = clips.filter((clip) => clip.status !== 'rendered');
          if (failed.length === clips.length) {
            await videos.failVideo(videoId, 'render', `render: no clip could be rendered (${failed[0]?.error ?? 'unknown error'})`);
            return { finished: 'failed' };
          }
          await videos.setStep(videoId, 'render', 'completed', {
            reason: failed.length ? `${failed.length} of ${clips.length} clips failed: ${failed[0]?.error ?? 'unknown error'}` : null,
          });
        }
      }
      if (stepStatus('captions') === 'pending') {
        await job.addChildren([child(openaiQueue, 'write-captions', 'captions')]);
        await job.waitForChildren();
      }
      const finishing = [
        ...(stepStatus('thumbnail') === 'pending' ? [child(stabilityQueue, 'generate-thumbnail', 'thumbnail')] : []),
        ...(stepStatus('voiceover') === 'pending' ? [child(elevenlabsQueue, 'voiceover', 'voiceover')] : []),
      ];
      if (finishing.length) {
        await job.addChildren(finishing);
        await job.waitForChildren();
      }
      const completed = await videos.setStatus(videoId, 'completed');
      job.logger.info({ videoId, completed }, 'video pipeline finished');
      return { finished: 'completed' };
    },
  };
}

export function notifyProcessors(
  deps: { webhooks: WebhooksRepository; videos: VideosRepository; users: UsersRepository; jobs: JobQueues; settings: WebhookSettings },
): Processors<typeof notifyQueue> {
  return {
    'deliver-webhook': (job) =>
      deliverWebhook(job.data.deliveryId, deps, { isLast: job.attemptsMade + 1 >= job.maxAttempts, signal: job.signal }),
    'sweep-webhooks': async () => {
      const stale = await deps.webhooks.stalePending(15);
      await deps.webhooks.touch(stale);
      await enqueueWebhookDeliveries(deps.jobs, stale);
      return { requeued: stale.length };
    },
    // The welcome is recorded once per user (retries and duplicates are no-ops); the delivery
    // channel is the log line, which operators route to their mailer.
    'send-welcome': async (job) => {
      const user = await deps.users.find(job.data.userId);
      if (!user) throw new PermanentJobError(`user ${job.data.userId} does not exist`);
      if (user.status !== 'active') throw new PermanentJobError(`user ${user.id} is ${user.status}, not active`);
      const first = await deps.users.markWelcomed(user.id);
      if (first) job.logger.info({ userId: user.id, email: user.email }, 'welcome notification sent');
      return { welcomed: first };
    },
  };
}

/** Starts a worker-io process: high-concurrency async workers for the I/O queues. */
export interface IoWorkerOptions {
  /** Serve /metrics on the configured port. @defaultValue true */
  metricsServer?: boolean;
  /** Upstream providers (keys, base URLs, breakers, limits), parsed by main from the environment. */
  providers: ProviderSettings;
}

/** A 429 from a provider pauses that provider's whole queue (every worker) for its Retry-After. */
const providerPause = (error: unknown) => (error instanceof ProviderRateLimitedError ? error.retryAfterMs : undefined);

export async function startIoWorker(service: ServiceContext, options: IoWorkerOptions) {
  const { config, logger, shutdown, metrics } = service;
  const redis = createRedis(config.redisUrl, 'worker');
  shutdown.register('redis', () => redis.quit());
  const db = openDatabase(config, config.databasePoolSize, metrics);
  shutdown.register('database', () => db.destroy());
  const { signals, jobs, videos } = connectVideoRuntime(service, redis, db);
  // Subscribed before the first job, so a cancellation can reach any job this process runs.
  await signals.ready();
  const webhooks = new WebhooksRepository(db);
  const users = new UsersRepository(db);
  const webhookSettings: WebhookSettings = {
    secrets: new WebhookSecretsRepository(db, parseKeyring(config.accountsKeyring)),
    timeoutMs: config.webhookTimeoutMs,
    allowPrivateHosts: config.allowPrivateSources,
  };
  const settings: FetchSettings = {
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
  // Breaker states go to Redis every few seconds so the dashboard shows every process's view.
  const board = new BreakerBoard(redis, config.queuePrefix);
  const reportBreakers = () => board.report(providers.breakerStates()).catch(() => {});
  void reportBreakers();
  const boardTimer = setInterval(reportBreakers, 5000);
  shutdown.register('breaker reports', async () => {
    clearInterval(boardTimer);
    await board.withdraw(Object.keys(providers.breakerStates())).catch(() => {});
  });
  const ai: AiStepDependencies = {
    providers,
    videos,
    analyses: new AnalysisRepository(db),
    results: new AiResultsRepository(db),
    storage: settings.storage,
    ffmpegPath: config.ffmpegPath,
  };
  const common = { connection: redis, prefix: config.queuePrefix, logger, cancellations: signals, onFinalFailure: failVideoOnFinalFailure(videos) };
  const upstream = { ...common, concurrency: config.workerIoConcurrency, rateLimitOf: providerPause, limiter: { max: 1_000_000, duration: 1000 } };
  const workers: RunningWorker[] = [
    startWorker(ingestQueue, ingestProcessors(settings, videos), { ...common, concurrency: config.workerIoConcurrency }),
    startWorker(persistQueue, persistProcessors(videos), { ...common, concurrency: Math.min(config.workerIoConcurrency, config.databasePoolSize) }),
    startWorker(openaiQueue, openaiProcessors(ai), upstream),
    startWorker(stabilityQueue, stabilityProcessors(ai), upstream),
    startWorker(elevenlabsQueue, elevenlabsProcessors(ai), upstream),
    startWorker(
      syncQueue,
      syncProcessors({ providers, external: new ExternalMetadataRepository(db), jobs, intervalMs: config.metadataSyncIntervalMs }),
      upstream,
    ),
    startWorker(pipelineQueue, pipelineProcessors(videos, ai.analyses, jobs), { ...common, concurrency: config.workerIoConcurrency }),
    startWorker(notifyQueue, notifyProcessors({ webhooks, videos, users, jobs, settings: webhookSettings }), { ...common, concurrency: config.workerIoConcurrency }),
    // Few at once: file removals and walks are disk work, and nothing waits on them.
    startWorker(storageQueue, storageProcessors({ videos, storage: settings.storage, jobs, ledger }, config), { ...common, concurrency: 4 }),
  ];
  // One schedule for the whole deployment (upsert is idempotent across replicas).
  await jobs.schedule(notifyQueue, 'sweep-webhooks', {}, { every: 30_000 });
  await jobs.schedule(syncQueue, 'sync-metadata', {}, { every: config.metadataSyncIntervalMs });
  await jobs.schedule(pipelineQueue, 'reconcile-videos', {}, { every: 60_000 });
  await jobs.schedule(storageQueue, 'purge-expired', {}, { every: 10 * 60_000 });
  await jobs.schedule(storageQueue, 'measure-storage', {}, { every: 5 * 60_000 });
  const grace = Math.max(1000, config.shutdownTimeoutMs - 3000);
  shutdown.register('io workers', () => Promise.all(workers.map((worker) => worker.close(grace))));
  logger.info({ concurrency: config.workerIoConcurrency, queues: workers.map((w) => w.queue) }, 'worker-io ready');
  return { workers };
}
