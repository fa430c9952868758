import { z } from 'zod';
import { defineQueue, standardRetention } from './define.js';
import { videoStepPayload } from './payloads.js';

/**
 * Parent jobs of video flows. A `video-pipeline` job runs only after all of its steps have
 * completed, and marks the video completed.
 */
export const pipelineQueue = defineQueue({
  name: 'pipeline',
  resourceClass: 'io',
  jobs: {
    'video-pipeline': videoStepPayload,
    /** Scheduled: fails videos whose flow failed or vanished without the record saying so. */
    'reconcile-videos': z.strictObject({}),
  },
  defaultJobOptions: { attempts: 6, backoff: { type: 'exponential', delay: 500, jitter: 0.5 }, ...standardRetention },
});
