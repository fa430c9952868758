import { z } from 'zod';
import { defineQueue, standardRetention } from './define.js';
import { videoId } from './payloads.js';
import { ingestResult } from './ingest.js';
import { clipOptions } from './render.js';

export const analyzeQueue = defineQueue({
  name: 'analyze',
  resourceClass: 'cpu',
  jobs: {
    'analyze-video': z.strictObject({
      videoId,
      options: clipOptions.optional(),
      /** The stored source ingest left; absent in jobs queued before it was passed on, which read it from their child. */
      source: ingestResult.optional(),
    }),
  },
  defaultJobOptions: { attempts: 2, backoff: { type: 'exponential', delay: 2000, jitter: 0.5 }, ...standardRetention },
});
