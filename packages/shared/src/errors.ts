/** Turns anything thrown into an Error, keeping the original as `cause`. */
export function coerceError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  if (typeof thrown === 'string') return new Error(thrown);
  let text: string;
  try {
    text = JSON.stringify(thrown);
  } catch {
    text = String(thrown);
  }
  return new Error(`non-error thrown: ${text}`, { cause: thrown });
}

/**
 * A failure that retrying cannot fix (bad input, a file that is not a video). Workers turn it
 * into BullMQ's UnrecoverableError so the job fails at once with this message.
 */
export class PermanentJobError extends Error {
  override name = 'PermanentJobError';
}

/** Short, single-line reason fit for an API response. */
export function reasonOf(thrown: unknown, maxLength = 500): string {
  const message = coerceError(thrown).message.replace(/\s+/g, ' ').trim();
  return message.length > maxLength ? `${message.slice(0, maxLength - 1)}…` : message;
}

/**
 * Abort reason given to running jobs when their worker shuts down past its grace period. The
 * job is put back in the queue for another worker; it is neither a failure nor an attempt.
 */
export class WorkerClosingError extends Error {
  override name = 'WorkerClosingError';
  constructor() {
    super('worker is shutting down; the job goes back to the queue');
  }
}

export function isWorkerClosing(error: unknown, signal?: AbortSignal): boolean {
  return error instanceof WorkerClosingError || (signal?.aborted === true && signal.reason instanceof WorkerClosingError);
}

/** Abort reason given to a running job whose video was cancelled through the API. */
export class JobCancelledError extends Error {
  override name = 'JobCancelledError';
  constructor() {
    super('cancelled on request');
  }
}

/**
 * Codes of a database that cannot serve right now, per engine: PostgreSQL's shutdown and
 * connection classes (57P0x, 08xxx), MySQL/MariaDB's lost connections and server shutdown,
 * SQLite's lock still held by another process after the busy timeout, or its thread gone (the
 * next statement starts a new one). Deadlocks and
 * serialization failures are in the same class: the whole job runs again, and its writes are
 * idempotent.
 */
const DATABASE_OUTAGE_CODES = new Set([
  '57P01', '57P02', '57P03', '08000', '08001', '08003', '08006', '40001', '40P01',
  'PROTOCOL_CONNECTION_LOST', 'ER_SERVER_SHUTDOWN', 'ER_CON_COUNT_ERROR', 'ER_LOCK_DEADLOCK', 'ER_LOCK_WAIT_TIMEOUT', 'ER_CONNECTION_KILLED',
  'SQLITE_BUSY', 'SQLITE_BUSY_SNAPSHOT', 'SQLITE_BUSY_RECOVERY', 'SQLITE_LOCKED', 'SQLITE_THREAD_EXITED',
]);

/**
 * Whether an error means the database (or another dependency) cannot be reached right now, as
 * opposed to a failure of the job's own work: the connection was refused or dropped, or the
 * server is starting or shutting down. Such jobs wait and retry without spending an attempt.
 */
export function isDependencyOutage(thrown: unknown): boolean {
  const error = thrown as { code?: unknown; syscall?: unknown; message?: unknown; fatal?: unknown } | null;
  if (!error || typeof error !== 'object') return false;
  if (typeof error.code === 'string' && DATABASE_OUTAGE_CODES.has(error.code)) return true;
  if ((error.code === 'ECONNREFUSED' || error.code === 'ETIMEDOUT') && error.syscall === 'connect') return true;
  // mysql2 marks errors that broke the connection as fatal (ECONNRESET, EPIPE on a dropped socket).
  if (error.fatal === true && (error.code === 'ECONNRESET' || error.code === 'EPIPE' || error.code === 'ECONNREFUSED')) return true;
  return (
    typeof error.message === 'string' &&
    /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Pool is closed|Can't add new command when connection is in closed state)/.test(error.message)
  );
}
