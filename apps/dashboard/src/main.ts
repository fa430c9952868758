import http from 'node:http';
import {
  allQueues,
  BreakerBoard,
  closeServer,
  createQueue,
  createRedis,
  createService,
  loadConfigOrExit,
  openDatabase,
  QueueActionsRepository,
  QueueOperations,
  VideosRepository,
} from '@clipline/shared';
import { createDashboardApp, DASHBOARD_REDIS_COMMAND_TIMEOUT_MS } from './app.js';

const service = createService('dashboard', loadConfigOrExit());
const { config, logger, shutdown, metrics } = service;
shutdown.installSignalHandlers();

// Fail fast, as the API does: with Redis away, a page, a sign-in (its throttle lets it through)
// or a queue action answers at once instead of waiting for Redis in ioredis's offline queue, and
// an action the operator gave up on does not run when Redis comes back.
// A Redis that stays connected but stops answering fails a command after 5 s likewise.
const redis = createRedis(config.redisUrl, 'producer', { commandTimeoutMs: DASHBOARD_REDIS_COMMAND_TIMEOUT_MS });
shutdown.register('redis', () => redis.quit().catch(() => redis.disconnect()));
const queues = allQueues.map((declaration) => createQueue(declaration, { connection: redis, prefix: config.queuePrefix }));
shutdown.register('queues', () => Promise.all(queues.map((queue) => queue.close())));

// The overview reads videos by status and the audit, and writes the audit of the admin's queue actions.
const db = openDatabase(config, 2, metrics);
shutdown.register('database', () => db.destroy());
const audit = new QueueActionsRepository(db);
const overview = { videos: new VideosRepository(db), audit, operations: new QueueOperations(queues, audit, () => redis.status === 'ready') };

// One connection serves the queues, the breaker board and the sign-in throttle alike.
const server = http.createServer(
  createDashboardApp({ config, metrics, queues, redis, breakers: new BreakerBoard(redis, config.queuePrefix), overview, logger }),
);
server.on('error', (error) => {
  logger.fatal({ err: error }, `dashboard could not listen on ${config.host}:${config.dashboardPort}`);
  process.exit(1);
});
server.listen(config.dashboardPort, config.host, () => {
  logger.info(
    { port: config.dashboardPort, viewerAccount: config.dashboardViewer !== null, authFailuresPerMinute: config.authFailuresPerMinute },
    `dashboard listening on http://${config.host}:${config.dashboardPort}`,
  );
});
shutdown.register('http server', () => closeServer(server));
