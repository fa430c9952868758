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
    onFinished: async (videoId, deliveryIds) => {
      // A release lost here (Redis away) is picked up by the retention job's sweep; it must not
      // fail the write that finished the video, which has already happened.
      const release = config.keepSources ? undefined : enqueueSourceRelease(jobs, videoId).catch(() => {});
      await Promise.all([enqueueWebhookDeliveries(jobs, deliveryIds), release]);
    },
  });
  return { signals, jobs, videos, policy: videoJobPolicy(videos, signals) };
}
