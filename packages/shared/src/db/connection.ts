import { mkdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { resolveDatabaseTarget, type DatabaseTarget } from './database-target.js';
import { createMysqlDialect, createMysqlPool } from './mysql-dialect.js';
import type { Database } from './schema.js';
import { SqliteThreadDialect } from './sqlite/sqlite-thread-dialect.js';
import { StoredValuesPlugin } from './stored-values.js';

// BIGINT (int8) columns hold byte sizes and ids far below 2^53: read them as numbers.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

export interface DatabaseSettings {
  /** `postgres://…`, `mysql://…` (or `mariadb://…`) or `sqlite:path/to/file.db`. */
  url: string;
  /** Schema that holds the tables (see {@link DatabaseTarget} for what it means per engine). */
  schema: string;
  /** Connections of the pool; SQLite has one connection whatever this says. */
  poolSize: number;
  /** Milliseconds a single statement may run (PostgreSQL, MySQL/MariaDB). @defaultValue 30000 */
  statementTimeoutMs?: number;
  /** Milliseconds a SQLite statement waits for another process's write lock. @defaultValue 5000 */
  busyTimeoutMs?: number;
  /** SQLite: open the file only if it exists, instead of creating an empty one (tools that need migrated tables). */
  mustExist?: boolean;
}

export type Db = Kysely<Database>;

function createPostgres(target: Extract<DatabaseTarget, { engine: 'postgres' }>, settings: DatabaseSettings): Db {
  const pool = new pg.Pool({
    connectionString: target.url,
    max: settings.poolSize,
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30_000,
    options: `-c search_path=${target.schema},public -c statement_timeout=${settings.statementTimeoutMs ?? 30_000}`,
  });
  // An idle client that loses its server emits on the pool; queries report their own failures.
  pool.on('error', () => {});
  // A client checked out of the pool (a transaction between statements, a statement in flight)
  // has no listener of the pool's, and pg emits the lost connection on the client as well as
  // failing its statements: without a listener of its own that 'error' would end the process.
  // The statement or the next one reports the loss; the pool drops the client when it is released.
  pool.on('connect', (client) => client.on('error', () => {}));
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

/** Opens the database `settings.url` names; its scheme picks the engine. Connections open lazily. */
export function createDatabase(settings: DatabaseSettings): Db {
  const target = resolveDatabaseTarget(settings.url, settings.schema);
  switch (target.engine) {
    case 'postgres':
      return createPostgres(target, settings);
    case 'mysql':
      return new Kysely<Database>({
        dialect: createMysqlDialect(target, { poolSize: settings.poolSize, statementTimeoutMs: settings.statementTimeoutMs ?? 30_000 }),
        plugins: [new StoredValuesPlugin('mysql')],
      });
    case 'sqlite':
      if (!settings.mustExist) mkdirSync(path.dirname(target.file), { recursive: true });
      return new Kysely<Database>({
        dialect: new SqliteThreadDialect({ file: target.file, busyTimeoutMs: settings.busyTimeoutMs ?? 5000, mustExist: settings.mustExist ?? false }),
        plugins: [new StoredValuesPlugin('sqlite')],
      });
  }
}

/** Runs one statement on a connection of its own to the server (not to the target database). */
async function onMysqlServer(target: Extract<DatabaseTarget, { engine: 'mysql' }>, statement: string): Promise<void> {
  const pool = createMysqlPool(target, { poolSize: 1, withoutDatabase: true });
  try {
    await pool.promise().query(statement);
  } finally {
    await pool.promise().end();
  }
}

const quotedMysqlName = (name: string) => `\`${name.replace(/`/g, '``')}\``;

/**
 * Creates what must exist before a connection can be opened: the database on MySQL/MariaDB
 * (utf8mb4, binary collation, so text compares as exactly as on PostgreSQL), which the pool's
 * connections select as they connect. A PostgreSQL schema is created by the migration and a
 * SQLite file when it is opened, so there is nothing to do for them.
 */
export async function ensureDatabaseExists(settings: DatabaseSettings): Promise<void> {
  const target = resolveDatabaseTarget(settings.url, settings.schema);
  if (target.engine === 'mysql') {
    await onMysqlServer(target, `create database if not exists ${quotedMysqlName(target.database)} character set utf8mb4 collate utf8mb4_bin`);
  }
}

/**
 * Drops the schema (PostgreSQL), the database (MySQL/MariaDB) or the file (SQLite) with every
 * table in it: for tests and benchmarks that made their own. Close every connection to it first.
 */
export async function dropDatabase(settings: DatabaseSettings): Promise<void> {
  const target = resolveDatabaseTarget(settings.url, settings.schema);
  if (target.engine === 'mysql') {
    await onMysqlServer(target, `drop database if exists ${quotedMysqlName(target.database)}`);
  } else if (target.engine === 'sqlite') {
    await Promise.all(['', '-wal', '-shm'].map((suffix) => rm(`${target.file}${suffix}`, { force: true })));
  } else {
    if (target.schema === 'public') throw new Error('refusing to drop the public schema');
    const db = createPostgres(target, { ...settings, poolSize: 1 });
    try {
      await sql`drop schema if exists ${sql.id(target.schema)} cascade`.execute(db);
    } finally {
      await db.destroy();
    }
  }
}
