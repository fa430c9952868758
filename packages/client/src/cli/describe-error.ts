import { ClipLineApiError } from '../errors.js';

/** One line for a user: the API's own detail and status, or the error's message. */
export function describeError(error: unknown): string {
  if (error instanceof ClipLineApiError) return `${error.problem.detail} (${error.status} ${error.problem.title})`;
  return error instanceof Error ? error.message : String(error);
}
