import { randomUUID } from 'node:crypto';
import express, { type Response, type Router } from 'express';
import { z } from 'zod';
import {
  allQueues,
  isPublicJob,
  PermanentJobError,
  relativeToStorage,
  validatePayload,
  type IdempotencyRepository,
  type JobQueues,
  type PublicJobsRepository,
  type QueueDeclaration,
  type TenantScope,
  type VideosRepository,
} from '@clipline/shared';
import { callerOf, scopeOf } from '../http/auth.js';
import { idempotent } from '../http/idempotency.js';
import { badRequest, HttpProblem, notFound, serviceUnavailable } from '../http/problem.js';
import type { PublicJobRecords, PublicJobRow } from './public-job-records.js';
import { isUnavailable } from './route-helpers.js';

export interface JobRoutesDependencies {
  queues: JobQueues;
  idempotency: IdempotencyRepository;
  videos: VideosRepository;
  publicJobs: PublicJobsRepository;
  /** Request fingerprints' keys, the current one first (see `fingerprintKeys`). */
  fingerprintKey: readonly string[];
  queueReady(): boolean;
  declarations?: readonly QueueDeclaration[];
  /** Checks a job's video and records the job in one statement; without it, two queries. */
  records?: PublicJobRecords;
  /** `STORAGE_DIR`: a failed job's reason names stored files relative to it. */
  storageDir?: string;
}

/** One entry of the public job catalogue: what `GET /v1/jobs` lists. */
export interface PublicJobEntry {
  queue: string;
  name: string;
  declaration: QueueDeclaration;
  schema: z.ZodType;
}

/** The jobs declared public, in queue order: the only ones `POST /v1/jobs` accepts. */
export function publicJobCatalogue(declarations: readonly QueueDeclaration[] = allQueues): PublicJobEntry[] {
  return declarations.flatMap((declaration) =>
    Object.entries(declaration.jobs)
      .filter(([name]) => isPublicJob(declaration, name))
      .map(([name, schema]) => ({ queue: declaration.name, name, declaration, schema })),
  );
}

const unavailable = () => serviceUnavailable('the job queue (Redis) is unreachable; retry shortly');

/** The payload as the job's schema makes it, or 400 naming what it refused. */
function payloadOf(entry: PublicJobEntry, body: unknown): Record<string, unknown> {
  try {
    return validatePayload(entry.declaration, entry.name as never, body) as Record<string, unknown>;
  } catch (error) {
    if (error instanceof PermanentJobError) throw badRequest(error.message);
    throw error;
  }
}

/** Records a job about a video when the video is in scope: in one statement where the app wired one in. */
async function recordForVideo(deps: JobRoutesDependencies, job: PublicJobRow, videoId: string, scope: TenantScope): Promise<boolean> {
  if (deps.records) return deps.records.recordForVideo(job, videoId, scope);
  if (!(await deps.videos.status(videoId, scope))) return false;
  await deps.publicJobs.record(job);
  return true;
}

/**
 * Records the job for the caller's tenant, then enqueues it; a job about a video acts on it, so
 * only its owner (or an operator) may ask for one. Returns the job id.
 */
async function submitPublicJob(deps: JobRoutesDependencies, entry: PublicJobEntry, payload: Record<string, unknown>, res: Response): Promise<string> {
  const id = randomUUID();
  const job = { id, tenant: callerOf(res).tenant, queue: entry.queue, name: entry.name };
  // Video ids are stored in lower case; every engine then finds one written in upper case alike.
  const data = typeof payload.videoId === 'string' ? { ...payload, videoId: payload.videoId.toLowerCase() } : payload;
  if (typeof data.videoId === 'string') {
    if (!(await recordForVideo(deps, job, data.videoId, scopeOf(res)))) throw notFound(`no video with id ${data.videoId}`);
  } else {
    await deps.publicJobs.record(job);
  }
  await deps.queues.add(entry.declaration, entry.name, data, { jobId: id }).catch(async (error: unknown) => {
    await deps.publicJobs.remove(id).catch(() => {});
    throw error;
  });
  return id;
}

/**
 * Generic jobs: the public catalogue only. Internal pipeline steps (ingest, analyze, render, AI
 * steps, webhooks, accounts) are never reachable from outside and answer 404 like a job that
 * does not exist. A job that names a video runs only for the video's owner.
 */
export function jobRoutes(deps: JobRoutesDependencies): Router {
  const router = express.Router();
  const catalogue = publicJobCatalogue(deps.declarations);
  const entryOf = (queue: string, name: string) => {
    const entry = catalogue.find((item) => item.queue === queue && item.name === name);
    if (!entry) {
      const names = catalogue.map((item) => `${item.queue}/${item.name}`).join(', ') || 'none';
      throw notFound(`no public job "${queue.slice(0, 100)}/${name.slice(0, 100)}" (public jobs: ${names}; see GET /v1/jobs)`);
    }
    return entry;
  };
  const listed = catalogue.map((entry) => ({
    queue: entry.queue,
    name: entry.name,
    path: `/v1/jobs/${entry.queue}/${entry.name}`,
    payloadSchema: z.toJSONSchema(entry.schema, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' }),
  }));

  router.get('/jobs', (_req, res) => {
    res.json({ items: listed });
  });

  router.post(
    '/jobs/:queue/:name',
    idempotent(
      deps.idempotency,
      async (req, res) => {
        const entry = entryOf(String(req.params.queue), String(req.params.name));
        if (!req.is('application/json')) throw new HttpProblem(415, 'Unsupported Media Type', 'send the payload as JSON with "Content-Type: application/json"');
        const data = payloadOf(entry, req.body);
        if (!deps.queueReady()) throw unavailable();
        try {
          const id = await submitPublicJob(deps, entry, data, res);
          res.status(202).json({ id, queue: entry.queue, name: entry.name, status: 'queued', links: { self: `/v1/jobs/${entry.queue}/${id}` } });
        } catch (error) {
          if (isUnavailable(error)) throw unavailable();
          throw error;
        }
      },
      deps.fingerprintKey,
    ),
  );

  router.get('/jobs/:queue/:id', async (req, res) => {
    const queue = String(req.params.queue);
    const asked = String(req.params.id);
    // Job ids are made in lower case; one asked for in upper case is the same job.
    const id = asked.toLowerCase();
    const declaration = catalogue.find((entry) => entry.queue === queue)?.declaration;
    const missing = () => notFound(`no job "${asked.slice(0, 100)}" in queue "${queue.slice(0, 100)}"`);
    if (!declaration || !/^[0-9a-f-]{36}$/.test(id)) throw missing();
    let job: Awaited<ReturnType<JobQueues['get']>>;
    try {
      if (!(await deps.publicJobs.visible(id, queue, scopeOf(res)))) throw missing();
      job = await deps.queues.get(declaration, id);
    } catch (error) {
      if (isUnavailable(error)) throw unavailable();
      throw error;
    }
    if (!job) throw notFound(`no job "${id}" in queue "${queue}" (finished jobs are kept for a day)`);
    const { storageDir } = deps;
    res.json(storageDir && job.failedReason ? { ...job, failedReason: relativeToStorage(job.failedReason, storageDir) } : job);
  });

  return router;
}
