/**
 * The id of the HTTP request a piece of work belongs to, carried through async calls. The producer
 * sets it per request; jobs enqueued inside carry it in their data under {@link REQUEST_ID_KEY}
 * (taken out again before the payload is validated), and the worker runtime restores it while the
 * job runs, so the request's line and its jobs' lines share one `requestId`.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

/** Where a job's data keeps the id of the request that enqueued it. Processors never see it. */
export const REQUEST_ID_KEY = '$requestId';

const storage = new AsyncLocalStorage<string>();

export function runWithRequestId<T>(requestId: string | undefined, work: () => T): T {
  return requestId ? storage.run(requestId, work) : work();
}

export function currentRequestId(): string | undefined {
  return storage.getStore();
}

/** `data` with the current request id added; `data` itself when there is none. */
export function withRequestId<T>(data: T): T {
  const requestId = storage.getStore();
  if (!requestId || !data || typeof data !== 'object') return data;
  return { ...data, [REQUEST_ID_KEY]: requestId };
}

/** The request id a job's raw data carries, if any. */
export function requestIdOf(data: unknown): string | undefined {
  if (!data || typeof data !== 'object') return undefined;
  const value = (data as Record<string, unknown>)[REQUEST_ID_KEY];
  return typeof value === 'string' ? value : undefined;
}
