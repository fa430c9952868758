import { z } from 'zod';
import { defineQueue } from './define.js';

export const accountsQueue = defineQueue({
  name: 'accounts',
  resourceClass: 'cpu',
  jobs: {
    /**
     * Hashes a new user's password in the CPU pool and activates the user. The password travels
     * sealed (AES-256-GCM under the accounts keyring), never in clear.
     */
    'register-user': z.strictObject({ userId: z.uuid(), sealedPassword: z.string().min(1).max(4096) }),
  },
  // A finished registration's job goes at once: its data is a sealed password, which anyone
  // holding Redis and the keyring could open. What happened is kept on the user (active, or
  // failed with the reason) and in the logs.
  defaultJobOptions: {
    attempts: 3,
    backoff: { type: 'exponential', delay: 1000, jitter: 0.5 },
    removeOnComplete: { age: 0, count: 0 },
    removeOnFail: { age: 0, count: 0 },
  },
});
