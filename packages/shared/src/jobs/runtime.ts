/**
 * The one module that talks to BullMQ. Everything else sees queue declarations, typed
 * processors and the small producer/worker interfaces below.
 */
import {
  FlowProducer,
  Queue,
  DelayedError,
  UnrecoverableError,
  WaitingChildrenError,
  WaitingError,
  Worker,
  type ConnectionOptions,
  type FlowJob,
  type Job,
  type JobsOptions,
} from 'bullmq';
import type { Redis } from 'ioredis';
import type { z } from 'zod';
import { coerceError, isDependencyOutage, isWorkerClosing, JobCancelledError, PermanentJobError, WorkerClosingError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { JobNames, Payload, QueueDeclaration } from '../queues/define.js';

export { UnrecoverableError, type Job };

export interface QueueContext {
  connection: Redis;
  prefix: string;
}

/** What a processor sees of its job. */
export interface JobHandle<P> {
  readonly id: string;
  readonly name: string;
  readonly queue: string;
  readonly data: P;
  /** Attempts that already failed before this one. */
  readonly attemptsMade: number;
  readonly maxAttempts: number;
  readonly parentId: string | undefined;
  readonly logger: Logger;
  /** Aborts when the worker is closing or the job's lock is lost. */
  readonly signal: AbortSignal;
  updateProgress(percent: number): Promise<void>;
  /** Return values of the finished child jobs, keyed by child job id. */
  childResults<T = unknown>(): Promise<T[]>;
  /**
   * Adds jobs as children of this one. Their ids should derive from this job's key, so a retry
   * that adds them again adds nothing. With `optional`, a failed child does not fail this job.
   */
  addChildren(children: readonly { step: FlowStep; jobId: string; optional?: boolean }[]): Promise<void>;
  /**
   * Parks this job until every child has finished; the processor then runs again from the
   * start. Returns (without parking) when no child is pending.
   */
  waitForChildren(): Promise<void>;
}

export type Processor<P, R = unknown> = (job: JobHandle<P>) => Promise<R>;
export type Processors<Q extends QueueDeclaration> = { [N in JobNames<Q>]: Processor<Payload<Q, N>> };

/** Validates a payload against its queue's schema; the error names every bad field. */
export function validatePayload<Q extends QueueDeclaration, N extends JobNames<Q>>(
  declaration: Q,
  name: N,
  payload: unknown,
): Payload<Q, N> {
  const schema = declaration.jobs[name] as z.ZodType | undefined;
  if (!schema) throw new PermanentJobError(`queue "${declaration.name}" declares no job "${name}"`);
  const parsed = schema.safeParse(payload);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(payload)'}: ${issue.message}`).join('; ');
    throw new PermanentJobError(`invalid ${declaration.name}/${name} payload: ${detail}`);
  }
  return parsed.data as Payload<Q, N>;
}

export function jobOptions(declaration: QueueDeclaration, overrides: JobsOptions = {}): JobsOptions {
  return { ...declaration.defaultJobOptions, ...overrides };
}

export function createQueue(declaration: QueueDeclaration, context: QueueContext): Queue {
  const queue = new Queue(declaration.name, {
    connection: context.connection as ConnectionOptions,
    prefix: context.prefix,
    defaultJobOptions: declaration.defaultJobOptions,
  });
  queue.on('error', () => {});
  return queue;
}

/** How long a job waits before retrying when a dependency is unreachable. */
const OUTAGE_RETRY_MS = 2000;

export interface WorkerOptions {
  connection: Redis;
  prefix: string;
  concurrency: number;
  logger: Logger;
  /**
   * Milliseconds the whole queue should pause for after this error (an upstream 429 with
   * Retry-After), or undefined. The job goes back to waiting without spending an attempt.
   */
  rateLimitOf?: (error: unknown) => number | undefined;
  /** BullMQ limiter; also makes a manual rate limit hold for every worker of the queue. */
  limiter?: { max: number; duration: number };
  /** Milliseconds a job lock lives between renewals. @defaultValue 30000 */
  lockDuration?: number;
  /**
   * Called once a job has failed for good: no attempts left, a permanent error, or stalled too
   * often (a worker that kept dying on it). Lets the caller settle what the job was for.
   */
  onFinalFailure?: (failure: { name: string; data: unknown; reason: string }) => Promise<void>;
  /** Cancellation signals: running jobs of a cancelled video are aborted. */
  cancellations?: { onCancel(listener: (videoId: string) => void): () => void };
}

export interface RunningWorker {
  readonly queue: string;
  /**
   * Stops taking jobs and waits for the active ones. Jobs still running after `graceMs` are
   * aborted and put back in the queue, so nothing stays active once this resolves.
   */
  close(graceMs?: number): Promise<void>;
  isRunning(): boolean;
}

/**
 * Starts a BullMQ worker for one queue. Throws at boot when a declared job has no processor.
 * Each job's payload is validated before its processor runs; a bad payload or a
 * {@link PermanentJobError} fails the job at once, anything else is retried with backoff.
 */
export function startWorker<Q extends QueueDeclaration>(
  declaration: Q,
  processors: Processors<Q>,
  options: WorkerOptions,
): RunningWorker {
  const declared = Object.keys(declaration.jobs);
  const missing = declared.filter((name) => typeof (processors as Record<string, unknown>)[name] !== 'function');
  if (missing.length) {
    throw new Error(`queue "${declaration.name}" has no processor for job(s) ${missing.join(', ')}: add them to the worker's processors`);
  }
  const baseLogger = options.logger.child({ queue: declaration.name });
  const controllers = new Map<string, { controller: AbortController; videoId: string | undefined }>();
  const childQueues = new Map<string, Queue>();
  const childQueue = (declaration: QueueDeclaration) => {
    let queue = childQueues.get(declaration.name);
    if (!queue) {
      queue = createQueue(declaration, { connection: options.connection, prefix: options.prefix });
      childQueues.set(declaration.name, queue);
    }
    return queue;
  };
  const stopListening = options.cancellations?.onCancel((videoId) => {
    for (const entry of controllers.values()) if (entry.videoId === videoId) entry.controller.abort(new JobCancelledError());
  });

  const worker = new Worker(
    declaration.name,
    async (job: Job, token?: string, lockSignal?: AbortSignal) => {
      const logger = baseLogger.child({
        jobId: job.id,
        job: job.name,
        flowId: job.parent?.id ?? job.id,
        attempt: job.attemptsMade + 1,
      });
      const controller = new AbortController();
      // BullMQ aborts its own signal when this worker loses the job's lock: stop, another worker has it.
      lockSignal?.addEventListener('abort', () => controller.abort(lockSignal.reason ?? new Error('job lock lost')), { once: true });
      const videoId = typeof job.data?.videoId === 'string' ? (job.data.videoId as string) : undefined;
      controllers.set(job.id ?? '', { controller, videoId });
      try {
        const data = validatePayload(declaration, job.name as JobNames<Q>, job.data);
        const processor = (processors as Record<string, Processor<unknown>>)[job.name];
        if (!processor) throw new PermanentJobError(`no processor for job "${job.name}"`);
        const handle: JobHandle<unknown> = {
          id: job.id ?? '',
          name: job.name,
          queue: declaration.name,
          data,
          attemptsMade: job.attemptsMade,
          maxAttempts: job.opts.attempts ?? 1,
          parentId: job.parent?.id,
          logger,
          signal: controller.signal,
          updateProgress: (percent) => job.updateProgress(Math.max(0, Math.min(100, Math.round(percent)))),
          childResults: async <T>() => Object.values(await job.getChildrenValues()) as T[],
          addChildren: async (children) => {
            const parent = { id: job.id ?? '', queue: job.queueQualifiedName };
            await Promise.all(
              children.map(async ({ step, jobId, optional }) => {
                // Already added by an earlier run of this job: adding it again would re-link a
                // child that has since failed as a pending dependency, and park the parent forever.
                if (await childQueue(step.declaration).getJob(jobId)) return;
                await childQueue(step.declaration).add(
                  step.jobName,
                  validatePayload(step.declaration, step.jobName, step.data),
                  jobOptions(step.declaration, { jobId, parent, ...(optional ? { ignoreDependencyOnFailure: true } : { failParentOnFailure: true }) }),
                );
              }),
            );
          },
          waitForChildren: async () => {
            if (token && (await job.moveToWaitingChildren(token))) throw new WaitingChildrenError();
          },
        };
        logger.debug('job started');
        const result = await processor(handle);
        logger.info('job completed');
        return result;
      } catch (thrown) {
        const error = coerceError(thrown);
        if (error instanceof WaitingChildrenError) throw error;
        const pauseMs = options.rateLimitOf?.(error);
        if (pauseMs !== undefined && pauseMs > 0) {
          logger.warn({ pauseMs, reason: error.message }, 'upstream rate limit: pausing the queue');
          await worker.rateLimit(pauseMs);
          throw Worker.RateLimitError();
        }
        if (isDependencyOutage(error) && token) {
          // The database is away (restart, failover): wait for it without spending an attempt,
          // so a blip of a few seconds cannot use up a job's retries.
          logger.warn({ reason: error.message }, 'dependency unavailable: retrying the job later');
          await job.moveToDelayed(Date.now() + OUTAGE_RETRY_MS, token);
          throw new DelayedError();
        }
        if (isWorkerClosing(error, controller.signal) && token) {
          // Hand the job back to the queue at once instead of leaving it active until its lock expires.
          await job.moveToWait(token);
          logger.info('job released back to the queue for another worker');
          throw new WaitingError();
        }
        if (controller.signal.reason instanceof JobCancelledError) {
          logger.info('job stopped: its video was cancelled');
          throw new UnrecoverableError('cancelled on request');
        }
        if (error instanceof PermanentJobError || error instanceof UnrecoverableError) {
          logger.warn({ reason: error.message }, 'job failed permanently');
          throw new UnrecoverableError(error.message);
        }
        logger.warn({ err: error }, 'job attempt failed');
        throw error;
      } finally {
        controllers.delete(job.id ?? '');
      }
    },
    {
      connection: options.connection,
      prefix: options.prefix,
      concurrency: options.concurrency,
      lockDuration: options.lockDuration ?? 30_000,
      autorun: true,
      ...(options.limiter ? { limiter: options.limiter } : {}),
    },
  );
  worker.on('error', (error) => baseLogger.error({ err: error }, 'worker error'));
  // Settling writes to the database, which may be the very thing that failed: keep trying for a
  // few minutes (a sweeper catches what is still unsettled after that, or after a crash).
  const settle = (failed: Job, reason: string) => {
    const onFinalFailure = options.onFinalFailure;
    if (!onFinalFailure) return;
    void (async () => {
      for (let attempt = 1; attempt <= 12; attempt++) {
        try {
          await onFinalFailure({ name: failed.name, data: failed.data, reason });
          return;
        } catch (error) {
          if (attempt === 12) baseLogger.error({ err: error, jobId: failed.id }, 'could not settle a failed job');
          else await new Promise((resolve) => setTimeout(resolve, Math.min(30_000, 500 * 2 ** attempt)));
        }
      }
    })();
  };
  worker.on('failed', (failed, error) => {
    if (!failed) return;
    if (error?.name === 'UnrecoverableError' || failed.attemptsMade >= (failed.opts.attempts ?? 1)) settle(failed, error?.message ?? failed.failedReason);
  });
  // Jobs whose worker died on them too often are failed by the stall check, not by a processor.
  worker.on('stalled', (jobId) => {
    void (async () => {
      const stalled = await childQueue(declaration).getJob(jobId);
      if (stalled && (await stalled.getState()) === 'failed') settle(stalled, stalled.failedReason || 'the job stalled more often than allowed');
    })().catch(() => {});
  });

  let closing: Promise<void> | undefined;
  const close = async (graceMs: number) => {
    stopListening?.();
    const timer = setTimeout(() => {
      for (const { controller } of controllers.values()) controller.abort(new WorkerClosingError());
    }, graceMs);
    try {
      await worker.close();
    } finally {
      clearTimeout(timer);
      await Promise.all([...childQueues.values()].map((queue) => queue.close()));
    }
  };
  return {
    queue: declaration.name,
    close: (graceMs = 5000) => (closing ??= close(graceMs)),
    isRunning: () => worker.isRunning(),
  };
}

export interface FlowStep {
  declaration: QueueDeclaration;
  jobName: string;
  data: unknown;
}

export interface ChainOptions {
  /** BullMQ priority of every job of the chain (1 is the highest). */
  priority?: number;
  /** Milliseconds before the first step may start. */
  delayMs?: number;
}

export interface Chain {
  key: string;
  parent: FlowStep;
  steps: readonly FlowStep[];
  options?: ChainOptions;
}

/**
 * Enqueues flows: a parent job whose children are the steps, nested so each step runs only
 * after the one before it (BullMQ runs the deepest child first). Job ids are `<key>-<queue>`,
 * so enqueuing the same key twice adds nothing. A failed step fails the parent.
 */
export class FlowEnqueuer {
  private readonly flows: FlowProducer;
  private readonly queues = new Map<string, Queue>();

  constructor(private readonly context: QueueContext) {
    this.flows = new FlowProducer({ connection: context.connection as ConnectionOptions, prefix: context.prefix });
    this.flows.on('error', () => {});
  }

  private build({ key, parent, steps, options = {} }: Chain): FlowJob {
    const node = (step: FlowStep, extra: JobsOptions, children: FlowJob[] | undefined): FlowJob => ({
      name: step.jobName,
      queueName: step.declaration.name,
      data: validatePayload(step.declaration, step.jobName, step.data),
      opts: jobOptions(step.declaration, {
        jobId: `${key}-${step.declaration.name}`,
        ...(options.priority ? { priority: options.priority } : {}),
        ...extra,
      }),
      ...(children ? { children } : {}),
    });
    let children: FlowJob[] | undefined;
    // Build from the first step outwards: step k is the only child of step k+1.
    steps.forEach((step, index) => {
      const delay = index === 0 && options.delayMs ? { delay: options.delayMs } : {};
      children = [node(step, { failParentOnFailure: true, ...delay }, children)];
    });
    return node(parent, {}, children);
  }

  async addChain(chain: Chain): Promise<void> {
    await this.flows.add(this.build(chain));
  }

  /** Many chains in one Redis round trip (a MULTI of every job of every flow). */
  async addChains(chains: readonly Chain[]): Promise<void> {
    if (chains.length) await this.flows.addBulk(chains.map((chain) => this.build(chain)));
  }

  /**
   * Removes a chain's parent and every child that is not running. Running children cannot be
   * removed (they hold a lock); they are stopped through cancellation signals instead.
   */
  async removeChain(key: string, parent: QueueDeclaration): Promise<boolean> {
    let queue = this.queues.get(parent.name);
    if (!queue) {
      queue = createQueue(parent, this.context);
      this.queues.set(parent.name, queue);
    }
    try {
      return (await queue.remove(`${key}-${parent.name}`, { removeChildren: true })) === 1;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.flows.close(), ...[...this.queues.values()].map((queue) => queue.close())]);
  }
}

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
  private readonly queues = new Map<string, Queue>();

  constructor(private readonly context: QueueContext) {}

  private queue(declaration: QueueDeclaration): Queue {
    let queue = this.queues.get(declaration.name);
    if (!queue) {
      queue = createQueue(declaration, this.context);
      this.queues.set(declaration.name, queue);
    }
    return queue;
  }

  /** Validates the payload against the job's schema, then adds it with the queue's defaults. */
  async add(declaration: QueueDeclaration, name: string, payload: unknown, overrides: JobsOptions = {}): Promise<{ id: string }> {
    const data = validatePayload(declaration, name, payload);
    const job = await this.queue(declaration).add(name, data, jobOptions(declaration, overrides));
    return { id: job.id ?? '' };
  }

  /** Creates or updates a repeating job (BullMQ job scheduler) named after the job. */
  async schedule(declaration: QueueDeclaration, name: string, payload: unknown, repeat: { every: number }): Promise<void> {
    const data = validatePayload(declaration, name, payload);
    await this.queue(declaration).upsertJobScheduler(`${declaration.name}-${name}`, repeat, {
      name,
      data,
      opts: { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 }, attempts: 1 },
    });
  }

  /**
   * Removes a job, and with `removeChildren` the flow below it. A running job (or, with its
   * children, a tree holding one) keeps its lock and stays: false then.
   */
  async remove(declaration: QueueDeclaration, id: string, options: { removeChildren?: boolean } = {}): Promise<boolean> {
    return (await this.queue(declaration).remove(id, { removeChildren: options.removeChildren ?? false })) === 1;
  }

  async get(declaration: QueueDeclaration, id: string): Promise<JobView | undefined> {
    const queue = this.queue(declaration);
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

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((queue) => queue.close()));
  }
}

/** Counts of jobs per state for one queue, as the readiness and metrics endpoints report them. */
export async function queueCounts(queue: Queue): Promise<Record<string, number>> {
  return queue.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed', 'paused', 'waiting-children', 'prioritized');
}
