/**
 * Registrations finished by the CPU side, on real Redis and PostgreSQL and the real pool: a
 * password sealed with a key this worker does not hold yet (a rotation rolling out) waits for a
 * worker that has it instead of failing the user, and a registration that fails for good fails
 * its user, which gives the email back.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { accountsQueue, createLogger, JobQueues, type RedisClient, type RunningWorker, startWorker, UsersRepository } from '@clipline/shared';
import { encryptSecret, type Keyring } from '@clipline/shared/crypto';
import { CpuPool } from '../src/analysis/pool.js';
import { accountsPolicy, accountsProcessors } from '../src/accounts/register-user.js';
import { connectRedis, createTestEnvironment, waitFor, type TestEnvironment } from '../../../tests/helpers/services.js';

let env: TestEnvironment;
let redis: RedisClient;
let pool: CpuPool;
let jobs: JobQueues;
let users: UsersRepository;
const workers: RunningWorker[] = [];
const logger = createLogger({ name: 'test', level: 'silent' });
const oldKeyring: Keyring = { currentKeyId: 'k1', keys: { k1: randomBytes(32) } };
const rotated: Keyring = { currentKeyId: 'k2', keys: { k2: randomBytes(32), k1: oldKeyring.keys.k1! } };

beforeAll(async () => {
  env = await createTestEnvironment();
  redis = connectRedis(env.config.redisUrl);
  pool = new CpuPool({ threads: 1 });
  jobs = new JobQueues({ connection: redis, prefix: env.config.queuePrefix });
  users = new UsersRepository(env.db);
});

afterAll(async () => {
  await Promise.all(workers.map((worker) => worker.close()));
  await jobs.close();
  await pool.close();
  redis.disconnect();
  await env.cleanup();
});

function accountsWorker(keyring: Keyring): RunningWorker {
  const worker = startWorker(accountsQueue, accountsProcessors({ pool, users, jobs, keyring }), {
    connection: redis,
    prefix: env.config.queuePrefix,
    logger,
    concurrency: 1,
    policy: accountsPolicy(users, { outageRetryMs: 100 }),
  });
  workers.push(worker);
  return worker;
}

async function register(email: string, keyring: Keyring, sealedFor?: string): Promise<string> {
  const id = randomUUID();
  expect(await users.createPending({ id, email, name: null, tenantId: 'acme' })).toBe('created');
  const sealedPassword = encryptSecret('plum-Lantern-47-overcast', keyring, sealedFor ?? id);
  await jobs.add(accountsQueue, 'register-user', { userId: id, sealedPassword }, { jobId: `register-${id}` });
  return id;
}

it('waits for a worker that holds the key a password was sealed with, without failing the user or spending attempts', async () => {
  const behind = accountsWorker(oldKeyring);
  const id = await register('rotation@example.com', rotated);
  await waitFor(async () => ((await jobs.get(accountsQueue, `register-${id}`))?.state === 'delayed' ? true : undefined), 10_000, 'the job to wait');
  expect((await users.find(id))?.status).toBe('pending');
  expect((await jobs.get(accountsQueue, `register-${id}`))?.attemptsMade).toBe(0);
  await behind.close();
  accountsWorker(rotated);
  await waitFor(async () => ((await users.find(id))?.status === 'active' ? true : undefined), 30_000, 'the user to be activated');
  await waitFor(async () => ((await jobs.get(accountsQueue, `register-${id}`)) === undefined ? true : undefined), 5000, 'the finished job to go');
});

it('fails the user of a registration that failed for good, and lets the email register again', async () => {
  accountsWorker(rotated);
  // Sealed for another user: it can never be opened for this one.
  const id = await register('broken@example.com', rotated, randomUUID());
  await waitFor(async () => ((await users.find(id))?.status === 'failed' ? true : undefined), 15_000, 'the user to fail');
  expect((await users.find(id))?.failure).toMatch(/could not be opened/);
  const again = randomUUID();
  expect(await users.createPending({ id: again, email: 'Broken@example.com', name: null, tenantId: 'acme' })).toBe('created');
});

it('fails the user when its job fails for good by retries, as the policy settles it', async () => {
  accountsWorker(rotated);
  const id = randomUUID();
  expect(await users.createPending({ id, email: 'retries@example.com', name: null, tenantId: 'acme' })).toBe('created');
  // Too long for the pool to hash: an error that is retried until the attempts are spent.
  const sealedPassword = encryptSecret('x'.repeat(1500), rotated, id);
  await jobs.add(accountsQueue, 'register-user', { userId: id, sealedPassword }, { jobId: `register-${id}` });
  await waitFor(async () => ((await users.find(id))?.status === 'failed' ? true : undefined), 20_000, 'the user to fail');
  expect((await users.find(id))?.failure).toMatch(/longer than 1024 characters/);
  // Gone with its sealed password, once finished.
  expect(await jobs.get(accountsQueue, `register-${id}`)).toBeUndefined();
});
