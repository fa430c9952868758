/** The one module of the provider layer that touches BullMQ: turning a provider pause into a queue pause. */
import { Worker } from 'bullmq';
import { ProviderRateLimitedError } from './provider-errors.js';

/** What sets a queue's manual rate limit: a BullMQ `Worker` (or, from BullMQ 5.x on, a `Queue`). */
export interface RateLimitTarget {
  rateLimit(expireTimeMs: number): Promise<void>;
}

/**
 * Call first thing in a processor's `catch`: when `error` is a {@link ProviderRateLimitedError}
 * (a 429 with Retry-After, a pause another process set, or the shared limiter), it rate-limits
 * the queue for `retryAfterMs` and throws BullMQ's RateLimitError, which moves the job back to
 * waiting without spending an attempt. Any other error returns, so the caller rethrows it.
 *
 * Every process honours the pause in any case, because the provider clients check the shared
 * Redis pause key before each call. For BullMQ itself to stop handing out jobs of the queue to
 * all workers (not only this one), give the Worker a `limiter` (e.g. `{ max: 1_000_000,
 * duration: 1000 }`): BullMQ reads the manual rate-limit key only when a limiter is set.
 *
 * @example
 * const worker = new Worker('ai', async (job) => {
 *   try {
 *     return await clients.openai.chatCompletion({ messages });
 *   } catch (error) {
 *     await pauseQueueIfRateLimited(worker, error);
 *     throw toJobError(error);
 *   }
 * }, { connection, limiter: { max: 1_000_000, duration: 1000 } });
 */
export async function pauseQueueIfRateLimited(target: RateLimitTarget, error: unknown): Promise<void> {
  if (!(error instanceof ProviderRateLimitedError)) return;
  await target.rateLimit(error.retryAfterMs);
  throw Worker.RateLimitError();
}
