import type { Redis } from 'ioredis';
import type { Db } from '../db/connection.js';
import { VideosRepository } from '../db/videos-repository.js';
import { JobQueues } from '../jobs/runtime.js';
import { VideoSignals } from '../jobs/video-signals.js';
import type { ServiceContext } from '../service.js';
import { enqueueWebhookDeliveries } from './webhook-outbox.js';

/**
 * What every process that changes videos shares: cross-process signals (live streams,
 * cancellation), job queues, and a videos repository whose changes are signalled and whose
 * finished videos send their webhooks at once. Everything is registered for shutdown.
 */
export function connectVideoRuntime(service: ServiceContext, redis: Redis, db: Db) {
  const { config, shutdown } = service;
  const signals = new VideoSignals(redis, config.redisUrl, config.queuePrefix);
  shutdown.register('signals', () => signals.close());
  const jobs = new JobQueues({ connection: redis, prefix: config.queuePrefix });
  shutdown.register('job queues', () => jobs.close());
  const videos = new VideosRepository(db, {
    onChange: (videoId) => signals.changed(videoId),
    onFinished: (_videoId, deliveryIds) => enqueueWebhookDeliveries(jobs, deliveryIds),
  });
  return { signals, jobs, videos };
}
