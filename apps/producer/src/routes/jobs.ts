import express, { type Router } from 'express';
import { allQueues, PermanentJobError, validatePayload, type JobQueues, type QueueDeclaration } from '@clipline/shared';
import { idempotent } from '../http/idempotency.js';
import type { IdempotencyRepository } from '@clipline/shared';
import { badRequest, HttpProblem, notFound, serviceUnavailable } from '../http/problem.js';
import { isUnavailable } from './videos.js';

/** Jobs that only make sense inside a flow (a parent waits for children it does not have here). */
const FLOW_ONLY_JOBS = new Set(['video-pipeline']);

export interface JobRoutesDependencies {
  queues: JobQueues;
  idempotency: IdempotencyRepository;
  fingerprintKey: string;
  queueReady(): boolean;
  declarations?: readonly QueueDeclaration[];
}

/**
 * Generic jobs: any declared queue and job, validated by that job's own payload schema. Lets a
 * service run one step (say, a metadata refresh) without a whole video flow.
 */
export function jobRoutes(deps: JobRoutesDependencies): Router {
  const router = express.Router();
  const declarations = new Map((deps.declarations ?? allQueues).map((declaration) => [declaration.name, declaration]));

  const declarationOf = (name: string) => {
    const declaration = declarations.get(name);
    if (!declaration) throw notFound(`no queue "${name.slice(0, 100)}" (queues: ${[...declarations.keys()].join(', ')})`);
    return declaration;
  };

  router.post(
    '/jobs/:queue/:name',
    idempotent(deps.idempotency, async (req, res) => {
      const declaration = declarationOf(String(req.params.queue));
      const name = String(req.params.name);
      if (!(name in declaration.jobs) || FLOW_ONLY_JOBS.has(name)) {
        const available = Object.keys(declaration.jobs).filter((job) => !FLOW_ONLY_JOBS.has(job));
        throw notFound(`queue "${declaration.name}" has no job "${name.slice(0, 100)}" to submit (jobs: ${available.join(', ') || 'none'})`);
      }
      if (!req.is('application/json')) throw new HttpProblem(415, 'Unsupported Media Type', 'send the payload as JSON with "Content-Type: application/json"');
      let data;
      try {
        data = validatePayload(declaration as QueueDeclaration, name as never, req.body);
      } catch (error) {
        if (error instanceof PermanentJobError) throw badRequest(error.message);
        throw error;
      }
      if (!deps.queueReady()) throw serviceUnavailable('the job queue (Redis) is unreachable; retry shortly');
      try {
        const job = await deps.queues.add(declaration, name, data);
        res.status(202).json({ id: job.id, queue: declaration.name, name, status: 'queued', links: { self: `/v1/jobs/${declaration.name}/${job.id}` } });
      } catch (error) {
        if (isUnavailable(error)) throw serviceUnavailable('the job queue (Redis) is unreachable; retry shortly');
        throw error;
      }
    }, deps.fingerprintKey),
  );

  router.get('/jobs/:queue/:id', async (req, res) => {
    const declaration = declarationOf(String(req.params.queue));
    const id = String(req.params.id);
    if (!/^[\w:.-]{1,200}$/.test(id)) throw notFound(`no job "${id.slice(0, 100)}" in queue "${declaration.name}"`);
    let job;
    try {
      job = await deps.queues.get(declaration, id);
    } catch (error) {
      if (isUnavailable(error)) throw serviceUnavailable('the job queue (Redis) is unreachable; retry shortly');
      throw error;
    }
    if (!job) throw notFound(`no job "${id}" in queue "${declaration.name}" (finished jobs are kept for a day)`);
    res.json(job);
  });

  return router;
}
