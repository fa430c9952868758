import { STATUS_CODES } from 'node:http';
import express, { type Express } from 'express';
import {
  AuthFailureThrottle,
  type BreakerBoard,
  isRedisOrDatabaseOutage,
  type Logger,
  queueCounts,
  type BreakerReport,
  type Config,
  type Registry,
} from '@clipline/shared';
import type { Queue } from 'bullmq';
import type { RedisClient } from '@clipline/shared';
import { accountVerifier } from './accounts.js';
import { registerClusterMetrics } from './cluster-metrics.js';
import { refuseViewerWrites, requireDashboardAccount } from './authentication.js';
import { auditBoardWrites } from './board-audit.js';
import { boardForRole } from './boards.js';
import { sendProblem } from './problem.js';
import { refuseCrossOriginWrites } from './same-origin.js';
import { overviewRoutes, type OverviewDependencies } from './overview/overview-routes.js';
import { sharedRead } from './shared-read.js';

/** How long the dashboard waits for a Redis command: a page answers 503 after it, never hangs. */
export const DASHBOARD_REDIS_COMMAND_TIMEOUT_MS = 5000;

export interface DashboardDependencies {
  config: Config;
  metrics: Registry;
  queues: readonly Queue[];
  breakers: BreakerBoard;
  /** Holds the failed sign-in counts, so every replica of the dashboard shares one budget. */
  redis: RedisClient;
  /** The overview page at `/` (videos, audit, queue actions); without it `/` is Bull Board's home. */
  overview?: Pick<OverviewDependencies, 'videos' | 'audit' | 'operations'>;
  /** Where a request that failed unexpectedly is logged. */
  logger?: Logger;
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A plain page for the things Bull Board does not show: circuit breakers and queue totals. */
function statusPage(breakers: BreakerReport[], counts: [string, Record<string, number>][]): string {
  const tint: Record<string, string> = { closed: '#1a7f37', halfOpen: '#9a6700', 'half-open': '#9a6700', open: '#cf222e' };
  const breakerRows = breakers.length
    ? breakers
        .map(
          (b) =>
            `<tr><td>${escapeHtml(b.provider)}</td><td style="color:${tint[b.state] ?? 'inherit'};font-weight:600">${escapeHtml(b.state)}</td><td>${escapeHtml(b.process)}</td><td>${escapeHtml(b.reportedAt)}</td></tr>`,
        )
        .join('')
    : '<tr><td colspan="4">no worker-io process has reported yet</td></tr>';
  const states = ['waiting', 'prioritized', 'delayed', 'active', 'waiting-children', 'completed', 'failed'];
  const queueRows = counts.map(([name, c]) => `<tr><td>${escapeHtml(name)}</td>${states.map((s) => `<td>${c[s] ?? 0}</td>`).join('')}</tr>`).join('');
  return `<!doctype html><html><head><meta charset="utf-8"><title>clipline status</title><meta http-equiv="refresh" content="5">
<style>body{font:14px system-ui,sans-serif;margin:2rem;color:#1f2328}table{border-collapse:collapse;margin-bottom:2rem}td,th{border:1px solid #d0d7de;padding:.3rem .7rem;text-align:left}th{background:#f6f8fa}</style></head>
<body><h1>clipline</h1><p><a href="/">Overview</a> · <a href="/queue/pipeline">Queues and flows (Bull Board)</a> · <a href="/metrics">metrics</a></p>
<h2>Circuit breakers</h2><table><tr><th>provider</th><th>state</th><th>process</th><th>reported</th></tr>${breakerRows}</table>
<h2>Queues</h2><table><tr><th>queue</th>${states.map((s) => `<th>${s}</th>`).join('')}</tr>${queueRows}</table></body></html>`;
}

/**
 * Bull Board and /status behind two Basic accounts (admin: everything; viewer: read-only), plus
 * cluster-wide queue metrics read from Redis at scrape time.
 *
 * Order matters: /healthz and /metrics first, open (see below); then cross-origin writes are
 * refused before anyone signs in; then sign-in with its per-address failure budget; then the
 * viewer's writes are refused; only then do /status and Bull Board see a request.
 */
export function createDashboardApp({ config, metrics, queues, breakers, redis, overview, logger }: DashboardDependencies): Express {
  const app = express();
  app.disable('x-powered-by');
  // The client is the TCP peer, or what a proxy of TRUST_PROXY says it forwarded for (sign-in throttle).
  app.set('trust proxy', config.trustProxy === false ? false : [...config.trustProxy]);

  registerClusterMetrics(metrics, queues, breakers, redis);

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  // /metrics stays open, as it always was: Prometheus scrapes it without credentials, and it
  // tells only job counts and breaker states, never job data. Bind HOST to a private interface
  // (the loopback default) or firewall the port when the network is not trusted.
  // Shared for a second: any number of scrapes at once cost Redis one scan of the queues.
  const scrape = sharedRead(1000, () => metrics.metrics());
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.contentType).send(await scrape.read());
  });

  // No page of the dashboard may be framed by another site, where a click could steer a queue.
  // The overview's own policy, set on its responses, says the same among its other rules.
  app.use((req, res, next) => {
    // Every answer is read as the type it says (job data shown by Bull Board included).
    res.setHeader('x-content-type-options', 'nosniff');
    res.setHeader('x-frame-options', 'DENY');
    res.setHeader('content-security-policy', "frame-ancestors 'none'");
    // Job data and accounts are kept by no cache, the browser's included; Bull Board's scripts
    // and styles (its /static files, the same for everyone) keep their own caching.
    if (!req.path.startsWith('/static/')) res.setHeader('cache-control', 'no-store');
    next();
  });
  app.use(refuseCrossOriginWrites);
  app.use(
    requireDashboardAccount({
      verify: accountVerifier(config),
      throttle: new AuthFailureThrottle(redis, `${config.queuePrefix}:auth-fail:dashboard`, config.authFailuresPerMinute),
    }),
  );
  app.use(refuseViewerWrites);
  if (overview) app.use(overviewRoutes({ ...overview, queues, breakers, config, redis }));
  // Redis away: the pages below answer 503 at once. BullMQ would hold their commands until the
  // connection is first made, and run a Bull Board action nobody waits for any more.
  const redisAway = (res: express.Response) => sendProblem(res, 503, 'Service Unavailable', 'Redis is unreachable; retry shortly', { 'retry-after': '5' });
  app.use((_req, res, next) => (redis.status === 'ready' ? next() : redisAway(res)));
  app.get('/breakers', async (_req, res) => {
    const read = await breakers.read().then(
      (list) => ({ list }),
      () => undefined,
    );
    if (!read) return redisAway(res);
    return res.json({ breakers: read.list });
  });
  app.get('/status', async (_req, res) => {
    const counts = await Promise.all(queues.map(async (queue) => [queue.name, await queueCounts(queue).catch(() => ({}))] as [string, Record<string, number>]));
    res.type('html').send(statusPage(await breakers.read().catch(() => []), counts));
  });
  if (overview) app.use(auditBoardWrites(overview.audit, config.dashboardUser));
  app.use('/', boardForRole(queues, `prefix ${config.queuePrefix}`, config.dashboardViewer !== null));
  app.use(problemForError(logger));
  return app;
}

/** What a request that failed on its way in gets told: body-parser's and express's refusals named, never a stack. */
function describeRefusal(error: { type?: unknown; limit?: unknown; message?: unknown }): string {
  if (error.type === 'entity.parse.failed') return 'the body is not valid JSON';
  if (error.type === 'entity.too.large') return `the body is larger than the ${String(error.limit)} bytes accepted`;
  if (error.type === 'encoding.unsupported' || error.type === 'charset.unsupported') return 'the body is in an encoding this server does not read';
  return typeof error.message === 'string' ? error.message : 'the request could not be read';
}

/**
 * The last handler: a request refused on its way in (a body that is not JSON or too large, a
 * path that does not decode) answers its 4xx as a problem document, Redis or the database away
 * 503, anything else 500, logged here; express's own page would show a stack trace.
 */
function problemForError(logger: Logger | undefined): express.ErrorRequestHandler {
  return (error: { status?: unknown; statusCode?: unknown; type?: unknown; limit?: unknown; message?: unknown }, req, res, next) => {
    if (res.headersSent) return next(error);
    const status = Number(error?.status ?? error?.statusCode);
    if (status >= 400 && status < 500) return sendProblem(res, status, STATUS_CODES[status] ?? 'Bad Request', describeRefusal(error));
    if (isRedisOrDatabaseOutage(error))
      return sendProblem(res, 503, 'Service Unavailable', 'Redis or the database is unreachable; retry shortly', { 'retry-after': '5' });
    logger?.error({ err: error, method: req.method, path: req.path }, 'dashboard request failed');
    return sendProblem(res, 500, 'Internal Server Error', 'the dashboard could not answer; its log says why');
  };
}
