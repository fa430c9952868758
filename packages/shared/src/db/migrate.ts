import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileMigrationProvider, Migrator, sql, type MigrationResultSet } from 'kysely';
import type { Db } from './connection.js';
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

/**
 * Applies every pending migration; throws on the first failure. On PostgreSQL the schema is
 * created if needed; a MySQL database must exist (see `ensureDatabaseExists`). DDL is
 * transactional on PostgreSQL and SQLite, so a failed migration leaves nothing behind there;
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
