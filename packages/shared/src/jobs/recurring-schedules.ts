import type { Logger } from '../logger.js';
import type { QueueDeclaration } from '../queues/define.js';
import type { JobQueues } from './job-queues.js';

/** A job the deployment runs on a schedule. */
export interface RecurringJob {
  declaration: QueueDeclaration;
  name: string;
  payload: unknown;
  everyMs: number;
}

/**
 * Keeps the deployment's schedules in Redis. They are registered at start, and checked again
 * every `checkEveryMs`: a Redis that restarted empty, failed over to a replica without them, or a
 * queue obliterated from the dashboard loses them, and with them the sweep that repairs what such
 * a loss leaves behind. A schedule found missing (or at another interval) is registered again;
 * one in place is left alone, so its next run keeps its time. Every replica may do this: the
 * registration is idempotent.
 */
export async function keepScheduled(
  jobs: JobQueues,
  recurring: readonly RecurringJob[],
  options: { checkEveryMs?: number; logger: Logger },
): Promise<() => void> {
  for (const job of recurring) await jobs.schedule(job.declaration, job.name, job.payload, { every: job.everyMs });
  let checking = false;
  const check = async () => {
    if (checking) return;
    checking = true;
    try {
      for (const job of recurring) {
        if ((await jobs.scheduledEvery(job.declaration, job.name)) === job.everyMs) continue;
        await jobs.schedule(job.declaration, job.name, job.payload, { every: job.everyMs });
        options.logger.warn({ queue: job.declaration.name, job: job.name, everyMs: job.everyMs }, 'schedule was missing from Redis: registered again');
      }
    } catch (error) {
      // Redis away: the next check tries again.
      options.logger.debug({ err: error }, 'could not check the schedules');
    } finally {
      checking = false;
    }
  };
  const timer = setInterval(() => void check(), options.checkEveryMs ?? 60_000);
  timer.unref();
  return () => clearInterval(timer);
}
