import { ClipLineApiError } from '../errors.js';
import { printable } from './format.js';

/**
 * One line for a user: the API's own detail and status (with the wait the server asked for, when
 * it asked), or the error's message; {@link printable} either way.
 */
export function describeError(error: unknown): string {
  if (error instanceof ClipLineApiError) {
    const wait =
      error.retryAfterMs !== undefined && [429, 503].includes(error.status) ? `; the server asks to wait ${Math.ceil(error.retryAfterMs / 1000)} s` : '';
    return printable(`${error.problem.detail} (${error.status} ${error.problem.title})${wait}`);
  }
  return printable(error instanceof Error ? error.message : String(error));
}
