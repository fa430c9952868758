import type { Job, Queue } from 'bullmq';
import type { QueueActionActor, QueueActionsRepository } from '../db/queue-actions-repository.js';
import type { QueueActionKind, QueueOperationKind, ReasonMatch } from '../db/tables/operations.js';
import { DependencyOutageError } from '../errors.js';
import { withRetries } from '../retries.js';
import { UPSTREAM_WAITS_KEY, withoutUpstreamWaits } from './worker-runtime.js';

/** Failed jobs are read this many at a time while looking for those a filter matches. */
const PAGE = 500;

/** An action on a failure group that names none: refused, since no filter means every failed job. */
export class EmptyFailureGroupError extends Error {
  override name = 'EmptyFailureGroupError';
  constructor() {
    super('a failure group is never empty: name the group to act on (match "group" needs a reason)');
  }
}

/** The label of a failure with no reason recorded, in the groups and as their filter. */
const NO_REASON = 'no reason recorded';

/**
 * The group a failure belongs to: the first line of its reason that holds more than blanks,
 * trimmed and bounded (what the dashboard lists, and what its buttons send to act on that group
 * alone). Never empty: an empty filter means every failed job, so a group of "" would make a
 * button for one group act on all of them.
 */
export function failureGroupOf(failedReason: string | undefined): string {
  const firstLine = (failedReason ?? '').split('\n').find((line) => line.trim() !== '') ?? NO_REASON;
  return firstLine.trim().slice(0, 200);
}

/**
 * Whether a failed job matches an operator's reason filter. `contains`: the filter is a
 * case-sensitive substring of the job's failure reason (`failedReason`); `group`: the reason's
 * group ({@link failureGroupOf}) is the filter exactly. No filter, or an empty one, matches every
 * failed job.
 */
export function failureMatches(failedReason: string | undefined, reason: string | null, match: ReasonMatch = 'contains'): boolean {
  if (!reason) return true;
  if (match === 'group') return failureGroupOf(failedReason) === reason;
  return (failedReason ?? '').includes(reason);
}

/**
 * The ids of the failed jobs of `queue` whose reason matches, all found before anything is
 * changed: retrying or removing moves jobs out of the failed set, which would shift the pages.
 * Only ids are kept (a queue keeps up to 50,000 failed jobs, each with its data and stack).
 */
export async function matchingFailedJobIds(queue: Queue, reason: string | null, match: ReasonMatch = 'contains'): Promise<string[]> {
  const matched: string[] = [];
  for (let start = 0; ; start += PAGE) {
    const page = (await queue.getFailed(start, start + PAGE - 1)) as Job[];
    for (const job of page) if (job?.id && failureMatches(job.failedReason, reason, match)) matched.push(job.id);
    if (page.length < PAGE) return matched;
  }
}

/** A reason filter: a substring (`contains`), or one with how it is matched; null for every failed job. */
export type ReasonFilter = string | null | { reason: string | null; match: ReasonMatch };

/** How far an action over failed jobs got: the jobs it moved or removed so far. */
export interface ActionTally {
  affected: number;
}

/**
 * Applies `act` to each matching failed job and counts those it moved. A job that would not move
 * (retried or removed by someone else meanwhile, or a flow's parent whose running children lock
 * it) is skipped, not counted; a failure that leaves even its state unreadable (Redis away)
 * stops the action there, `tally` saying how far it got.
 */
async function eachFailedJob(queue: Queue, filter: ReasonFilter, tally: ActionTally, act: (job: Job) => Promise<unknown>): Promise<number> {
  const { reason, match } = typeof filter === 'object' && filter !== null ? filter : { reason: filter, match: 'contains' as const };
  for (const id of await matchingFailedJobIds(queue, reason, match)) {
    try {
      const job = await queue.getJob(id);
      // Gone meanwhile (removed by someone else): nothing to move.
      if (!job) continue;
      await act(job);
      tally.affected += 1;
    } catch (error) {
      const state = await queue.getJobState(id).catch(() => undefined);
      if (state === undefined) throw error;
    }
  }
  return tally.affected;
}

/**
 * Moves the matching failed jobs back to waiting with their attempts reset, and their record of
 * upstream waits dropped (an outage of hours ago must not count against the new run); returns
 * how many moved.
 */
export function retryFailedJobs(queue: Queue, reason: ReasonFilter, tally: ActionTally = { affected: 0 }): Promise<number> {
  return eachFailedJob(queue, reason, tally, async (job) => {
    if (job.data && typeof job.data === 'object' && UPSTREAM_WAITS_KEY in job.data) await job.updateData(withoutUpstreamWaits(job.data));
    await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
  });
}

/** Removes the matching failed jobs (and, for a flow's parent, its children); returns how many went. */
export function discardFailedJobs(queue: Queue, reason: ReasonFilter, tally: ActionTally = { affected: 0 }): Promise<number> {
  return eachFailedJob(queue, reason, tally, (job) => job.remove());
}

export interface QueueActionOutcome {
  queue: string;
  action: QueueActionKind;
  reasonFilter: string | null;
  /** How the filter was matched. */
  reasonMatch: ReasonMatch;
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
    /**
     * Whether the queues' Redis connection is up. While it is not, an action is refused before it
     * starts (a {@link DependencyOutageError}): BullMQ would hold its commands until the connection
     * is first made, and run an action its caller has long given up on. Absent: always tried.
     */
    private readonly redisReady: () => boolean = () => true,
  ) {
    this.queues = new Map(queues.map((queue) => [queue.name, queue]));
  }

  has(queueName: string): boolean {
    return this.queues.has(queueName);
  }

  /** Runs `action` on the named queue; undefined when there is no such queue. */
  async run(
    queueName: string,
    action: QueueOperationKind,
    request: { actor: QueueActionActor; reason?: string | null; match?: ReasonMatch },
  ): Promise<QueueActionOutcome | undefined> {
    const queue = this.queues.get(queueName);
    if (!queue) return undefined;
    // A group is never empty: asked for an empty one, act on none rather than on every failed job.
    if (request.match === 'group' && !request.reason?.trim() && (action === 'retry-failed' || action === 'discard-failed')) {
      throw new EmptyFailureGroupError();
    }
    const reasonFilter = action === 'retry-failed' || action === 'discard-failed' ? request.reason || null : null;
    const reasonMatch: ReasonMatch = reasonFilter !== null && request.match === 'group' ? 'group' : 'contains';
    if (!this.redisReady()) throw new DependencyOutageError('Redis is unreachable; the queue action was not started');
    const auditId = await this.audit.start({ actor: request.actor, action, queue: queueName, reasonFilter, reasonMatch });
    const tally: ActionTally = { affected: 0 };
    const filter = { reason: reasonFilter, match: reasonMatch };
    try {
      if (action === 'retry-failed') await retryFailedJobs(queue, filter, tally);
      else if (action === 'discard-failed') await discardFailedJobs(queue, filter, tally);
      else if (action === 'pause') await queue.pause();
      else await queue.resume();
    } catch (error) {
      await this.finish(auditId, { affected: tally.affected, error: String((error as { message?: unknown })?.message ?? error) });
      throw error;
    }
    await this.finish(auditId, { affected: tally.affected });
    return { queue: queueName, action, reasonFilter, reasonMatch, affected: tally.affected, auditId };
  }

  /**
   * Completes the audit row. The answer waits for one try only: should the database be away,
   * the row is completed in the background once it is back (tried for about half a minute), and
   * until then shows the action as not finished. The action itself ran either way.
   */
  private async finish(auditId: string, outcome: { affected: number; error?: string }): Promise<void> {
    try {
      await this.audit.finish(auditId, outcome);
    } catch {
      void withRetries(() => this.audit.finish(auditId, outcome), { attempts: 8, firstDelayMs: 500, maxDelayMs: 8000 }).catch(() => {});
    }
  }
}
