import { z } from 'zod';
import { analyzeResult } from '../pipeline/analysis-result.js';
import { defineQueue, standardRetention } from './define.js';
import { videoId } from './payloads.js';

export const persistQueue = defineQueue({
  name: 'persist',
  resourceClass: 'io',
  jobs: { 'persist-analysis': z.strictObject({ videoId, analysis: analyzeResult }) },
  defaultJobOptions: { attempts: 6, backoff: { type: 'exponential', delay: 500, jitter: 0.5 }, ...standardRetention },
});
