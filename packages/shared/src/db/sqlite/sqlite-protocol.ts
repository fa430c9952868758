/** Messages between a SQLite database's worker thread and the process that owns it. */

export interface SqliteThreadOptions {
  file: string;
  /** Milliseconds a statement waits for another process's lock before SQLITE_BUSY. */
  busyTimeoutMs: number;
  /** Fail with SQLITE_CANTOPEN instead of creating a missing file. */
  mustExist: boolean;
}

export type SqliteRequest = { id: number; close?: undefined; sql: string; parameters: readonly unknown[] } | { id: number; close: true };

export interface SqliteReply {
  id: number;
  ready?: boolean;
  closed?: boolean;
  rows?: Record<string, unknown>[];
  changes?: number;
  lastInsertRowid?: number;
  error?: { message: string; code?: string };
}
