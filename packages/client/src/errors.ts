import type { Problem } from './types.js';

/** The API answered with an error status; `problem` is its problem+json body. */
export class ClipLineApiError extends Error {
  override name = 'ClipLineApiError';
  readonly status: number;
  readonly problem: Problem;
  /** The server's `Retry-After`, in milliseconds, when it sent one. */
  readonly retryAfterMs: number | undefined;

  constructor(
    readonly method: string,
    readonly url: string,
    problem: Problem,
    retryAfterMs?: number,
  ) {
    super(`${method} ${new URL(url).pathname} failed with ${problem.status} ${problem.title}: ${problem.detail}`);
    this.status = problem.status;
    this.problem = problem;
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * The server could not be reached, or the connection broke before an answer arrived; with
 * `brokeAfter`, the answer's body broke off (or stalled) after that many bytes.
 */
export class ClipLineConnectionError extends Error {
  override name = 'ClipLineConnectionError';
  constructor(
    readonly url: string,
    cause: unknown,
    brokeAfter?: { received: number; expected: number | null },
  ) {
    const where = brokeAfter
      ? `the download from ${new URL(url).origin} broke off after ${brokeAfter.received}${brokeAfter.expected === null ? '' : ` of ${brokeAfter.expected}`} bytes`
      : `could not reach ${new URL(url).origin}`;
    super(`${where}: ${describeNetworkFailure(cause)}`, { cause });
  }
}

/** A downloaded file could not be written here (a full disk, a file-size limit): this machine's problem, not the server's. */
export class ClipLineFileError extends Error {
  override name = 'ClipLineFileError';
  constructor(
    readonly path: string,
    cause: unknown,
  ) {
    const code = (cause as NodeJS.ErrnoException | undefined)?.code;
    const reason = code === 'ENOSPC' ? 'no space left on the device' : code === 'EFBIG' ? 'the file is larger than this process may write' : undefined;
    super(`could not write ${path}: ${reason ? `${reason} (${code})` : cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** The server answered something that is not the API's format (not JSON, not an event stream). */
export class ClipLineProtocolError extends Error {
  override name = 'ClipLineProtocolError';
}

/** undici hides the useful part (ECONNREFUSED, …) in `cause`. */
function describeNetworkFailure(failure: unknown): string {
  const error = failure as { name?: string; message?: string; cause?: { code?: string; message?: string } } | undefined;
  if (error?.name === 'TimeoutError') return 'request timed out';
  const inner = error?.cause;
  if (inner?.code) return `${inner.code}${inner.message && !inner.message.includes(inner.code) ? ` (${inner.message})` : ''}`;
  return inner?.message ?? error?.message ?? String(failure);
}
