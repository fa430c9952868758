import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { DatabaseUrlError, engineOfUrl, resolveDatabaseTarget } from './db/database-target.js';

/** Dev-only credentials: accepted only when NODE_ENV is not `production`. */
export const DEV_API_KEY = 'dev-key-clipline';
export const DEV_DASHBOARD_USER = 'admin';
export const DEV_DASHBOARD_PASSWORD = 'clipline';
/** Dev-only keyring sealing passwords between the API and the CPU pool (`id:base64 key`). */
export const DEV_ACCOUNTS_KEYRING = `dev:${Buffer.from('clipline-dev-accounts-key-32bytes').subarray(0, 32).toString('base64')}`;

/**
 * The embedded database a local start uses when `DATABASE_URL` is unset: a SQLite file beside
 * the stored media. Production must name its database.
 */
export const DEFAULT_DATABASE_URL = `sqlite:${path.resolve('.data/clipline.db')}`;

/** `DATABASE_URL`: its scheme picks the engine. */
export const databaseUrlSchema = z
  .string()
  .refine((url) => engineOfUrl(url) !== undefined, 'expected postgres://…, mysql://… (or mariadb://…) or sqlite:path/to/file.db');

/** `DATABASE_SCHEMA`: a PostgreSQL schema, a MySQL database or a SQLite file beside the named one. */
export const databaseSchemaSchema = z.string().regex(/^[a-z_][a-z0-9_]*$/, 'lower-case identifier expected').default('public');

const port = (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback);
const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);
const commaList = z
  .string()
  .transform((value) =>
    value
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item.length > 0),
  );
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'expected true or false' })
  .transform((value) => value === 'true' || value === '1' || value === 'yes');

/**
 * Every environment variable the system reads. Defaults make a local start work with no
 * variables at all; production refuses the dev credentials (see {@link loadConfig}).
 */
const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Redis holding the queues. @defaultValue redis://127.0.0.1:6379 */
  REDIS_URL: z.url({ protocol: /^rediss?$/, message: 'expected a redis:// or rediss:// URL' }).default('redis://127.0.0.1:6379'),
  /** Prefix of every BullMQ key, so several deployments (or test files) can share one Redis. */
  QUEUE_PREFIX: z.string().regex(/^[A-Za-z0-9:_-]+$/, 'letters, digits, ":", "_" and "-" only').default('clipline'),
  /**
   * The database: `postgres://…`, `mysql://…` / `mariadb://…`, or `sqlite:path`.
   * @defaultValue {@link DEFAULT_DATABASE_URL} (SQLite; refused in production)
   */
  DATABASE_URL: databaseUrlSchema.optional(),
  /** Schema holding clipline's tables; created on migration when missing. */
  DATABASE_SCHEMA: databaseSchemaSchema,
  DATABASE_POOL_SIZE: positiveInt(10),
  /** Where ingested sources and rendered files live. */
  STORAGE_DIR: z.string().min(1).default(path.resolve('.data/storage')),
  /** Largest source accepted by ingest, in bytes. @defaultValue 2 GiB */
  MAX_SOURCE_BYTES: positiveInt(2 * 1024 ** 3),
  /** Longest source accepted by analysis, in seconds. @defaultValue 4 hours */
  MAX_SOURCE_SECONDS: positiveInt(4 * 3600),
  /**
   * Directories from which local-file sources may be read. Empty outside production means
   * "anywhere"; empty in production means local files are refused.
   */
  FILE_SOURCE_ROOTS: commaList.default([]),
  PORT: port(3000),
  /**
   * Address every HTTP listener binds (API, dashboard, metrics). Loopback unless set, so a local
   * start is not reachable from the network; containers set `0.0.0.0`.
   */
  HOST: z.string().min(1).default('127.0.0.1'),
  DASHBOARD_PORT: port(3001),
  /** The producer's Prometheus endpoint, apart from the public API listener. */
  PRODUCER_METRICS_PORT: port(9463),
  WORKER_IO_METRICS_PORT: port(9464),
  WORKER_CPU_METRICS_PORT: port(9465),
  /** Comma-separated API keys accepted on /v1 routes; each key is a tenant of its own. */
  API_KEYS: commaList.optional(),
  /** Comma-separated operator keys: they see and act on every tenant's work. */
  ADMIN_API_KEYS: commaList.default([]),
  DASHBOARD_USER: z.string().min(1).optional(),
  DASHBOARD_PASSWORD: z.string().min(1).optional(),
  /** A read-only dashboard account (no retries, removals or pauses); off unless both are set. */
  DASHBOARD_VIEWER_USER: z.string().min(1).optional(),
  DASHBOARD_VIEWER_PASSWORD: z.string().min(1).optional(),
  /** Failed authentications one client address may make per minute before it is answered 429. */
  AUTH_FAILURES_PER_MINUTE: positiveInt(20),
  /** Unfinished videos one tenant may have at once; more are refused with 429. */
  MAX_ACTIVE_VIDEOS_PER_TENANT: positiveInt(1000),
  /** Live event streams one API key may hold open at once. */
  SSE_MAX_STREAMS_PER_KEY: positiveInt(50),
  /** Seconds after which a live event stream ends (the client reconnects with Last-Event-ID). */
  SSE_MAX_SECONDS: positiveInt(3600),
  /** Keep a video's source file after its analysis and renders are done. */
  KEEP_SOURCES: bool.default(false),
  /** Days after which a finished video's files and rows are removed by the retention job. */
  RETENTION_DAYS: positiveInt(30),
  /** Jobs one worker-io process runs at once. */
  WORKER_IO_CONCURRENCY: positiveInt(50),
  /** Videos one worker-cpu process analyses at once; frames of each fan out over the pool. */
  WORKER_CPU_CONCURRENCY: positiveInt(2),
  /** Threads of the worker-cpu pool. @defaultValue available cores */
  CPU_POOL_THREADS: positiveInt(Math.max(1, os.availableParallelism())),
  /** Frames per second sampled for analysis. */
  ANALYZE_FPS: z.coerce.number().positive().max(60).default(10),
  /** Width frames are scaled to for analysis (height keeps the aspect). */
  ANALYZE_WIDTH: positiveInt(160),
  /** Seconds a process waits for active jobs on SIGTERM before it gives up. */
  SHUTDOWN_TIMEOUT_SECONDS: positiveInt(8),
  FFMPEG_PATH: z.string().default('ffmpeg'),
  FFPROBE_PATH: z.string().default('ffprobe'),
  /** Let ingest download from loopback/private addresses (dev and tests). */
  ALLOW_PRIVATE_SOURCES: bool.optional(),
  /** Seconds an http(s) download may take before it is abandoned. */
  DOWNLOAD_TIMEOUT_SECONDS: positiveInt(600),
  /** Requests per minute one API key may make; 0 turns the limit off. */
  API_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(0).default(1200),
  /** Submissions per key per minute before its jobs yield to lighter submitters. */
  FAIR_SHARE_QUOTA_PER_MINUTE: positiveInt(60),
  /** Hours an Idempotency-Key is remembered. */
  IDEMPOTENCY_TTL_HOURS: positiveInt(24),
  /**
   * Keys sealing passwords on their way from the API to the CPU pool: `id:base64key,…`, 32-byte
   * keys, the first one current (rotate by putting a new key first).
   */
  ACCOUNTS_KEYRING: z.string().regex(/^[A-Za-z0-9_-]{1,32}:[A-Za-z0-9+/=]{43,44}(,[A-Za-z0-9_-]{1,32}:[A-Za-z0-9+/=]{43,44})*$/, 'expected id:base64key[,id:base64key…] with 32-byte keys').optional(),
  /** How often tracked videos' YouTube metadata is refreshed, in seconds. */
  METADATA_SYNC_INTERVAL_SECONDS: positiveInt(3600),
  /** Seconds one webhook POST may take. */
  WEBHOOK_TIMEOUT_SECONDS: positiveInt(10),
  /** Origins allowed by CORS (comma-separated, or "*"); empty turns CORS off. */
  CORS_ORIGINS: commaList.default([]),
});

export type Env = z.input<typeof envSchema>;

export interface Config {
  readonly env: 'development' | 'test' | 'production';
  readonly logLevel: string;
  readonly redisUrl: string;
  readonly queuePrefix: string;
  readonly databaseUrl: string;
  readonly databaseSchema: string;
  readonly databasePoolSize: number;
  readonly storageDir: string;
  readonly maxSourceBytes: number;
  readonly maxSourceSeconds: number;
  readonly fileSourceRoots: readonly string[] | 'any';
  readonly host: string;
  readonly port: number;
  readonly dashboardPort: number;
  readonly producerMetricsPort: number;
  readonly workerIoMetricsPort: number;
  readonly workerCpuMetricsPort: number;
  readonly apiKeys: readonly string[];
  readonly adminApiKeys: readonly string[];
  readonly dashboardUser: string;
  readonly dashboardPassword: string;
  /** The read-only dashboard account, when one is configured. */
  readonly dashboardViewer: { readonly user: string; readonly password: string } | null;
  readonly authFailuresPerMinute: number;
  readonly maxActiveVideosPerTenant: number;
  readonly sseMaxStreamsPerKey: number;
  readonly sseMaxSeconds: number;
  readonly keepSources: boolean;
  readonly retentionDays: number;
  readonly workerIoConcurrency: number;
  readonly workerCpuConcurrency: number;
  readonly cpuPoolThreads: number;
  readonly analyzeFps: number;
  readonly analyzeWidth: number;
  readonly shutdownTimeoutMs: number;
  readonly ffmpegPath: string;
  readonly ffprobePath: string;
  readonly allowPrivateSources: boolean;
  readonly downloadTimeoutMs: number;
  readonly apiRateLimitPerMinute: number;
  readonly fairShareQuotaPerMinute: number;
  readonly idempotencyTtlSeconds: number;
  readonly corsOrigins: readonly string[];
  readonly accountsKeyring: string;
  readonly metadataSyncIntervalMs: number;
  readonly webhookTimeoutMs: number;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function deepFreeze<T extends object>(value: T): Readonly<T> {
  for (const inner of Object.values(value)) {
    if (inner && typeof inner === 'object' && !Object.isFrozen(inner)) deepFreeze(inner as object);
  }
  return Object.freeze(value);
}

/**
 * Parses environment variables with any zod object schema: empty strings count as unset, and a
 * failure throws a {@link ConfigError} naming every bad variable. Apps use it for settings of
 * their own next to {@link loadConfig}.
 */
export function parseEnv<S extends z.ZodType>(schema: S, source: Record<string, string | undefined>): Readonly<z.output<S>> {
  const cleaned = Object.fromEntries(Object.entries(source).filter(([, value]) => value !== undefined && value !== ''));
  const parsed = schema.safeParse(cleaned);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const name = issue.path.join('.');
      return `  ${name}=${JSON.stringify(cleaned[name] ?? '')}: ${issue.message}`;
    });
    throw new ConfigError(`invalid environment:\n${lines.join('\n')}`);
  }
  return deepFreeze(parsed.data as object) as Readonly<z.output<S>>;
}

/** Secrets shorter than this (in UTF-8 bytes) are refused in production. */
export const MIN_SECRET_BYTES = 32;

/** Why a production secret is unsafe (a placeholder, a dev value or too short), or undefined. */
function weakSecret(value: string, devValue?: string): string | undefined {
  if (devValue !== undefined && value === devValue) return 'the dev value is refused in production';
  if (/^change[-_ ]?me/i.test(value) || /^(x+|secret|password|changeit)$/i.test(value)) return 'a placeholder is refused in production';
  if (Buffer.byteLength(value) < MIN_SECRET_BYTES) return `must be at least ${MIN_SECRET_BYTES} bytes in production (e.g. $(openssl rand -base64 32))`;
  return undefined;
}

/** What production refuses: missing secrets, dev values, placeholders and short secrets. */
function productionProblems(env: z.output<typeof envSchema>): string[] {
  const problems: string[] = [];
  if (!env.API_KEYS?.length) problems.push('  API_KEYS: must be set in production (comma-separated keys)');
  if (!env.DASHBOARD_PASSWORD) problems.push('  DASHBOARD_PASSWORD: must be set in production');
  if (!env.ACCOUNTS_KEYRING) problems.push('  ACCOUNTS_KEYRING: must be set in production (id:base64key, e.g. main:$(openssl rand -base64 32))');
  if (env.ACCOUNTS_KEYRING === DEV_ACCOUNTS_KEYRING) problems.push('  ACCOUNTS_KEYRING: the dev value is refused in production');
  if (!env.DATABASE_URL) problems.push('  DATABASE_URL: must be set in production (postgres://…; the SQLite default is for a local start)');
  const secrets: [string, string | undefined, string?][] = [
    ...(env.API_KEYS ?? []).map((key): [string, string, string] => ['API_KEYS', key, DEV_API_KEY]),
    ...env.ADMIN_API_KEYS.map((key): [string, string, string] => ['ADMIN_API_KEYS', key, DEV_API_KEY]),
    ['DASHBOARD_PASSWORD', env.DASHBOARD_PASSWORD, DEV_DASHBOARD_PASSWORD],
    ['DASHBOARD_VIEWER_PASSWORD', env.DASHBOARD_VIEWER_PASSWORD],
  ];
  for (const [name, value, devValue] of secrets) {
    const weakness = value === undefined ? undefined : weakSecret(value, devValue);
    // Name the variable, never the value: these messages reach logs.
    if (weakness && !problems.some((line) => line.startsWith(`  ${name}: ${weakness}`))) problems.push(`  ${name}: ${weakness}`);
  }
  return problems;
}

/**
 * Parses the environment once into a frozen {@link Config}. Throws a {@link ConfigError}
 * whose message names every bad variable and what was expected of it.
 */
export function loadConfig(source: Record<string, string | undefined> = process.env): Config {
  // Empty strings count as unset, so `FOO=` in a compose file falls back to the default.
  const env = parseEnv(envSchema, source);
  const production = env.NODE_ENV === 'production';
  const problems = production ? productionProblems(env) : [];
  const databaseUrl = env.DATABASE_URL ?? DEFAULT_DATABASE_URL;
  try {
    resolveDatabaseTarget(databaseUrl, env.DATABASE_SCHEMA);
  } catch (error) {
    if (!(error instanceof DatabaseUrlError)) throw error;
    problems.push(`  DATABASE_URL: ${error.message.replace(/^DATABASE_URL /, '')}`);
  }
  if (problems.length) throw new ConfigError(`invalid environment:\n${problems.join('\n')}`);

  return deepFreeze({
    env: env.NODE_ENV,
    logLevel: env.LOG_LEVEL,
    redisUrl: env.REDIS_URL,
    queuePrefix: env.QUEUE_PREFIX,
    databaseUrl,
    databaseSchema: env.DATABASE_SCHEMA,
    databasePoolSize: env.DATABASE_POOL_SIZE,
    storageDir: path.resolve(env.STORAGE_DIR),
    maxSourceBytes: env.MAX_SOURCE_BYTES,
    maxSourceSeconds: env.MAX_SOURCE_SECONDS,
    fileSourceRoots: env.FILE_SOURCE_ROOTS.length ? env.FILE_SOURCE_ROOTS.map((root) => path.resolve(root)) : production ? [] : 'any',
    host: env.HOST,
    port: env.PORT,
    dashboardPort: env.DASHBOARD_PORT,
    workerIoMetricsPort: env.WORKER_IO_METRICS_PORT,
    workerCpuMetricsPort: env.WORKER_CPU_METRICS_PORT,
    producerMetricsPort: env.PRODUCER_METRICS_PORT,
    apiKeys: env.API_KEYS?.length ? env.API_KEYS : [DEV_API_KEY],
    adminApiKeys: env.ADMIN_API_KEYS,
    dashboardUser: env.DASHBOARD_USER ?? DEV_DASHBOARD_USER,
    dashboardPassword: env.DASHBOARD_PASSWORD ?? DEV_DASHBOARD_PASSWORD,
    dashboardViewer: env.DASHBOARD_VIEWER_USER && env.DASHBOARD_VIEWER_PASSWORD ? { user: env.DASHBOARD_VIEWER_USER, password: env.DASHBOARD_VIEWER_PASSWORD } : null,
    authFailuresPerMinute: env.AUTH_FAILURES_PER_MINUTE,
    maxActiveVideosPerTenant: env.MAX_ACTIVE_VIDEOS_PER_TENANT,
    sseMaxStreamsPerKey: env.SSE_MAX_STREAMS_PER_KEY,
    sseMaxSeconds: env.SSE_MAX_SECONDS,
    keepSources: env.KEEP_SOURCES,
    retentionDays: env.RETENTION_DAYS,
    workerIoConcurrency: env.WORKER_IO_CONCURRENCY,
    workerCpuConcurrency: env.WORKER_CPU_CONCURRENCY,
    cpuPoolThreads: env.CPU_POOL_THREADS,
    analyzeFps: env.ANALYZE_FPS,
    analyzeWidth: env.ANALYZE_WIDTH,
    shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_SECONDS * 1000,
    ffmpegPath: env.FFMPEG_PATH,
    ffprobePath: env.FFPROBE_PATH,
    allowPrivateSources: env.ALLOW_PRIVATE_SOURCES ?? !production,
    downloadTimeoutMs: env.DOWNLOAD_TIMEOUT_SECONDS * 1000,
    apiRateLimitPerMinute: env.API_RATE_LIMIT_PER_MINUTE,
    fairShareQuotaPerMinute: env.FAIR_SHARE_QUOTA_PER_MINUTE,
    idempotencyTtlSeconds: env.IDEMPOTENCY_TTL_HOURS * 3600,
    corsOrigins: env.CORS_ORIGINS,
    accountsKeyring: env.ACCOUNTS_KEYRING ?? DEV_ACCOUNTS_KEYRING,
    metadataSyncIntervalMs: env.METADATA_SYNC_INTERVAL_SECONDS * 1000,
    webhookTimeoutMs: env.WEBHOOK_TIMEOUT_SECONDS * 1000,
  });
}

/**
 * Runs a config loader or, on a bad variable, prints the reason and exits with code 78
 * (EX_CONFIG). Without a loader, loads the shared {@link Config}.
 */
export function loadConfigOrExit(source?: Record<string, string | undefined>): Config;
export function loadConfigOrExit<T>(source: Record<string, string | undefined>, loader: (source: Record<string, string | undefined>) => T): T;
export function loadConfigOrExit<T>(
  source: Record<string, string | undefined> = process.env,
  loader: (source: Record<string, string | undefined>) => T = loadConfig as unknown as (source: Record<string, string | undefined>) => T,
): T {
  try {
    return loader(source);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`clipline: ${error.message}\n`);
      process.exit(78);
    }
    throw error;
  }
}
