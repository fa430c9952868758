import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileMigrationProvider, Migrator, sql, type MigrationResultSet } from 'kysely';
import { createDatabase, ensureDatabaseExists, type DatabaseSettings, type Db } from './connection.js';
import { resolveDatabaseTarget } from './database-target.js';
import { engineOf } from './portable-sql.js';

/**
 * Migrations are the files of `migrations/` beside this module, applied in name order
 * (`0001-…`, `0002-…`). Each exports `up` and `down`.
 */
const MIGRATIONS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');

const migrationFiles = () => new FileMigrationProvider({ fs, path, migrationFolder: MIGRATIONS_DIR });

/** The names of this code's migrations, in the order they apply. */
export async function migrationNames(): Promise<string[]> {
  return Object.keys(await migrationFiles().getMigrations()).sort();
}

export function createMigrator(db: Db, schema: string): Migrator {
  // On MySQL and SQLite the connection already points at the schema (a database, a file).
  const postgres = engineOf(db) === 'postgres';
  return new Migrator({
    db,
    provider: migrationFiles(),
    ...(postgres ? { migrationTableSchema: schema } : {}),
    // Features land in parallel: a database may have applied 0005 before 0003 existed.
    allowUnorderedMigrations: true,
  });
}

/** The statement timeout of `npm run migrate`'s sessions: an hour, against the apps' 30 s. */
export const MIGRATION_STATEMENT_TIMEOUT_MS = 3_600_000;

/**
 * Applies every pending migration; throws on the first failure. On PostgreSQL the schema is
 * created if needed; a MySQL database must exist (see `ensureDatabaseExists`). DDL is
 * transactional on PostgreSQL and SQLite, and the pending migrations run in one transaction
 * there, so a failed migration leaves nothing behind (see `TransactionalDdlSqliteAdapter`);
 * MySQL commits each DDL statement.
 */
export async function migrateToLatest(db: Db, schema: string): Promise<MigrationResultSet> {
  if (engineOf(db) === 'postgres') await sql`create schema if not exists ${sql.id(schema)}`.execute(db);
  const result = await createMigrator(db, schema).migrateToLatest();
  if (result.error) {
    const failed = result.results?.find((item) => item.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`migration ${failed} failed: ${(result.error as Error).message ?? String(result.error)}`, {
      cause: result.error,
    });
  }
  return result;
}

/**
 * Creates the database the URL names when the server does not have it yet, before migrating:
 * on MySQL/MariaDB always (`ensureDatabaseExists`); on PostgreSQL only when connecting to it
 * fails with "database does not exist" (3D000), through the server's `postgres` database, so a
 * user who may not connect there is never asked to. A PostgreSQL schema is created by the
 * migration and a SQLite file when it is opened. Returns whether a database was created.
 */
export async function createDatabaseIfMissing(settings: DatabaseSettings): Promise<boolean> {
  const target = resolveDatabaseTarget(settings.url, settings.schema);
  if (target.engine === 'mysql') {
    await ensureDatabaseExists(settings);
    return false;
  }
  if (target.engine !== 'postgres') return false;
  const probe = createDatabase({ ...settings, poolSize: 1 });
  try {
    await sql`select 1`.execute(probe);
    return false;
  } catch (error) {
    if ((error as { code?: unknown }).code !== '3D000') throw error;
  } finally {
    await probe.destroy();
  }
  const url = new URL(target.url);
  const database = decodeURIComponent(url.pathname.slice(1));
  url.pathname = '/postgres';
  const server = createDatabase({ url: url.href, schema: 'public', poolSize: 1 });
  try {
    await sql`create database ${sql.id(database)}`.execute(server);
  } catch (error) {
    // Another process (a second `npm run migrate`) created it in the meantime: 42P04 duplicate_database.
    if ((error as { code?: unknown }).code !== '42P04') throw error;
  } finally {
    await server.destroy();
  }
  return true;
}
