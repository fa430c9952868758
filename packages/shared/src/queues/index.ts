import { accountsQueue } from './accounts.js';
import { elevenlabsQueue, openaiQueue, stabilityQueue } from './ai.js';
import { analyzeQueue } from './analyze.js';
import { ingestQueue } from './ingest.js';
import { persistQueue } from './persist.js';
import { notifyQueue } from './notify.js';
import { pipelineQueue } from './pipeline.js';
import { renderQueue } from './render.js';
import { syncQueue } from './sync.js';
import { storageQueue } from './storage.js';

export * from './define.js';
export * from './payloads.js';
export { ingestQueue, ingestVideoPayload, ingestResult, type IngestResult } from './ingest.js';
export { analyzeQueue } from './analyze.js';
export { persistQueue } from './persist.js';
export { pipelineQueue } from './pipeline.js';
export { notifyQueue } from './notify.js';
export { accountsQueue } from './accounts.js';
export { syncQueue } from './sync.js';
export { storageQueue } from './storage.js';
export { elevenlabsQueue, openaiQueue, stabilityQueue } from './ai.js';
export * from './render.js';

/** Every queue of the system; the pipeline's steps come first, in the order of its table (pipeline/video-flow.ts). */
export const allQueues = [
  ingestQueue,
  analyzeQueue,
  persistQueue,
  renderQueue,
  openaiQueue,
  stabilityQueue,
  elevenlabsQueue,
  pipelineQueue,
  notifyQueue,
  accountsQueue,
  syncQueue,
  storageQueue,
] as const;
