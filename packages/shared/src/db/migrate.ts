import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileMigrationProvider, Migrator, sql, type MigrationResultSet } from 'kysely';
import type { Db } from './connection.js';

/**
 * Migrations are the files of `migrations/` beside this module, applied in name order
 * (`0001-…`, `0002-…`). Each exports `up` and `down`.
 */
const MIGRATIONS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');

/** Creates the schema if needed and applies every pending migration; throws on the first failure. */
export async function migrateToLatest(db: Db, schema: string): Promise<MigrationResultSet> {
  await sql`create schema if not exists ${sql.id(schema)}`.execute(db);
  const migrator = new Migrator({
    db,
    provider: new FileMigrationProvider({ fs, path, migrationFolder: MIGRATIONS_DIR }),
    migrationTableSchema: schema,
    // Features land in parallel: a database may have applied 0005 before 0003 existed.
    allowUnorderedMigrations: true,
  });
  const result = await migrator.migrateToLatest();
  if (result.error) {
    const failed = result.results?.find((item) => item.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`migration ${failed} failed: ${(result.error as Error).message ?? String(result.error)}`, {
      cause: result.error,
    });
  }
  return result;
}
