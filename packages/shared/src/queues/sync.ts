import { z } from 'zod';
import { defineQueue, standardRetention } from './define.js';
import { videoStepPayload } from './payloads.js';

export const syncQueue = defineQueue({
  name: 'sync',
  resourceClass: 'io',
  jobs: {
    /** Fetches (or revalidates by ETag) the YouTube metadata of one video. */
    'refresh-metadata': videoStepPayload,
    /** Scheduled: enqueues refreshes for the tracked videos whose metadata is oldest. */
    'sync-metadata': z.strictObject({}),
  },
  // A service may ask for a fresh copy of its own video's YouTube metadata at any time.
  publicJobs: ['refresh-metadata'],
  defaultJobOptions: { attempts: 4, backoff: { type: 'exponential', delay: 5000, jitter: 0.5 }, ...standardRetention },
});
