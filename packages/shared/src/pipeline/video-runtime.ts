import type { RedisClient } from '../redis.js';
import type { Db } from '../db/connection.js';
import { VideosRepository } from '../db/videos-repository.js';
import { JobQueues } from '../jobs/job-queues.js';
import { VideoSignals } from '../jobs/video-signals.js';
import type { ServiceContext } from '../service.js';
import { enqueueSourceRelease } from './source-release.js';
import { VIDEO_STEPS } from './video-flow.js';
import { videoJobPolicy } from './video-job-policy.js';
import { enqueueWebhookDeliveries } from './webhook-outbox.js';

/**
 * What every process that changes videos shares: cross-process signals (live streams,
 * cancellation), job queues, and a videos repository whose changes are signalled and whose
 * finished videos send their webhooks and release their sources at once, and the job policy its
 * workers run with. Everything is registered for shutdown.
 */
/**
 * What follows a video's finish: its webhooks sent at once and its source released. Neither may
 * fail the write that finished the video, which has already happened: with Redis away the
 * webhook sweep sends the deliveries still pending in the outbox (every 30 s), and the retention
 * job's sweep releases the source. Before, a failed enqueue made a committed cancel throw, so the
 * API answered 503 and never told the running jobs to stop. Neither is waited for longer than
 * `waitMs`: BullMQ holds the commands of a queue first used while Redis is away until Redis is
 * back, which would hold the request that finished the video as long.
 */
export function afterVideoFinished(jobs: JobQueues, keepSources: boolean, waitMs = 5000): (videoId: string, deliveryIds: string[]) => Promise<void> {
  return async (videoId, deliveryIds) => {
    const release = keepSources ? undefined : enqueueSourceRelease(jobs, videoId);
    const enqueued = Promise.all([enqueueWebhookDeliveries(jobs, deliveryIds), release]).then(
      () => undefined,
      () => undefined,
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([enqueued, new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)))]);
    clearTimeout(timer);
  };
}

export function connectVideoRuntime(service: ServiceContext, redis: RedisClient, db: Db) {
  const { config, shutdown } = service;
  const signals = new VideoSignals(redis, config.redisUrl, config.queuePrefix);
  shutdown.register('signals', () => signals.close());
  const jobs = new JobQueues({ connection: redis, prefix: config.queuePrefix });
  shutdown.register('job queues', () => jobs.close());
  const videos = new VideosRepository(db, {
    stepOrder: VIDEO_STEPS,
    storageDir: config.storageDir,
    onChange: (videoId) => signals.changed(videoId),
    onFailed: (videoId) => signals.failed(videoId),
    onFinished: afterVideoFinished(jobs, config.keepSources),
  });
  return { signals, jobs, videos, policy: videoJobPolicy(videos, signals) };
}
