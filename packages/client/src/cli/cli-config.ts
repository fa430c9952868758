import { z } from 'zod';
import { databaseSchemaSchema, databaseUrlSchema, DEFAULT_DATABASE_URL, DEV_API_KEY, parseEnv } from '@clipline/shared';

/**
 * The variables the CLI reads. API commands need the first two; `keys` talks to the database
 * directly (run it where the database is reachable). Defaults match a local `npm start`.
 */
const cliEnvSchema = z.object({
  /** The producer API. @defaultValue http://127.0.0.1:3000 */
  CLIPLINE_URL: z.url({ protocol: /^https?$/, message: 'expected an http:// or https:// URL' }).default('http://127.0.0.1:3000'),
  /** @defaultValue the dev key, which only a non-production server accepts */
  CLIPLINE_API_KEY: z.string().regex(/^[\x21-\x7e]{1,512}$/, 'expected 1-512 visible ASCII characters').default(DEV_API_KEY),
  /** @defaultValue the SQLite file of a local `npm start` */
  DATABASE_URL: databaseUrlSchema.default(DEFAULT_DATABASE_URL),
  DATABASE_SCHEMA: databaseSchemaSchema,
  /** Set (to anything) to draw progress without colours. */
  NO_COLOR: z.string().optional(),
});

export interface CliSettings {
  readonly apiUrl: string;
  readonly apiKey: string;
  readonly databaseUrl: string;
  readonly databaseSchema: string;
  readonly color: boolean;
}

/** Throws a ConfigError naming every bad variable. */
export function loadCliSettings(source: Record<string, string | undefined>): CliSettings {
  const env = parseEnv(cliEnvSchema, source);
  return Object.freeze({
    apiUrl: env.CLIPLINE_URL,
    apiKey: env.CLIPLINE_API_KEY,
    databaseUrl: env.DATABASE_URL,
    databaseSchema: env.DATABASE_SCHEMA,
    color: env.NO_COLOR === undefined,
  });
}
