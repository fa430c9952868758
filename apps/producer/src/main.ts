import http from 'node:http';
import {
  closeServer,
  createRedis,
  createService,
  loadConfigOrExit,
  openDatabase,
  VideoPipelineProducer,
  VideosRepository,
} from '@clipline/shared';
import { createProducerApp } from './app.js';

const service = createService('producer', loadConfigOrExit());
const { config, logger, shutdown, metrics } = service;
shutdown.installSignalHandlers();

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
      redis.ping().then(() => true, () => false),
      videos.ping().then(() => true, () => false),
    ]);
    return { redis: redisOk, database: dbOk };
  },
});

const server = http.createServer(app);
server.keepAliveTimeout = 65_000;
server.on('error', (error) => {
  logger.fatal({ err: error }, `producer could not listen on ${config.host}:${config.port}`);
  process.exit(1);
});
server.listen(config.port, config.host, () => {
  logger.info({ port: config.port }, `producer listening on http://${config.host}:${config.port}`);
});
// Registered last so it closes first: stop accepting requests before the connections go.
shutdown.register('http server', () => closeServer(server));
