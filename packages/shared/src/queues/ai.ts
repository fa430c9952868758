import { defineQueue, standardRetention } from './define.js';
import { videoStepPayload } from './payloads.js';

/**
 * One queue per upstream provider: a 429 with Retry-After pauses that provider's queue for every
 * worker (BullMQ's queue rate limit) while the other providers' work goes on.
 */
const aiDefaults = { attempts: 5, backoff: { type: 'exponential' as const, delay: 2000, jitter: 0.5 }, ...standardRetention };

export const openaiQueue = defineQueue({
  name: 'ai-openai',
  resourceClass: 'io',
  jobs: { transcribe: videoStepPayload, 'write-captions': videoStepPayload },
  defaultJobOptions: aiDefaults,
});

export const stabilityQueue = defineQueue({
  name: 'ai-stability',
  resourceClass: 'io',
  jobs: { 'generate-thumbnail': videoStepPayload },
  defaultJobOptions: aiDefaults,
});

export const elevenlabsQueue = defineQueue({
  name: 'ai-elevenlabs',
  resourceClass: 'io',
  jobs: { voiceover: videoStepPayload },
  defaultJobOptions: aiDefaults,
});
