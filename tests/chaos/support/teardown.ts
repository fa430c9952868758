/**
 * Clean-up of one chaos test file: named steps that run last-registered first (processes before
 * the services they use), each attempted even when an earlier one failed; failures go to stderr
 * and make the exit code 1.
 */
import { createLogger, ShutdownRegistry } from '@clipline/shared';

export function createTeardown(name: string): ShutdownRegistry {
  return new ShutdownRegistry({ timeoutMs: 90_000, logger: createLogger({ name, level: 'error', destination: process.stderr }) });
}
