import { z } from 'zod';
import { defineQueue, standardRetention } from './define.js';
import { videoId } from './payloads.js';

export const ingestVideoPayload = z.strictObject({
  videoId,
  /** A local path, a file:// URL or an http(s) URL, already checked by the producer. */
  source: z.string().min(1).max(4096),
});

export const ingestQueue = defineQueue({
  name: 'ingest',
  resourceClass: 'io',
  jobs: { 'ingest-video': ingestVideoPayload },
  defaultJobOptions: { attempts: 4, backoff: { type: 'exponential', delay: 1000, jitter: 0.5 }, ...standardRetention },
});

/** What ingest hands to analysis: where the stored copy of the source is. */
export const ingestResult = z.object({ storageKey: z.string().min(1), sizeBytes: z.number().int().nonnegative(), container: z.string() });
export type IngestResult = z.infer<typeof ingestResult>;
