import { createRedis, openDatabase, VideoPipelineProducer, VideosRepository, type ServiceContext } from '@clipline/shared';
import { createProducerApp } from './app.js';

/**
 * Wires the producer's dependencies (Redis for queues, PostgreSQL for records) into the HTTP
 * app; each is registered for shutdown. Used by main and by the integration tests.
 */
export function buildProducer(service: ServiceContext) {
  const { config, logger, shutdown, metrics } = service;
  const redis = createRedis(config.redisUrl, 'producer');
  shutdown.register('redis', () => redis.quit().catch(() => redis.disconnect()));
  const db = openDatabase(config);
  shutdown.register('database', () => db.destroy());
  const videos = new VideosRepository(db);
  const pipeline = new VideoPipelineProducer({ connection: redis, prefix: config.queuePrefix }, videos);
  shutdown.register('flow producer', () => pipeline.close());

  const app = createProducerApp({
    config,
    logger,
    metrics,
    videos,
    pipeline,
    queueReady: () => redis.status === 'ready',
    checkDependencies: async () => {
      const [redisOk, dbOk] = await Promise.all([
        redis.ping().then(
          () => true,
          () => false,
        ),
        videos.ping().then(
          () => true,
          () => false,
        ),
      ]);
      return { redis: redisOk, database: dbOk };
    },
  });
  return { app, redis, db, videos, pipeline };
}
