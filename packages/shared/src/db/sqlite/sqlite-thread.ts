/**
 * Runs inside the worker thread of a SQLite database: better-sqlite3 is synchronous, so every
 * statement runs here and the process's event loop only waits for the answer. A write blocked
 * by another process's lock waits here (busy timeout), never on the event loop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { SqliteReply, SqliteRequest, SqliteThreadOptions } from './sqlite-protocol.js';

const STATEMENT_CACHE_SIZE = 200;

const options = workerData as SqliteThreadOptions;
const port = parentPort;
if (!port) throw new Error('sqlite-thread runs only as a worker thread');

function errorReply(id: number, error: unknown): SqliteReply {
  const failure = error as { message?: unknown; code?: unknown };
  return {
    id,
    error: {
      message: typeof failure?.message === 'string' ? failure.message : String(error),
      ...(typeof failure?.code === 'string' ? { code: failure.code } : {}),
    },
  };
}

/** Structured clone turns Buffers into Uint8Arrays; better-sqlite3 binds Buffers as BLOBs. */
function asBindable(value: unknown): unknown {
  return value instanceof Uint8Array && !Buffer.isBuffer(value) ? Buffer.from(value.buffer, value.byteOffset, value.byteLength) : value;
}

let db: Database.Database;
try {
  db = new Database(options.file, { timeout: options.busyTimeoutMs, fileMustExist: options.mustExist });
  // WAL lets readers in other processes go on while one writes; NORMAL is durable across
  // process crashes (a power loss may lose the last commits, never corrupt the file).
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  port.postMessage({ id: 0, ready: true } satisfies SqliteReply);
} catch (error) {
  port.postMessage(errorReply(0, error));
  process.exit(1);
}

// Prepared statements by SQL text, least recently used dropped first.
const statements = new Map<string, Database.Statement>();
function statement(sql: string): Database.Statement {
  let prepared = statements.get(sql);
  if (prepared) {
    statements.delete(sql);
  } else {
    prepared = db.prepare(sql);
    if (statements.size >= STATEMENT_CACHE_SIZE) {
      const oldest = statements.keys().next().value;
      if (oldest !== undefined) statements.delete(oldest);
    }
  }
  statements.set(sql, prepared);
  return prepared;
}

port.on('message', (request: SqliteRequest) => {
  if (request.close) {
    try {
      db.close();
      port.postMessage({ id: request.id, closed: true } satisfies SqliteReply);
    } catch (error) {
      port.postMessage(errorReply(request.id, error));
    }
    port.close();
    return;
  }
  try {
    const prepared = statement(request.sql);
    const parameters = request.parameters.map(asBindable);
    if (prepared.reader) {
      port.postMessage({ id: request.id, rows: prepared.all(parameters) as Record<string, unknown>[] } satisfies SqliteReply);
    } else {
      const { changes, lastInsertRowid } = prepared.run(parameters);
      port.postMessage({ id: request.id, changes, lastInsertRowid: Number(lastInsertRowid) } satisfies SqliteReply);
    }
  } catch (error) {
    port.postMessage(errorReply(request.id, error));
  }
});
