import { z } from 'zod';
import { defineQueue, standardRetention } from './define.js';
import { videoStepPayload } from './payloads.js';

/**
 * The lifecycle of stored files, apart from the pipeline so that a long retention run never
 * takes a slot a video's parent job is waiting for.
 */
export const storageQueue = defineQueue({
  name: 'storage',
  resourceClass: 'io',
  jobs: {
    /** Removes the source of a finished video (unless KEEP_SOURCES): its analysis and renders are done. */
    'release-source': videoStepPayload,
    /**
     * Scheduled: finishes purges a crash interrupted, releases sources a lost `release-source`
     * left behind, purges videos finished more than RETENTION_DAYS ago, in bounded batches, and
     * removes folders of videos that no longer exist (written by a job running at the purge).
     */
    'purge-expired': z.strictObject({}),
    /** Scheduled: walks the storage directory and records the bytes it holds (`clipline_storage_bytes`). */
    'measure-storage': z.strictObject({}),
  },
  defaultJobOptions: { attempts: 5, backoff: { type: 'exponential', delay: 2000, jitter: 0.5 }, ...standardRetention },
});
