import { types } from 'node:util';
/** Turns anything thrown into an Error, keeping the original as `cause`. */
export function coerceError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  // An error of another realm (a vm context, as test runners use) is an error all the same.
  if (types.isNativeError(thrown)) return thrown as Error;
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

/**
 * A failed attempt whose other side said when to come back (a webhook receiver's 429 or 503 with
 * `Retry-After`): retried as any failure, spending an attempt, but not sooner than it asked (up to
 * {@link RETRY_AFTER_CAP_MS}) when its queue's backoff is {@link RETRY_AFTER_BACKOFF}.
 */
export class RetryAfterError extends Error {
  override name = 'RetryAfterError';
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(message);
  }
}

/** The longest a `Retry-After` is honoured: a receiver asking for a day is tried again in an hour. */
export const RETRY_AFTER_CAP_MS = 3_600_000;

/** The backoff type of exponential backoff (with the queue's delay and jitter) that waits at least what a {@link RetryAfterError} asked. */
export const RETRY_AFTER_BACKOFF = 'exponential-or-retry-after';

/**
 * BullMQ's backoff for {@link RETRY_AFTER_BACKOFF}: its own exponential delay for the attempt
 * (`delay × 2^(attempts - 1)`, less up to `jitter` of it at random), or what the error asked if
 * that is longer.
 */
export function retryAfterBackoff(attemptsMade: number, backoff: { delay?: number; jitter?: number } | undefined, error: unknown): number {
  const full = Math.round(2 ** Math.max(0, attemptsMade - 1) * (backoff?.delay ?? 1000));
  const jitter = Math.min(1, Math.max(0, backoff?.jitter ?? 0));
  const exponential = Math.floor(full * (1 - jitter * Math.random()));
  const asked = error instanceof RetryAfterError ? Math.min(RETRY_AFTER_CAP_MS, Math.max(0, error.retryAfterMs)) : 0;
  return Math.max(exponential, asked);
}

/**
 * An upstream asked us to wait (a 429 with Retry-After, a pause another process set, the shared
 * limiter). The worker pauses the whole queue for `retryAfterMs` and the job goes back to
 * waiting without spending an attempt. A limit the upstream itself keeps setting (its 429s, not
 * our own limiter) is waited for no longer than an outage of it: with `options.upstream`, the
 * job's waits are bounded by the same horizon (see {@link upstreamOutageVerdict}).
 */
export class RateLimitedError extends Error {
  override name = 'RateLimitedError';
  /** The limit as an unavailability of its upstream, when the upstream set it. */
  readonly upstream: UpstreamOutageError | undefined;

  constructor(
    message: string,
    /** Milliseconds before the queue may run jobs again. */
    readonly retryAfterMs: number,
    options: { cause?: unknown; upstream?: { name: string; horizonMs: number } } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const { upstream } = options;
    this.upstream = upstream ? new UpstreamOutageError(upstream.name, message, retryAfterMs, upstream.horizonMs) : undefined;
  }
}

/**
 * A dependency (the database, most often) cannot serve right now. The job waits and runs again
 * without spending an attempt. Driver errors with an outage code are recognised as well; throw
 * this one where the code itself finds the dependency away.
 */
export class DependencyOutageError extends Error {
  override name = 'DependencyOutageError';
}

/**
 * An upstream service the job needs failed it for reasons of its own (5xx, timeouts, refused
 * connections, an open circuit breaker). When the upstream is judged down (`judged`: its breaker
 * is open, or was within its last window), calling it now would fail again: the job waits
 * `retryAfterMs` (until the breaker lets a trial call through) and runs again without spending an
 * attempt. A failure of an upstream not judged down is first retried by the job's attempts, with
 * backoff, like any transient error; only once they are used up does the job wait for the
 * upstream the same way. Waiting is bounded: once a job has waited for this upstream for
 * `horizonMs`, counted from its first wait (see {@link upstreamOutageVerdict}), it gives up — an
 * optional video step is skipped, anything else fails with the reason.
 */
export class UpstreamOutageError extends Error {
  override name = 'UpstreamOutageError';
  /** When the outage was met (epoch ms); every verdict on this error is taken at this instant. */
  readonly observedAt = Date.now();
  /** Whether the upstream is judged down (its breaker): then the job waits at once, before its attempts are used up. */
  readonly judged: boolean;

  constructor(
    /** The upstream that is away, e.g. `stability`. */
    readonly upstream: string,
    message: string,
    /** Milliseconds until the upstream may be tried again. */
    readonly retryAfterMs: number,
    /** Longest a job waits for this upstream in all, from its first wait (PROVIDER_OUTAGE_MAX_SECONDS). */
    readonly horizonMs: number,
    options: { cause?: unknown; judged?: boolean; horizonSetting?: string } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.judged = options.judged ?? true;
    this.horizonSetting = options.horizonSetting ?? 'PROVIDER_OUTAGE_MAX_SECONDS';
  }

  /** What sets the horizon, as the reason of a job that gave up names it. */
  readonly horizonSetting: string;
}

/** What a job keeps (in its own data) about an upstream it has waited for. */
export interface UpstreamWait {
  /** Epoch ms of the job's first wait for this upstream. */
  since: number;
  /** How many times the job was put back to wait for it. */
  deferrals: number;
}

/** Wait `delayMs` more, or give up with a reason that names the upstream and the horizon. */
export type UpstreamOutageVerdict = { wait: true; delayMs: number } | { wait: false; reason: string };

const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;

/**
 * Whether a job that met `outage` waits for its upstream again or gives up: it gives up once it
 * has waited `horizonMs` since its first wait (`earlier`, kept in the job), and never waits past
 * that point. A pure function of the error and the job's record, so the step bookkeeping and the
 * worker runtime, which both ask, always agree.
 */
export function upstreamOutageVerdict(outage: UpstreamOutageError, earlier: UpstreamWait | undefined): UpstreamOutageVerdict {
  const waitedMs = Math.max(0, outage.observedAt - (earlier?.since ?? outage.observedAt));
  const leftMs = outage.horizonMs - waitedMs;
  if (leftMs <= 0) {
    return {
      wait: false,
      reason:
        `gave up waiting for ${outage.upstream}: unavailable for ${seconds(waitedMs)}, the limit is ${seconds(outage.horizonMs)} ` +
        `(${outage.horizonSetting}); last error: ${outage.message}`,
    };
  }
  return { wait: true, delayMs: Math.max(1, Math.min(outage.retryAfterMs, leftMs)) };
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

/**
 * Abort reason given to a running job whose lock could not be renewed: Redis answered that the
 * lock is gone (it expired while Redis was away, and the stall check may have handed the job to
 * another worker). This run no longer owns the job: it stops, records nothing and leaves the job
 * as it is in the queue.
 */
export class JobLockLostError extends Error {
  override name = 'JobLockLostError';
  constructor(jobId: string) {
    super(`the lock of job ${jobId} was lost; another worker may run it now`);
  }
}

export function isWorkerClosing(error: unknown, signal?: AbortSignal): boolean {
  return error instanceof WorkerClosingError || (signal?.aborted === true && signal.reason instanceof WorkerClosingError);
}

/** Abort reason given to a running job whose video was cancelled through the API. */
export class JobCancelledError extends Error {
  override name = 'JobCancelledError';
  constructor(message = 'cancelled on request') {
    super(message);
  }
}

/**
 * Abort reason given to a running job whose work is no longer wanted, though nobody cancelled
 * it: an optional step of a video that failed meanwhile. It stops like a cancelled job.
 */
export class JobAbandonedError extends JobCancelledError {
  override name = 'JobAbandonedError';
  constructor(reason: string) {
    super(`stopped: ${reason}`);
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
  '57P01',
  '57P02',
  '57P03',
  '08000',
  '08001',
  '08003',
  '08006',
  '40001',
  '40P01',
  // Too many connections (server-wide, or the role's limit), an idle session ended by the server.
  '53300',
  '57P05',
  'PROTOCOL_CONNECTION_LOST',
  'ER_SERVER_SHUTDOWN',
  'ER_CON_COUNT_ERROR',
  'ER_LOCK_DEADLOCK',
  'ER_LOCK_WAIT_TIMEOUT',
  'ER_CONNECTION_KILLED',
  'SQLITE_BUSY',
  'SQLITE_BUSY_SNAPSHOT',
  'SQLITE_BUSY_RECOVERY',
  'SQLITE_LOCKED',
  'SQLITE_THREAD_EXITED',
]);

/** A socket's errors when its peer went away while it was in use. */
const DROPPED_SOCKET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT']);

/**
 * Whether an error means the database (or another dependency) cannot be reached right now, as
 * opposed to a failure of the job's own work: the connection was refused or dropped, or the
 * server is starting or shutting down. Such jobs wait and retry without spending an attempt.
 */
export function isDependencyOutage(thrown: unknown): boolean {
  if (thrown instanceof DependencyOutageError) return true;
  const error = thrown as { code?: unknown; syscall?: unknown; message?: unknown; fatal?: unknown } | null;
  if (!error || typeof error !== 'object') return false;
  if (typeof error.code === 'string' && DATABASE_OUTAGE_CODES.has(error.code)) return true;
  if ((error.code === 'ECONNREFUSED' || error.code === 'ETIMEDOUT') && error.syscall === 'connect') return true;
  // mysql2 marks errors that broke the connection as fatal (ECONNRESET, EPIPE on a dropped socket).
  if (error.fatal === true && (error.code === 'ECONNRESET' || error.code === 'EPIPE' || error.code === 'ECONNREFUSED')) return true;
  // pg hands a socket's own error to the statements waiting on it: the connection dropped under
  // them (a failover, a proxy's reset, keepalive giving up). got's errors carry no syscall.
  if (DROPPED_SOCKET_CODES.has(error.code as string) && (error.syscall === 'read' || error.syscall === 'write')) return true;
  return (
    typeof error.message === 'string' &&
    /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Pool is closed|Can't add new command when connection is in closed state)/.test(
      error.message,
    )
  );
}

/**
 * Errors of a lost Redis or database connection, the kind a client may retry a little later: a
 * {@link isDependencyOutage} one, or what ioredis and BullMQ say when Redis (or a Redis Cluster
 * between a primary's death and its replica's promotion) cannot be reached.
 */
export function isRedisOrDatabaseOutage(error: unknown): boolean {
  if (isDependencyOutage(error)) return true;
  const text = `${(error as Error)?.name} ${(error as Error)?.message} ${(error as { code?: string })?.code}`;
  return /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|Connection is closed|Stream isn't writeable|enableOfflineQueue|ENOTFOUND|Connection terminated|timeout exceeded when trying to connect|max retries per request|CLUSTERDOWN|TRYAGAIN|MASTERDOWN|Too many Cluster redirections|Failed to refresh slots cache|Command timed out/i.test(
    text,
  );
}

/**
 * What a job's failure means for the job, in the order it is decided:
 * - `cancelled`: its video was cancelled through the API, or its work abandoned (the reason says
 *   which); fail it for good, quietly.
 * - `lock-lost`: the job's lock was lost; this run stops and leaves the job alone (another run owns it).
 * - `worker-closing`: this worker shuts down; hand the job back to the queue, no attempt spent.
 * - `rate-limited`: pause the queue for `retryAfterMs`, no attempt spent; when the upstream set
 *   the limit (`upstream`), up to the outage horizon, as for an outage.
 * - `upstream-outage`: an upstream is judged down (its breaker is open), or failed the job's last
 *   attempt; wait until it may be tried again, no attempt spent, up to the outage horizon (see
 *   {@link upstreamOutageVerdict}). An upstream failure before that is `transient`.
 * - `dependency-outage`: wait for the dependency, no attempt spent.
 * - `permanent`: retrying cannot help; fail at once.
 * - `transient`: anything else; BullMQ retries with backoff while attempts remain.
 */
export type JobErrorKind =
  | { kind: 'cancelled'; reason: string }
  | { kind: 'lock-lost' }
  | { kind: 'worker-closing' }
  | { kind: 'rate-limited'; retryAfterMs: number; upstream?: UpstreamOutageError }
  | { kind: 'upstream-outage'; outage: UpstreamOutageError }
  | { kind: 'dependency-outage' }
  | { kind: 'permanent' }
  | { kind: 'transient' };

/**
 * Classifies a job's error (and the abort reason of its signal) once, for the worker runtime and
 * the step bookkeeping alike; `attempt.last` says the job has no attempt left after this one. Processors signal a permanent failure with {@link PermanentJobError};
 * the runtime alone turns it into BullMQ's UnrecoverableError.
 */
export function classifyJobError(thrown: unknown, signal?: AbortSignal, attempt: { last?: boolean } = {}): JobErrorKind {
  if (thrown instanceof JobLockLostError || (signal?.aborted && signal.reason instanceof JobLockLostError)) return { kind: 'lock-lost' };
  if (signal?.aborted && signal.reason instanceof JobCancelledError) return { kind: 'cancelled', reason: signal.reason.message };
  if (thrown instanceof JobCancelledError) return { kind: 'cancelled', reason: thrown.message };
  if (isWorkerClosing(thrown, signal)) return { kind: 'worker-closing' };
  if (thrown instanceof RateLimitedError && thrown.retryAfterMs > 0) {
    return { kind: 'rate-limited', retryAfterMs: thrown.retryAfterMs, ...(thrown.upstream ? { upstream: thrown.upstream } : {}) };
  }
  if (thrown instanceof UpstreamOutageError && (thrown.judged || attempt.last)) return { kind: 'upstream-outage', outage: thrown };
  if (isDependencyOutage(thrown)) return { kind: 'dependency-outage' };
  if (thrown instanceof PermanentJobError) return { kind: 'permanent' };
  return { kind: 'transient' };
}
