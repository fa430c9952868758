import { CompiledQuery, MysqlDialect, type DatabaseConnection, type Dialect, type Driver, type QueryResult } from 'kysely';
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
 * What every connection agrees on: UTC (DATETIME columns hold UTC, as pg's timestamptz reads),
 * strict mode (an over-long value is an error, never silently cut), and the statement timeout
 * (MariaDB's max_statement_time, or MySQL's max_execution_time for SELECTs).
 */
async function prepareSession(connection: DatabaseConnection, statementTimeoutMs: number): Promise<void> {
  await connection.executeQuery(CompiledQuery.raw("set time_zone = '+00:00'"));
  await connection.executeQuery(
    CompiledQuery.raw("set session sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'"),
  );
  try {
    await connection.executeQuery(CompiledQuery.raw(`set session max_statement_time = ${statementTimeoutMs / 1000}`));
  } catch (error) {
    if ((error as { errno?: number }).errno !== UNKNOWN_SYSTEM_VARIABLE) throw error;
    await connection.executeQuery(CompiledQuery.raw(`set session max_execution_time = ${Math.round(statementTimeoutMs)}`));
  }
}

export interface MysqlPoolSettings {
  poolSize: number;
  statementTimeoutMs: number;
  /** Connect without selecting the database (to create it). */
  withoutDatabase?: boolean;
}

export function createMysqlPool(target: MysqlTarget, settings: Pick<MysqlPoolSettings, 'poolSize' | 'withoutDatabase'>): mysql.Pool {
  return mysql.createPool({
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
    // JSON columns come back as text on MariaDB (where JSON is LONGTEXT) and parsed on MySQL:
    // text on both, so one decoder reads them.
    typeCast: (field, next) => (field.type === 'JSON' ? field.string('utf8') : next()),
  });
}

export function createMysqlDialect(target: MysqlTarget, settings: MysqlPoolSettings): Dialect {
  const dialect = new MysqlDialect({
    pool: createMysqlPool(target, settings),
    onCreateConnection: (connection) => prepareSession(connection, settings.statementTimeoutMs),
  });
  return {
    createAdapter: () => dialect.createAdapter(),
    createDriver: () => new EncodingDriver(dialect.createDriver()),
    createIntrospector: (db) => dialect.createIntrospector(db),
    createQueryCompiler: () => dialect.createQueryCompiler(),
  };
}
