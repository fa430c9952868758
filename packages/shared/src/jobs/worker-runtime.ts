/**
 * The generic worker runtime: typed processors over BullMQ workers, payloads validated first,
 * errors classified once and turned into what BullMQ understands. It knows nothing of videos;
 * what a failure means for the work a job belongs to comes in through {@link JobPolicy}.
 */
import os from 'node:os';
import { DelayedError, MetricsTime, UnrecoverableError, WaitingChildrenError, WaitingError, Worker, type Job, type MinimalJob } from 'bullmq';
import type { RedisClient } from '../redis.js';
import {
  classifyJobError,
  coerceError,
  isRedisOrDatabaseOutage,
  JobAbandonedError,
  JobCancelledError,
  JobLockLostError,
  PermanentJobError,
  RETRY_AFTER_BACKOFF,
  retryAfterBackoff,
  upstreamOutageVerdict,
  WorkerClosingError,
  type JobErrorKind,
  type UpstreamOutageError,
  type UpstreamWait,
} from '../errors.js';
import type { Logger } from '../logger.js';
import type { JobNames, Payload, QueueDeclaration } from '../queues/define.js';
import type { FlowStep } from './flow-enqueuer.js';
import { REQUEST_ID_KEY, requestIdOf, runWithRequestId, withRequestId } from '../telemetry/request-context.js';
import { queueTelemetry } from '../telemetry/spans.js';
import { jobOptions, validatePayload } from './payload.js';
import { QueueRegistry } from './queue-registry.js';
import { observeJobs } from './job-metrics.js';
import type { Registry } from 'prom-client';

/** What a processor sees of its job. */
export interface JobHandle<P> {
  readonly id: string;
  readonly name: string;
  readonly queue: string;
  readonly data: P;
  /** Attempts that already failed before this one. */
  readonly attemptsMade: number;
  readonly maxAttempts: number;
  /** This job's earlier waits for upstreams that were down, by upstream (see {@link UPSTREAM_WAITS_KEY}). */
  readonly upstreamWaits: Readonly<Record<string, UpstreamWait>>;
  readonly parentId: string | undefined;
  readonly logger: Logger;
  /** Aborts when the worker is closing, the job's lock is lost or its work was cancelled. */
  readonly signal: AbortSignal;
  updateProgress(percent: number): Promise<void>;
  /** Return values of the finished child jobs. */
  childResults<T = unknown>(): Promise<T[]>;
  /** The failure reasons of optional children that failed, by the child's id. */
  childFailures(): Promise<Record<string, string>>;
  /**
   * Adds jobs as children of this one. Their ids should derive from this job's key, so a retry
   * that adds them again adds nothing. With `optional`, a failed child does not fail this job.
   */
  addChildren(children: readonly { step: FlowStep; optional?: boolean }[]): Promise<void>;
  /**
   * Parks this job until every child has finished; the processor then runs again from the
   * start. Returns (without parking) when no child is pending.
   */
  waitForChildren(): Promise<void>;
}

export type Processor<P, R = unknown> = (job: JobHandle<P>) => Promise<R>;
export type Processors<Q extends QueueDeclaration> = { [N in JobNames<Q>]: Processor<Payload<Q, N>> };

/** A job that failed for good: no attempts left, a permanent error, or stalled too often. */
export interface FinalFailure {
  queue: string;
  jobId: string;
  name: string;
  data: unknown;
  reason: string;
}

/** Where cancellations come from: each names the key of the work to stop (see `cancellationKey`). */
export interface CancellationSource {
  onCancel(listener: (key: string) => void): () => void;
  /**
   * Keys whose optional work is no longer wanted, with why (a video that failed): the running
   * jobs of that key which the policy calls `abandonable` are stopped; the others run on.
   */
  onAbandon?(listener: (key: string, reason: string) => void): () => void;
}

/**
 * What failures mean beyond the job itself. Every field is optional: without a policy a job's
 * failure is only the job's business.
 */
export interface JobPolicy {
  /**
   * Milliseconds a job waits, without spending an attempt, when a dependency is away (see
   * `classifyJobError`). @defaultValue undefined: an outage spends attempts like any error
   */
  outageRetryMs?: number;
  /** Cancellations: running jobs whose `cancellationKey` is named are aborted. */
  cancellations?: CancellationSource;
  /** The key a job's payload belongs to, for cancellations (e.g. its video id). */
  cancellationKey?: (data: unknown) => string | undefined;
  /** Jobs stopped when their key is abandoned (e.g. a video's optional steps). @defaultValue none */
  abandonable?: (queue: string, jobName: string) => boolean;
  /**
   * Called once a job has failed for good, however it failed (including a worker dying on it
   * until the stall check gave up), so the caller can settle what the job was for. Runs in the
   * background; a rejection is logged.
   */
  onFinalFailure?: (failure: FinalFailure) => Promise<void>;
}

export interface WorkerOptions {
  connection: RedisClient;
  prefix: string;
  concurrency: number;
  logger: Logger;
  /** BullMQ limiter; also makes a queue pause (a {@link RateLimitedError}) hold for every worker of the queue. */
  limiter?: { max: number; duration: number };
  /** Milliseconds a job lock lives between renewals. @defaultValue 30000 */
  lockDuration?: number;
  /** Times a job may stall (its worker gone) and be put back before it fails for good. @defaultValue 3 */
  maxStalledCount?: number;
  policy?: JobPolicy;
  /** Registry the job counters and timings go to (see {@link observeJobs}). */
  metrics?: Registry;
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

/** A running job's abort switch, the key cancellations may name, and whether abandoning the key stops it. */
interface RunningJob {
  jobId: string;
  abort: JobAbort;
  key: string | undefined;
  abandonable: boolean;
}

/**
 * A job's abort signal, made only when something asks for it: most jobs finish without a
 * processor reading `signal` and without being aborted, and an AbortController per job is a
 * measurable share of a short job's cost. An abort before the signal exists is remembered, so
 * the signal tells the same as one made at the job's start.
 */
class JobAbort {
  private controller: AbortController | undefined;
  private reason: unknown;
  private abortedEarly = false;

  abort(reason: unknown): void {
    if (this.controller) this.controller.abort(reason);
    else if (!this.abortedEarly) {
      this.abortedEarly = true;
      this.reason = reason;
    }
  }

  get signal(): AbortSignal {
    if (this.controller) return this.controller.signal;
    const controller = new AbortController();
    this.controller = controller;
    if (this.abortedEarly) controller.abort(this.reason);
    return controller.signal;
  }

  /** The signal when the job was aborted, else undefined: the same verdict, nothing made. */
  signalIfAborted(): AbortSignal | undefined {
    return this.controller || this.abortedEarly ? this.signal : undefined;
  }
}

/**
 * A job's logger, a child of the worker's with the job's fields, made only when a line needs it:
 * pino children cost a redaction pass each, and most jobs write a single line.
 */
class JobLogger {
  private child: Logger | undefined;
  private readonly fields: Record<string, unknown>;

  constructor(
    private readonly parent: Logger,
    /** The parent without redaction, for the job's own fields only (ids, names, a count: nothing to redact). */
    private readonly plain: Logger,
    job: Job,
  ) {
    this.fields = { jobId: job.id, job: job.name, flowId: job.parent?.id ?? job.id, attempt: job.attemptsMade + 1 };
  }

  get logger(): Logger {
    this.child ??= this.parent.child(this.fields);
    return this.child;
  }

  /**
   * An info line with the job's fields, through the child if one was made, else without making
   * one; the line is the same either way, and nothing on it is ever redacted, so the redaction
   * pass (half the cost of a line with the logger's paths) is skipped.
   */
  info(message: string): void {
    if (this.child) this.child.info(message);
    else if (this.plain.isLevelEnabled('info')) this.plain.info(this.fields, message);
  }

  debug(message: string): void {
    if (this.parent.isLevelEnabled('debug')) this.logger.debug(message);
  }
}

/** What one worker shares between its jobs. */
interface WorkerScope {
  declaration: QueueDeclaration;
  processors: Record<string, Processor<unknown>>;
  options: WorkerOptions;
  logger: Logger;
  /** {@link WorkerScope.logger} without redaction: for the runtime's own lines of job ids and names. */
  plainLogger: Logger;
  /** By the run's lock token: a job whose lock was lost may run here again while its first run stops. */
  running: Map<string, RunningJob>;
  queues: QueueRegistry;
  worker: () => Worker;
}

/**
 * Where the runtime keeps a job's waits for upstreams that were down ({@link UpstreamWait}): in
 * the job's own data, written just before the job is delayed. So the time of its first wait
 * survives worker restarts, is read by whichever worker process takes the job next, and goes
 * away with the job. The key is taken out before the payload is validated: processors never see it.
 */
export const UPSTREAM_WAITS_KEY = '$upstreamWaits';

/** A job's data without its record of upstream waits (for a job that starts over). */
export function withoutUpstreamWaits(data: unknown): unknown {
  if (!data || typeof data !== 'object' || !(UPSTREAM_WAITS_KEY in data)) return data;
  const { [UPSTREAM_WAITS_KEY]: _waits, ...rest } = data as Record<string, unknown>;
  return rest;
}

/** A job's payload without the runtime's records (upstream waits, request id), and the waits. */
function splitJobData(raw: unknown): { payload: unknown; waits: Readonly<Record<string, UpstreamWait>> } {
  if (!raw || typeof raw !== 'object' || !(UPSTREAM_WAITS_KEY in raw || REQUEST_ID_KEY in raw)) return { payload: raw, waits: {} };
  const { [UPSTREAM_WAITS_KEY]: waits, [REQUEST_ID_KEY]: _requestId, ...payload } = raw as Record<string, unknown>;
  return { payload, waits: (waits ?? {}) as Record<string, UpstreamWait> };
}

function assertEveryJobHasAProcessor(declaration: QueueDeclaration, processors: object): void {
  const missing = Object.keys(declaration.jobs).filter((name) => typeof (processors as Record<string, unknown>)[name] !== 'function');
  if (missing.length) {
    throw new Error(`queue "${declaration.name}" has no processor for job(s) ${missing.join(', ')}: add them to the worker's processors`);
  }
}

/**
 * The handle a processor gets. A class, so a job costs one small object: its methods live on the
 * prototype instead of being closures made for every job.
 */
class RuntimeJobHandle implements JobHandle<unknown> {
  readonly id: string;
  readonly name: string;
  readonly queue: string;
  readonly attemptsMade: number;
  readonly maxAttempts: number;
  readonly parentId: string | undefined;

  constructor(
    private readonly scope: WorkerScope,
    private readonly job: Job,
    readonly data: unknown,
    private readonly abort: JobAbort,
    private readonly jobLogger: JobLogger,
    private readonly token: string | undefined,
  ) {
    this.id = job.id ?? '';
    this.name = job.name;
    this.queue = scope.declaration.name;
    this.attemptsMade = job.attemptsMade;
    this.maxAttempts = job.opts.attempts ?? 1;
    this.parentId = job.parent?.id;
  }

  get upstreamWaits(): Readonly<Record<string, UpstreamWait>> {
    return splitJobData(this.job.data).waits;
  }

  get logger(): Logger {
    return this.jobLogger.logger;
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  updateProgress(percent: number): Promise<void> {
    return this.job.updateProgress(Math.max(0, Math.min(100, Math.round(percent))));
  }

  async childResults<T>(): Promise<T[]> {
    return Object.values(await this.job.getChildrenValues()) as T[];
  }

  async childFailures(): Promise<Record<string, string>> {
    const failures = await this.job.getIgnoredChildrenFailures();
    // Keys are `<prefix>:<queue>:<id>`; ids never hold a colon.
    return Object.fromEntries(Object.entries(failures ?? {}).map(([key, reason]) => [key.slice(key.lastIndexOf(':') + 1), String(reason)]));
  }

  async addChildren(children: readonly { step: FlowStep; optional?: boolean }[]): Promise<void> {
    const parent = { id: this.job.id ?? '', queue: this.job.queueQualifiedName };
    // Children keep the parent's place in line: a high-priority video's renders and AI steps
    // come before a low one's, as its first step did.
    const priority = this.job.opts.priority ? { priority: this.job.opts.priority } : {};
    await Promise.all(
      children.map(async ({ step, optional }) => {
        const queue = this.scope.queues.queue(step.declaration);
        // Already added by an earlier run of this job: adding it again would re-link a
        // child that has since failed as a pending dependency, and park the parent forever.
        if (await queue.getJob(step.jobId)) return;
        const dependency = optional ? { ignoreDependencyOnFailure: true } : { failParentOnFailure: true };
        const data = withRequestId(validatePayload(step.declaration, step.jobName, step.data));
        await queue.add(step.jobName, data, jobOptions(step.declaration, { jobId: step.jobId, parent, ...priority, ...dependency }));
      }),
    );
  }

  async waitForChildren(): Promise<void> {
    if (this.token && (await this.job.moveToWaitingChildren(this.token))) throw new WaitingChildrenError();
  }
}

/**
 * Puts a job whose upstream is down back to wait without spending an attempt (BullMQ's
 * moveToDelayed skips the attempt count; only attemptsStarted grows): until the upstream may be
 * tried again, plus up to a fifth more (at least 100 ms) so that the jobs a fleet deferred for
 * the same breaker do not all come back at the instant it half-opens. The first wait is recorded
 * in the job before it moves. Past the horizon the job fails with the reason; a video step has
 * settled that case already (skipped, or failed with its video).
 */
async function deferForUpstream(job: Job, token: string, outage: UpstreamOutageError, logger: Logger): Promise<never> {
  const { delayMs, deferrals } = await noteUpstreamWait(job, outage, logger);
  const jittered = delayMs + Math.round(Math.random() * Math.max(100, delayMs / 5));
  logger.warn({ upstream: outage.upstream, delayMs: jittered, deferrals, reason: outage.message }, 'upstream unavailable: the job waits for it');
  await job.moveToDelayed(Date.now() + jittered, token);
  throw new DelayedError();
}

/**
 * Records in the job that it waits (again) for the upstream of `outage`, and says how long; past
 * the outage horizon, counted from the job's first wait, throws the reason to give up instead.
 */
async function noteUpstreamWait(job: Job, outage: UpstreamOutageError, logger: Logger): Promise<{ delayMs: number; deferrals: number }> {
  const waits = splitJobData(job.data).waits;
  const earlier = waits[outage.upstream];
  const verdict = upstreamOutageVerdict(outage, earlier);
  if (!verdict.wait) {
    logger.warn({ upstream: outage.upstream, reason: verdict.reason }, 'upstream unavailable past the outage horizon: giving up');
    throw new UnrecoverableError(verdict.reason);
  }
  const wait: UpstreamWait = { since: earlier?.since ?? outage.observedAt, deferrals: (earlier?.deferrals ?? 0) + 1 };
  await job.updateData({ ...(job.data as Record<string, unknown>), [UPSTREAM_WAITS_KEY]: { ...waits, [outage.upstream]: wait } });
  return { delayMs: verdict.delayMs, deferrals: wait.deferrals };
}

/**
 * Turns a processor's error into what BullMQ should do with the job: pause the queue, delay or
 * release it without spending an attempt, fail it for good, or retry it with backoff.
 */
async function settleJobError(scope: WorkerScope, job: Job, token: string | undefined, error: Error, kind: JobErrorKind, logger: Logger): Promise<never> {
  const outageRetryMs = scope.options.policy?.outageRetryMs;
  if (kind.kind === 'rate-limited') {
    // An upstream that keeps refusing is waited for no longer than an outage of it: the pause
    // ends by the horizon, when the job gives up if it is still refused.
    const waitMs = kind.upstream && token ? (await noteUpstreamWait(job, kind.upstream, logger)).delayMs : kind.retryAfterMs;
    const pauseMs = Math.min(kind.retryAfterMs, waitMs);
    logger.warn({ pauseMs, reason: error.message }, 'rate limited: pausing the queue');
    await scope.worker().rateLimit(pauseMs);
    throw Worker.RateLimitError();
  }
  if (kind.kind === 'upstream-outage' && token) return deferForUpstream(job, token, kind.outage, logger);
  // A scheduled run is not held back for an outage: the next one comes on time anyway, and held
  // runs would all start together once the dependency is back.
  if (kind.kind === 'dependency-outage' && outageRetryMs !== undefined && token && !job.repeatJobKey) {
    // A restart or failover of a few seconds must not use up the job's retries.
    logger.warn({ reason: error.message }, 'dependency unavailable: retrying the job later');
    await job.moveToDelayed(Date.now() + outageRetryMs, token);
    throw new DelayedError();
  }
  if (kind.kind === 'lock-lost') {
    // Another run may own the job now: moving it (even failing it) is not this run's to do.
    logger.warn({ reason: error.message }, 'job lock lost: this run stops and leaves the job to the queue');
    throw new WaitingError();
  }
  if (kind.kind === 'worker-closing' && token) {
    // Hand the job back to the queue at once instead of leaving it active until its lock expires.
    await job.moveToWait(token);
    logger.info('job released back to the queue for another worker');
    throw new WaitingError();
  }
  if (kind.kind === 'cancelled') {
    logger.info({ reason: kind.reason }, 'job stopped: its work was cancelled');
    // Marked, so the job metrics count it as cancelled, not as failed.
    throw Object.assign(new UnrecoverableError(kind.reason), { cancelled: true });
  }
  if (kind.kind === 'permanent') {
    logger.warn({ reason: error.message }, 'job failed permanently');
    throw new UnrecoverableError(error.message);
  }
  logger.warn({ err: error }, 'job attempt failed');
  throw error;
}

/**
 * Whether another run of the same schedule is still active. BullMQ queues a schedule's next run
 * when the current one starts, so a run longer than its interval (a storage walk, a purge) has the
 * next start beside it, in this process or another: two sweeps at once would repeat each other's
 * work (a purge counting the same removed bytes twice, a webhook sweep recording an attempt twice).
 */
async function previousRunGoing(scope: WorkerScope, job: Job): Promise<boolean> {
  const active = await scope.queues.queue(scope.declaration).getActive(0, 999);
  return active.some((other) => other.repeatJobKey === job.repeatJobKey && other.id !== job.id && other.timestamp < job.timestamp);
}

async function runJob(scope: WorkerScope, job: Job, token: string | undefined): Promise<unknown> {
  const logger = new JobLogger(scope.logger, scope.plainLogger, job);
  const abort = new JobAbort();
  const { policy } = scope.options;
  const run = token ?? job.id ?? '';
  scope.running.set(run, {
    jobId: job.id ?? '',
    abort,
    key: policy?.cancellationKey?.(job.data),
    abandonable: policy?.abandonable?.(scope.declaration.name, job.name) ?? false,
  });
  try {
    const data = validatePayload(scope.declaration, job.name, splitJobData(job.data).payload);
    const processor = scope.processors[job.name];
    if (!processor) throw new PermanentJobError(`no processor for job "${job.name}"`);
    if (job.repeatJobKey && (await previousRunGoing(scope, job))) {
      logger.debug('scheduled job skipped: its previous run is still going');
      return { skipped: 'the previous run is still going' };
    }
    logger.debug('job started');
    const result = await processor(new RuntimeJobHandle(scope, job, data, abort, logger, token));
    // A scheduled job (a sweep every few seconds) completing is routine: at debug, so the info
    // lines an operator reads stay about work that was asked for. Its failures stay loud.
    if (job.repeatJobKey) logger.debug('job completed');
    else logger.info('job completed');
    return result;
  } catch (thrown) {
    if (thrown instanceof WaitingChildrenError) throw thrown;
    const error = coerceError(thrown);
    const last = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    return await settleJobError(scope, job, token, error, classifyJobError(error, abort.signalIfAborted(), { last }), logger.logger);
  } finally {
    scope.running.delete(run);
  }
}

/**
 * BullMQ reports the locks Redis refused to renew but lets their processors run on: they are
 * stopped here, before a second run of the same job (handed out by the stall check) works beside them.
 * BullMQ names the jobs, not the runs: should this process have taken the same job again
 * meanwhile, both of its runs here stop, and the job goes back to the queue.
 */
function stopRunsThatLostTheirLock(scope: WorkerScope, worker: Worker): void {
  worker.on('lockRenewalFailed', (jobIds) => {
    for (const job of scope.running.values()) if (jobIds.includes(job.jobId)) job.abort.abort(new JobLockLostError(job.jobId));
  });
}

/** Reports jobs that failed for good to the policy: failed by a processor, or by the stall check. */
function reportFinalFailures(scope: WorkerScope, worker: Worker): void {
  const onFinalFailure = scope.options.policy?.onFinalFailure;
  if (!onFinalFailure) return;
  const report = (failed: Job, reason: string) => {
    onFinalFailure({ queue: scope.declaration.name, jobId: failed.id ?? '', name: failed.name, data: failed.data, reason }).catch((error: unknown) =>
      scope.logger.error({ err: error, jobId: failed.id }, 'could not settle a failed job'),
    );
  };
  worker.on('failed', (failed, error) => {
    if (!failed) return;
    if (error instanceof UnrecoverableError || failed.attemptsMade >= (failed.opts.attempts ?? 1)) report(failed, error?.message ?? failed.failedReason);
  });
  // Jobs whose worker died on them too often are failed by the stall check, not by a processor.
  worker.on('stalled', (jobId) => {
    void (async () => {
      const stalled = await scope.queues.queue(scope.declaration).getJob(jobId);
      if (stalled && (await stalled.getState()) === 'failed') report(stalled, stalled.failedReason || 'the job stalled more often than allowed');
    })().catch(() => {});
  });
}

/**
 * The worker's errors, logged. BullMQ passes on every failed reconnect while Redis is away, about
 * one a second per worker: the first connection error of an outage (none for a minute before) is
 * logged with its stack, then only the 10th, 100th, 1000th… with the count; other errors each time.
 */
export function connectionErrorsOnce(logger: Logger): (error: Error) => void {
  let count = 0;
  let last = 0;
  return (error) => {
    if (!isRedisOrDatabaseOutage(error)) {
      logger.error({ err: error }, 'worker error');
      return;
    }
    const now = Date.now();
    if (now - last > 60_000) count = 0;
    last = now;
    count += 1;
    if (count === 1) logger.error({ err: error }, 'worker cannot reach Redis; its further connection errors are counted, not each logged');
    else if (Number.isInteger(Math.log10(count))) logger.warn({ errors: count, reason: error.message }, 'worker still cannot reach Redis');
  };
}

/** The delay before a retry, for the backoff types clipline adds to BullMQ's (BullMQ asks only for types it does not know). */
function customBackoff(attemptsMade: number, type: string | undefined, error: Error | undefined, job: MinimalJob | undefined): number {
  if (type === RETRY_AFTER_BACKOFF) return retryAfterBackoff(attemptsMade, job?.opts.backoff as { delay?: number; jitter?: number } | undefined, error);
  throw new Error(`unknown backoff type "${type}"`);
}

/**
 * Starts a BullMQ worker for one queue. Throws at boot when a declared job has no processor.
 * Each job's payload is validated before its processor runs; a bad payload or a
 * {@link PermanentJobError} fails the job at once, anything else is retried with backoff.
 */
export function startWorker<Q extends QueueDeclaration>(declaration: Q, processors: Processors<Q>, options: WorkerOptions): RunningWorker {
  assertEveryJobHasAProcessor(declaration, processors);
  const logger = options.logger.child({ queue: declaration.name });
  const scope: WorkerScope = {
    declaration,
    processors: processors as Record<string, Processor<unknown>>,
    options,
    logger,
    plainLogger: logger.child({}, { redact: { paths: [], censor: '[redacted]' } }),
    running: new Map(),
    queues: new QueueRegistry({ connection: options.connection, prefix: options.prefix }),
    worker: () => worker,
  };
  const cancellations = options.policy?.cancellations;
  const stopCancels = cancellations?.onCancel((key) => {
    for (const job of scope.running.values()) if (job.key === key) job.abort.abort(new JobCancelledError());
  });
  const stopAbandons = cancellations?.onAbandon?.((key, reason) => {
    for (const job of scope.running.values()) if (job.key === key && job.abandonable) job.abort.abort(new JobAbandonedError(reason));
  });
  const stopListening = () => {
    stopCancels?.();
    stopAbandons?.();
  };
  // A job's log lines, and the jobs it adds, keep the id of the request that started its work.
  // Two parameters on purpose: a processor declaring a third gets a signal that BullMQ aborts only
  // on Worker.cancelJob / cancelAllJobs (never called: the worker is private to this function),
  // not when a lock is lost, and BullMQ then makes an AbortController for every job it runs.
  // Cancellations, lost locks and shutdown reach a job through its own abort switch instead.
  const processJob = (job: Job, token?: string) => runWithRequestId(requestIdOf(job.data), () => runJob(scope, job, token));
  const worker = new Worker(declaration.name, processJob, {
    connection: options.connection,
    prefix: options.prefix,
    concurrency: options.concurrency,
    lockDuration: options.lockDuration ?? 30_000,
    maxStalledCount: options.maxStalledCount ?? 3,
    autorun: true,
    ...(options.limiter ? { limiter: options.limiter } : {}),
    // Completed and failed counts per minute for a day (the dashboard's throughput charts), and a
    // client name telling which process a connected worker is (`queue.getWorkers()`).
    metrics: { maxDataPoints: MetricsTime.ONE_HOUR * 24 },
    settings: { backoffStrategy: customBackoff },
    name: `${os.hostname()}:${process.pid}`,
    telemetry: queueTelemetry(),
  });
  worker.on('error', connectionErrorsOnce(scope.logger));
  stopRunsThatLostTheirLock(scope, worker);
  reportFinalFailures(scope, worker);
  observeJobs(worker, declaration.name, options.metrics);

  let closing: Promise<void> | undefined;
  // Cancellations are listened to until the last job has ended: a video cancelled during the
  // grace period (a rolling deploy) still stops its running steps.
  const close = async (graceMs: number) => {
    const timer = setTimeout(() => {
      for (const { abort } of scope.running.values()) abort.abort(new WorkerClosingError());
    }, graceMs);
    try {
      await worker.close();
    } finally {
      clearTimeout(timer);
      stopListening();
      await scope.queues.close();
    }
  };
  return {
    queue: declaration.name,
    close: (graceMs = 5000) => (closing ??= close(graceMs)),
    isRunning: () => worker.isRunning(),
  };
}
