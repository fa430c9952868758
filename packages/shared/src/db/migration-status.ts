import { existsSync } from 'node:fs';
import { DEFAULT_MIGRATION_TABLE, sql } from 'kysely';
import { createDatabase, type DatabaseSettings } from './connection.js';
import { describeDatabaseTarget, resolveDatabaseTarget } from './database-target.js';
import { migrationNames } from './migrate.js';

/** How the database's migrations compare with this code's migration files. */
export interface MigrationStatus {
  /** The database, named without secrets. */
  readonly where: string;
  /** Migrations applied to the database. */
  readonly applied: readonly string[];
  /** This code's migrations the database has not applied (all of them when it has no tables). */
  readonly pending: readonly string[];
  /**
   * Migrations the database has applied that this code has no file for: a newer deployment
   * migrated first. Allowed (see {@link checkDatabaseSchema}).
   */
  readonly ahead: readonly string[];
}

/** The database is missing migrations this code needs; the message names `npm run migrate`. */
export class DatabaseNotMigratedError extends Error {
  override name = 'DatabaseNotMigratedError';
  constructor(readonly status: MigrationStatus) {
    const none = status.applied.length === 0;
    super(
      none
        ? `the database ${status.where} is not migrated (it has no clipline tables): run \`npm run migrate\` with the same DATABASE_URL and DATABASE_SCHEMA, then start again`
        : `the database ${status.where} is behind this code (${status.pending.length} migration${status.pending.length === 1 ? '' : 's'} not applied: ${status.pending.join(', ')}): run \`npm run migrate\` with the same DATABASE_URL and DATABASE_SCHEMA, then start again`,
    );
  }
}

/** The database did not answer the check, so whether it is migrated is unknown. */
export class DatabaseUnreachableError extends Error {
  override name = 'DatabaseUnreachableError';
}

/**
 * Whether a failure means "the migration table is not there": no table (PostgreSQL 42P01,
 * MySQL 1146, SQLite "no such table"), no MySQL database (1049). Anything else (refused
 * connection, bad password) leaves the question open.
 */
function isMissingMigrationTable(error: unknown): boolean {
  const failure = error as { code?: unknown; message?: unknown };
  if (failure?.code === '42P01' || failure?.code === '3F000') return true;
  if (failure?.code === 'ER_NO_SUCH_TABLE' || failure?.code === 'ER_BAD_DB_ERROR') return true;
  return typeof failure?.message === 'string' && /^no such table: /.test(failure.message);
}

/**
 * Compares the database with this code's migrations in one query: the names in Kysely's
 * migration table, read directly. (`Migrator.getMigrations()` would introspect every table of
 * every schema first, which costs more and fails on PostgreSQL when another schema is being
 * dropped at that moment.) The connection is its own and closed again, so the check leaves
 * nothing open whatever the process does next.
 */
export async function readMigrationStatus(settings: Pick<DatabaseSettings, 'url' | 'schema'>): Promise<MigrationStatus> {
  const target = resolveDatabaseTarget(settings.url, settings.schema);
  const where = describeDatabaseTarget(target);
  const known = await migrationNames();
  // A SQLite file is not created just to find out that it is empty.
  if (target.engine === 'sqlite' && !existsSync(target.file)) return { where, applied: [], pending: known, ahead: [] };
  const db = createDatabase({ url: settings.url, schema: settings.schema, poolSize: 1, mustExist: true });
  let applied: string[];
  try {
    // On MySQL and SQLite the connection already points at the schema (a database, a file).
    const table = target.engine === 'postgres' ? sql.table(`${target.schema}.${DEFAULT_MIGRATION_TABLE}`) : sql.table(DEFAULT_MIGRATION_TABLE);
    const { rows } = await sql<{ name: string }>`select name from ${table}`.execute(db);
    applied = rows.map((row) => row.name);
  } catch (error) {
    if (!isMissingMigrationTable(error)) {
      const reason = (error as Error).message ?? String(error);
      throw new DatabaseUnreachableError(
        `the database ${where} could not be checked (${reason}): is it running, and are DATABASE_URL's address and credentials right?`,
        {
          cause: error,
        },
      );
    }
    applied = [];
  } finally {
    await db.destroy();
  }
  const done = new Set(applied);
  const files = new Set(known);
  return {
    where,
    applied: applied.sort(),
    pending: known.filter((name) => !done.has(name)),
    ahead: applied.filter((name) => !files.has(name)),
  };
}

/**
 * Throws {@link DatabaseNotMigratedError} unless every migration of this code is applied, so a
 * process refuses to start instead of answering every request with "no such table".
 *
 * Migrations the code does not know (a newer deployment migrated first) are allowed and returned
 * for a warning: migrations here only add tables, and columns that are nullable or have a
 * default, so older code keeps reading and writing what it knows. Refusing would turn every
 * rolling deployment into an outage of the instances still on the previous version.
 */
export async function checkDatabaseSchema(settings: Pick<DatabaseSettings, 'url' | 'schema'>): Promise<MigrationStatus> {
  const status = await readMigrationStatus(settings);
  if (status.pending.length) throw new DatabaseNotMigratedError(status);
  return status;
}
