import { createRequire } from 'node:module';
import path from 'node:path';
import express, { type Router } from 'express';
import { type Config, isRedisOrDatabaseOutage, type QueueOperationKind, type QueueOperations, type RedisClient } from '@clipline/shared';
import { roleOf } from '../authentication.js';
import { sendProblem } from '../problem.js';
import { overviewClientScript } from './overview-client.js';
import { type OverviewSources, readOverview } from './overview-data.js';
import { overviewPage } from './overview-page.js';
import { sharedRead } from '../shared-read.js';

/** uPlot's built files, served from the installed package, never a CDN. */
const uplotFolder = path.join(path.dirname(createRequire(import.meta.url).resolve('uplot/package.json')), 'dist');

const clientScript = overviewClientScript();

/** Several open overviews poll every 2 s: one reading of Redis and the database serves them all for a second. */
const SNAPSHOT_TTL_MS = 1000;

const ACTIONS = new Set<QueueOperationKind>(['retry-failed', 'discard-failed', 'pause', 'resume']);

export interface OverviewDependencies extends OverviewSources {
  operations: QueueOperations;
  config: Pick<Config, 'dashboardUser'>;
  /**
   * The dashboard's Redis connection: while it is not ready (Redis away, or not reached since
   * the start), the overview and the actions answer 503 at once. BullMQ would otherwise hold a
   * command until the connection is first made, and run an action nobody waits for any more.
   */
  redis?: Pick<RedisClient, 'status'>;
}

function redisAway(res: express.Response): void {
  sendProblem(res, 503, 'Service Unavailable', 'Redis is unreachable; the overview and queue actions come back with it', { 'retry-after': '5' });
}

/** The admin's queue action: checked, run through the audited operations, and answered. */
function queueAction(deps: OverviewDependencies, acted: () => void): express.RequestHandler {
  return async (req, res) => {
    if (roleOf(res) !== 'admin') return sendProblem(res, 403, 'Forbidden', 'queue actions need the admin account');
    const queue = String(req.params.queue);
    const { action, reason, match } = (req.body ?? {}) as { action?: unknown; reason?: unknown; match?: unknown };
    if (typeof action !== 'string' || !ACTIONS.has(action as QueueOperationKind))
      return sendProblem(res, 400, 'Bad Request', 'action must be one of retry-failed, discard-failed, pause, resume');
    if (reason !== undefined && reason !== null && (typeof reason !== 'string' || reason.length > 500))
      return sendProblem(res, 400, 'Bad Request', 'reason must be a string of at most 500 characters');
    if (match !== undefined && match !== 'contains' && match !== 'group')
      return sendProblem(res, 400, 'Bad Request', 'match must be "contains" (a substring of the reason) or "group" (its first line, exactly)');
    if (match === 'group' && (typeof reason !== 'string' || reason.trim() === ''))
      return sendProblem(res, 400, 'Bad Request', 'match "group" needs the group as reason: a group is never empty, and no reason would mean every failed job');
    if (!deps.operations.has(queue)) return sendProblem(res, 404, 'Not Found', `no queue "${queue.slice(0, 60)}"`);
    if (deps.redis && deps.redis.status !== 'ready') return redisAway(res);
    const ran = await deps.operations
      .run(queue, action as QueueOperationKind, {
        actor: { name: deps.config.dashboardUser, kind: 'dashboard' },
        reason: (reason as string | null | undefined) ?? null,
        match: match === 'group' ? 'group' : 'contains',
      })
      .then(
        (outcome) => ({ outcome }),
        (error: unknown) => ({ error: error as { message?: unknown } }),
      );
    acted();
    if ('error' in ran) {
      // The database or Redis away: the action did not run (no audit, no action), or failed and says so in the audit.
      if (!isRedisOrDatabaseOutage(ran.error)) throw ran.error;
      return sendProblem(res, 503, 'Service Unavailable', `the queue action could not run: ${String(ran.error?.message ?? ran.error)}; retry shortly`);
    }
    return res.json(ran.outcome);
  };
}

/**
 * The overview (the dashboard's landing page): `/` is the page, `/overview.json` what it polls,
 * `/overview/assets/…` its script and uPlot, and `POST /overview/queues/:queue/actions` the admin's
 * queue actions (the viewer's POST never gets here: `refuseViewerWrites` answers 403 first, and
 * the route checks the role again).
 */
export function overviewRoutes(deps: OverviewDependencies): Router {
  const router = express.Router();
  const snapshot = sharedRead(SNAPSHOT_TTL_MS, (now) => readOverview(deps, now));

  // Bull Board opens on the queue of the flows' parents, where a video's whole tree shows.
  const boardQueue = deps.queues.find((queue) => queue.name === 'pipeline') ?? deps.queues[0];
  const boardPath = boardQueue ? `/queue/${encodeURIComponent(boardQueue.name)}` : '/status';
  router.get('/', (_req, res) => {
    res.setHeader(
      'content-security-policy',
      "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
    );
    res.setHeader('cache-control', 'no-store');
    res.type('html').send(overviewPage(roleOf(res), boardPath));
  });
  router.get('/overview.json', async (_req, res) => {
    res.setHeader('cache-control', 'no-store');
    if (deps.redis && deps.redis.status !== 'ready') return redisAway(res);
    const read = await snapshot.read().then(
      (overview) => ({ overview }),
      (error: unknown) => ({ error }),
    );
    if ('overview' in read) return res.json({ ...read.overview, role: roleOf(res) });
    // The queues live in Redis: without it there is no overview to show, only when to ask again.
    if (!isRedisOrDatabaseOutage(read.error)) throw read.error;
    return redisAway(res);
  });
  router.get('/overview/assets/overview.js', (_req, res) => {
    res.type('text/javascript').send(clientScript);
  });
  router.use('/overview/assets/uplot', express.static(uplotFolder, { index: false, maxAge: '1h' }));

  router.post(
    '/overview/queues/:queue/actions',
    express.json({ limit: '8kb' }),
    queueAction(deps, () => snapshot.forget()),
  );
  return router;
}
