/**
 * Test fixtures on the real services: every test file gets its own queue prefix, database
 * schema and storage directory, and removes them afterwards.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  createDatabase,
  createRedis,
  dropDatabase,
  ensureDatabaseExists,
  loadConfig,
  migrateToLatest,
  primariesOf,
  type Config,
  type DatabaseSettings,
  type Db,
  type RedisClient,
} from '@clipline/shared';

/**
 * The Redis the tests use: one server, or a Redis Cluster when `TEST_REDIS_URL` is a
 * `redis+cluster://` URL (`npm run test:cluster` starts one and points the whole suite at it).
 */
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
/** The database the tests use: PostgreSQL unless `TEST_DATABASE_URL` names MySQL/MariaDB or SQLite. */
export const DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * One server of each engine the database layer runs on, for the suites that run on all of them.
 * SQLite needs no server: its files go under the temporary directory.
 */
export const TEST_DATABASE_ENGINES = [
  { name: 'PostgreSQL', url: process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
  { name: 'MariaDB', url: process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test' },
  { name: 'SQLite', url: `sqlite:${path.join(os.tmpdir(), 'clipline-test', 'test.db')}` },
] as const;

export interface TestDatabase {
  db: Db;
  settings: DatabaseSettings;
  /** Closes the connections and drops the schema (a database on MySQL, a file on SQLite). */
  cleanup(): Promise<void>;
}

const newToken = () => randomUUID().replace(/-/g, '').slice(0, 12);

/**
 * Kysely's migrator introspects every schema of the database before it starts; on PostgreSQL that
 * catalog query fails ("schema … does not exist", "column … of relation … does not exist") when
 * another test file creates or drops its schema at the same moment. Such a failure comes before
 * any migration ran (the migrator names none), so the whole attempt is repeated.
 */
async function migrateWhileOthersDrop(db: Db, schema: string): Promise<void> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      await migrateToLatest(db, schema);
      return;
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause;
      // 3F000 invalid_schema_name, 42703 undefined_column, 42P01 undefined_table: catalog races.
      const beforeAnyMigration = /^migration unknown failed/.test((error as Error).message) && ['3F000', '42703', '42P01'].includes(cause?.code ?? '');
      if (!beforeAnyMigration || attempt >= 5) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
    }
  }
}

/** A fresh, migrated schema of its own on the database `url` names. */
export async function createTestDatabase(url: string = DATABASE_URL, schema = `t_${newToken()}`, poolSize = 4): Promise<TestDatabase> {
  const settings = { url, schema, poolSize };
  await ensureDatabaseExists(settings);
  const db = createDatabase(settings);
  await migrateWhileOthersDrop(db, schema);
  return {
    db,
    settings,
    async cleanup() {
      await db.destroy();
      await dropDatabase(settings).catch(() => {});
    },
  };
}

export interface TestEnvironment {
  config: Config;
  /** The variables behind `config`, for child processes. */
  env: Record<string, string>;
  db: Db;
  cleanup(): Promise<void>;
}

/** A fresh prefix, schema and storage directory, with migrations applied. */
export async function createTestEnvironment(overrides: Record<string, string> = {}): Promise<TestEnvironment> {
  const token = newToken();
  const storage = await mkdtemp(path.join(os.tmpdir(), 'clipline-test-'));
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    REDIS_URL,
    DATABASE_URL,
    // Hash-tagged like the default prefix, so the same tests run on a Redis Cluster.
    QUEUE_PREFIX: `{test-${token}}`,
    DATABASE_SCHEMA: `t_${token}`,
    STORAGE_DIR: storage,
    SHUTDOWN_TIMEOUT_SECONDS: '5',
    // Test files run side by side: a fixed metrics port would collide between their producers.
    PRODUCER_METRICS_PORT: '0',
    ...overrides,
  };
  const config = loadConfig(env);
  const database = await createTestDatabase(config.databaseUrl, config.databaseSchema);
  return {
    config,
    env,
    db: database.db,
    async cleanup() {
      await database.cleanup();
      await deleteKeys(config.redisUrl, `${config.queuePrefix}:*`);
      await rm(storage, { recursive: true, force: true });
    },
  };
}

/** A connection to the tests' Redis (or cluster), as a worker makes one: it waits out outages. */
export function connectRedis(url: string = REDIS_URL): RedisClient {
  return createRedis(url, 'worker');
}

/**
 * Keys matching `pattern` on every primary: KEYS and SCAN see one node's keys only, so on a
 * cluster each primary is asked in turn. Replaces `redis.keys(pattern)` in tests.
 */
export async function keysMatching(redis: RedisClient, pattern: string): Promise<string[]> {
  const found: string[] = [];
  for (const node of await primariesOf(redis)) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
      cursor = next;
      found.push(...keys);
    } while (cursor !== '0');
  }
  // SCAN's order follows the server's hash table, which changes as it grows, and a key may come twice.
  return [...new Set(found)].sort();
}

export async function deleteKeys(url: string, pattern: string): Promise<number> {
  const redis = connectRedis(url);
  try {
    const keys = await keysMatching(redis, pattern);
    // One DEL per key: on a cluster, keys of other hash tags may sit in other slots.
    const deleted = await Promise.all(keys.map((key) => redis.del(key)));
    return deleted.reduce((sum, count) => sum + count, 0);
  } finally {
    redis.disconnect();
  }
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
