import { MysqlDialect, type Dialect } from 'kysely';
import mysql from 'mysql2';
import type { DatabaseTarget } from './database-target.js';

type MysqlTarget = Extract<DatabaseTarget, { engine: 'mysql' }>;

const UNKNOWN_SYSTEM_VARIABLE = 1193;

/**
 * What every connection agrees on before it serves a query: UTC (DATETIME columns hold UTC, as
 * pg's timestamptz reads), strict mode (an over-long value is an error, never silently cut), and
 * the statement timeout (MariaDB's max_statement_time, or MySQL's max_execution_time for
 * SELECTs; each server refuses the other's variable, which is the one failure tolerated).
 *
 * The statements are queued on a new connection from the pool's `connection` event, which mysql2
 * emits before it hands the connection out: commands on one connection run in order, so they
 * run before the first query. A connection whose setup fails is destroyed (its queries then fail
 * as a lost connection would) rather than serving with the wrong time zone.
 */
function prepareSessions(pool: mysql.Pool, statementTimeoutMs: number): void {
  const statements: [sql: string, tolerated?: number][] = [
    ["set time_zone = '+00:00', session sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'"],
    [`set session max_statement_time = ${statementTimeoutMs / 1000}`, UNKNOWN_SYSTEM_VARIABLE],
    [`set session max_execution_time = ${Math.round(statementTimeoutMs)}`, UNKNOWN_SYSTEM_VARIABLE],
  ];
  pool.on('connection', (connection) => {
    for (const [statement, tolerated] of statements) {
      connection.query(statement, (error: mysql.QueryError | null) => {
        if (error && error.errno !== tolerated) connection.destroy();
      });
    }
  });
}

export interface MysqlPoolSettings {
  poolSize: number;
  statementTimeoutMs: number;
  /** Connect without selecting the database (to create it). */
  withoutDatabase?: boolean;
}

export function createMysqlPool(target: MysqlTarget, settings: Pick<MysqlPoolSettings, 'poolSize' | 'withoutDatabase'>): mysql.Pool {
  return mysql.createPool({
    ...(target.ssl !== undefined ? { ssl: target.ssl } : {}),
    host: target.host,
    port: target.port,
    user: target.user,
    ...(target.password !== undefined ? { password: target.password } : {}),
    ...(settings.withoutDatabase ? {} : { database: target.database }),
    connectionLimit: settings.poolSize,
    connectTimeout: 5000,
    enableKeepAlive: true,
    charset: 'utf8mb4_bin',
    timezone: 'Z',
    decimalNumbers: true,
    // JSON columns as text on MySQL and MariaDB alike: the one decoder of stored values parses them.
    jsonStrings: true,
  });
}

export function createMysqlDialect(target: MysqlTarget, settings: MysqlPoolSettings): Dialect {
  if (!Number.isFinite(settings.statementTimeoutMs) || settings.statementTimeoutMs <= 0) {
    throw new RangeError(`statementTimeoutMs must be a positive number of milliseconds, got ${settings.statementTimeoutMs}`);
  }
  const pool = createMysqlPool(target, settings);
  prepareSessions(pool, settings.statementTimeoutMs);
  return new MysqlDialect({ pool });
}
