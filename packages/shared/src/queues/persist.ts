import { defineQueue, standardRetention } from './define.js';
import { videoStepPayload } from './payloads.js';

export const persistQueue = defineQueue({
  name: 'persist',
  resourceClass: 'io',
  jobs: { 'persist-analysis': videoStepPayload },
  defaultJobOptions: { attempts: 6, backoff: { type: 'exponential', delay: 500, jitter: 0.5 }, ...standardRetention },
});
