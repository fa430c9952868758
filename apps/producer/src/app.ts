import express, { type Express, type Request } from 'express';
import {
  InvalidSubmissionError,
  type Config,
  type Logger,
  type Registry,
  type VideoPipelineProducer,
  type VideosRepository,
} from '@clipline/shared';
import { describeIssues, videoIdParam, videoSubmission } from './api-schemas.js';
import { requireApiKey } from './http/auth.js';
import { badRequest, HttpProblem, notFound, problemHandler, serviceUnavailable } from './http/problem.js';

export interface ProducerDependencies {
  config: Config;
  logger: Logger;
  metrics: Registry;
  videos: VideosRepository;
  pipeline: VideoPipelineProducer;
  /** Whether Redis answers; the API refuses to enqueue (503) when it does not. */
  queueReady(): boolean;
  /** Round trip to Redis and the database, for /readyz. */
  checkDependencies(): Promise<{ redis: boolean; database: boolean }>;
}

function jsonBody(req: Request): unknown {
  if (!req.is('application/json')) {
    throw new HttpProblem(415, 'Unsupported Media Type', 'send the body as JSON with "Content-Type: application/json"');
  }
  return req.body;
}

/** Errors from a lost Redis or database connection: the request may be retried later. */
function isUnavailable(error: unknown): boolean {
  const text = `${(error as Error)?.name} ${(error as Error)?.message} ${(error as { code?: string })?.code}`;
  return /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|Connection is closed|Stream isn't writeable|enableOfflineQueue|ENOTFOUND|Connection terminated|timeout exceeded when trying to connect/i.test(text);
}

export function createProducerApp(deps: ProducerDependencies): Express {
  const { videos, pipeline, logger } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  app.use(express.json({ limit: '256kb', strict: true, type: ['application/json', 'application/*+json'] }));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const checks = await deps.checkDependencies();
    const ready = checks.redis && checks.database;
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'unavailable', checks });
  });
  app.get('/metrics', async (_req, res) => {
    res.type(deps.metrics.contentType).send(await deps.metrics.metrics());
  });

  const v1 = express.Router();
  v1.use(requireApiKey(deps.config.apiKeys));

  v1.post('/videos', async (req, res) => {
    const parsed = videoSubmission.safeParse(jsonBody(req) ?? undefined);
    if (!parsed.success) {
      const { detail, errors } = describeIssues(parsed.error);
      throw badRequest(detail, errors);
    }
    if (!deps.queueReady()) throw serviceUnavailable('the job queue (Redis) is unreachable; retry shortly');
    try {
      const { id } = await pipeline.submit({ source: parsed.data.source, title: parsed.data.title ?? null });
      res
        .status(202)
        .location(`/v1/videos/${id}`)
        .json({ id, status: 'queued', links: { self: `/v1/videos/${id}` } });
    } catch (error) {
      if (error instanceof InvalidSubmissionError) throw badRequest(error.message, [{ path: 'source', message: error.message }]);
      if (isUnavailable(error)) throw serviceUnavailable('the job queue or database is unreachable; retry shortly');
      throw error;
    }
  });

  v1.get('/videos/:id', async (req, res) => {
    const id = String(req.params.id);
    if (!videoIdParam.safeParse(id).success) throw notFound(`no video with id "${id.slice(0, 100)}" (ids are UUIDs)`);
    let video;
    try {
      video = await videos.find(id);
    } catch (error) {
      if (isUnavailable(error)) throw serviceUnavailable('the database is unreachable; retry shortly');
      throw error;
    }
    if (!video) throw notFound(`no video with id ${id}`);
    res.json({ ...video, links: { self: `/v1/videos/${id}` } });
  });

  app.use('/v1', v1);
  app.use((req, _res, next) => next(notFound(`no route for ${req.method} ${req.path}`)));
  app.use(problemHandler((error) => logger.error({ err: error }, 'unhandled request error')));
  return app;
}
