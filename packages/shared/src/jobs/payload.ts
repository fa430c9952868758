import type { JobsOptions } from 'bullmq';
import type { z } from 'zod';
import { PermanentJobError } from '../errors.js';
import type { JobNames, Payload, QueueDeclaration } from '../queues/define.js';

/** Validates a payload against its queue's schema; the error names every bad field. */
export function validatePayload<Q extends QueueDeclaration, N extends JobNames<Q>>(declaration: Q, name: N, payload: unknown): Payload<Q, N> {
  const schema = declaration.jobs[name] as z.ZodType | undefined;
  if (!schema) throw new PermanentJobError(`queue "${declaration.name}" declares no job "${name}"`);
  const parsed = schema.safeParse(payload);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(payload)'}: ${issue.message}`).join('; ');
    throw new PermanentJobError(`invalid ${declaration.name}/${name} payload: ${detail}`);
  }
  return parsed.data as Payload<Q, N>;
}

/** The queue's default job options with the caller's overrides on top. */
export function jobOptions(declaration: QueueDeclaration, overrides: JobsOptions = {}): JobsOptions {
  return { ...declaration.defaultJobOptions, ...overrides };
}
