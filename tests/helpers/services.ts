/**
 * Test fixtures on the real services: every test file gets its own queue prefix, database
 * schema and storage directory, and removes them afterwards.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { createDatabase, dropDatabase, ensureDatabaseExists, loadConfig, migrateToLatest, type Config, type Db } from '@clipline/shared';

export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
/** The database the tests use: PostgreSQL unless `TEST_DATABASE_URL` names MySQL/MariaDB or SQLite. */
export const DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface TestEnvironment {
  config: Config;
  /** The variables behind `config`, for child processes. */
  env: Record<string, string>;
  db: Db;
  cleanup(): Promise<void>;
}

/** A fresh prefix, schema and storage directory, with migrations applied. */
export async function createTestEnvironment(overrides: Record<string, string> = {}): Promise<TestEnvironment> {
  const token = randomUUID().replace(/-/g, '').slice(0, 12);
  const storage = await mkdtemp(path.join(os.tmpdir(), 'clipline-test-'));
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    REDIS_URL,
    DATABASE_URL,
    QUEUE_PREFIX: `test-${token}`,
    DATABASE_SCHEMA: `t_${token}`,
    STORAGE_DIR: storage,
    SHUTDOWN_TIMEOUT_SECONDS: '5',
    ...overrides,
  };
  const config = loadConfig(env);
  const settings = { url: config.databaseUrl, schema: config.databaseSchema, poolSize: 4 };
  await ensureDatabaseExists(settings);
  const db = createDatabase(settings);
  await migrateToLatest(db, config.databaseSchema);
  return {
    config,
    env,
    db,
    async cleanup() {
      await db.destroy();
      await dropDatabase(settings).catch(() => {});
      await deleteKeys(config.redisUrl, `${config.queuePrefix}:*`);
      await rm(storage, { recursive: true, force: true });
    },
  };
}

export async function deleteKeys(url: string, pattern: string): Promise<number> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  let deleted = 0;
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
      cursor = next;
      if (keys.length) deleted += await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  return deleted;
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(check: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}
