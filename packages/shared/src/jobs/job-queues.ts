import type { JobsOptions } from 'bullmq';
import type { QueueDeclaration } from '../queues/define.js';
import { withRequestId } from '../telemetry/request-context.js';
import { jobOptions, validatePayload } from './payload.js';
import { QueueRegistry, type QueueContext } from './queue-registry.js';

/** A job as the API shows it. */
export interface JobView {
  id: string;
  queue: string;
  name: string;
  state: string;
  progress: unknown;
  returnValue: unknown;
  failedReason: string | null;
  attemptsMade: number;
  createdAt: string | null;
  finishedAt: string | null;
}

/** Enqueues single jobs of declared queues and reads them back; one Queue object per queue. */
export class JobQueues {
  private readonly registry: QueueRegistry;

  constructor(context: QueueContext) {
    this.registry = new QueueRegistry(context);
  }

  /** Validates the payload against the job's schema, then adds it with the queue's defaults. */
  async add(declaration: QueueDeclaration, name: string, payload: unknown, overrides: JobsOptions = {}): Promise<{ id: string }> {
    const data = withRequestId(validatePayload(declaration, name, payload));
    const job = await this.registry.queue(declaration).add(name, data, jobOptions(declaration, overrides));
    return { id: job.id ?? '' };
  }

  /** Creates or updates a repeating job (BullMQ job scheduler) named after the job. */
  async schedule(declaration: QueueDeclaration, name: string, payload: unknown, repeat: { every: number }): Promise<void> {
    const data = validatePayload(declaration, name, payload);
    await this.registry.queue(declaration).upsertJobScheduler(`${declaration.name}-${name}`, repeat, {
      name,
      data,
      opts: { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 }, attempts: 1 },
    });
  }

  /** Removes the job's schedule (its next run included). */
  async unschedule(declaration: QueueDeclaration, name: string): Promise<void> {
    await this.registry.queue(declaration).removeJobScheduler(`${declaration.name}-${name}`);
  }

  /** The interval of the job's schedule in Redis, or undefined when there is none. */
  async scheduledEvery(declaration: QueueDeclaration, name: string): Promise<number | undefined> {
    const scheduler = await this.registry.queue(declaration).getJobScheduler(`${declaration.name}-${name}`);
    return scheduler?.every === undefined || scheduler.every === null ? undefined : Number(scheduler.every);
  }

  /**
   * Removes a job, and with `removeChildren` the flow below it. A running job (or, with its
   * children, a tree holding one) keeps its lock and stays: false then.
   */
  async remove(declaration: QueueDeclaration, id: string, options: { removeChildren?: boolean } = {}): Promise<boolean> {
    return (await this.registry.queue(declaration).remove(id, { removeChildren: options.removeChildren ?? false })) === 1;
  }

  async get(declaration: QueueDeclaration, id: string): Promise<JobView | undefined> {
    const queue = this.registry.queue(declaration);
    // State first, then the job's fields: read the other way round, a job finishing in between
    // shows as completed without its return value.
    const state = await queue.getJobState(id);
    const job = await queue.getJob(id);
    if (!job) return undefined;
    const iso = (ms: number | undefined) => (ms ? new Date(ms).toISOString() : null);
    return {
      id: job.id ?? id,
      queue: declaration.name,
      name: job.name,
      state,
      progress: job.progress,
      returnValue: job.returnvalue ?? null,
      failedReason: job.failedReason || null,
      attemptsMade: job.attemptsMade,
      createdAt: iso(job.timestamp),
      finishedAt: iso(job.finishedOn),
    };
  }

  close(): Promise<void> {
    return this.registry.close();
  }
}
