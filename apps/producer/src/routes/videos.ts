import express, { type Router } from 'express';
import type { StreamSlots } from '../http/stream-slots.js';
import { cancelRoutes, type CancelDependencies } from './video-cancel.js';
import { eventRoutes, type EventDependencies } from './video-events.js';
import { readRoutes, type ReadDependencies } from './video-reads.js';
import { submissionRoutes, type SubmissionDependencies } from './video-submissions.js';

export type VideoRoutesDependencies = Omit<SubmissionDependencies, 'maxActiveVideosPerTenant'> &
  ReadDependencies &
  CancelDependencies &
  Omit<EventDependencies, 'sseMaxSeconds'> & {
    streamSlots: StreamSlots;
    limits: {
      /** Unfinished videos one tenant may have. */
      maxActiveVideosPerTenant: number;
      /** Seconds one live event stream stays open. */
      sseMaxSeconds: number;
    };
  };

/** Every `/videos` route: submissions, reads and downloads, cancel and purge, live events. */
export function videoRoutes(deps: VideoRoutesDependencies): Router {
  const router = express.Router();
  router.use(submissionRoutes({ ...deps, maxActiveVideosPerTenant: deps.limits.maxActiveVideosPerTenant }));
  router.use(readRoutes(deps));
  router.use(cancelRoutes(deps));
  router.use(eventRoutes({ ...deps, sseMaxSeconds: deps.limits.sseMaxSeconds }));
  return router;
}
