import type { Job, Queue } from 'bullmq';
import type { QueueActionActor, QueueActionsRepository } from '../db/queue-actions-repository.js';
import type { QueueActionKind } from '../db/tables/operations.js';
import { withRetries } from '../retries.js';

/** Failed jobs are read this many at a time while looking for those a filter matches. */
const PAGE = 500;

/**
 * Whether a failed job matches an operator's reason filter: the filter is a case-sensitive
 * substring of the job's failure reason (`failedReason`); no filter, or an empty one, matches
 * every failed job.
 */
export function failureMatches(failedReason: string | undefined, reason: string | null): boolean {
  if (!reason) return true;
  return (failedReason ?? '').includes(reason);
}

/**
 * The failed jobs of `queue` whose reason matches, read in full before anything is changed:
 * retrying or removing moves jobs out of the failed set, which would shift the pages.
 */
export async function matchingFailedJobs(queue: Queue, reason: string | null): Promise<Job[]> {
  const matched: Job[] = [];
  for (let start = 0; ; start += PAGE) {
    const page = (await queue.getFailed(start, start + PAGE - 1)) as Job[];
    for (const job of page) if (job && failureMatches(job.failedReason, reason)) matched.push(job);
    if (page.length < PAGE) return matched;
  }
}

/** Moves the matching failed jobs back to waiting with their attempts reset; returns how many moved. */
export async function retryFailedJobs(queue: Queue, reason: string | null): Promise<number> {
  let retried = 0;
  for (const job of await matchingFailedJobs(queue, reason)) {
    // A job retried or removed by someone else in the meantime is skipped, not counted.
    const moved = await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true }).then(
      () => true,
      () => false,
    );
    if (moved) retried += 1;
  }
  return retried;
}

/** Removes the matching failed jobs (and, for a flow's parent, its children); returns how many went. */
export async function discardFailedJobs(queue: Queue, reason: string | null): Promise<number> {
  let removed = 0;
  for (const job of await matchingFailedJobs(queue, reason)) {
    const gone = await job.remove().then(
      () => true,
      () => false,
    );
    if (gone) removed += 1;
  }
  return removed;
}

export interface QueueActionOutcome {
  queue: string;
  action: QueueActionKind;
  reasonFilter: string | null;
  /** Jobs retried or discarded; 0 for a pause or resume. */
  affected: number;
  auditId: string;
}

/**
 * The operator actions on queues, shared by the producer's admin API and the dashboard. Each is
 * written to the audit (`queue_actions`) with who asked before it runs, so no action goes
 * unrecorded (a database that is away stops it before it starts), and completed once it ran with
 * how many jobs it touched, or why it failed.
 */
export class QueueOperations {
  private readonly queues: Map<string, Queue>;

  constructor(
    queues: readonly Queue[],
    private readonly audit: QueueActionsRepository,
  ) {
    this.queues = new Map(queues.map((queue) => [queue.name, queue]));
  }

  has(queueName: string): boolean {
    return this.queues.has(queueName);
  }

  /** Runs `action` on the named queue; undefined when there is no such queue. */
  async run(queueName: string, action: QueueActionKind, request: { actor: QueueActionActor; reason?: string | null }): Promise<QueueActionOutcome | undefined> {
    const queue = this.queues.get(queueName);
    if (!queue) return undefined;
    const reasonFilter = action === 'retry-failed' || action === 'discard-failed' ? request.reason || null : null;
    const auditId = await this.audit.start({ actor: request.actor, action, queue: queueName, reasonFilter });
    let affected = 0;
    try {
      if (action === 'retry-failed') affected = await retryFailedJobs(queue, reasonFilter);
      else if (action === 'discard-failed') affected = await discardFailedJobs(queue, reasonFilter);
      else if (action === 'pause') await queue.pause();
      else await queue.resume();
    } catch (error) {
      await this.finish(auditId, { affected, error: String((error as { message?: unknown })?.message ?? error) }).catch(() => {});
      throw error;
    }
    // The action ran: a database blink here leaves its row unfinished, but does not fail it (a retry would run it again).
    await this.finish(auditId, { affected }).catch(() => {});
    return { queue: queueName, action, reasonFilter, affected, auditId };
  }

  private finish(auditId: string, outcome: { affected: number; error?: string }): Promise<void> {
    return withRetries(() => this.audit.finish(auditId, outcome), { attempts: 5, firstDelayMs: 100, maxDelayMs: 1000 });
  }
}
