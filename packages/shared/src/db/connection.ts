import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.js';

// BIGINT (int8) columns hold byte sizes and ids far below 2^53: read them as numbers.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

export interface DatabaseSettings {
  url: string;
  /** Schema that holds the tables; it is put first on every connection's search_path. */
  schema: string;
  poolSize: number;
  /** Milliseconds a single statement may run. @defaultValue 30000 */
  statementTimeoutMs?: number;
}

export type Db = Kysely<Database>;

export function createDatabase(settings: DatabaseSettings): Db {
  const pool = new pg.Pool({
    connectionString: settings.url,
    max: settings.poolSize,
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30_000,
    options: `-c search_path=${settings.schema},public -c statement_timeout=${settings.statementTimeoutMs ?? 30_000}`,
  });
  // An idle client that loses its server emits on the pool; queries report their own failures.
  pool.on('error', () => {});
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}
