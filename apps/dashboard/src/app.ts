import { createHash, timingSafeEqual } from 'node:crypto';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import express, { type Express, type RequestHandler } from 'express';
import { Gauge, queueCounts, type Config, type Registry } from '@clipline/shared';
import type { Queue } from 'bullmq';

const digest = (value: string) => createHash('sha256').update(value).digest();

/** HTTP Basic auth against one user, compared in constant time. */
export function basicAuth(user: string, password: string): RequestHandler {
  const expected = digest(`${user}:${password}`);
  return (req, res, next) => {
    const header = req.get('authorization') ?? '';
    const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
    const presented = match?.[1] ? Buffer.from(match[1], 'base64').toString('utf8') : '';
    if (match && timingSafeEqual(digest(presented), expected)) return next();
    res
      .status(401)
      .set('www-authenticate', 'Basic realm="clipline dashboard", charset="UTF-8"')
      .type('application/problem+json')
      .send(JSON.stringify({ title: 'Unauthorized', status: 401, detail: 'dashboard credentials required (DASHBOARD_USER / DASHBOARD_PASSWORD)' }));
  };
}

export interface DashboardDependencies {
  config: Config;
  metrics: Registry;
  queues: readonly Queue[];
}

/** Bull Board behind Basic auth, plus cluster-wide queue metrics read from Redis at scrape time. */
export function createDashboardApp({ config, metrics, queues }: DashboardDependencies): Express {
  const app = express();
  app.disable('x-powered-by');

  new Gauge({
    name: 'clipline_queue_jobs',
    help: 'Jobs per queue and state, across every worker of the deployment',
    labelNames: ['queue', 'state'],
    registers: [metrics],
    async collect() {
      const all = await Promise.all(queues.map(async (queue) => [queue.name, await queueCounts(queue).catch(() => ({}))] as const));
      this.reset();
      for (const [queue, counts] of all) for (const [state, count] of Object.entries(counts)) this.set({ queue, state }, count);
    },
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.contentType).send(await metrics.metrics());
  });

  const board = new ExpressAdapter();
  board.setBasePath('/');
  createBullBoard({
    queues: queues.map((queue) => new BullMQAdapter(queue, { description: `prefix ${config.queuePrefix}` })),
    serverAdapter: board,
    options: { uiConfig: { boardTitle: 'clipline' } },
  });
  app.use(basicAuth(config.dashboardUser, config.dashboardPassword));
  app.use('/', board.getRouter());
  return app;
}
