import type { z } from 'zod';
import { ProviderInvalidResponseError } from './provider-errors.js';
import type { ProviderName } from './provider-names.js';

/**
 * Parses a provider's JSON answer with its zod schema. Anything else (not JSON, a missing or
 * mistyped field) is a {@link ProviderInvalidResponseError} that names the field.
 */
export function parseAnswer<S extends z.ZodType>(provider: ProviderName, what: string, schema: S, body: Buffer | string): z.output<S> {
  let value: unknown;
  try {
    value = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch {
    const start = (typeof body === 'string' ? body : body.toString('utf8', 0, 120)).slice(0, 120).replace(/\s+/g, ' ');
    throw new ProviderInvalidResponseError(provider, `${provider} answered a ${what} that is not JSON (starts with "${start}")`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const detail = parsed.error.issues
      .slice(0, 5)
      .map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`)
      .join('; ');
    throw new ProviderInvalidResponseError(provider, `${provider} answered a malformed ${what}: ${detail}`);
  }
  return parsed.data;
}
