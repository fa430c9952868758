import { defineQueue, standardRetention } from './define.js';
import { videoStepPayload } from './payloads.js';

/**
 * Parent jobs of video flows. A `video-pipeline` job runs only after all of its steps have
 * completed, and marks the video completed.
 */
export const pipelineQueue = defineQueue({
  name: 'pipeline',
  resourceClass: 'io',
  jobs: { 'video-pipeline': videoStepPayload },
  defaultJobOptions: { attempts: 6, backoff: { type: 'exponential', delay: 500, jitter: 0.5 }, ...standardRetention },
});
