import { type accountsQueue, notifyQueue, PermanentJobError, type JobQueues, type Processors, type UsersRepository } from '@clipline/shared';
import { SecretDecryptionError, type Keyring } from '@clipline/shared/crypto';
import type { CpuPool } from '../analysis/pool.js';

export interface AccountsDependencies {
  pool: CpuPool;
  users: UsersRepository;
  jobs: JobQueues;
  keyring: Keyring;
}

/**
 * Finishes a registration: the sealed password is opened and hashed with scrypt inside one pool
 * thread (the clear password never reaches this event loop), the hash is stored and the user
 * activated, and a welcome is queued. Retries are harmless: activation happens once.
 */
export function accountsProcessors(deps: AccountsDependencies): Processors<typeof accountsQueue> {
  return {
    'register-user': async (job) => {
      const { userId, sealedPassword } = job.data;
      let hash: string;
      try {
        hash = await deps.pool.hashSealedPassword(sealedPassword, deps.keyring, userId);
      } catch (error) {
        if (error instanceof SecretDecryptionError) {
          await deps.users.fail(userId, 'the sealed password could not be opened (keyring mismatch?)');
          throw new PermanentJobError(`registration of ${userId}: ${(error as Error).message}`);
        }
        throw error;
      }
      const activated = await deps.users.activate(userId, hash);
      // Queued on every run that finds the user active (the job id sends it once): a retry after
      // a failed enqueue must not lose the welcome.
      const user = await deps.users.find(userId);
      if (user?.status === 'active') await deps.jobs.add(notifyQueue, 'send-welcome', { userId }, { jobId: `welcome-${userId}` });
      return { activated };
    },
  };
}
