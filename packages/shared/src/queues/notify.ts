import { z } from 'zod';
import { RETRY_AFTER_BACKOFF } from '../errors.js';
import { defineQueue, standardRetention } from './define.js';

export const notifyQueue = defineQueue({
  name: 'notify',
  resourceClass: 'io',
  jobs: {
    /** Delivers one row of the webhook outbox. */
    'deliver-webhook': z.strictObject({ deliveryId: z.uuid() }),
    /** Scheduled: re-enqueues outbox rows whose job was lost. */
    'sweep-webhooks': z.strictObject({}),
    /** Welcomes a user whose registration finished. */
    'send-welcome': z.strictObject({ userId: z.uuid() }),
  },
  // Up to ~2 hours of retries: 2 s, 4 s, 8 s … (with jitter) over 12 attempts, or later when a
  // receiver's Retry-After asks for it.
  defaultJobOptions: { attempts: 12, backoff: { type: RETRY_AFTER_BACKOFF, delay: 2000, jitter: 0.3 }, ...standardRetention },
});
