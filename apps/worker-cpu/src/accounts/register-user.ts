import {
  type accountsQueue,
  type JobPolicy,
  notifyQueue,
  PermanentJobError,
  UpstreamOutageError,
  type JobQueues,
  type Processors,
  type UsersRepository,
} from '@clipline/shared';
import { SecretDecryptionError, secretKeyId, type Keyring } from '@clipline/shared/crypto';
import type { CpuPool } from '../analysis/pool.js';

export interface AccountsDependencies {
  pool: CpuPool;
  users: UsersRepository;
  jobs: JobQueues;
  keyring: Keyring;
}

/** How often a registration sealed with a key this worker lacks is offered again, and for how long in all. */
const UNKNOWN_KEY_RETRY_MS = 10_000;
const UNKNOWN_KEY_HORIZON_MS = 15 * 60_000;

/**
 * A password sealed with a key this worker's keyring does not hold is not a broken one: during a
 * rotation the producers may put the new key first before every worker has it. The job waits,
 * without spending attempts, for a worker that has it (another, or this one restarted), and gives
 * up after a quarter of an hour. A key it holds that does not open the token is permanent.
 */
function checkKeyKnown(sealedPassword: string, keyring: Keyring): void {
  let keyId: string;
  try {
    keyId = secretKeyId(sealedPassword);
  } catch {
    return; // Not a token at all: the pool says so, permanently.
  }
  if (Object.hasOwn(keyring.keys, keyId)) return;
  throw new UpstreamOutageError(
    'keyring',
    `the password was sealed with key "${keyId}", which this worker's ACCOUNTS_KEYRING does not hold (a key rotation still rolling out?)`,
    UNKNOWN_KEY_RETRY_MS,
    UNKNOWN_KEY_HORIZON_MS,
    { horizonSetting: 'a quarter of an hour' },
  );
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
      checkKeyKnown(sealedPassword, deps.keyring);
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

/**
 * The accounts queue's policy: a registration that failed for good, however (its attempts spent,
 * its worker dying on it, the wait for a key given up), fails its user with the reason, which
 * gives the email back to a new registration.
 */
export function accountsPolicy(users: UsersRepository, base: JobPolicy = {}): JobPolicy {
  return {
    ...base,
    onFinalFailure: async (failure) => {
      const userId = (failure.data as { userId?: unknown } | undefined)?.userId;
      if (failure.name === 'register-user' && typeof userId === 'string') await users.fail(userId, failure.reason.slice(0, 500));
      await base.onFinalFailure?.(failure);
    },
  };
}
