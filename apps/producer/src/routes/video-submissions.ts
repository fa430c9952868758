import express, { type Router } from 'express';
import {
  ActiveVideoLimitError,
  checkSubmission,
  checkUrl,
  EgressRefusedError,
  type EgressPolicy,
  type IdempotencyRepository,
  localSourceRefusal,
  type LocalStorage,
  parseSource,
  type VideoPipelineProducer,
  type VideosRepository,
} from '@clipline/shared';
import { videoBatch, videoSubmission, type VideoSubmissionBody } from '../api-schemas.js';
import { callerOf, principalOf } from '../http/auth.js';
import { idempotent } from '../http/idempotency.js';
import { badRequest, HttpProblem } from '../http/problem.js';
import type { RequestBudget } from '../http/rate-limit.js';
import { fromDatabase, guardQueue, links, parse, requireJson, unavailableOr } from './route-helpers.js';

export interface SubmissionDependencies {
  videos: VideosRepository;
  pipeline: VideoPipelineProducer;
  idempotency: IdempotencyRepository;
  /** Server secret keying the stored fingerprints of idempotent requests. */
  /** Request fingerprints' keys, the current one first (see `fingerprintKeys`). */
  fingerprintKey: readonly string[];
  queueReady(): boolean;
  /** The per-key request budget: a batch is charged one unit per video. */
  budget: RequestBudget;
  /** Whether sources and callbacks may name loopback/private hosts (ALLOW_PRIVATE_SOURCES). */
  egress: EgressPolicy;
  /** Unfinished videos one tenant may have. */
  maxActiveVideosPerTenant: number;
  /** Directories local-file sources may come from (FILE_SOURCE_ROOTS). */
  fileRoots: readonly string[] | 'any';
  /** The videos' storage: its `videos/` is never a source. */
  storage: LocalStorage;
}

/**
 * Refuses at submission what the workers would refuse later: a source or callback URL whose host
 * is written as a non-public address (`http://127.1/`, `http://[::ffff:7f00:1]/`, `localhost`),
 * and a local file they may not read. Host names are judged again by the workers at connect
 * time, and files where they really are; this saves a doomed video.
 */
function checkSources(body: VideoSubmissionBody, deps: Pick<SubmissionDependencies, 'egress' | 'fileRoots' | 'storage'>, where = ''): void {
  const policy = deps.egress;
  // Refused here, before the request is charged for its videos or counted against the cap.
  try {
    checkSubmission(body, where);
  } catch (error) {
    throw unavailableOr(error);
  }
  const urls: [string, URL | string][] = [];
  // Read as the workers read it: `http:/127.0.0.1/a.mp4` is an http URL to that host too.
  const source = parseSource(body.source);
  if (source.ok && source.source.kind === 'http') urls.push(['source', source.source.url]);
  if (source.ok && source.source.kind === 'file') checkLocalFile(source.source.path, deps, where);
  if (body.callbackUrl) urls.push(['callbackUrl', body.callbackUrl]);
  for (const [field, url] of urls) {
    try {
      checkUrl(url, policy);
    } catch (error) {
      if (!(error instanceof EgressRefusedError)) throw error;
      throw badRequest(`${where}${field}: ${error.message}`, [{ path: `${where}${field}`, message: error.message }]);
    }
  }
}

/** A local file the workers may not read, refused by its path as written (they judge it again where it really is). */
function checkLocalFile(file: string, deps: Pick<SubmissionDependencies, 'fileRoots' | 'storage'>, where: string): void {
  const refusal = localSourceRefusal(file, { roots: deps.fileRoots, storageRoot: deps.storage.root });
  if (refusal) throw badRequest(`${where}source: ${refusal}`, [{ path: `${where}source`, message: refusal }]);
}

function toSubmission(body: VideoSubmissionBody) {
  return {
    source: body.source,
    title: body.title ?? null,
    ...(body.options ? { options: body.options } : {}),
    ...(body.callbackUrl ? { callbackUrl: body.callbackUrl } : {}),
    ...(body.priority ? { priority: body.priority } : {}),
    ...(body.delaySeconds ? { delaySeconds: body.delaySeconds } : {}),
    ...(body.youtubeId ? { youtubeId: body.youtubeId } : {}),
  };
}

/**
 * Fair use: a tenant's unfinished videos are capped, so one service cannot fill the queues. This
 * refuses early what is over already; the count that decides is taken again as the videos are
 * written, one submission of the tenant at a time ({@link ActiveVideoLimitError}).
 */
async function guardActiveVideos(deps: SubmissionDependencies, tenant: string, adding: number): Promise<void> {
  const active = await fromDatabase(deps.videos.countUnfinished(tenant));
  if (active + adding > deps.maxActiveVideosPerTenant) throw overActiveVideos(new ActiveVideoLimitError(active, deps.maxActiveVideosPerTenant, adding));
}

function overActiveVideos(error: ActiveVideoLimitError): HttpProblem {
  return new HttpProblem(429, 'Too Many Requests', error.message, { activeVideos: error.active, limit: error.limit }, { 'retry-after': '60' });
}

/** What a submission's failure answers: over the cap 429, an outage 503, a refused source 400. */
function submissionProblem(error: unknown): unknown {
  return error instanceof ActiveVideoLimitError ? overActiveVideos(error) : unavailableOr(error);
}

/** `POST /videos` and `POST /videos:batch`: validated, checked against fair use, then one flow each. */
export function submissionRoutes(deps: SubmissionDependencies): Router {
  const router = express.Router();

  router.post(
    '/videos',
    idempotent(
      deps.idempotency,
      async (req, res) => {
        const body = parse(videoSubmission, requireJson(req) ?? undefined);
        checkSources(body, deps);
        guardQueue(() => deps.queueReady());
        const { tenant } = callerOf(res);
        await guardActiveVideos(deps, tenant, 1);
        try {
          const context = { submittedBy: principalOf(res), tenant, maxActiveVideos: deps.maxActiveVideosPerTenant };
          const { id } = await deps.pipeline.submit(toSubmission(body), context);
          res
            .status(202)
            .location(`/v1/videos/${id}`)
            .json({ id, status: 'queued', links: links(id) });
        } catch (error) {
          throw submissionProblem(error);
        }
      },
      deps.fingerprintKey,
    ),
  );

  // "/videos:batch": the colon is literal here, not a route parameter.
  router.post(
    /^\/videos:batch$/,
    idempotent(
      deps.idempotency,
      async (req, res) => {
        const body = parse(videoBatch, requireJson(req) ?? undefined);
        for (const [index, video] of body.videos.entries()) checkSources(video, deps, `videos.${index}.`);
        guardQueue(() => deps.queueReady());
        const { tenant } = callerOf(res);
        await guardActiveVideos(deps, tenant, body.videos.length);
        // The request itself was charged one unit on the way in; each further video is one more,
        // once the batch is not refused anyway (a refused batch of 1,000 would spend the minute).
        await deps.budget.charge(principalOf(res), body.videos.length - 1, (name, value) => res.setHeader(name, value));
        try {
          const submissions = body.videos.map((video) => ({ submission: toSubmission(video) }));
          const context = { submittedBy: principalOf(res), tenant, maxActiveVideos: deps.maxActiveVideosPerTenant };
          const created = await deps.pipeline.submitMany(submissions, context);
          res.status(202).json({ videos: created.map(({ id }) => ({ id, status: 'queued', links: links(id) })) });
        } catch (error) {
          throw submissionProblem(error);
        }
      },
      deps.fingerprintKey,
    ),
  );

  return router;
}
