import type { z } from 'zod';

/** What a worker of a queue is: I/O-bound (async, high concurrency) or CPU-bound (pool-backed). */
export type ResourceClass = 'io' | 'cpu';

/** BullMQ job options a queue applies to every job unless the producer overrides them. */
export interface QueueJobDefaults {
  attempts: number;
  /** `exponential-or-retry-after`: exponential, but never sooner than a `RetryAfterError` asked. */
  backoff: { type: 'exponential' | 'fixed' | 'exponential-or-retry-after'; delay: number; jitter?: number };
  removeOnComplete: { age: number; count: number };
  removeOnFail: { age: number; count: number };
}

export interface QueueDeclaration<Jobs extends Record<string, z.ZodType> = Record<string, z.ZodType>> {
  name: string;
  resourceClass: ResourceClass;
  /** Job name → payload schema. A payload that fails its schema never enters Redis. */
  jobs: Jobs;
  /**
   * Jobs other services may submit through `POST /v1/jobs/:queue/:name`; every other job is an
   * internal step, enqueued only by clipline itself. @defaultValue none
   */
  publicJobs?: readonly Extract<keyof Jobs, string>[];
  defaultJobOptions: QueueJobDefaults;
}

/** Keeps completed jobs a day (Bull Board shows them), failed ones a week. */
export const standardRetention = {
  removeOnComplete: { age: 24 * 3600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 50_000 },
} as const;

export function defineQueue<const Jobs extends Record<string, z.ZodType>>(declaration: QueueDeclaration<Jobs>) {
  return Object.freeze(declaration);
}

export type JobNames<Q extends QueueDeclaration> = Extract<keyof Q['jobs'], string>;

/** Whether `name` is a job of `declaration` that callers of the HTTP API may submit. */
export function isPublicJob(declaration: QueueDeclaration, name: string): boolean {
  return Object.hasOwn(declaration.jobs, name) && (declaration.publicJobs ?? []).includes(name);
}
export type Payload<Q extends QueueDeclaration, N extends JobNames<Q>> = z.output<Q['jobs'][N]>;
