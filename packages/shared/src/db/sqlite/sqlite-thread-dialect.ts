import { Worker } from 'node:worker_threads';
import {
  CompiledQuery,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  type QueryCompiler,
  type QueryResult,
} from 'kysely';
import { threadModulePath } from '../../thread-module.js';
import type { SqliteReply, SqliteRequest, SqliteThreadOptions } from './sqlite-protocol.js';

/** A failure reported by SQLite, with its extended result code (`SQLITE_CONSTRAINT_UNIQUE`, …). */
export class SqliteError extends Error {
  override name = 'SqliteError';
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

function asBuffers(row: Record<string, unknown>): Record<string, unknown> {
  for (const [column, value] of Object.entries(row)) {
    if (value instanceof Uint8Array && !Buffer.isBuffer(value)) row[column] = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  }
  return row;
}

/** The worker thread that owns the database file, and the replies it still owes. */
class SqliteThread {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (reply: SqliteReply) => void; reject: (error: Error) => void }>();
  private nextId = 1;
  private failure: Error | undefined;
  readonly ready: Promise<void>;

  constructor(options: SqliteThreadOptions) {
    this.worker = new Worker(threadModulePath(import.meta.url, './sqlite-thread.js'), { workerData: options });
    // Idle, the thread must not keep the process alive; while a statement runs, the pending
    // promise does that.
    this.worker.unref();
    this.ready = new Promise((resolve, reject) => this.pending.set(0, { resolve: () => resolve(), reject }));
    this.worker.on('message', (reply: SqliteReply) => {
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      if (reply.error) waiter.reject(new SqliteError(reply.error.message, reply.error.code));
      else waiter.resolve(reply);
    });
    this.worker.on('error', (error) => this.fail(error));
    this.worker.on('exit', (code) => this.fail(new SqliteError(`the SQLite thread of ${options.file} exited (code ${code})`, 'SQLITE_THREAD_EXITED')));
  }

  get alive(): boolean {
    return this.failure === undefined;
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const waiter of this.pending.values()) waiter.reject(this.failure);
    this.pending.clear();
  }

  request(message: Omit<Extract<SqliteRequest, { close?: undefined }>, 'id'> | { close: true }): Promise<SqliteReply> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.ref();
      try {
        this.worker.postMessage({ ...message, id } as SqliteRequest);
      } catch (error) {
        // A message that cannot cross to the thread: nothing was sent.
        this.pending.delete(id);
        reject(new Error(`could not send a statement to the SQLite thread: ${(error as Error).message}`, { cause: error }));
      }
    }).finally(() => {
      if (this.pending.size === 0) this.worker.unref();
    }) as Promise<SqliteReply>;
  }

  async close(): Promise<void> {
    if (this.alive) await this.request({ close: true }).catch(() => {});
    await this.worker.terminate();
  }
}

class SqliteThreadConnection implements DatabaseConnection {
  constructor(private readonly thread: SqliteThread) {}

  async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const reply = await this.thread.request({ sql: compiledQuery.sql, parameters: compiledQuery.parameters });
    if (reply.rows) return { rows: reply.rows.map(asBuffers) as R[] };
    return {
      rows: [],
      numAffectedRows: BigInt(reply.changes ?? 0),
      ...(reply.lastInsertRowid ? { insertId: BigInt(reply.lastInsertRowid) } : {}),
    };
  }

  async *streamQuery<R>(compiledQuery: CompiledQuery, chunkSize = 100): AsyncIterableIterator<QueryResult<R>> {
    const { rows } = await this.executeQuery<R>(compiledQuery);
    for (let from = 0; from < rows.length; from += chunkSize) yield { rows: rows.slice(from, from + chunkSize) };
  }
}

/** One connection at a time: SQLite has one writer, and a transaction owns the connection. */
class ConnectionLock {
  private tail: Promise<void> = Promise.resolve();
  private release: (() => void) | undefined;

  async acquire(): Promise<void> {
    const previous = this.tail;
    let release!: () => void;
    this.tail = new Promise((resolve) => (release = resolve));
    await previous;
    this.release = release;
  }

  unlock(): void {
    const release = this.release;
    this.release = undefined;
    release?.();
  }
}

class SqliteThreadDriver implements Driver {
  private thread: SqliteThread | undefined;
  private readonly lock = new ConnectionLock();

  constructor(private readonly options: SqliteThreadOptions) {}

  /** The thread, started again if the previous one died (its pending statements failed). */
  private async liveThread(): Promise<SqliteThread> {
    if (this.thread?.alive) return this.thread;
    const thread = new SqliteThread(this.options);
    this.thread = thread;
    try {
      await thread.ready;
    } catch (error) {
      // A thread that could not open the file is gone: the next statement starts a new one.
      this.thread = undefined;
      await thread.close().catch(() => {});
      throw error;
    }
    return thread;
  }

  async init(): Promise<void> {
    await this.liveThread();
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    await this.lock.acquire();
    try {
      return new SqliteThreadConnection(await this.liveThread());
    } catch (error) {
      this.lock.unlock();
      throw error;
    }
  }

  // IMMEDIATE takes the write lock at once: a deferred transaction that reads and then writes
  // fails with SQLITE_BUSY, without waiting, when another process wrote in between.
  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('commit'));
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('rollback'));
  }

  async savepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`savepoint "${name.replace(/"/g, '""')}"`));
  }

  async rollbackToSavepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`rollback to "${name.replace(/"/g, '""')}"`));
  }

  async releaseSavepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`release "${name.replace(/"/g, '""')}"`));
  }

  async releaseConnection(): Promise<void> {
    this.lock.unlock();
  }

  async destroy(): Promise<void> {
    await this.thread?.close();
    this.thread = undefined;
  }
}

/**
 * SQLite through better-sqlite3 in a worker thread of its own: Kysely's own SQLite dialect runs
 * better-sqlite3 on the calling thread, where every statement would block the event loop.
 */
/**
 * SQLite's DDL is transactional, which Kysely's adapter does not claim: without the claim the
 * migrator runs every statement in a commit of its own, so a migration that fails midway (a
 * lock held past the busy timeout, say) is left half applied, and two processes migrating one
 * file at once interleave. With it, each run of migrations is one `begin immediate` transaction:
 * whole or not at all, and one process at a time.
 */
class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

export class SqliteThreadDialect implements Dialect {
  constructor(private readonly options: SqliteThreadOptions) {}

  createDriver(): Driver {
    return new SqliteThreadDriver(this.options);
  }

  createQueryCompiler(): QueryCompiler {
    return new SqliteQueryCompiler();
  }

  createAdapter(): DialectAdapter {
    return new TransactionalDdlSqliteAdapter();
  }

  createIntrospector(db: Kysely<any>): DatabaseIntrospector {
    return new SqliteIntrospector(db);
  }
}
