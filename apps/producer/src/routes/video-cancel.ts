import express, { type Response, type Router } from 'express';
import { VideoNotFinishedError, type PurgeOutcome, type TenantScope, type VideoPipelineProducer, type VideosRepository } from '@clipline/shared';
import { scopeOf } from '../http/auth.js';
import { badRequest, HttpProblem, notFound } from '../http/problem.js';
import { fromDatabase, unavailableOr, videoIdOf } from './route-helpers.js';

export interface CancelDependencies {
  videos: VideosRepository;
  pipeline: VideoPipelineProducer;
  /** Removes a finished video's files and rows (`DELETE …?purge=true`). */
  purge: (videoId: string, scope: TenantScope) => Promise<PurgeOutcome>;
}

async function purge(deps: CancelDependencies, id: string, res: Response): Promise<void> {
  let purged: PurgeOutcome;
  try {
    purged = await deps.purge(id, scopeOf(res));
  } catch (error) {
    if (error instanceof VideoNotFinishedError) throw new HttpProblem(409, 'Conflict', error.message);
    throw unavailableOr(error);
  }
  if (purged.outcome === 'not-found') throw notFound(`no video with id ${id}`);
  res.status(200).json({ id, status: 'purged', bytesRemoved: purged.bytesRemoved });
}

async function cancel(deps: CancelDependencies, id: string, res: Response): Promise<void> {
  let outcome: Awaited<ReturnType<VideoPipelineProducer['cancel']>>;
  try {
    outcome = await deps.pipeline.cancel(id, scopeOf(res));
  } catch (error) {
    throw unavailableOr(error);
  }
  if (outcome === 'not-found') throw notFound(`no video with id ${id}`);
  if (outcome === 'already-finished') {
    const status = await fromDatabase(deps.videos.status(id, scopeOf(res)));
    // Purged meanwhile (a purge request, the retention job): gone, as if it had never been.
    if (!status) throw notFound(`no video with id ${id}`);
    // The video's state, to read without parsing the text: a client whose first DELETE was answered
    // but lost, asking again, tells its own cancel (`cancelled`) from a video that finished.
    throw new HttpProblem(409, 'Conflict', `video ${id} already finished (${status}); there is nothing to cancel`, { videoStatus: status });
  }
  res.status(202).json({ id, status: 'cancelled' });
}

/** `DELETE /videos/:id` cancels an unfinished video; with `?purge=true` it removes a finished one. */
export function cancelRoutes(deps: CancelDependencies): Router {
  const router = express.Router();
  router.delete('/videos/:id', async (req, res) => {
    const id = videoIdOf(req);
    const { purge: purgeFlag } = req.query;
    if (purgeFlag !== undefined && purgeFlag !== 'true' && purgeFlag !== 'false') {
      throw badRequest('purge must be true or false', [{ path: 'purge', message: 'expected true or false' }]);
    }
    await (purgeFlag === 'true' ? purge(deps, id, res) : cancel(deps, id, res));
  });
  return router;
}
