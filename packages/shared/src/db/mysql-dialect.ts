import { MysqlDialect, type CompiledQuery, type DatabaseConnection, type Dialect, type Driver, type QueryResult } from 'kysely';
import mysql from 'mysql2';
import type { DatabaseTarget } from './database-target.js';

type MysqlTarget = Extract<DatabaseTarget, { engine: 'mysql' }>;

/**
 * mysql2 interpolates parameters on the client, where an array would become a list and an
 * object `key = value` pairs; the columns that take them (JSON) want JSON text.
 */
export function encodeMysqlParameter(value: unknown): unknown {
  if (value === undefined) return null;
  if (value === null || value instanceof Date || value instanceof Uint8Array) return value;
  if (Array.isArray(value) || typeof value === 'object') return JSON.stringify(value);
  return value;
}

class EncodingConnection implements DatabaseConnection {
  constructor(readonly inner: DatabaseConnection) {}

  private encoded(query: CompiledQuery): CompiledQuery {
    return { ...query, parameters: query.parameters.map(encodeMysqlParameter) };
  }

  executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    return this.inner.executeQuery<R>(this.encoded(query));
  }

  streamQuery<R>(query: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    return this.inner.streamQuery<R>(this.encoded(query), chunkSize);
  }
}

/** Kysely's MySQL driver with parameters encoded on their way in. */
class EncodingDriver implements Driver {
  private readonly wrappers = new WeakMap<DatabaseConnection, EncodingConnection>();

  constructor(private readonly inner: Driver) {}

  init(): Promise<void> {
    return this.inner.init();
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    const connection = await this.inner.acquireConnection();
    let wrapper = this.wrappers.get(connection);
    if (!wrapper) {
      wrapper = new EncodingConnection(connection);
      this.wrappers.set(connection, wrapper);
    }
    return wrapper;
  }

  private static unwrap(connection: DatabaseConnection): DatabaseConnection {
    return connection instanceof EncodingConnection ? connection.inner : connection;
  }

  beginTransaction(connection: DatabaseConnection, settings: Parameters<Driver['beginTransaction']>[1]): Promise<void> {
    return this.inner.beginTransaction(EncodingDriver.unwrap(connection), settings);
  }

  commitTransaction(connection: DatabaseConnection): Promise<void> {
    return this.inner.commitTransaction(EncodingDriver.unwrap(connection));
  }

  rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    return this.inner.rollbackTransaction(EncodingDriver.unwrap(connection));
  }

  async savepoint(connection: DatabaseConnection, name: string, compile: Parameters<NonNullable<Driver['savepoint']>>[2]): Promise<void> {
    await this.inner.savepoint?.(EncodingDriver.unwrap(connection), name, compile);
  }

  async rollbackToSavepoint(connection: DatabaseConnection, name: string, compile: Parameters<NonNullable<Driver['savepoint']>>[2]): Promise<void> {
    await this.inner.rollbackToSavepoint?.(EncodingDriver.unwrap(connection), name, compile);
  }

  async releaseSavepoint(connection: DatabaseConnection, name: string, compile: Parameters<NonNullable<Driver['savepoint']>>[2]): Promise<void> {
    await this.inner.releaseSavepoint?.(EncodingDriver.unwrap(connection), name, compile);
  }

  releaseConnection(connection: DatabaseConnection): Promise<void> {
    return this.inner.releaseConnection(EncodingDriver.unwrap(connection));
  }

  destroy(): Promise<void> {
    return this.inner.destroy();
  }
}

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
  const dialect = new MysqlDialect({ pool });
  return {
    createAdapter: () => dialect.createAdapter(),
    createDriver: () => new EncodingDriver(dialect.createDriver()),
    createIntrospector: (db) => dialect.createIntrospector(db),
    createQueryCompiler: () => dialect.createQueryCompiler(),
  };
}
